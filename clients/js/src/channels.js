// Channel names (docs/PROTOCOL.md "Channels") and the per-channel state
// the client keeps: the last {epoch, seq} for chaining and resuming, the
// book of book/depth channels, the candles of candles channels.

import { OrderBook } from "./book.js";

const INTERVAL_US = { "1m": 60e6, "5m": 300e6, "15m": 900e6, "1h": 3600e6, "4h": 14400e6, "1d": 86400e6 };

/** How many candles a channel keeps at most. */
export const MAX_CANDLES = 1000;
/** Channels per subscribe frame (the hub's frames are at most 16 KiB). */
export const CHANNELS_PER_FRAME = 100;

/**
 * @typedef {object} ChannelInfo
 * @property {string} name the full channel name
 * @property {"book"|"depth"|"trades"|"ticker"|"candles"|"heartbeat"|"status"|"orders"|"balances"} kind
 * @property {string | null} pair
 * @property {number | null} depth N of depthN
 * @property {string | null} interval I of candlesI
 * @property {boolean} private orders and balances
 */

/**
 * Parses a channel name; null when it is not one the protocol knows.
 * @param {string} name
 * @returns {ChannelInfo | null}
 */
export function parseChannel(name) {
  const base = name.replace(/@(100|1000)ms$/, "");
  const simple = { heartbeat: "heartbeat", status: "status", orders: "orders", balances: "balances" }[base];
  if (simple) {
    return { name, kind: simple, pair: null, depth: null, interval: null, private: simple === "orders" || simple === "balances" };
  }
  const m = /^(book|trades|ticker|depth(1|5|10|20|50)|candles(1m|5m|15m|1h|4h|1d))\.([A-Z0-9]{1,10}-[A-Z0-9]{1,10})$/.exec(base);
  if (!m) return null;
  const kind = m[2] ? "depth" : m[3] ? "candles" : /** @type {"book"|"trades"|"ticker"} */ (m[1]);
  return { name, kind, pair: m[4], depth: m[2] ? Number(m[2]) : null, interval: m[3] ?? null, private: false };
}

/**
 * A channel's kept state. `mode` says which next message is acceptable:
 * `fresh` a first message (prev_seq 0: after subscribe or resync), or one
 * chaining on a `seq` that is still good (the old stream goes on until the
 * new one starts; the mode stays `fresh` until its first message),
 * `resume` one chaining on `seq` or a first message (after a resume),
 * `live` one chaining on `seq` (or prev_seq 0 in a new epoch).
 */
export class ChannelState {
  /** @param {ChannelInfo} info */
  constructor(info) {
    this.info = info;
    /** @type {string | null} */ this.epoch = null;
    /** @type {number | null} */ this.seq = null;
    /** @type {"fresh"|"resume"|"live"} */ this.mode = "fresh";
    /** Whether it waits in a subscribe() call made while disconnected (sent in that call's own frame). */
    this.queued = false;
    /** Repairer state (repair.js): a subscribe in flight, the time one is due, the backoff, the last resync. */
    this.inFlight = false;
    /** @type {number | null} */ this.retryAt = null;
    this.backoffMs = 0;
    /** @type {number | null} */ this.lastResyncAt = null;
    /** @type {number | null} when the hub answered its subscribe, while its first message has not come */
    this.awaitingSince = null;
    /** @type {OrderBook | null} */
    this.book = info.kind === "book" ? new OrderBook(10) : info.kind === "depth" ? new OrderBook(info.depth ?? 10) : null;
    /** @type {import("../index.d.ts").Candle[]} */ this.candles = [];
  }

  /**
   * Whether `msg` (a channel message) continues this channel: the chain
   * rules of docs/PROTOCOL.md "Sequence numbers and epochs".
   * @param {{type: string, epoch: string, seq: number, prev_seq: number}} msg
   * @returns {"ok" | "chained" | "stale" | "gap"} chained: continues the old stream while a fresh
   *   first message is awaited (apply it, stay fresh); stale: left over from before a (re)subscribe, drop
   */
  check(msg) {
    const first = msg.prev_seq === 0 && this.#isFirstMessage(msg);
    // Not compared on epoch: heartbeat keeps its numbering across an epoch change.
    const chains = this.seq !== null && msg.prev_seq === this.seq;
    if (this.mode === "fresh") {
      if (first) return "ok";
      return chains && msg.epoch === this.epoch && this.book?.synced !== false ? "chained" : "stale";
    }
    if (this.mode === "resume") return first || chains ? "ok" : "gap";
    if (chains) return "ok";
    if (msg.prev_seq === 0 && msg.epoch !== this.epoch) return "ok"; // a new epoch starts over
    return "gap";
  }

  /** Whether `msg` can start the channel (its state message after a subscribe). */
  #isFirstMessage(msg) {
    switch (this.info.kind) {
      case "book": return msg.type === "snapshot";
      case "candles": return msg.type === "candles" || msg.epoch !== this.epoch;
      default: return true;
    }
  }

  /**
   * Records `msg` as the last message of the channel; the channel is live
   * from now on unless `msg` only chained on the old stream while a fresh
   * first message is awaited (check() said "chained").
   * @param {{epoch: string, seq: number}} msg
   * @param {boolean} [chained]
   */
  advance(msg, chained = false) {
    this.epoch = msg.epoch;
    this.seq = msg.seq;
    if (chained) return;
    this.mode = "live";
    this.awaitingSince = null;
  }

  /**
   * Applies a `candles` state message or a `candle` update; returns the candle that changed.
   * @param {{type: string, candles?: any[], candle?: any}} msg
   */
  applyCandles(msg) {
    if (msg.type === "candles") {
      this.candles = msg.candles.slice(-MAX_CANDLES);
      return undefined;
    }
    const candle = msg.candle;
    const list = this.candles;
    let i = list.length - 1;
    while (i >= 0 && list[i].start > candle.start) i--;
    if (i >= 0 && list[i].start === candle.start) list[i] = candle;
    else list.splice(i + 1, 0, candle);
    if (candle.closed && list[list.length - 1] === candle) list.push(flatAfter(candle, INTERVAL_US[this.info.interval ?? "1m"]));
    if (list.length > MAX_CANDLES) list.splice(0, list.length - MAX_CANDLES);
    return candle;
  }
}

/** A zero of the same scale as `value` ("1.250000" -> "0.000000"). */
function zeroLike(value) {
  const dot = value.indexOf(".");
  return dot < 0 ? "0" : "0." + "0".repeat(value.length - dot - 1);
}

/** The flat open candle that follows a closed one (docs/PROTOCOL.md "Candles": no holes). */
function flatAfter(closed, lengthUs) {
  const p = closed.close;
  return {
    start: closed.start + lengthUs, open: p, high: p, low: p, close: p,
    volume: zeroLike(closed.volume), quote_volume: zeroLike(closed.quote_volume), trades: 0, closed: false,
  };
}
