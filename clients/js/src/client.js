// NaxClient: the client of a hub's WebSocket protocol (docs/PROTOCOL.md):
// channels remembered and restored after every reconnect (auth first, then
// the remembered channels with `resume`, then what was asked for
// meanwhile, each call in its own frame), authentication (kept token or
// tokenProvider), order ops as promises. The socket, its reconnects and
// the op plumbing are connection.js (frames paced in outbox.js); channel
// messages are handled in dispatch.js, broken channels repaired in
// repair.js, the kept state per channel lives in channels.js, the book in
// book.js.

import { ChannelState, parseChannel, CHANNELS_PER_FRAME } from "./channels.js";
import { Emitter } from "./emitter.js";
import { NaxError } from "./errors.js";
import { Connection } from "./connection.js";
import { Repairer } from "./repair.js";
import { dispatch, OrderKeeper } from "./dispatch.js";
import { resumeOf, resubscribe, authFromProvider } from "./restore.js";

/** Rejections that are not the hub's answer: a subscribe that gets one stays remembered. */
const CLIENT_SIDE_CODES = new Set(["disconnected", "timeout", "closed", "queue_full"]);

/**
 * The client of the hub's WebSocket protocol. See ../index.d.ts for the
 * contract and ../README.md for a walk-through.
 *
 * Only these members of the WebSocket are used, so `options.WebSocket` may
 * be any class that has them: `new (url)`, `onopen`, `onmessage`
 * (`event.data`: a string), `onclose`, `onerror`, `send(string)`,
 * `close(code, reason)`.
 */
export class NaxClient {
  #opts;
  #events = new Emitter();
  /** @type {Map<string, ChannelState>} */ #channels = new Map();
  /** Calls made while not open, run by the next restore. */
  /** @type {{kind: "subscribe"|"auth", run: () => Promise<any>, resolve: (v: any) => void, reject: (e: any) => void, timer: any}[]} */
  #waiters = [];
  /** @type {(() => void)[]} deauth() calls waiting for the next restore */
  #restoredWaiters = [];
  /** @type {string | null} */ #token = null;
  /** Whether #token was given by an auth() made while not open and not sent yet (else, with a provider, a reconnect asks the provider). */
  #tokenFresh = false;
  /** @type {(() => Promise<string>) | null} */ #tokenProvider = null;
  #cancelOnDisconnect = false;
  /** Whether the current connection is authenticated. */
  #authed = false;
  /** Whether the hub accepted an auth on the current connection (it then knows a user, even after the session ended). */
  #userKnown = false;
  /** @type {Promise<any> | null} the current connection's auth in progress */
  #authing = null;
  /** Auth frames sent and not answered yet (on any connection). */
  #authsInFlight = 0;
  /** deauth() calls so far: an auth answer that comes after one is ignored. */
  #deauths = 0;
  /** @type {Connection} */ #conn;
  #repair;
  #orderKeeper;
  #dispatchCtx;

  /** Counters of what the client checked and repaired since it was created. */
  stats = {
    checksumsVerified: 0, checksumMismatches: 0, gaps: 0, resyncs: 0, reconnects: 0, recovered: 0, notRecovered: 0,
    messages: 0, staleDropped: 0, watchdogResyncs: 0,
  };
  /** @type {Map<string, import("../index.d.ts").Order>} orders seen on `orders` since auth, by order_id (finished ones: the newest 1,000) */
  orders = new Map();
  /** @type {Map<string, import("../index.d.ts").Balance>} every balance seen on `balances` since auth, by asset */
  balances = new Map();

