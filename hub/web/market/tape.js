// The trades tape (#tape): newest first, the price coloured by the
// aggressor's side, quantity and time; at most TAPE_ROWS rows. Trades from
// the REST backfill and from the live channel are merged by id.

import { el, fill } from "../dom.js";
import { frame } from "./frame.js";

/** Rows the tape keeps (and the REST backfill asks for). */
export const TAPE_ROWS = 50;

const idNumber = (trade) => Number(trade.id.replace(/^\D+/, "")) || 0;
const newestFirst = (a, b) => b.venue_ts - a.venue_ts || idNumber(b) - idNumber(a);
const pad = (n) => String(n).padStart(2, "0");

/** µs since the epoch → local "HH:MM:SS". */
export function clock(micros) {
  const t = new Date(Math.floor(micros / 1000));
  return `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

/** Builds the tape inside `root`; returns `{add(trades), clear()}`. */
export function createTape(root) {
  const body = el("div", { class: "tape-rows", id: "tape-rows" });
  const head = el("div", { class: "trade head muted" }, el("span", {}, "Price"), el("span", {}, "Qty"), el("span", {}, "Time"));
  fill(root, el("h2", {}, "Trades"), head, body);
  let trades = [];

  const paint = frame(() => {
    fill(
      body,
      trades.map((t) => {
        const side = t.side === "buy" ? "bid" : "ask";
        return el("div", { class: "trade", dataset: { side: t.side, id: t.id } },
          el("span", { class: `num ${side}` }, t.price),
          el("span", { class: "num" }, t.qty),
          el("span", { class: "num muted" }, clock(t.venue_ts)));
      }),
    );
  });

  return {
    /** Merges `list` (any order) into the tape. */
    add(list) {
      if (!list.length) return;
      const known = new Set(trades.map((t) => t.id));
      const fresh = list.filter((t) => !known.has(t.id));
      if (!fresh.length) return;
      trades = trades.concat(fresh).sort(newestFirst).slice(0, TAPE_ROWS);
      paint();
    },
    clear() {
      trades = [];
      paint();
    },
  };
}
