// Order entry for the selected pair: buy/sell, limit/market, price (limit
// only) and quantity checked against the pair's tick (price_scale), lot
// (qty_scale) and min_qty before anything is sent; placed over the socket
// (client.placeOrder, a fresh client_order_id each time); the hub's
// refusals shown as "code: message". Closed while the pair is not online
// or the socket session is not ready, saying why. The inputs are text
// (inputmode decimal): the exact checks decide, not the browser's number
// parsing. A ladder row's click (`nax:price` event) fills the price.

import { el } from "../dom.js";
import { checkDecimal, multiply, step } from "./decimal.js";
import { field, messageLine, say, describe } from "./ui.js";

/**
 * The section. `ctx` is the page context (client, pair), `shared` the
 * sign-in's shared state, `status` the pair-status tracker, `onOrder(order)`
 * gets every order the hub answers. Returns {node, start, stop, setPair}.
 */
export function orderEntrySection(ctx, shared, status, onOrder) {
  const title = el("span", { id: "entry-pair" });
  const sideButtons = ["buy", "sell"].map((s) => el("button", { type: "button", class: `acct-seg ${s}`, "data-testid": `side-${s}`, dataset: { side: s } }, s === "buy" ? "Buy" : "Sell"));
  const typeButtons = ["limit", "market"].map((t) => el("button", { type: "button", class: "acct-seg", "data-testid": `type-${t}`, dataset: { type: t } }, t === "limit" ? "Limit" : "Market"));
  const price = el("input", { type: "text", id: "entry-price", name: "price", inputmode: "decimal", autocomplete: "off", "data-testid": "price" });
  const qty = el("input", { type: "text", id: "entry-qty", name: "qty", inputmode: "decimal", autocomplete: "off", "data-testid": "qty" });
  const priceHint = el("span", { class: "acct-hint muted" });
  const qtyHint = el("span", { class: "acct-hint muted" });
  const priceField = field("Price", price);
  priceField.append(priceHint);
  const qtyField = field("Quantity", qty);
  qtyField.append(qtyHint);
  const summary = el("p", { class: "acct-summary muted", "data-testid": "entry-summary" });
  const place = el("button", { type: "submit", class: "acct-primary acct-place", "data-testid": "place" });
  const blocked = el("p", { class: "acct-blocked", "data-testid": "entry-blocked", role: "status" });
  const line = messageLine("order-msg");
  const form = el(
    "form",
    { class: "acct-form", id: "order-entry", novalidate: true },
    el("div", { class: "acct-segs", role: "group", "aria-label": "Side" }, sideButtons),
    el("div", { class: "acct-segs", role: "group", "aria-label": "Order type" }, typeButtons),
    el("div", { class: "acct-row acct-inline" }, priceField, qtyField),
    summary,
    blocked,
    place,
    line,
  );
  const node = el("section", { class: "acct-section", id: "acct-entry", "aria-label": "Order entry" }, el("h2", {}, "Order · ", title), form);

  let side = "buy";
  let type = "limit";
  let pair = ctx.pair;
  let sending = false;
  const offs = [];

  /** Why entry is closed now, or null. */
  function closedBecause() {
    const s = status.get(pair.pair);
    if (s.state !== "online") return `Order entry paused: ${pair.pair} is ${s.state}${s.reason ? ` (${s.reason})` : ""}.`;
    if (shared.authError) return `Order entry closed: the hub refused the trading session (${shared.authError}). Log out and sign in again.`;
    if (!shared.live) return "Connecting the trading session…";
    return null;
  }

  function checkPrice() {
    return checkDecimal(price.value, pair.price_scale, { label: "price" });
  }

  function checkQty() {
    return checkDecimal(qty.value, pair.qty_scale, { label: "quantity", min: pair.min_qty });
  }

  function render() {
    title.textContent = pair.pair;
    for (const b of sideButtons) b.setAttribute("aria-pressed", String(b.dataset.side === side));
    for (const b of typeButtons) b.setAttribute("aria-pressed", String(b.dataset.type === type));
    priceField.hidden = type !== "limit";
    priceHint.textContent = `tick ${step(pair.price_scale)} ${pair.quote}`;
    qtyHint.textContent = `lot ${step(pair.qty_scale)} · min ${pair.min_qty} ${pair.base}`;
    place.textContent = `${side === "buy" ? "Buy" : "Sell"} ${pair.base}`;
    place.className = `acct-primary acct-place ${side}`;

    const spend = side === "buy" ? pair.quote : pair.base;
    const available = shared.balances.get(spend)?.available;
    const parts = [];
    const p = checkPrice();
    const q = checkQty();
    if (type === "limit" && p.value && q.value) parts.push(`Total ${multiply(p.value, q.value, pair.price_scale)} ${pair.quote}`);
    if (type === "market") parts.push("Market: fills now at the best prices (IOC)");
    parts.push(`available ${available ?? "—"} ${spend}`);
    summary.textContent = parts.join(" · ");
    if (shared.kyc && shared.kyc !== "VERIFIED") summary.textContent += " · orders need a verified identity";

    const reason = closedBecause();
    blocked.textContent = reason ?? "";
    blocked.hidden = !reason;
    for (const input of [price, qty, ...sideButtons, ...typeButtons]) input.disabled = Boolean(reason);
    place.disabled = Boolean(reason) || sending;
  }

  function setPair(next) {
    pair = next;
    price.value = "";
    qty.value = "";
    for (const input of [price, qty]) input.removeAttribute("aria-invalid");
    say(line, "");
    render();
  }

  for (const b of sideButtons) b.addEventListener("click", () => ((side = b.dataset.side), render()));
  for (const b of typeButtons) b.addEventListener("click", () => ((type = b.dataset.type), say(line, ""), render()));
  for (const [input, check] of [[price, checkPrice], [qty, checkQty]]) {
    input.addEventListener("input", () => {
      input.removeAttribute("aria-invalid");
      render();
    });
    input.addEventListener("change", () => {
      const result = check();
      if (input.value !== "") input.setAttribute("aria-invalid", String(Boolean(result.error)));
      if (result.error && input.value !== "") say(line, result.error, "error");
      else say(line, "");
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (closedBecause() || sending) return;
    const q = checkQty();
    const p = type === "limit" ? checkPrice() : { value: undefined };
    const problem = (type === "limit" && p.error) || q.error;
    if (problem) {
      (p.error ? price : qty).setAttribute("aria-invalid", "true");
      return say(line, problem, "error");
    }
    const order = { client_order_id: `web-${crypto.randomUUID()}`, pair: pair.pair, side, type, qty: q.value };
    if (type === "limit") order.price = p.value;
    sending = true;
    say(line, "Sending…", "info");
    render();
    try {
      const answer = await ctx.client.placeOrder(order);
      onOrder(answer.order);
      say(line, placed(answer.order), answer.order.status === "rejected" ? "error" : "ok");
    } catch (error) {
      say(line, describe(error), "error");
    } finally {
      sending = false;
      render();
    }
  });

  return {
    node,
    setPair,
    start() {
      offs.push(shared.watch(render), status.watch(render));
      // A clicked ladder row announces its price (market/ladder.js).
      const onPrice = (event) => {
        if (event.detail?.pair !== pair.pair || type !== "limit" || price.disabled) return;
        price.value = event.detail.price;
        render();
      };
      document.addEventListener("nax:price", onPrice);
      offs.push(() => document.removeEventListener("nax:price", onPrice));
      setPair(ctx.pair);
    },
    stop() {
      for (const off of offs.splice(0)) off();
    },
  };
}

/** What the hub did with an order, in a sentence. */
function placed(order) {
  const what = `${order.side} ${order.qty} ${order.pair}${order.price ? ` @ ${order.price}` : ""}`;
  if (order.status === "filled") return `Filled: ${what}, average ${order.avg_fill_price}.`;
  if (order.status === "rejected") return `Rejected: ${what}${order.reason ? ` (${order.reason})` : ""}.`;
  if (order.status === "cancelled") return `Not filled, cancelled: ${what}${order.reason ? ` (${order.reason})` : ""}.`;
  return `Placed: ${what}, ${order.status.replace("_", " ")}.`;
}