  /** @param {import("../index.d.ts").ClientOptions} options */
  constructor(options) {
    if (!options || typeof options.url !== "string") throw new TypeError("NaxClient: options.url is required");
    this.#opts = {
      WebSocket: options.WebSocket ?? globalThis.WebSocket,
      initialBackoffMs: options.initialBackoffMs ?? 250,
      maxBackoffMs: options.maxBackoffMs ?? 10_000,
      pingIntervalMs: options.pingIntervalMs ?? 15_000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      cancelAllTimeoutMs: options.cancelAllTimeoutMs ?? 60_000,
      tokenProviderTimeoutMs: options.tokenProviderTimeoutMs ?? 10_000,
      watchdogMs: options.watchdogMs ?? 10_000,
      random: options.random ?? Math.random,
      url: options.url,
    };
    if (typeof this.#opts.WebSocket !== "function") throw new TypeError("NaxClient: no WebSocket (Node: run with --experimental-websocket, or pass options.WebSocket)");
    const emit = (event, payload) => this.#events.emit(event, payload);
    this.#conn = new Connection(this.#opts, {
      opened: (ws, reconnect) => this.#onOpen(ws, reconnect),
      closed: () => {
        this.#repair.reset();
        this.#authed = false;
        this.#userKnown = false;
        this.#authing = null;
      },
      message: (ws, msg) => this.#onMessage(ws, msg),
      state: (event) => emit("state", event),
      error: (error) => emit("error", error),
    });
    this.#repair = new Repairer({
      channels: this.#channels, emit, stats: this.stats, watchdogMs: this.#opts.watchdogMs,
      isOpen: () => this.#conn.state === "open",
      subscribe: (names) => this.#subscribeFrame(names, undefined),
    });
    this.#orderKeeper = new OrderKeeper(this.orders);
    this.#dispatchCtx = {
      emit, stats: this.stats, orders: this.#orderKeeper, balances: this.balances,
      resync: (st, reason) => this.#repair.resync(st, reason),
    };
  }

  /** The connection state. */
  get state() { return this.#conn.state; }

  /**
   * Registers a listener; returns a function that removes it. Listeners survive reconnects.
   * @param {string} event a key of ClientEvents (index.d.ts)
   * @param {(event: any) => void} listener
   */
  on(event, listener) { return this.#events.on(event, listener); }

  /** Opens the connection (and keeps reopening it until `close`). */
  connect() { this.#conn.connect(); }

  /**
   * Adds channels; remembered and re-subscribed (with `resume`) after every
   * reconnect. Resolves on `subscribed`. Rejects with the hub's error, and the
   * channels of this call are then forgotten (a subscribe is all or nothing);
   * rejects with `disconnected` or `timeout` when the connection was not
   * there to answer, and the channels stay remembered: they are subscribed
   * when it is back. A call made while not open is sent in its own frame
   * once the connection is restored.
   * @param {string[]} channels
   * @returns {Promise<void>}
   */
  async subscribe(channels) {
    const added = [];
    for (const name of new Set(channels)) {
      if (this.#channels.has(name)) continue;
      const info = parseChannel(name);
      if (!info) throw new NaxError("unknown_channel", `not a channel name: ${String(name).slice(0, 40)}`);
      added.push(new ChannelState(info));
    }
    if (added.length === 0) return;
    for (const st of added) this.#channels.set(st.info.name, st);
    const run = () => this.#subscribeAdded(added);
    try {
      if (this.#conn.state === "open") await run();
      else {
        for (const st of added) st.queued = true;
        await this.#waitFor("subscribe", run, added);
      }
    } catch (error) {
      if (!CLIENT_SIDE_CODES.has(error.code)) {
        for (const st of added) if (this.#channels.get(st.info.name) === st) this.#channels.delete(st.info.name);
      }
      throw error;
    }
  }

  /** One subscribe() call's channels on the open connection: the public ones now, the private ones once authed. */
  async #subscribeAdded(added) {
    for (const st of added) st.queued = false;
    const pub = added.filter((st) => !st.info.private).map((st) => st.info.name);
    const priv = added.filter((st) => st.info.private).map((st) => st.info.name);
    const waits = [];
    if (pub.length) waits.push(this.#subscribeFrame(pub, undefined));
    if (priv.length) {
      const authing = this.#authed ? null : this.#authing;
      waits.push(authing ? authing.then(() => this.#subscribeFrame(priv, undefined)) : this.#subscribeFrame(priv, undefined));
    }
    await Promise.all(waits);
  }

  /**
   * Removes channels (and their kept state).
   * @param {string[]} channels
   * @returns {Promise<void>}
   */
  async unsubscribe(channels) {
    const names = [...new Set(channels)].filter((name) => this.#channels.delete(name));
    if (names.length && this.#conn.state === "open") await this.#request("unsubscribe", { channels: names });
  }

  /**
   * Authenticates. The token (or the provider's next one) is sent again
   * after every reconnect, before private channels are re-subscribed. On a
   * connection already authenticated (a token refresh of the same user) the
   * private channels are left as they are.
   * @param {string} token
   * @param {{cancelOnDisconnect?: boolean, tokenProvider?: () => Promise<string>}} [options]
   * @returns {Promise<{user_id: string, cancel_on_disconnect: boolean}>}
   */
  auth(token, options = {}) {
    const before = { token: this.#token, provider: this.#tokenProvider, cod: this.#cancelOnDisconnect };
    const open = this.#conn.state === "open";
    this.#token = token;
    // Fresh only for the restore that sends it; sent now, it is a kept token (a provider is asked on the next reconnect).
    this.#tokenFresh = !open;
    if (options.tokenProvider) this.#tokenProvider = options.tokenProvider;
    this.#cancelOnDisconnect = options.cancelOnDisconnect ?? false;
    const sent = open ? this.#sendAuth(token) : this.#waitFor("auth", () => this.#sendAuth(this.#token));
    return sent.catch((error) => {
      // A refused token is not kept (a second user's token is bad_request; a bad one unauthorized).
      if ((error.code === "unauthorized" || error.code === "bad_request") && this.#token === token) {
        if (this.#authed) {
          this.#token = before.token;
          this.#tokenProvider = before.provider;
          this.#cancelOnDisconnect = before.cod;
        } else {
          this.#token = null;
        }
        this.#tokenFresh = false;
      }
      throw error;
    });
  }

  /**
   * Forgets the token, the provider, the private channels and their orders
   * and balances, and makes the hub forget the user: closes the socket and
   * reconnects at once, restoring the public channels with `resume`, also
   * when an auth is still waiting for its answer (that answer is ignored).
   * Resolves when the new connection is open and restored, or after
   * `requestTimeoutMs` when it is not back by then (the hub forgot the user
   * at the close; the restore follows when the connection is back); at once
   * when not connected or the hub knows no user. Does not log out over REST.
   * @returns {Promise<void>}
   */
  async deauth() {
    this.#deauths++;
    this.#token = null;
    this.#tokenFresh = false;
    this.#tokenProvider = null;
    this.#cancelOnDisconnect = false;
    for (const w of this.#waiters.filter((w) => w.kind === "auth")) {
      clearTimeout(w.timer);
      w.reject(new NaxError("unauthorized", "deauth() before the connection was back"));
    }
    this.#waiters = this.#waiters.filter((w) => w.kind !== "auth");
    for (const st of [...this.#channels.values()]) if (st.info.private) this.#channels.delete(st.info.name);
    this.#orderKeeper.clear();
    this.balances.clear();
    const known = this.#userKnown || this.#authing !== null || this.#authsInFlight > 0;
    this.#authed = false;
    if (!known || this.#conn.state !== "open") return;
    let timer;
    const restored = new Promise((resolve) => {
      this.#restoredWaiters.push(resolve);
      timer = setTimeout(() => {
        this.#restoredWaiters = this.#restoredWaiters.filter((r) => r !== resolve);
        resolve();
      }, this.#opts.requestTimeoutMs);
    });
    this.#conn.reconnectNow();
    await restored.finally(() => clearTimeout(timer));
  }

  /**
   * Places an order (`order.place`). Rejects with `disconnected` when the
   * connection drops before the answer, or `timeout` when none came in
   * time: in both cases the order may have been placed, and sending it
   * again with the same `client_order_id` is safe (the hub answers the
   * existing order with `created: false`).
   * @param {import("../index.d.ts").OrderRequest} order
   * @returns {Promise<{order: import("../index.d.ts").Order, created: boolean}>}
   */
  async placeOrder(order) {
    const msg = await this.#request("order.place", { order });
    return { order: msg.order, created: msg.created };
  }

  /** @param {string} orderId @returns {Promise<import("../index.d.ts").Order>} the order, now cancelled */
  async cancelOrder(orderId) {
    return (await this.#request("order.cancel", { order_id: orderId })).order;
  }

  /** Waits up to `cancelAllTimeoutMs` (default 60 s). @param {string} [pair] @returns {Promise<string[]>} the ids cancelled */
  async cancelAll(pair) {
    const fields = pair === undefined ? {} : { pair };
    return (await this.#request("order.cancel_all", fields, this.#opts.cancelAllTimeoutMs)).order_ids;
  }

  /** @param {number} timeoutMs 0 disarms @returns {Promise<{timeout_ms: number, trigger_ts: number | null}>} */
  async cancelAfter(timeoutMs) {
    const msg = await this.#request("cancel_after", { timeout_ms: timeoutMs });
    return { timeout_ms: msg.timeout_ms, trigger_ts: msg.trigger_ts };
  }

  /** The kept book of `book.PAIR` / `depthN.PAIR`; undefined until it is synced (and while a broken one is repaired). @param {string} channel */
  book(channel) {
    const book = this.#channels.get(channel)?.book;
    return book?.synced ? book : undefined;
  }

  /** The kept candles of a candles channel, oldest first. @param {string} channel */
  candles(channel) { return this.#channels.get(channel)?.candles ?? []; }

  /** Closes with 1000 and stops reconnecting; the state is `closed` at once, pending ops reject with `closed`. Resolves when the socket is closed. */
  close() {
    for (const w of this.#waiters.splice(0)) { clearTimeout(w.timer); w.reject(new NaxError("closed")); }
    for (const resolve of this.#restoredWaiters.splice(0)) resolve();
    return this.#conn.close();
  }

  // ---- restore ----------------------------------------------------------

  #onOpen(ws, reconnect) {
    if (reconnect) this.stats.reconnects++;
    this.#restore(ws, reconnect).catch((error) => {
      if (error?.code !== "disconnected" && error?.code !== "closed") this.#events.emit("error", toNaxError(error));
    });
    this.#repair.start();
  }

  /**
   * After an open: auth first (queued now, or once the tokenProvider
   * answered, ahead of anything queued meanwhile), then the remembered
   * public channels (with resume) in their own frame, then each call made
   * while disconnected in its own frame; private channels once authed.
   */
  async #restore(ws, reconnect) {
    let auth = null;
    const viaProvider = Boolean(this.#tokenProvider && !this.#tokenFresh);
    if (viaProvider) {
      auth = this.#providerAuth(ws, true); // reports its own failure
    } else if (this.#token !== null) {
      const token = this.#token;
      const sent = this.#sendAuth(token);
      auth = this.#authing = sent;
      sent.catch((error) => {
        // A refused token is never sent again; with a provider, it is asked for a fresh one.
        if ((error.code === "unauthorized" || error.code === "bad_request") && this.#token === token) {
          this.#token = null;
          if (error.code === "unauthorized" && this.#tokenProvider && ws === this.#conn.ws) this.#providerAuth(ws, true).catch(() => {});
        }
      }).finally(() => { if (this.#authing === sent) this.#authing = null; });
    }
    this.#tokenFresh = false;
    const pub = [...this.#channels.values()].filter((st) => !st.info.private && !st.queued);
    const publicDone = this.#restorePublic(ws, pub, reconnect);
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      const result = w.kind === "auth" ? (auth ?? w.run()) : w.run();
      result.then(w.resolve, w.reject);
    }
    await Promise.allSettled([publicDone, auth]);
    if (ws === this.#conn.ws) for (const resolve of this.#restoredWaiters.splice(0)) resolve();
    if (!viaProvider) await auth;
  }

  /** Subscribes the remembered public channels again with `resume` (restore.js); emits `resumed` after a reconnect. */
  async #restorePublic(ws, sts, reconnect) {
    const resume = resumeOf(sts);
    const result = await resubscribe(sts, {
      subscribe: (names) => this.#subscribeFrame(names, resume),
      current: () => ws === this.#conn.ws,
      emit: (error) => this.#events.emit("error", toNaxError(error)),
      forget: (st) => { if (this.#channels.get(st.info.name) === st) this.#channels.delete(st.info.name); },
      retry: (st) => { if (this.#channels.get(st.info.name) === st) this.#repair.retry(st); },
    });
    if (!result) return;
    // A recovered channel's next message is a live one, which may be long in coming: no watchdog.
    for (const name of result.recovered) {
      const st = this.#channels.get(name);
      if (st) st.awaitingSince = null;
    }
    if (!reconnect || !sts.length) return;
    this.stats.recovered += result.recovered.length;
    this.stats.notRecovered += result.not_recovered.length;
    this.#events.emit("resumed", result);
  }

  /**
   * Authenticates with the tokenProvider's token (restore.js); with `hold`,
   * no op that needs auth (order ops, private subscribes) is sent before the
   * auth frame, while public subscribes and pings go on. When it gives up: an
   * `error` event, and the connection stays unauthenticated.
   */
  #providerAuth(ws, hold) {
    // The hold is of this socket's outbox: a release after it closed does nothing.
    const release = hold ? this.#conn.ops.outbox.hold() : () => {};
    const auth = authFromProvider({
      provider: () => this.#tokenProvider,
      current: () => ws === this.#conn.ws,
      timeoutMs: this.#opts.tokenProviderTimeoutMs,
      auth: (token) => { this.#token = token; return this.#sendAuth(token, true); },
      sent: release,
    }).catch((error) => {
      if (ws === this.#conn.ws && error.code !== "disconnected" && error.code !== "closed") {
        if (error.code === "unauthorized") this.#token = null;
        this.#events.emit("error", toNaxError(error));
      }
      throw error;
    }).finally(release);
    this.#authing = auth;
    auth.catch(() => {}).finally(() => { if (this.#authing === auth) this.#authing = null; });
    return auth;
  }

  /** Sends `auth` on the open connection; on a connection not yet authed, then subscribes the remembered private channels. */
  async #sendAuth(token, front = false) {
    const fields = { token };
    if (this.#cancelOnDisconnect) fields.cancel_on_disconnect = true;
    const ws = this.#conn.ws;
    const deauths = this.#deauths;
    this.#authsInFlight++;
    let msg;
    try {
      msg = await this.#request("auth", fields, this.#opts.requestTimeoutMs, front);
    } finally {
      this.#authsInFlight--;
    }
    if (deauths !== this.#deauths || ws !== this.#conn.ws) {
      throw new NaxError(deauths !== this.#deauths ? "unauthorized" : "disconnected", "auth: answered after deauth() or on a connection since closed");
    }
    const wasAuthed = this.#authed;
    this.#authed = true;
    this.#userKnown = true;
    if (!wasAuthed) {
      const priv = [...this.#channels.values()].filter((st) => st.info.private && !st.queued);
      for (const st of priv) st.mode = "fresh";
      if (priv.length) {
        this.#subscribeFrame(priv.map((st) => st.info.name), undefined).catch((error) => {
          if (!CLIENT_SIDE_CODES.has(error.code)) this.#events.emit("error", toNaxError(error));
        });
      }
    }
    return { user_id: msg.user_id, cancel_on_disconnect: msg.cancel_on_disconnect };
  }

  /**
   * Subscribes `names` in as few frames as the frame size allows (one in practice).
   * @returns {Promise<any[]>} the `subscribed` answers
   */
  #subscribeFrame(names, resume) {
    const frames = [];
    for (let i = 0; i < names.length; i += CHANNELS_PER_FRAME) {
      const chunk = names.slice(i, i + CHANNELS_PER_FRAME);
      const fields = { channels: chunk };
      if (resume) {
        const part = Object.fromEntries(chunk.filter((n) => resume[n]).map((n) => [n, resume[n]]));
        if (Object.keys(part).length) fields.resume = part;
      }
      frames.push(this.#request("subscribe", fields).then((answer) => {
        const now = Date.now();
        for (const name of chunk) {
          const st = this.#channels.get(name);
          if (!st) continue;
          if (st.mode !== "live") st.awaitingSince = now;
        }
        return answer;
      }));
    }
    return Promise.all(frames);
  }

  /** A call made while not open: run by the next restore, or rejected with `timeout`. */
  #waitFor(kind, run, sts = []) {
    return new Promise((resolve, reject) => {
      const waiter = { kind, run, resolve, reject, timer: null };
      waiter.timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        for (const st of sts) st.queued = false; // remembered: the next restore subscribes it
        reject(new NaxError("timeout", `no connection within ${this.#opts.requestTimeoutMs} ms`));
      }, this.#opts.requestTimeoutMs);
      this.#waiters.push(waiter);
    });
  }

  // ---- ops --------------------------------------------------------------

  /** Sends an op (connection.js) and resolves with its answer. */
  #request(op, fields, timeoutMs = this.#opts.requestTimeoutMs, front = false) {
    return this.#conn.request(op, fields, timeoutMs, front);
  }

  // ---- messages ---------------------------------------------------------

  /** Every frame from the hub (connection.js matches the answers to ops afterwards). */
  #onMessage(ws, msg) {
    this.stats.messages++;
    this.#events.emit("message", msg);
    if (typeof msg.channel === "string") {
      const st = this.#channels.get(msg.channel);
      if (st) dispatch(st, msg, this.#dispatchCtx); // else unsubscribed meanwhile
    } else if (msg.type === "error" && (msg.id === null || msg.id === undefined)) {
      this.#onUnsolicitedError(ws, msg);
    }
  }

  #onUnsolicitedError(ws, msg) {
    this.#events.emit("error", new NaxError(msg.code, msg.message, null));
    if (msg.code !== "unauthorized" || !this.#authed) return;
    // The session ended: private subscriptions are gone on the hub's side.
    this.#authed = false;
    for (const st of this.#channels.values()) if (st.info.private) st.mode = "fresh";
    if (this.#tokenProvider && this.#conn.state === "open") this.#providerAuth(ws, false).catch(() => {});
  }
}

function toNaxError(error) {
  return error instanceof NaxError ? error : new NaxError("internal", String(error?.message ?? error));
}
