// The user's open orders (every pair): read with GET /orders at sign-in
// (and after a reconnect), then kept by the `order` events of the socket;
// filled, cancelled and rejected orders leave the list. Cancel goes over
// the socket (client.cancelOrder).

import { el, fill } from "../dom.js";
import { api } from "./session.js";
import { messageLine, say, describe } from "./ui.js";

const OPEN = new Set(["open", "partially_filled"]);
const PAGE = 100;
/** Pages read per status at most (1,000 orders); beyond that the answer counts as cut. */
const MAX_PAGES = 10;

/** Every order of `status` over REST, page by page: {orders, complete}. */
async function readStatus(status) {
  const orders = [];
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query = `/orders?status=${status}&limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const answer = await api("GET", query);
    orders.push(...answer.orders);
    cursor = answer.next_cursor;
    if (!cursor) return { orders, complete: true };
  }
  return { orders, complete: false };
}

/** The section. Returns {node, start, stop, reload, update(order)}. */
export function openOrdersSection(client) {
  const list = el("ul", { class: "acct-orders", id: "orders-list", "data-testid": "open-orders" });
  const line = messageLine("orders-msg");
  const count = el("span", { class: "muted", id: "orders-count" });
  const node = el("section", { class: "acct-section", id: "acct-orders", "aria-label": "Open orders" }, el("h2", {}, "Open orders ", count), list, line);
  const orders = new Map(); // order_id → Order, open ones only
  const touched = new Set(); // ids an event changed while a REST read was in flight
  let reading = 0;
  let offs = [];

  function render() {
    const open = [...orders.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    count.textContent = open.length ? `(${open.length})` : "";
    fill(list, open.length ? open.map(item) : el("li", { class: "muted acct-empty" }, "No open orders."));
  }

  /** One order: pair and side with its Cancel button, then price × qty, then filled and status. */
  function item(order) {
    const cancel = el("button", { type: "button", class: "acct-small", "data-testid": "cancel", "aria-label": `Cancel ${order.side} ${order.qty} ${order.pair}` }, "Cancel");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      say(line, "");
      try {
        update(await client.cancelOrder(order.order_id));
      } catch (error) {
        cancel.disabled = false;
        say(line, describe(error), "error");
      }
    });
    const cell = (name, text, cls) => el("span", { class: cls ?? null, dataset: { field: name } }, text);
    return el(
      "li",
      { class: "acct-order", dataset: { orderId: order.order_id, status: order.status } },
      el("span", { class: "acct-order-head" }, cell("pair", order.pair), " ", cell("side", order.side, order.side === "buy" ? "bid" : "ask")),
      cancel,
      el("span", { class: "acct-order-line num" }, cell("price", order.price ?? "market"), " × ", cell("qty", order.qty)),
      el("span", { class: "acct-order-line muted" }, "filled ", cell("filled", order.filled_qty, "num"), " · ", cell("status", order.status === "partially_filled" ? "partially filled" : order.status)),
    );
  }

  function update(order) {
    if (OPEN.has(order.status)) orders.set(order.order_id, order);
    else orders.delete(order.order_id);
    render();
  }

  /**
   * Re-reads the open and partially filled orders over REST (paged, up to
   * 1,000 of each); orders an event changed meanwhile keep the event's
   * state. Orders missing from the answer leave the list only when the
   * answer was complete.
   */
  async function reload() {
    if (reading++ === 0) touched.clear();
    try {
      const reads = await Promise.all([...OPEN].map(readStatus));
      const fresh = new Map(reads.flatMap((read) => read.orders).map((o) => [o.order_id, o]));
      const complete = reads.every((read) => read.complete);
      if (complete) for (const id of orders.keys()) if (!fresh.has(id) && !touched.has(id)) orders.delete(id);
      for (const [id, order] of fresh) if (!touched.has(id)) orders.set(id, order);
      render();
    } finally {
      reading--;
    }
  }

  return {
    node,
    reload,
    update,
    start() {
      offs = [
        client.on("order", ({ order }) => {
          touched.add(order.order_id);
          update(order);
        }),
        client.on("cancelled", ({ order_ids }) => {
          for (const id of order_ids) {
            touched.add(id);
            orders.delete(id);
          }
          render();
        }),
      ];
      render();
      reload().catch((error) => say(line, describe(error), "error"));
    },
    stop() {
      for (const off of offs) off();
    },
  };
}
