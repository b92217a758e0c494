// The order-book ladder (#book): asks above (best nearest the middle), the
// spread line, bids below. Price, quantity and cumulative total columns are
// the hub's strings (the total is an exact sum at the quantity scale); the
// depth bar behind each row is its cumulative share of the larger side.
// A row is a button: clicking it (or Enter / Space on it) announces its
// price with `document.dispatchEvent(new CustomEvent("nax:price",
// {detail: {pair, price}}))` (order entry takes it).

import { el, fill } from "../dom.js";
import { toUnits, fromUnits } from "./decimal.js";
import { frame } from "./frame.js";

/** Rows per side (the ladder subscribes depth20). */
export const LADDER_LEVELS = 20;

function makeRow(side) {
  const price = el("span", { class: `px num ${side}` });
  const qty = el("span", { class: "qty num" });
  const total = el("span", { class: "total num" });
  const row = el("div", { class: `level ${side}-level`, dataset: { side }, role: "button", tabindex: "0" }, price, qty, total);
  return { row, price, qty, total };
}

/** Cumulative totals (BigInt units) of `levels`, best first. */
function cumulative(levels, scale) {
  let sum = 0n;
  return levels.map(([, qty]) => (sum += toUnits(qty, scale)));
}

/**
 * Builds the ladder inside `root`; returns `{show(bids, asks, market), clear()}`.
 * `show` takes the levels best first and paints on the next frame.
 */
export function createLadder(root) {
  const askBox = el("div", { class: "side asks", id: "book-asks" });
  const bidBox = el("div", { class: "side bids", id: "book-bids" });
  const spread = el("span", { class: "num", id: "book-spread" });
  const mid = el("div", { class: "spread" }, el("span", { class: "muted" }, "Spread"), spread);
  const head = el("div", { class: "level head muted" }, el("span", {}, "Price"), el("span", {}, "Qty"), el("span", {}, "Total"));
  const body = el("div", { class: "ladder" }, askBox, mid, bidBox);
  fill(root, el("h2", {}, "Order book"), head, body);

  // Asks are laid out worst first so that the best ask sits just above the
  // spread line; the rows are kept and their text updated in place.
  const asks = Array.from({ length: LADDER_LEVELS }, () => makeRow("ask"));
  const bids = Array.from({ length: LADDER_LEVELS }, () => makeRow("bid"));
  askBox.append(...asks.map((r) => r.row).reverse());
  bidBox.append(...bids.map((r) => r.row));

  let latest = null;
  const paintSide = (rows, levels, totals, max, scale) => {
    rows.forEach((r, i) => {
      const level = levels[i];
      r.row.hidden = !level;
      if (!level) return;
      r.price.textContent = level[0];
      r.row.setAttribute("aria-label", `${r.row.dataset.side === "bid" ? "Bid" : "Ask"} ${level[0]}, quantity ${level[1]}: use this price`);
      r.qty.textContent = level[1];
      r.total.textContent = fromUnits(totals[i], scale);
      const share = max > 0n ? Number((totals[i] * 10000n) / max) / 10000 : 0;
      r.row.style.setProperty("--depth", share.toFixed(4));
    });
  };
  const paint = frame(() => {
    if (!latest) return;
    const { bids: b, asks: a, market } = latest;
    const bidTotals = cumulative(b, market.qty_scale);
    const askTotals = cumulative(a, market.qty_scale);
    const last = (list) => (list.length ? list[list.length - 1] : 0n);
    const max = last(bidTotals) > last(askTotals) ? last(bidTotals) : last(askTotals);
    paintSide(bids, b, bidTotals, max, market.qty_scale);
    paintSide(asks, a, askTotals, max, market.qty_scale);
    root.dataset.levels = String(b.length + a.length);
    if (b.length && a.length) {
      const gap = toUnits(a[0][0], market.price_scale) - toUnits(b[0][0], market.price_scale);
      const pct = (Number(gap) / Number(toUnits(a[0][0], market.price_scale))) * 100;
      spread.textContent = `${fromUnits(gap, market.price_scale)} (${pct.toFixed(3)}%)`;
    } else {
      spread.textContent = "–";
    }
  });

  /** Announces the price of the row `target` is in, if any. */
  const announce = (target) => {
    const row = target.closest?.(".level[role=button]");
    if (!row || row.hidden || !latest?.market.pair) return false;
    const price = row.querySelector(".px").textContent;
    document.dispatchEvent(new CustomEvent("nax:price", { detail: { pair: latest.market.pair, price } }));
    return true;
  };
  body.addEventListener("click", (event) => announce(event.target));
  body.addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && announce(event.target)) event.preventDefault();
  });

  return {
    /** @param {Array<[string,string]>} bidLevels @param {Array<[string,string]>} askLevels @param {object} market a `GET /markets` entry */
    show(bidLevels, askLevels, market) {
      latest = { bids: bidLevels.slice(0, LADDER_LEVELS), asks: askLevels.slice(0, LADDER_LEVELS), market };
      paint();
    },
    /** Empties the ladder (pair switch). */
    clear() {
      latest = { bids: [], asks: [], market: { qty_scale: 0, price_scale: 0 } };
      paint();
    },
  };
}
