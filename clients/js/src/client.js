// NaxClient: one WebSocket connection to a hub (docs/PROTOCOL.md), kept
// open until close(): ops as promises, channel state chained on prev_seq
// and checksum-verified, resubscribe with `resume` after a reconnect,
// resync of a channel that broke. The kept state per channel lives in
// channels.js, the book in book.js.

import { ChannelState, parseChannel } from "./channels.js";
import { Emitter } from "./emitter.js";
import { NaxError } from "./errors.js";

/** The hub's frame limit is 20/s with a burst of 50: stay under both. */
const BUCKET_SIZE = 40;
const BUCKET_RATE_PER_MS = 18 / 1000;
/** Channels per subscribe frame (the hub's frames are at most 16 KiB). */
const CHANNELS_PER_FRAME = 100;
/** How long close() waits for the close handshake before it lets the socket go. */
const CLOSE_WAIT_MS = 3000;
/** Rejections that are not the hub's answer: a subscribe that gets one stays remembered. */
const CLIENT_SIDE_CODES = new Set(["disconnected", "timeout", "closed"]);
const TICKER_FIELDS = ["bid", "bid_qty", "ask", "ask_qty", "last", "open_24h", "high_24h", "low_24h",
  "volume_24h", "quote_volume_24h", "change_24h", "change_24h_pct"];

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
  /** @type {any} */ #ws = null;
  /** @type {"connecting"|"open"|"reconnecting"|"closed"} */ #state = "closed";
  /** Whether the client should be connected (connect() called, close() not). */
  #wanted = false;
  /** Failed attempts since the last open. */
  #attempt = 0;
  /** Connections opened so far. */
  #opened = 0;
  /** @type {number | null} set by a `shutdown` message: the next reconnect's delay */
  #shutdownDelay = null;
  #reconnectTimer = null;
  #pingTimer = null;
  /** @type {Map<string, ChannelState>} */ #channels = new Map();
  /** @type {Map<number, {resolve: (msg: any) => void, reject: (e: NaxError) => void, timer: any}>} */
  #pending = new Map();
  #nextId = 1;
  /** Ops asked for while not open, answered once the connection is restored. */
  /** @type {{kind: "public"|"private"|"auth", resolve: (v: any) => void, reject: (e: any) => void, timer: any}[]} */
  #waiters = [];
  /** @type {string | null} */ #token = null;
  /** @type {(() => Promise<string>) | null} */ #tokenProvider = null;
  #cancelOnDisconnect = false;
  /** Whether the current connection is authenticated. */
  #authed = false;
  /** Channels waiting to be subscribed again (no resume) after a gap or mismatch. */
  /** @type {Set<ChannelState>} */ #resyncBatch = new Set();
  #tokens = BUCKET_SIZE;
  #tokensAt = 0;
  /** @type {object[]} */ #outbox = [];
  #flushTimer = null;
  /** @type {(() => void)[]} */ #closeWaiters = [];

  /** Counters of what the client checked and repaired since it was created. */
  stats = { checksumsVerified: 0, checksumMismatches: 0, gaps: 0, resyncs: 0, reconnects: 0, recovered: 0, notRecovered: 0, messages: 0 };
  /** @type {Map<string, import("../index.d.ts").Order>} every order seen on `orders` since auth, by order_id */
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
      random: options.random ?? Math.random,
      url: options.url,
    };
    if (typeof this.#opts.WebSocket !== "function") throw new TypeError("NaxClient: no WebSocket (Node: run with --experimental-websocket, or pass options.WebSocket)");
  }

  /** The connection state. */
  get state() { return this.#state; }

  /**
   * Registers a listener; returns a function that removes it. Listeners survive reconnects.
   * @param {string} event a key of ClientEvents (index.d.ts)
   * @param {(event: any) => void} listener
   */
  on(event, listener) { return this.#events.on(event, listener); }

  /** Opens the connection (and keeps reopening it until `close`). */
  connect() {
    if (this.#wanted) return;
    this.#wanted = true;
    this.#open();
  }

  /**
   * Adds channels; remembered and re-subscribed (with `resume`) after every
   * reconnect. Resolves on `subscribed`. Rejects with the hub's error, and the
   * channels of this call are then forgotten (a subscribe is all or nothing);
   * rejects with `disconnected` or `timeout` when the connection was not
   * there to answer, and the channels stay remembered: they are subscribed
   * when it is back.
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
    const forget = (error) => {
      if (!CLIENT_SIDE_CODES.has(error.code)) {
        for (const st of added) if (this.#channels.get(st.info.name) === st) this.#channels.delete(st.info.name);
      }
      throw error;
    };
    const pub = added.filter((st) => !st.info.private).map((st) => st.info.name);
    const priv = added.filter((st) => st.info.private).map((st) => st.info.name);
    const waits = [];
    if (this.#state !== "open") {
      if (pub.length) waits.push(this.#waitFor("public"));
      if (priv.length) waits.push(this.#waitFor("private"));
    } else {
      if (pub.length) waits.push(this.#subscribeFrame(pub, undefined));
      if (priv.length) waits.push(this.#authed || !this.#token ? this.#subscribeFrame(priv, undefined) : this.#waitFor("private"));
    }
    await Promise.all(waits).catch(forget);
  }

  /**
   * Removes channels (and their kept state).
   * @param {string[]} channels
   * @returns {Promise<void>}
   */
  async unsubscribe(channels) {
    const names = [...new Set(channels)].filter((name) => this.#channels.delete(name));
    if (names.length && this.#state === "open") await this.#request("unsubscribe", { channels: names });
  }

  /**
   * Authenticates. The token (or the provider's next one) is sent again
   * after every reconnect, before private channels are re-subscribed.
   * @param {string} token
   * @param {{cancelOnDisconnect?: boolean, tokenProvider?: () => Promise<string>}} [options]
   * @returns {Promise<{user_id: string, cancel_on_disconnect: boolean}>}
   */
  auth(token, options = {}) {
    this.#token = token;
    if (options.tokenProvider) this.#tokenProvider = options.tokenProvider;
    this.#cancelOnDisconnect = options.cancelOnDisconnect ?? false;
    return this.#state === "open" ? this.#sendAuth() : this.#waitFor("auth");
  }

  /** Forgets the token and the private channels (does not log out over REST). */
  async deauth() {
    this.#token = null;
    this.#tokenProvider = null;
    const priv = [...this.#channels.values()].filter((st) => st.info.private).map((st) => st.info.name);
    this.orders.clear();
    this.balances.clear();
    const wasAuthed = this.#authed;
    this.#authed = false;
    for (const name of priv) this.#channels.delete(name);
    if (priv.length && wasAuthed && this.#state === "open") await this.#request("unsubscribe", { channels: priv });
  }

  /**
   * Places an order (`order.place`). Rejects with `disconnected` when the
   * connection drops before the answer: the order may have been placed, and
   * sending it again with the same `client_order_id` is safe (the hub
   * answers the existing order with `created: false`).
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

  /** @param {string} [pair] @returns {Promise<string[]>} the ids cancelled */
  async cancelAll(pair) {
    return (await this.#request("order.cancel_all", pair === undefined ? {} : { pair })).order_ids;
  }

  /** @param {number} timeoutMs 0 disarms @returns {Promise<{timeout_ms: number, trigger_ts: number | null}>} */
  async cancelAfter(timeoutMs) {
    const msg = await this.#request("cancel_after", { timeout_ms: timeoutMs });
    return { timeout_ms: msg.timeout_ms, trigger_ts: msg.trigger_ts };
  }

  /** The kept book of `book.PAIR` / `depthN.PAIR`. @param {string} channel */
  book(channel) { return this.#channels.get(channel)?.book ?? undefined; }

  /** The kept candles of a candles channel, oldest first. @param {string} channel */
  candles(channel) { return this.#channels.get(channel)?.candles ?? []; }

  /** Closes with 1000 and stops reconnecting; pending ops reject with `closed`. Resolves when the socket is closed. */
  close() {
    this.#wanted = false;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#failPending("closed");
    for (const w of this.#waiters.splice(0)) { clearTimeout(w.timer); w.reject(new NaxError("closed")); }
    const ws = this.#ws;
    if (!ws) {
      this.#setState("closed");
      return Promise.resolve();
    }
    const done = new Promise((resolve) => this.#closeWaiters.push(resolve));
    if (this.#state !== "open") {
      // Still connecting: there is no close handshake to wait for.
      this.#drop(ws, 1000, "client closed");
      return done;
    }
    try { ws.close(1000, "client closed"); } catch { /* already closing */ }
    const fallback = setTimeout(() => this.#onClose(ws), CLOSE_WAIT_MS);
    return done.finally(() => clearTimeout(fallback));
  }

  // ---- connection -------------------------------------------------------

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#events.emit("state", { state, attempt: this.#attempt });
  }

  #open() {
    this.#setState(this.#opened === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new this.#opts.WebSocket(this.#opts.url);
    } catch (error) {
      this.#events.emit("error", new NaxError("disconnected", `cannot open ${this.#opts.url}: ${error.message}`));
      this.#attempt++;
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    let opened = false;
    ws.onopen = () => { opened = true; this.#onOpen(ws); };
    ws.onmessage = (event) => this.#onMessage(ws, event.data);
    ws.onclose = () => { if (!opened && ws === this.#ws) this.#attempt++; this.#onClose(ws); };
    ws.onerror = () => { /* a close event follows */ };
  }

  #onOpen(ws) {
    if (ws !== this.#ws) return;
    if (this.#opened > 0) this.stats.reconnects++;
    this.#opened++;
    this.#attempt = 0;
    this.#tokens = BUCKET_SIZE;
    this.#tokensAt = Date.now();
    // Restore first (auth, subscribe frames sent), then tell the listeners:
    // one that reacts to `open` by sending an op comes after the restore.
    this.#state = "open";
    this.#restore().catch((error) => this.#events.emit("error", toNaxError(error)));
    this.#startPing(ws);
    this.#events.emit("state", { state: "open", attempt: 0 });
  }

  #onClose(ws) {
    if (ws !== this.#ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this.#ws = null;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    this.#outbox = [];
    this.#authed = false;
    this.#resyncBatch.clear();
    for (const st of this.#channels.values()) st.resyncing = false;
    this.#failPending(this.#wanted ? "disconnected" : "closed");
    if (!this.#wanted) {
      this.#setState("closed");
      for (const resolve of this.#closeWaiters.splice(0)) resolve();
      return;
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    let delay;
    if (this.#shutdownDelay !== null) {
      delay = this.#shutdownDelay + this.#opts.random() * this.#opts.initialBackoffMs;
      this.#shutdownDelay = null;
    } else {
      // The first retry (after a drop, or after the first attempt failed) has the initial
      // ceiling; each further failed attempt doubles it.
      const doublings = Math.max(0, this.#attempt - 1);
      const ceiling = Math.min(this.#opts.maxBackoffMs, this.#opts.initialBackoffMs * 2 ** doublings);
      delay = this.#opts.random() * ceiling;
    }
    this.#state = "closed"; // so that the state event below always fires with the new attempt
    this.#setState("reconnecting");
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#wanted) this.#open();
    }, delay);
  }

  /** Closes `ws` without waiting for its close handshake, and reconnects. */
  #drop(ws, code, reason) {
    if (ws !== this.#ws) return;
    try { ws.close(code, reason); } catch { /* already closing */ }
    this.#onClose(ws);
  }

  #startPing(ws) {
    const every = this.#opts.pingIntervalMs;
    if (!every) return;
    this.#pingTimer = setInterval(() => {
      this.#request("ping", {}, this.#opts.pongTimeoutMs).catch((error) => {
        if (error.code === "timeout") this.#drop(ws, 4000, "pong timeout");
      });
    }, every);
  }

  /** After an open: auth first, then one subscribe (with resume) of the public channels, then the private ones once authed. */
  async #restore() {
    const ws = this.#ws;
    const reconnect = this.#opened > 1;
    const token = reconnect ? await this.#freshToken() : this.#token;
    if (ws !== this.#ws) return;
    const auth = token !== null ? this.#sendAuth(token) : null;
    if (auth) this.#settleWaiters("auth", auth);
    const pub = [...this.#channels.values()].filter((st) => !st.info.private);
    /** @type {Record<string, {epoch: string, seq: number}>} */
    const resume = {};
    for (const st of pub) {
      if (st.mode !== "fresh" && st.seq !== null && st.epoch !== null && st.info.kind !== "heartbeat") {
        resume[st.info.name] = { epoch: st.epoch, seq: st.seq };
        st.mode = "resume";
      } else {
        st.mode = "fresh";
      }
    }
    const publicDone = pub.length
      ? this.#subscribeFrame(pub.map((st) => st.info.name), resume).then((answers) => {
        if (!reconnect) return;
        const recovered = answers.flatMap((a) => a.recovered ?? []);
        const notRecovered = answers.flatMap((a) => a.not_recovered ?? []);
        this.stats.recovered += recovered.length;
        this.stats.notRecovered += notRecovered.length;
        this.#events.emit("resumed", { recovered, not_recovered: notRecovered });
      })
      : Promise.resolve();
    this.#settleWaiters("public", publicDone);
    if (!auth) {
      this.#settleWaiters("private", Promise.reject(new NaxError("unauthorized", "private channels need auth first")));
    }
    await Promise.all([publicDone, auth]);
  }

  /** The token to send: the provider's next one when there is a provider, else the kept one. */
  async #freshToken() {
    if (this.#token === null || !this.#tokenProvider) return this.#token;
    try {
      this.#token = await this.#tokenProvider();
    } catch (error) {
      this.#events.emit("error", new NaxError("unauthorized", `tokenProvider failed: ${error?.message ?? error}`));
    }
    return this.#token;
  }

  /** Sends `auth` on the open connection; once authed, subscribes the remembered private channels. */
  async #sendAuth(token = this.#token) {
    const fields = { token };
    if (this.#cancelOnDisconnect) fields.cancel_on_disconnect = true;
    let msg;
    try {
      msg = await this.#request("auth", fields);
    } catch (error) {
      if (error.code === "unauthorized") this.#token = null;
      this.#settleWaiters("private", Promise.reject(error));
      throw error;
    }
    this.#authed = true;
    const priv = [...this.#channels.values()].filter((st) => st.info.private);
    for (const st of priv) st.mode = "fresh";
    const privateDone = priv.length ? this.#subscribeFrame(priv.map((st) => st.info.name), undefined) : Promise.resolve();
    this.#settleWaiters("private", privateDone);
    privateDone.catch((error) => this.#events.emit("error", toNaxError(error)));
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
      frames.push(this.#request("subscribe", fields));
    }
    return Promise.all(frames);
  }

  /** A promise settled when the connection is restored (auth / public / private subscribe), or on timeout. */
  #waitFor(kind) {
    return new Promise((resolve, reject) => {
      const waiter = { kind, resolve, reject, timer: null };
      waiter.timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new NaxError("timeout", `no connection within ${this.#opts.requestTimeoutMs} ms`));
      }, this.#opts.requestTimeoutMs);
      this.#waiters.push(waiter);
    });
  }

  #settleWaiters(kind, promise) {
    promise.catch(() => {}); // handled by the waiters, or by the caller
    const mine = this.#waiters.filter((w) => w.kind === kind);
    if (!mine.length) return;
    this.#waiters = this.#waiters.filter((w) => w.kind !== kind);
    for (const w of mine) {
      clearTimeout(w.timer);
      promise.then(w.resolve, w.reject);
    }
  }

  // ---- ops --------------------------------------------------------------

  /**
   * Sends an op and resolves with its answer (rejects with NaxError on `error`,
   * timeout, disconnect or close).
   */
  #request(op, fields, timeoutMs = this.#opts.requestTimeoutMs) {
    if (this.#state !== "open" || !this.#ws) {
      return Promise.reject(new NaxError(this.#wanted ? "disconnected" : "closed", `${op}: not connected`));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new NaxError("timeout", `${op}: no answer within ${timeoutMs} ms`, id));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#send({ op, id, ...fields });
    });
  }

  #failPending(code) {
    const pending = [...this.#pending.entries()];
    this.#pending.clear();
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      p.reject(new NaxError(code, code === "closed" ? "the client was closed" : "the connection dropped before the answer", id));
    }
  }

  /** Sends a frame now, or queues it to keep under the hub's frame rate. */
  #send(frame) {
    this.#outbox.push(frame);
    this.#flush();
  }

  #flush() {
    const ws = this.#ws;
    if (!ws) return;
    const now = Date.now();
    this.#tokens = Math.min(BUCKET_SIZE, this.#tokens + (now - this.#tokensAt) * BUCKET_RATE_PER_MS);
    this.#tokensAt = now;
    while (this.#outbox.length && this.#tokens >= 1) {
      this.#tokens -= 1;
      ws.send(JSON.stringify(this.#outbox.shift()));
    }
    if (this.#outbox.length && !this.#flushTimer) {
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = null;
        this.#flush();
      }, Math.ceil((1 - this.#tokens) / BUCKET_RATE_PER_MS));
    }
  }

  // ---- messages ---------------------------------------------------------

  #onMessage(ws, data) {
    if (ws !== this.#ws) return;
    this.stats.messages++;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.#events.emit("error", new NaxError("bad_message", "the hub sent a frame that is not JSON"));
      return;
    }
    this.#events.emit("message", msg);
    if (typeof msg.channel === "string") {
      this.#onChannelMessage(msg);
    } else if (msg.id !== null && msg.id !== undefined) {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.type === "error") p.reject(new NaxError(msg.code, msg.message, msg.id));
      else p.resolve(msg);
    } else if (msg.type === "error") {
      this.#onUnsolicitedError(msg);
    } else if (msg.type === "shutdown") {
      this.#shutdownDelay = Number(msg.reconnect_after_ms) || 0;
      this.#drop(ws, 1000, "hub shutting down");
    }
  }

  #onUnsolicitedError(msg) {
    this.#events.emit("error", new NaxError(msg.code, msg.message, null));
    if (msg.code !== "unauthorized" || !this.#authed) return;
    // The session ended: private subscriptions are gone on the hub's side.
    this.#authed = false;
    for (const st of this.#channels.values()) if (st.info.private) st.mode = "fresh";
    if (this.#tokenProvider && this.#state === "open") {
      this.#freshToken()
        .then((token) => this.#sendAuth(token))
        .catch((error) => this.#events.emit("error", toNaxError(error)));
    }
  }

  #onChannelMessage(msg) {
    const st = this.#channels.get(msg.channel);
    if (!st) return; // unsubscribed meanwhile
    const verdict = st.check(msg);
    if (verdict === "stale") return;
    if (verdict === "gap") {
      this.stats.gaps++;
      this.#resync(st, "gap");
      return;
    }
    st.advance(msg);
    const { name: channel, pair } = st.info;
    switch (msg.type) {
      case "snapshot":
      case "update":
      case "depth": {
        const book = /** @type {import("./book.js").OrderBook} */ (st.book);
        if (msg.type === "update") book.apply(msg.bids, msg.asks);
        else book.replace(msg.bids, msg.asks);
        book.epoch = msg.epoch;
        book.seq = msg.seq;
        if (book.checksum() !== msg.checksum) {
          this.stats.checksumMismatches++;
          this.#resync(st, "checksum");
          return;
        }
        this.stats.checksumsVerified++;
        this.#events.emit("book", { channel, pair, book, reason: msg.reason ?? null });
        return;
      }
      case "trades":
        this.#events.emit("trades", { channel, pair, trades: msg.trades });
        return;
      case "ticker": {
        const ticker = { pair };
        for (const field of TICKER_FIELDS) ticker[field] = msg[field] ?? null;
        this.#events.emit("ticker", { channel, pair, ticker });
        return;
      }
      case "candles":
      case "candle": {
        const candle = st.applyCandles(msg);
        const event = { channel, pair, interval: st.info.interval, candles: st.candles };
        if (candle) event.candle = candle;
        this.#events.emit("candles", event);
        return;
      }
      case "status":
        this.#events.emit("status", { pairs: msg.pairs });
        return;
      case "order":
        this.orders.set(msg.order.order_id, msg.order);
        this.#events.emit("order", { order: msg.order });
        return;
      case "balance":
        this.balances.set(msg.balance.asset, msg.balance);
        this.#events.emit("balance", { balance: msg.balance });
        return;
      case "cancelled":
        this.#events.emit("cancelled", { trigger: msg.trigger, order_ids: msg.order_ids });
        return;
      default:
        return; // heartbeat, or a type this client does not know
    }
  }

  /** Subscribes a broken channel again (no resume); resyncs of one moment share one frame. */
  #resync(st, reason) {
    st.mode = "fresh";
    if (st.resyncing) return;
    st.resyncing = true;
    this.stats.resyncs++;
    this.#events.emit("resync", { channel: st.info.name, reason });
    if (this.#resyncBatch.size === 0) queueMicrotask(() => this.#flushResyncs());
    this.#resyncBatch.add(st);
  }

  #flushResyncs() {
    const batch = [...this.#resyncBatch].filter((st) => this.#channels.get(st.info.name) === st);
    this.#resyncBatch.clear();
    if (!batch.length || this.#state !== "open") return;
    this.#subscribeFrame(batch.map((st) => st.info.name), undefined)
      .catch((error) => this.#events.emit("error", toNaxError(error)))
      .finally(() => { for (const st of batch) st.resyncing = false; });
  }
}

function toNaxError(error) {
  return error instanceof NaxError ? error : new NaxError("internal", String(error?.message ?? error));
}
