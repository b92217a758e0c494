// Order entry over the WebSocket against a real sandbox hub: a funded
// account (REST: register, login, KYC, USD deposit), `auth`, the private
// channels, order.place / order.cancel, and what `orders` and `balances`
// show of them.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { NaxClient, NaxError } from "../src/index.js";
import { startHub } from "./support/hub.mjs";
import { startProxy } from "./support/proxy.mjs";
import { fundedAccount, login, rest } from "./support/account.mjs";
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

test("tokenProvider: auth again after a reconnect and after the session ended; `orders` keeps working", { timeout: 60_000 }, async () => {
  const account = await fundedAccount(hub.base);
  const proxy = await startProxy(hub.port);
  const client = new NaxClient({ url: `ws://127.0.0.1:${proxy.port}/ws`, initialBackoffMs: 100 });
  let current = account.token;
  let provided = 0;
  const tokenProvider = async () => {
    provided++;
    current = await login(hub.base, account.email, account.password);
    return current;
  };
  const errors = [];
  client.on("error", (e) => errors.push(e));
  const authedAgain = () => nextEvent(client, "message", (m) => m.type === "authed", 10_000, "`authed` again");
  const seenOnOrders = (id) => nextEvent(client, "order", (e) => e.order.client_order_id === id, 10_000, `${id} on \`orders\``);
  const place = (id) => client.placeOrder({ client_order_id: id, pair: "BTC-USD", side: "buy", type: "limit", qty: "0.010000", price: "1000.00" });
  try {
    client.connect();
    await client.auth(account.token, { tokenProvider });
    await client.subscribe(["orders", "balances", "trades.BTC-USD"]);

    // 1. The network drops: the client reconnects, auths with a fresh token, resubscribes `orders`.
    const reauthed = authedAgain();
    const resumed = nextEvent(client, "resumed", () => true, 10_000, "resumed");
    proxy.dropAll();
    await reauthed;
    await resumed;
    assert.equal(provided, 1, "tokenProvider calls after the reconnect");
    await waitUntil(() => client.state === "open", 5_000, "open");
    const first = seenOnOrders("after-reconnect");
    await place("after-reconnect");
    await first;

    // 2. The session ends (logout): the hub says `unauthorized` (id null) at the next
    // private delivery; the client auths with the provider's token and resubscribes.
    const ended = nextEvent(client, "error", (e) => e.code === "unauthorized" && e.id === null, 10_000, "session-ended `unauthorized`");
    const reauthed2 = authedAgain();
    const resubscribed = nextEvent(client, "message", (m) => m.type === "subscribed" && m.channels.includes("orders"), 10_000, "`orders` subscribed again");
    await rest(hub.base, "POST", "/auth/logout", { token: current });
    const other = await login(hub.base, account.email, account.password);
    await rest(hub.base, "POST", "/orders", { token: other, body: { client_order_id: "over-rest", pair: "BTC-USD", side: "buy", type: "limit", qty: "0.010000", price: "1000.00" } });
    await ended;
    await reauthed2;
    assert.equal(provided, 2, "tokenProvider calls after the session ended");
    // `orders` keeps no history: an order placed before the channel is
    // subscribed again would not be on it, so wait for the subscription.
    await resubscribed;
    const second = seenOnOrders("after-session-end");
    await place("after-session-end");
    await second;
    assert.equal(client.stats.reconnects, 1);
    assert.deepEqual(errors.map((e) => e.code), ["unauthorized"]);
  } finally {
    await client.close();
    await proxy.close();
  }
});

test("cancelAfter arms the dead-man's switch; its `cancelled` arrives on `orders`", { timeout: 30_000 }, async () => {
  const { token } = await fundedAccount(hub.base);
  const client = new NaxClient({ url: hub.wsUrl });
  try {
    client.connect();
    await client.auth(token);
    await client.subscribe(["orders"]);
    const { order } = await client.placeOrder({ client_order_id: `dms-${Date.now()}`, pair: "ETH-USD", side: "buy", type: "limit", qty: "0.01000", price: "100.00" });
    const fired = nextEvent(client, "cancelled", () => true, 10_000, "`cancelled` from the switch");
    const armed = await client.cancelAfter(1000);
    assert.equal(armed.timeout_ms, 1000);
    assert.equal(typeof armed.trigger_ts, "number");
    const { trigger, order_ids } = await fired;
    assert.equal(trigger, "cancel_after");
    assert.deepEqual(order_ids, [order.order_id]);
    await waitUntil(() => client.orders.get(order.order_id)?.status === "cancelled", 5_000, "the order cancelled on `orders`");
    assert.deepEqual(await client.cancelAll(), [], "nothing left to cancel");
  } finally {
    await client.close();
  }
});

test("deauth() makes the hub forget user A: user B auths on the same client and gets B's orders", { timeout: 60_000 }, async () => {
  const [a, b] = await Promise.all([fundedAccount(hub.base), fundedAccount(hub.base)]);
  const client = new NaxClient({ url: hub.wsUrl, initialBackoffMs: 5_000 });
  const errors = [];
  client.on("error", (e) => errors.push(e));
  const limit = (id) => ({ client_order_id: id, pair: "BTC-USD", side: "buy", type: "limit", qty: "0.010000", price: "1000.00" });
  try {
    client.connect();
    const authedA = await client.auth(a.token);
    await client.subscribe(["orders", "ticker.BTC-USD"]);
    const seenA = nextEvent(client, "order", (e) => e.order.client_order_id === "order-of-a", 10_000, "A's order");
    const placedA = await client.placeOrder(limit("order-of-a"));
    await seenA;

    const started = Date.now();
    await client.deauth();
    assert.ok(Date.now() - started < 2_000, `deauth took ${Date.now() - started} ms (no reconnect backoff)`);
    assert.equal(client.state, "open");
    assert.equal(client.orders.size, 0);
    const tickers = nextEvent(client, "ticker", () => true, 10_000, "ticker after the deauth");
    await tickers; // the public channel was restored

    const authedB = await client.auth(b.token);
    assert.notEqual(authedB.user_id, authedA.user_id);
    await client.subscribe(["orders"]);
    const seenB = nextEvent(client, "order", (e) => e.order.client_order_id === "order-of-b", 10_000, "B's order");
    const placedB = await client.placeOrder(limit("order-of-b"));
    await seenB;
    assert.deepEqual([...client.orders.keys()], [placedB.order.order_id]);
    // A's order is A's: B cannot cancel it.
    await assert.rejects(client.cancelOrder(placedA.order.order_id), (e) => e.code === "order_not_found");
    assert.deepEqual(errors.map((e) => e.code), []);
  } finally {
    await client.close();
  }
});
