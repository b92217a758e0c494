// Repairer: subscribes channels again (no resume) when they broke (a gap, a
// checksum mismatch), when the hub refused or did not answer their
// subscribe, or when their first message is late (the watchdog). Channels
// due at the same moment share one frame; refused or timed-out subscribes
// are retried with backoff (RETRY_MIN_MS doubling to RETRY_MAX_MS), and a
// channel that breaks again within STORM_WINDOW_MS backs off the same way.

import { CHANNELS_PER_FRAME } from "./channels.js";

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;
const STORM_WINDOW_MS = 10_000;
/** Kinds whose subscribe is followed by a state message within a second (docs/PROTOCOL.md "Subscribing and resuming"). */
const WATCHED = new Set(["book", "depth", "ticker", "candles", "status", "heartbeat"]);
/** Rejections that are not the hub's answer about the channels. */
const GONE = new Set(["disconnected", "closed"]);

/**
 * @typedef {import("./channels.js").ChannelState} ChannelState
 * @typedef {object} RepairContext
 * @property {Map<string, ChannelState>} channels the client's channels
 * @property {(names: string[]) => Promise<unknown>} subscribe one subscribe frame (no resume)
 * @property {() => boolean} isOpen
 * @property {(event: string, payload: any) => void} emit
 * @property {Record<string, number>} stats
 * @property {number} watchdogMs 0 disables the watchdog
 */

/** Subscribes broken, refused or silent channels again, batched, with backoff, and runs the watchdog. */
export class Repairer {
  /** @type {RepairContext} */ #ctx;
  /** @type {Set<ChannelState>} */ #due = new Set();
  #timer = null;
  #watchdog = null;

  /** @param {RepairContext} ctx */
  constructor(ctx) { this.#ctx = ctx; }

  /**
   * A channel broke (or its first message is late): subscribe it again, at
   * once, or after a backoff when it broke within STORM_WINDOW_MS before.
   * @param {ChannelState} st
   * @param {"gap"|"checksum"|"watchdog"} reason
   */
  resync(st, reason) {
    st.mode = "fresh";
    if (st.retryAt !== null || st.inFlight) return; // already on its way
    const now = Date.now();
    const storm = st.lastResyncAt !== null && now - st.lastResyncAt < STORM_WINDOW_MS;
    st.backoffMs = storm ? nextBackoff(st.backoffMs) : 0;
    st.lastResyncAt = now;
    this.#ctx.stats.resyncs++;
    this.#ctx.emit("resync", { channel: st.info.name, reason });
    this.#schedule(st, st.backoffMs);
  }

  /** The hub refused (or did not answer) a subscribe of `st`: try again after a backoff. @param {ChannelState} st */
  retry(st) {
    st.mode = "fresh";
    if (st.retryAt !== null || st.inFlight) return;
    st.backoffMs = nextBackoff(st.backoffMs);
    this.#schedule(st, st.backoffMs);
  }

  /** Starts the watchdog (on open). */
  start() {
    const ms = this.#ctx.watchdogMs;
    if (!ms || this.#watchdog) return;
    this.#watchdog = setInterval(() => this.#check(ms), Math.min(1000, ms));
  }

  /** The connection dropped: nothing is in flight or due any more (the restore subscribes every channel). */
  reset() {
    clearTimeout(this.#timer);
    clearInterval(this.#watchdog);
    this.#timer = this.#watchdog = null;
    this.#due.clear();
    for (const st of this.#ctx.channels.values()) {
      st.inFlight = false;
      st.retryAt = null;
      st.awaitingSince = null;
    }
  }

  #schedule(st, delay) {
    st.retryAt = Date.now() + delay;
    this.#due.add(st);
    this.#arm();
  }

  #arm() {
    clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#due.size) return;
    let next = Infinity;
    for (const st of this.#due) next = Math.min(next, /** @type {number} */ (st.retryAt));
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, next - Date.now()));
  }

  #fire() {
    this.#timer = null;
    if (!this.#ctx.isOpen()) return;
    const now = Date.now();
    const batch = [];
    for (const st of this.#due) {
      if (/** @type {number} */ (st.retryAt) > now + 5) continue;
      this.#due.delete(st);
      st.retryAt = null;
      if (this.#ctx.channels.get(st.info.name) === st) batch.push(st);
    }
    for (let i = 0; i < batch.length; i += CHANNELS_PER_FRAME) this.#send(batch.slice(i, i + CHANNELS_PER_FRAME));
    this.#arm();
  }

  /** @param {ChannelState[]} chunk */
  #send(chunk) {
    for (const st of chunk) st.inFlight = true;
    this.#ctx.subscribe(chunk.map((st) => st.info.name)).then(
      () => { for (const st of chunk) st.inFlight = false; },
      (error) => {
        for (const st of chunk) st.inFlight = false;
        if (GONE.has(error.code)) return;
        this.#ctx.emit("error", error);
        for (const st of chunk) if (this.#ctx.channels.get(st.info.name) === st) this.retry(st);
      },
    );
  }

  #check(ms) {
    const now = Date.now();
    for (const st of this.#ctx.channels.values()) {
      if (!WATCHED.has(st.info.kind) || st.mode === "live" || st.awaitingSince === null) continue;
      if (now - st.awaitingSince < ms || st.inFlight || st.retryAt !== null) continue;
      st.awaitingSince = null;
      this.#ctx.stats.watchdogResyncs++;
      this.resync(st, "watchdog");
    }
  }
}

/** @param {number} ms */
function nextBackoff(ms) {
  return Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, ms * 2));
}
