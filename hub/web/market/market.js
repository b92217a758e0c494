// The market part of the page: the pair selector, order-book ladder, depth
// chart, trades tape, candlestick chart, 24 h ticker, market status and the
// connection corner. Live data comes from the client's events (one set of
// channels for the selected pair, plus `status`); REST answers fill the
// panels only until the channel's first live message (and backfill the tape).

import { el, fill } from "../dom.js";
import { getJson } from "../http.js";
import { createLadder, LADDER_LEVELS } from "./ladder.js";
import { createDepth } from "./depth.js";
import { createTape, TAPE_ROWS } from "./tape.js";
import { createChart } from "./chart.js";
import { createTicker } from "./ticker.js";
import { createMarketStatus, startConnCorner } from "./status.js";

/** The public channels the page holds for `pair` at candle `interval`. */
export function channelsOf(pair, interval) {
  return {
    book: `depth${LADDER_LEVELS}.${pair}`,
    trades: `trades.${pair}`,
    ticker: `ticker.${pair}`,
    candles: `candles${interval}.${pair}`,
  };
}

const byId = (id) => document.getElementById(id);
const warn = (what) => (error) => console.warn(`market: ${what} failed:`, error?.code ?? "", error?.message ?? error);

/**
 * Starts the market part. `ctx`: {client, markets, pair, onPair, selectPair}
 * (hub/web/app.js); the client is connected by the caller afterwards.
 */
export function startMarket(ctx) {
  const { client, markets } = ctx;
  let interval = "1m";
  let current = channelsOf(ctx.pair.pair, interval);
  const live = new Set(); // channels whose first live message arrived: REST answers no longer apply
  const states = new Map(markets.map((m) => [m.pair, { state: m.status, reason: m.status_reason }]));

  const select = byId("pair");
  fill(select, markets.map((m) => el("option", { value: m.pair }, m.pair)));
  select.value = ctx.pair.pair;
  select.addEventListener("change", () => ctx.selectPair(select.value));

  const bookPanel = byId("book");
  const ladder = createLadder(bookPanel);
  const depth = createDepth(byId("depth"));
  const tape = createTape(byId("tape"));
  const ticker = createTicker(byId("ticker"));
  const marketStatus = createMarketStatus(byId("market-status"), bookPanel);
  const chart = createChart(byId("chart"), (next) => {
    if (next === interval) return;
    const old = current.candles;
    interval = next;
    current = { ...current, candles: channelsOf(ctx.pair.pair, interval).candles };
    live.delete(old);
    client.unsubscribe([old]).catch(warn(`unsubscribe ${old}`));
    client.subscribe([current.candles]).catch(warn(`subscribe ${current.candles}`));
    chart.show([], ctx.pair, interval);
    loadCandles(ctx.pair, current.candles);
  });
  startConnCorner(byId("conn"), client);

  const showStatus = () => {
    const { state, reason } = states.get(ctx.pair.pair);
    marketStatus.show(state, reason);
  };

  // REST fills, each dropped when the pair or interval moved on meanwhile
  // or the live channel spoke first.
  const stillWanted = (channel) => Object.values(current).includes(channel) && !live.has(channel);
  const path = (market, rest) => `/markets/${encodeURIComponent(market.pair)}/${rest}`;
  function loadCandles(market, channel) {
    getJson(path(market, `candles?interval=${interval}&limit=300`)).then((answer) => {
      if (stillWanted(channel)) chart.show(answer.candles, market, answer.interval);
    }, warn("candles"));
  }
  function load(market) {
    const wanted = current;
    getJson(path(market, `orderbook?depth=${LADDER_LEVELS}`)).then((answer) => {
      if (!stillWanted(wanted.book)) return;
      ladder.show(answer.bids, answer.asks, market);
      depth.show(answer.bids, answer.asks, market);
    }, warn("orderbook"));
    getJson(path(market, "ticker")).then((answer) => {
      if (stillWanted(wanted.ticker)) ticker.show(answer, market);
    }, warn("ticker"));
    getJson(path(market, `trades?limit=${TAPE_ROWS}`)).then((answer) => {
      if (current.trades === wanted.trades) tape.add(answer.trades);
    }, warn("trades"));
    loadCandles(market, wanted.candles);
  }

  client.on("book", (event) => {
    if (event.channel !== current.book) return;
    live.add(event.channel);
    const { bids, asks } = event.book.top(LADDER_LEVELS);
    ladder.show(bids, asks, ctx.pair);
    depth.show(bids, asks, ctx.pair);
  });
  client.on("trades", (event) => {
    if (event.channel === current.trades) tape.add(event.trades);
  });
  client.on("ticker", (event) => {
    if (event.channel !== current.ticker) return;
    live.add(event.channel);
    ticker.show(event.ticker, ctx.pair);
    if (event.ticker.last) document.title = `${event.ticker.last} ${ctx.pair.pair} · NA-X Stream`;
  });
  client.on("candles", (event) => {
    if (event.channel !== current.candles) return;
    live.add(event.channel);
    chart.show(event.candles, ctx.pair, interval);
  });
  client.on("status", (event) => {
    for (const { pair, state, reason } of event.pairs) states.set(pair, { state, reason });
    showStatus();
  });

  ctx.onPair((next) => {
    const old = Object.values(current);
    current = channelsOf(next.pair, interval);
    live.clear();
    select.value = next.pair;
    ladder.clear();
    depth.clear(next);
    tape.clear();
    ticker.clear();
    document.title = `${next.pair} · NA-X Stream`;
    chart.show([], next, interval);
    showStatus();
    client.unsubscribe(old).catch(warn("unsubscribe"));
    client.subscribe(Object.values(current)).catch(warn("subscribe"));
    load(next);
  });

  showStatus();
  chart.show([], ctx.pair, interval);
  depth.clear(ctx.pair);
  client.subscribe([...Object.values(current), "status"]).catch(warn("subscribe"));
  load(ctx.pair);
}
