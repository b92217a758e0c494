// The selected pair's market state (#market-status, from the `status`
// channel) and the connection corner (#conn: connection state and the
// client's checksum counters, read from client.stats twice a second).

import { el, fill } from "../dom.js";

/**
 * Builds #market-status inside `root`; returns `{show(state, reason)}`.
 * `book` (the ladder's section) gets `data-market-state` so that it can be
 * shown as possibly out of date.
 */
export function createMarketStatus(root, book) {
  const state = el("span", { class: "state", id: "market-state" });
  const reason = el("span", { class: "reason", id: "market-reason" });
  fill(root, state, reason);
  return {
    /** `state`: online, stale, halted or resyncing; `reason`: why (null when online). */
    show(value, why) {
      state.textContent = value;
      reason.textContent = why ?? "";
      root.dataset.state = value;
      book.dataset.marketState = value;
    },
  };
}

/**
 * Builds #conn inside `root` and keeps it current from `client`
 * (its `state` event and `stats`).
 */
export function startConnCorner(root, client) {
  const state = el("span", { class: "conn-state", id: "conn-state" }, "connecting");
  const counter = (id, label) => {
    const value = el("span", { class: "num", id }, "0");
    return { value, node: el("span", { class: "counter", title: label }, el("span", { class: "muted" }, label), value) };
  };
  const verified = counter("stat-verified", "checksums verified");
  const mismatches = counter("stat-mismatches", "mismatches");
  const resyncs = counter("stat-resyncs", "resyncs");
  const reconnects = counter("stat-reconnects", "reconnects");
  fill(root, state, verified.node, mismatches.node, resyncs.node, reconnects.node);

  const setState = (value) => {
    state.textContent = value;
    state.dataset.state = value;
    root.dataset.state = value;
  };
  setState(client.state ?? "connecting");
  client.on("state", ({ state: value }) => setState(value));

  const refresh = () => {
    const stats = client.stats;
    verified.value.textContent = String(stats.checksumsVerified);
    mismatches.value.textContent = String(stats.checksumMismatches);
    mismatches.node.classList.toggle("bad", stats.checksumMismatches > 0);
    resyncs.value.textContent = String(stats.resyncs);
    reconnects.value.textContent = String(stats.reconnects);
  };
  refresh();
  setInterval(refresh, 500);
}
