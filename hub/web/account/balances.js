// The balances table: read with GET /wallets/balances at sign-in (and
// after a reconnect: `balances` keeps no history), then kept by the
// `balance` events of the socket. Values are the hub's strings, as sent.

import { el, fill } from "../dom.js";
import { api } from "./session.js";
import { messageLine, say, describe } from "./ui.js";

/**
 * The section. Keeps `shared.balances` (asset → Balance) and redraws on
 * every change. Returns {node, start, stop, reload}.
 */
export function balancesSection(client, shared) {
  const body = el("tbody", { id: "balances-body" });
  const line = messageLine("balances-msg");
  const node = el(
    "section",
    { class: "acct-section", id: "acct-balances", "aria-label": "Balances" },
    el("h2", {}, "Balances"),
    el("table", { class: "acct-table", "data-testid": "balances" }, el("thead", {}, el("tr", {}, el("th", {}, "Asset"), el("th", { class: "r" }, "Available"), el("th", { class: "r" }, "Locked"))), body),
    line,
  );
  const touched = new Set(); // assets an event updated while a REST read was in flight
  let reading = 0;
  let off = null;

  function render() {
    const rows = [...shared.balances.values()].map((b) =>
      el(
        "tr",
        { dataset: { asset: b.asset } },
        el("td", {}, b.asset),
        el("td", { class: "num r", dataset: { field: "available" } }, b.available),
        el("td", { class: "num r", dataset: { field: "locked" } }, b.locked),
      ),
    );
    fill(body, rows.length ? rows : el("tr", {}, el("td", { colspan: 3, class: "muted" }, "No balances yet.")));
  }

  function put(balance) {
    const balances = new Map(shared.balances);
    balances.set(balance.asset, balance);
    shared.set({ balances });
  }

  /** Re-reads every balance over REST; assets an event changed meanwhile keep the event's value. */
  async function reload() {
    if (reading++ === 0) touched.clear();
    try {
      const list = await api("GET", "/wallets/balances");
      const balances = new Map(shared.balances);
      for (const balance of list) if (!touched.has(balance.asset)) balances.set(balance.asset, balance);
      shared.set({ balances });
    } finally {
      reading--;
    }
  }

  return {
    node,
    reload,
    start() {
      const unwatch = shared.watch(render);
      const unlisten = client.on("balance", ({ balance }) => {
        touched.add(balance.asset);
        put(balance);
      });
      off = () => {
        unwatch();
        unlisten();
      };
      render();
      reload().catch((error) => say(line, describe(error), "error"));
    },
    stop() {
      off?.();
    },
  };
}
