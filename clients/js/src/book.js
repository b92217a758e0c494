// OrderBook: one pair's L2 book as sorted arrays of [price, qty] decimal
// strings (bids highest first, asks lowest first), kept from `snapshot` +
// `update` or replaced by `depth`. Prices are compared exactly as strings
// (never as floats): see comparePrices.

import { bookChecksum } from "./checksum.js";

/**
 * Compares two non-negative decimal strings of the same scale, as the
 * protocol writes them: the longer integer part is larger, else the strings
 * compare lexicographically (same length of fraction, digits only).
 * @param {string} a
 * @param {string} b
 * @returns {number} negative when a < b, 0 when equal, positive when a > b
 */
export function comparePrices(a, b) {
  const ia = a.indexOf(".");
  const ib = b.indexOf(".");
  const la = ia < 0 ? a.length : ia;
  const lb = ib < 0 ? b.length : ib;
  if (la !== lb) return la - lb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Whether a decimal string is zero ("0.000000", "0").
 * @param {string} value
 * @returns {boolean}
 */
export function isZero(value) {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c !== 48 && c !== 46) return false;
  }
  return true;
}

/**
 * Index of `price` in `side` (sorted by `order`: 1 ascending, -1
 * descending), or the bitwise complement (~i) of where it would go.
 * @param {[string, string][]} side
 * @param {string} price
 * @param {number} order
 */
function search(side, price, order) {
  let lo = 0;
  let hi = side.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = comparePrices(side[mid][0], price) * order;
    if (c < 0) lo = mid + 1;
    else if (c > 0) hi = mid - 1;
    else return mid;
  }
  return ~lo;
}

/**
 * Applies absolute levels to one sorted side (zero quantity deletes).
 * @param {[string, string][]} side
 * @param {[string, string][]} levels
 * @param {number} order
 */
function applySide(side, levels, order) {
  for (const [price, qty] of levels) {
    const at = search(side, price, order);
    if (isZero(qty)) {
      if (at >= 0) side.splice(at, 1);
    } else if (at >= 0) {
      side[at] = [price, qty];
    } else {
      side.splice(~at, 0, [price, qty]);
    }
  }
}

/** One side-sorted L2 book. `epoch` and `seq` are those of the last message applied. */
export class OrderBook {
  /** @type {[string, string][]} */ #bids = [];
  /** @type {[string, string][]} */ #asks = [];
  #levelsChecked;
  /** @type {string | null} */ epoch = null;
  /** @type {number} */ seq = 0;
  /** False until a state message arrived, and again from a failed checksum or a gap until the fresh state arrives. */
  synced = false;

  /** @param {number} [levelsChecked] levels per side the checksum covers (default 10) */
  constructor(levelsChecked = 10) {
    this.#levelsChecked = Math.min(levelsChecked, 10);
  }

  /** Bids, highest first (do not modify). */
  get bids() { return this.#bids; }
  /** Asks, lowest first (do not modify). */
  get asks() { return this.#asks; }

  /**
   * Replaces the whole book; the levels need not be sorted.
   * @param {[string, string][]} bids
   * @param {[string, string][]} asks
   */
  replace(bids, asks) {
    this.#bids = [];
    this.#asks = [];
    this.apply(bids, asks);
  }

  /**
   * Applies absolute levels (a zero quantity deletes the level).
   * @param {[string, string][]} bids
   * @param {[string, string][]} asks
   */
  apply(bids, asks) {
    applySide(this.#bids, bids, -1);
    applySide(this.#asks, asks, 1);
  }

  /** The protocol's CRC-32 over the top `levelsChecked` levels each side. */
  checksum() {
    return bookChecksum(this.#bids, this.#asks, this.#levelsChecked);
  }

  /**
   * The top `n` levels of each side, best first (copies).
   * @param {number} n
   */
  top(n) {
    return { bids: this.#bids.slice(0, n), asks: this.#asks.slice(0, n) };
  }
}
