// The 24 h ticker strip (#ticker): last, change (signed, coloured), change
// %, high, low, base and quote volume, as the hub's strings.

import { el, fill } from "../dom.js";
import { signOf } from "./decimal.js";

const FIELDS = [
  ["last", "Last"],
  ["change_24h", "24h change"],
  ["change_24h_pct", "24h %"],
  ["high_24h", "24h high"],
  ["low_24h", "24h low"],
  ["volume_24h", "24h volume"],
  ["quote_volume_24h", "24h quote vol."],
];

/** Builds the strip inside `root`; returns `{show(ticker, market), clear()}`. */
export function createTicker(root) {
  const values = {};
  const label = {};
  fill(
    root,
    FIELDS.map(([key, text]) => {
      values[key] = el("span", { class: "num value", dataset: { field: key } }, "–");
      label[key] = el("span", { class: "muted label" }, text);
      return el("span", { class: "stat" }, label[key], values[key]);
    }),
  );

  return {
    /** `ticker`: the fields of a `ticker` message; `market`: its `GET /markets` entry. */
    show(ticker, market) {
      const direction = signOf(ticker.change_24h);
      const tone = direction > 0 ? "up" : direction < 0 ? "down" : "";
      const signed = (text, suffix = "") => (text === null ? "–" : `${signOf(text) > 0 ? "+" : ""}${text}${suffix}`);
      values.last.textContent = ticker.last ?? "–";
      values.change_24h.textContent = signed(ticker.change_24h);
      values.change_24h_pct.textContent = signed(ticker.change_24h_pct, "%");
      values.high_24h.textContent = ticker.high_24h ?? "–";
      values.low_24h.textContent = ticker.low_24h ?? "–";
      values.volume_24h.textContent = `${ticker.volume_24h} ${market.base}`;
      values.quote_volume_24h.textContent = `${ticker.quote_volume_24h} ${market.quote}`;
      for (const key of ["last", "change_24h", "change_24h_pct"]) values[key].className = `num value ${tone}`;
      root.dataset.pair = market.pair;
    },
    clear() {
      for (const node of Object.values(values)) {
        node.textContent = "–";
        node.className = "num value";
      }
    },
  };
}
