// The page's entry point: reads the pairs, opens one client connection
// (clients/js, served by the hub at /client/) and hands both to the market
// part (market/) and the account part (account/).

import { NaxClient } from "/client/index.js";
import { getJson } from "./http.js";
import { startMarket } from "./market/market.js";
import { startAccount } from "./account/account.js";

/**
 * What the parts share. `pair` is the selected market's entry of
 * `GET /markets` ({pair, base, quote, price_scale, qty_scale, min_qty,
 * status, status_reason}); listeners of `onPair` run when it changes.
 */
function context(client, markets) {
  const listeners = [];
  const ctx = {
    client,
    markets,
    pair: markets[0],
    onPair(listener) {
      listeners.push(listener);
    },
    selectPair(symbol) {
      const next = markets.find((m) => m.pair === symbol);
      if (!next || next === ctx.pair) return;
      const previous = ctx.pair;
      ctx.pair = next;
      for (const listener of listeners) listener(next, previous);
    },
  };
  return ctx;
}

async function main() {
  const markets = await getJson("/markets");
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const client = new NaxClient({ url: url.href });
  const ctx = context(client, markets);
  // Exposed for the browser tests and for people poking at the console.
  window.nax = ctx;
  startMarket(ctx);
  startAccount(ctx);
  client.connect();
}

main().catch((error) => {
  document.body.dataset.failed = "true";
  console.error(error);
});
