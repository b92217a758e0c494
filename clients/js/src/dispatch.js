// What one channel message does (docs/PROTOCOL.md "Messages"): checked
// against the channel's chain (stale ones dropped and counted, a gap sends
// the channel to the repairer), applied to the kept state (the book, whose
// checksum is verified before any listener sees it; candles; orders and
// balances), then handed to the listeners as a typed event.

/** Finished orders kept at most in `client.orders` (the newest); open ones are all kept. */
const MAX_FINISHED_ORDERS = 1000;
const FINISHED = new Set(["filled", "cancelled", "rejected"]);
const TICKER_FIELDS = ["bid", "bid_qty", "ask", "ask_qty", "last", "open_24h", "high_24h", "low_24h",
  "volume_24h", "quote_volume_24h", "change_24h", "change_24h_pct"];

/** `client.orders`: every order seen, by order_id, with at most MAX_FINISHED_ORDERS finished ones (the newest). */
export class OrderKeeper {
  /** @type {Set<string>} finished order ids, oldest first */
  #finished = new Set();

  /** @param {Map<string, any>} orders the map handed out as `client.orders` */
  constructor(orders) { this.orders = orders; }

  /** Records an order's newest state. @param {{order_id: string, status: string}} order */
  keep(order) {
    const id = order.order_id;
    this.orders.set(id, order);
    this.#finished.delete(id);
    if (!FINISHED.has(order.status)) return;
    this.#finished.add(id);
    if (this.#finished.size > MAX_FINISHED_ORDERS) {
      const oldest = this.#finished.values().next().value;
      this.#finished.delete(oldest);
      this.orders.delete(oldest);
    }
  }

  clear() {
    this.orders.clear();
    this.#finished.clear();
  }
}

/**
 * @typedef {object} DispatchContext
 * @property {(event: string, payload: any) => void} emit
 * @property {Record<string, number>} stats
 * @property {(st: import("./channels.js").ChannelState, reason: "gap"|"checksum") => void} resync
 * @property {OrderKeeper} orders
 * @property {Map<string, any>} balances
 */

/**
 * Handles one message of a channel the client holds.
 * @param {import("./channels.js").ChannelState} st
 * @param {any} msg
 * @param {DispatchContext} ctx
 */
export function dispatch(st, msg, ctx) {
  const verdict = st.check(msg);
  if (verdict === "stale") {
    ctx.stats.staleDropped++;
    return;
  }
  if (verdict === "gap") {
    ctx.stats.gaps++;
    if (st.book) st.book.synced = false;
    ctx.resync(st, "gap");
    return;
  }
  st.advance(msg, verdict === "chained");
  const { name: channel, pair } = st.info;
  switch (msg.type) {
    case "snapshot":
    case "update":
    case "depth": {
      const book = /** @type {import("./book.js").OrderBook} */ (st.book);
      if (msg.type === "update") book.apply(msg.bids, msg.asks);
      else book.replace(msg.bids, msg.asks);
      book.epoch = msg.epoch;
      book.seq = msg.seq;
      if (book.checksum() !== msg.checksum) {
        ctx.stats.checksumMismatches++;
        book.synced = false;
        st.seq = null; // nothing may chain on a book that failed
        ctx.resync(st, "checksum");
        return;
      }
      book.synced = true;
      ctx.stats.checksumsVerified++;
      ctx.emit("book", { channel, pair, book, reason: msg.reason ?? null });
      return;
    }
    case "trades":
      ctx.emit("trades", { channel, pair, trades: msg.trades });
      return;
    case "ticker": {
      const ticker = { pair };
      for (const field of TICKER_FIELDS) ticker[field] = msg[field] ?? null;
      ctx.emit("ticker", { channel, pair, ticker });
      return;
    }
    case "candles":
    case "candle": {
      const candle = st.applyCandles(msg);
      const event = { channel, pair, interval: st.info.interval, candles: st.candles };
      if (candle) event.candle = candle;
      ctx.emit("candles", event);
      return;
    }
    case "status":
      ctx.emit("status", { pairs: msg.pairs });
      return;
    case "order":
      ctx.orders.keep(msg.order);
      ctx.emit("order", { order: msg.order });
      return;
    case "balance":
      ctx.balances.set(msg.balance.asset, msg.balance);
      ctx.emit("balance", { balance: msg.balance });
      return;
    case "cancelled":
      ctx.emit("cancelled", { trigger: msg.trigger, order_ids: msg.order_ids });
      return;
    default:
      return; // heartbeat, or a type this client does not know
  }
}
