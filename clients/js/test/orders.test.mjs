// Order entry over the WebSocket against a real sandbox hub: a funded
// account (REST: register, login, KYC, USD deposit), `auth`, the private
// channels, order.place / order.cancel, and what `orders` and `balances`
// show of them.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { NaxClient, NaxError } from "../src/index.js";
import { startHub } from "./support/hub.mjs";
import { fundedAccount } from "./support/account.mjs";
import { nextEvent, waitUntil } from "./support/wait.mjs";

let hub;
before(async () => { hub = await startHub(); });
after(async () => { await hub?.stop(); });

test("an order placed over the socket shows on `orders`, its cancel too; balances move", { timeout: 60_000 }, async () => {
  const { token } = await fundedAccount(hub.base);
  const client = new NaxClient({ url: hub.wsUrl });
  const errors = [];
  client.on("error", (e) => errors.push(e));
  const balances = [];
  client.on("balance", ({ balance }) => balances.push(balance));
  try {
    client.connect();
    // auth before the socket is open: answered once it is.
    const authed = await client.auth(token);
    assert.match(authed.user_id, /^[0-9a-f-]{36}$/);
    assert.equal(authed.cancel_on_disconnect, false);
    await client.subscribe(["orders", "balances", "ticker.BTC-USD"]);

    const clientOrderId = `js-${Date.now()}`;
    const request = { client_order_id: clientOrderId, pair: "BTC-USD", side: "buy", type: "limit", qty: "0.010000", price: "1000.00" };
    const onChannel = nextEvent(client, "order", (e) => e.order.client_order_id === clientOrderId, 10_000, "the order on `orders`");
    const locked = nextEvent(client, "balance", (e) => e.balance.asset === "USD" && e.balance.locked !== "0.00000000", 10_000, "USD locked");
    const placed = await client.placeOrder(request);
    assert.equal(placed.created, true);
    assert.equal(placed.order.status, "open");
    assert.equal(placed.order.price, "1000.00");
    assert.equal((await onChannel).order.order_id, placed.order.order_id);
    assert.equal((await locked).balance.locked, "10.00000000");
    assert.equal(client.orders.get(placed.order.order_id).status, "open");

    // The same client_order_id again is a replay, not a second order.
    const replay = await client.placeOrder(request);
    assert.equal(replay.created, false);
    assert.equal(replay.order.order_id, placed.order.order_id);

    const cancelledOnChannel = nextEvent(
      client, "order", (e) => e.order.order_id === placed.order.order_id && e.order.status === "cancelled", 10_000, "`cancelled` on `orders`");
    const cancelled = await client.cancelOrder(placed.order.order_id);
    assert.equal(cancelled.status, "cancelled");
    await cancelledOnChannel;
    await waitUntil(() => client.balances.get("USD")?.locked === "0.00000000", 10_000, "USD unlocked after the cancel");
    assert.equal(client.orders.get(placed.order.order_id).status, "cancelled");
    assert.ok(balances.length >= 2, `balance events: ${balances.length}`);

    // A refusal rejects with the hub's code, and the connection stays.
    await assert.rejects(client.cancelOrder(placed.order.order_id), (e) => e instanceof NaxError && e.code === "order_not_open");
    await assert.rejects(
      client.placeOrder({ ...request, client_order_id: `${clientOrderId}-big`, qty: "1000.000000", price: "60000.00" }),
      (e) => e.code === "insufficient_funds",
    );
    assert.equal(client.state, "open");
    assert.equal(client.stats.gaps, 0);
    assert.deepEqual(errors, []);
  } finally {
    await client.close();
  }
});

test("private channels before auth are refused and forgotten", { timeout: 20_000 }, async () => {
  const client = new NaxClient({ url: hub.wsUrl });
  try {
    client.connect();
    await client.subscribe(["ticker.ETH-USD"]);
    await assert.rejects(client.subscribe(["orders"]), (e) => e.code === "unauthorized");
    await assert.rejects(client.placeOrder({ client_order_id: "x", pair: "BTC-USD", side: "buy", type: "market", qty: "0.010000" }),
      (e) => e.code === "unauthorized");
    // `orders` is not remembered: subscribing again is refused again (not a silent no-op).
    await assert.rejects(client.subscribe(["orders"]), (e) => e.code === "unauthorized");
  } finally {
    await client.close();
  }
});
