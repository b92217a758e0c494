// close(): resolves once the socket is closed, state `closed`, ops in
// flight reject with `closed`, and nothing reconnects afterwards.

import { test } from "node:test";
import assert from "node:assert/strict";
import { NaxClient } from "../src/index.js";
import { hubBehindProxy } from "./support/fixture.mjs";
import { counter } from "./support/wait.mjs";

const env = hubBehindProxy();

test("close() ends the connection for good and rejects the op in flight", { timeout: 20_000 }, async () => {
  const client = new NaxClient({ url: `ws://127.0.0.1:${env.proxy.port}/ws`, initialBackoffMs: 50, maxBackoffMs: 200 });
  client.connect();
  await client.subscribe(["ticker.BTC-USD"]);
  assert.equal(client.state, "open");
  assert.equal(env.proxy.connections, 1);

  const inFlight = client.subscribe(["ticker.ETH-USD"]); // sent, not answered yet
  const states = counter(client, "state");
  const closing = client.close();
  await assert.rejects(inFlight, (e) => e.code === "closed");
  await closing;
  assert.equal(client.state, "closed");
  assert.equal(states.count(), 1, "one state change: to closed");

  // Longer than the largest backoff: no new connection, no state change.
  await new Promise((ok) => setTimeout(ok, 1000));
  assert.equal(env.proxy.connections, 0, "a connection was opened after close()");
  assert.equal(client.state, "closed");
  assert.equal(states.count(), 1);
  assert.equal(client.stats.reconnects, 0);
  await assert.rejects(client.placeOrder({ client_order_id: "x", pair: "BTC-USD", side: "buy", type: "market", qty: "0.010000" }),
    (e) => e.code === "closed");
  await client.close(); // closing twice is harmless
});

test("close() before the socket opened and without connect()", { timeout: 10_000 }, async () => {
  const idle = new NaxClient({ url: env.hub.wsUrl });
  await idle.close();
  assert.equal(idle.state, "closed");

  const client = new NaxClient({ url: env.hub.wsUrl });
  client.connect();
  const waiting = assert.rejects(client.subscribe(["ticker.BTC-USD"]), (e) => e.code === "closed"); // waits for the open
  await client.close();
  await waiting;
  assert.equal(client.state, "closed");
});
