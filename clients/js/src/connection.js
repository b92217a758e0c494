// Connection: the WebSocket under a NaxClient, kept open until close():
// opening and reopening it (full-jitter exponential backoff, or the delay
// a `shutdown` message asks for), the liveness ping, the connection state,
// ops as promises (outbox.js) matched to their answers. What a connection
// carries (restore, channels, auth) is the client's, through `hooks`.

import { NaxError } from "./errors.js";
import { Requests } from "./outbox.js";

/** How long close() waits for the close handshake before it lets the socket go. */
const CLOSE_WAIT_MS = 3000;

/**
 * @typedef {object} ConnectionHooks
 * @property {(ws: any, reconnect: boolean) => void} opened the socket opened (state `open`, before the `state` event): restore now
 * @property {() => void} closed the socket is gone (before pending ops reject)
 * @property {(ws: any, msg: any) => void} message every parsed frame, before its answer is matched
 * @property {(event: {state: string, attempt: number}) => void} state
 * @property {(error: NaxError) => void} error
 */

/** The socket under a NaxClient: (re)opening, state, ping, ops and their answers. */
export class Connection {
  #opts;
  /** @type {ConnectionHooks} */ #hooks;
  /** @type {any} */ #ws = null;
  /** @type {"connecting"|"open"|"reconnecting"|"closed"} */ #state = "closed";
  /** Whether it should be connected (connect() called, close() not). */
  #wanted = false;
  /** Failed attempts since the last open. */
  #attempt = 0;
  /** Connections opened so far. */
  #opened = 0;
  /** @type {number | null} set by a `shutdown` message (or reconnectNow: 0): the next reconnect's delay */
  #shutdownDelay = null;
  #reconnectTimer = null;
  #pingTimer = null;
  /** @type {(() => void)[]} */ #closeWaiters = [];
  ops = new Requests();

  /**
   * @param {{WebSocket: any, url: string, initialBackoffMs: number, maxBackoffMs: number, pingIntervalMs: number,
   *   pongTimeoutMs: number, random: () => number}} opts
   * @param {ConnectionHooks} hooks
   */
  constructor(opts, hooks) {
    this.#opts = opts;
    this.#hooks = hooks;
  }

  get state() { return this.#state; }
  /** The current socket (null between connections). */
  get ws() { return this.#ws; }
  /** Whether close() was not called since connect(). */
  get wanted() { return this.#wanted; }

  /** Opens the connection (and keeps reopening it until close). */
  connect() {
    if (this.#wanted) return;
    this.#wanted = true;
    this.#open();
  }

  /** Closes with 1000 and stops reconnecting; `closed` at once, pending ops reject with `closed`. Resolves when the socket is closed. */
  close() {
    this.#wanted = false;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.ops.failAll("closed");
    const ws = this.#ws;
    const wasOpen = this.#state === "open";
    this.#setState("closed");
    if (!ws) return Promise.resolve();
    const done = new Promise((resolve) => this.#closeWaiters.push(resolve));
    if (!wasOpen) {
      // Still connecting: there is no close handshake to wait for.
      this.drop(ws, 1000, "client closed");
      return done;
    }
    this.ops.outbox.detach();
    try { ws.close(1000, "client closed"); } catch { /* already closing */ }
    const fallback = setTimeout(() => this.#onClose(ws), CLOSE_WAIT_MS);
    return done.finally(() => clearTimeout(fallback));
  }

  /** Closes the open socket and opens a new one at once (no backoff). */
  reconnectNow() {
    if (!this.#ws) return;
    this.#shutdownDelay = 0;
    this.drop(this.#ws, 1000, "reconnect");
  }

  /** Closes `ws` (if still the current socket) without waiting for its close handshake, and reconnects. */
  drop(ws, code, reason) {
    if (ws !== this.#ws) return;
    try { ws.close(code, reason); } catch { /* already closing */ }
    this.#onClose(ws);
  }

  /**
   * Sends an op (outbox.js) and resolves with its answer; rejects at once
   * with `disconnected` (or `closed` after close()) when not open.
   * @param {string} op
   * @param {object} fields
   * @param {number} timeoutMs
   * @param {boolean} [front]
   */
  request(op, fields, timeoutMs, front = false) {
    if (this.#state !== "open" || !this.#ws) {
      return Promise.reject(new NaxError(this.#wanted ? "disconnected" : "closed", `${op}: not connected`));
    }
    return this.ops.send(op, fields, timeoutMs, front);
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#hooks.state({ state, attempt: this.#attempt });
  }

  #open() {
    this.#setState(this.#opened === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new this.#opts.WebSocket(this.#opts.url);
    } catch (error) {
      this.#hooks.error(new NaxError("disconnected", `cannot open ${this.#opts.url}: ${error.message}`));
      this.#attempt++;
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    let opened = false;
    ws.onopen = () => { opened = true; this.#onOpen(ws); };
    ws.onmessage = (event) => this.#onMessage(ws, event.data);
    const failed = () => { if (!opened && ws === this.#ws) this.#attempt++; this.#onClose(ws); };
    ws.onclose = failed;
    // Browsers follow an error with a close event; Node's WebSocket does not when the connection is refused.
    ws.onerror = () => { if (!opened) failed(); };
  }

  #onOpen(ws) {
    if (ws !== this.#ws || !this.#wanted) return;
    const reconnect = this.#opened > 0;
    this.#opened++;
    this.#attempt = 0;
    this.ops.outbox.attach(ws);
    // The restore first (auth and subscribe frames queued, or the outbox
    // held), then the listeners: an op sent from an `open` listener goes
    // out after the auth frame.
    this.#state = "open";
    this.#hooks.opened(ws, reconnect);
    this.#startPing(ws);
    this.#hooks.state({ state: "open", attempt: 0 });
  }

  #onClose(ws) {
    if (ws !== this.#ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this.#ws = null;
    clearInterval(this.#pingTimer);
    this.ops.outbox.detach();
    this.#hooks.closed();
    this.ops.failAll(this.#wanted ? "disconnected" : "closed");
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
      delay = this.#shutdownDelay + (this.#shutdownDelay ? this.#opts.random() * this.#opts.initialBackoffMs : 0);
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

  #startPing(ws) {
    const every = this.#opts.pingIntervalMs;
    if (!every) return;
    this.#pingTimer = setInterval(() => {
      // At the front of the outbox: a ping never waits behind a backlog into a false timeout.
      this.request("ping", {}, this.#opts.pongTimeoutMs, true).catch((error) => {
        if (error.code === "timeout") this.drop(ws, 4000, "pong timeout");
      });
    }, every);
  }

  #onMessage(ws, data) {
    if (ws !== this.#ws) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.#hooks.error(new NaxError("bad_message", "the hub sent a frame that is not JSON"));
      return;
    }
    this.#hooks.message(ws, msg);
    if (ws !== this.#ws || typeof msg.channel === "string") return;
    if (msg.id !== null && msg.id !== undefined) {
      this.ops.answer(msg);
    } else if (msg.type === "shutdown") {
      this.#shutdownDelay = Number(msg.reconnect_after_ms) || 0;
      this.drop(ws, 1000, "hub shutting down");
    }
  }
}
