// Outbox: the frames of one connection waiting to be sent, paced under the
// hub's frame limit (docs/PROTOCOL.md "Limits and close codes": 20 frames/s,
// burst 50) by a token bucket, capped in length, and able to hold the
// frames that need an authenticated connection (order ops, private
// subscribes) back while the auth of a restore waits for its token.

import { NaxError } from "./errors.js";
import { parseChannel } from "./channels.js";

/** The hub's frame limit is 20/s with a burst of 50: stay under both. */
const BUCKET_SIZE = 40;
const BUCKET_RATE_PER_MS = 18 / 1000;
/** Frames queued at most; one more is refused with `queue_full`. */
const OUTBOX_LIMIT = 1000;
/** The ops the hub answers only on an authenticated connection (besides subscribes to private channels). */
const AUTH_OPS = new Set(["order.place", "order.cancel", "order.cancel_all", "cancel_after"]);

/** Whether `frame` needs an authenticated connection: held back by a hold(). @param {any} frame */
export function needsAuth(frame) {
  if (AUTH_OPS.has(frame.op)) return true;
  return frame.op === "subscribe" && Array.isArray(frame.channels) && frame.channels.some((name) => parseChannel(name)?.private);
}

/** One connection's unsent frames, paced by a token bucket (BUCKET_SIZE, BUCKET_RATE_PER_MS), at most OUTBOX_LIMIT. */
export class Outbox {
  /** @type {object[]} */ #queue = [];
  /** @type {{send(data: string): void} | null} */ #ws = null;
  #tokens = BUCKET_SIZE;
  #tokensAt = 0;
  #timer = null;
  #held = false;
  /** Sockets attached so far: a hold belongs to the socket it was taken on. */
  #generation = 0;

  /** Starts sending on a newly opened socket, with a full bucket. @param {{send(data: string): void}} ws */
  attach(ws) {
    this.detach();
    this.#ws = ws;
    this.#tokens = BUCKET_SIZE;
    this.#tokensAt = Date.now();
  }

  /** Forgets the socket and every unsent frame. */
  detach() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#ws = null;
    this.#queue = [];
    this.#held = false;
    this.#generation++;
  }

  /**
   * Queues a frame (at the front with `front`: pings, and auth after a
   * restore) and sends what the bucket allows. Throws NaxError `queue_full`
   * when OUTBOX_LIMIT frames are waiting (front frames are always taken).
   * @param {object} frame
   * @param {boolean} [front]
   */
  push(frame, front = false) {
    if (front) {
      this.#queue.unshift(frame);
    } else {
      if (this.#queue.length >= OUTBOX_LIMIT) {
        throw new NaxError("queue_full", `${OUTBOX_LIMIT} frames already wait to be sent`);
      }
      this.#queue.push(frame);
    }
    this.#flush();
  }

  /** Takes an unsent frame out; returns whether it was still waiting. @param {object} frame */
  remove(frame) {
    const at = this.#queue.indexOf(frame);
    if (at < 0) return false;
    this.#queue.splice(at, 1);
    return true;
  }

  /**
   * Holds the frames that need auth (needsAuth) back on the current socket;
   * the others (auth, pings, public subscribes) still go. Returns the
   * release: it sends what the bucket allows, and is a no-op once the
   * socket it was taken on is gone (it never releases a newer socket's hold).
   * @returns {() => void}
   */
  hold() {
    const generation = this.#generation;
    this.#held = true;
    return () => {
      if (generation !== this.#generation || !this.#held) return;
      this.#held = false;
      this.#flush();
    };
  }

  #flush() {
    const ws = this.#ws;
    if (!ws) return;
    const now = Date.now();
    this.#tokens = Math.min(BUCKET_SIZE, this.#tokens + (now - this.#tokensAt) * BUCKET_RATE_PER_MS);
    this.#tokensAt = now;
    const kept = [];
    while (this.#queue.length && this.#tokens >= 1) {
      const frame = this.#queue.shift();
      if (this.#held && needsAuth(frame)) { kept.push(frame); continue; }
      this.#tokens -= 1;
      ws.send(JSON.stringify(frame));
    }
    this.#queue.unshift(...kept);
    if (this.#queue.length && !this.#timer && (!this.#held || this.#queue.some((f) => !needsAuth(f)))) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#flush();
      }, Math.ceil((1 - this.#tokens) / BUCKET_RATE_PER_MS));
    }
  }
}

/**
 * The ops of one client: ids, the answers waited for (matched by id), a
 * timeout per op, the outbox their frames wait in. A frame still unsent at
 * its timeout is taken out of the outbox: it is never sent after its
 * promise rejected.
 */
export class Requests {
  /** @type {Map<number, {resolve: (msg: any) => void, reject: (e: NaxError) => void, timer: any}>} */
  #pending = new Map();
  #nextId = 1;
  outbox = new Outbox();

  /**
   * Queues an op (the connection must be open) and resolves with its answer;
   * rejects with the hub's `error`, `timeout` or `queue_full`.
   * @param {string} op
   * @param {object} fields
   * @param {number} timeoutMs
   * @param {boolean} [front] ahead of every queued frame (ping, auth after a restore)
   */
  send(op, fields, timeoutMs, front = false) {
    const id = this.#nextId++;
    const frame = { op, id, ...fields };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        const unsent = this.outbox.remove(frame);
        reject(new NaxError("timeout", unsent ? `${op}: never sent within ${timeoutMs} ms` : `${op}: no answer within ${timeoutMs} ms`, id));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      try {
        this.outbox.push(frame, front);
      } catch (error) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(error);
      }
    });
  }

  /** Settles the op `msg` answers; false when it answers none (e.g. one that timed out). @param {any} msg */
  answer(msg) {
    const p = this.#pending.get(msg.id);
    if (!p) return false;
    this.#pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.type === "error") p.reject(new NaxError(msg.code, msg.message, msg.id));
    else p.resolve(msg);
    return true;
  }

  /** Rejects every op waiting for its answer with `code` (`disconnected` or `closed`). @param {string} code */
  failAll(code) {
    const pending = [...this.#pending.entries()];
    this.#pending.clear();
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      p.reject(new NaxError(code, code === "closed" ? "the client was closed" : "the connection dropped before the answer", id));
    }
  }
}
