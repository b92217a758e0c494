// The client's auth and deauth paths against scripted sockets
// (support/fake.mjs): when a tokenProvider is asked, what a provider that
// hangs may hold back (and on which socket), and deauth() while an auth
// waits for its answer or while the hub is down.

import { test } from "node:test";
import assert from "node:assert/strict";
import { NaxClient } from "../src/index.js";
import { Outbox } from "../src/outbox.js";
import { fakeWebSocket, answerOps } from "./support/fake.mjs";
import { waitUntil } from "./support/wait.mjs";

const ORDER = { client_order_id: "c1", pair: "BTC-USD", side: "buy", type: "market", qty: "1.000000" };
const authsOf = (socket) => socket.sent.filter((f) => f.op === "auth").map((f) => f.token);
const refuse = (socket, f) => queueMicrotask(() => socket.deliver({ type: "error", id: f.id, code: "unauthorized", message: "expired" }));

test("auth() on an open connection with a tokenProvider: the first reconnect asks the provider, the old token is not resent", { timeout: 5_000 }, async () => {
  const fake = fakeWebSocket((s) => {
    s.onsend = (f) => (f.op === "auth" && f.token === "t0" && fake.sockets.length > 1 ? refuse(s, f) : answerOps(s, f));
    s.open();
  });
  let calls = 0;
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0, initialBackoffMs: 5 });
  const errors = [];
  client.on("error", (e) => errors.push(e.code));
  try {
    client.connect();
    await waitUntil(() => client.state === "open", 1_000, "open"); // auth() on the open connection
    await client.auth("t0", { tokenProvider: async () => { calls++; return "fresh"; } });
    await client.subscribe(["orders"]);
    fake.sockets[0].fail();
    await waitUntil(() => fake.sockets[1]?.sent.some((f) => f.op === "subscribe" && f.channels.includes("orders")), 3_000, "orders subscribed on the second socket");
    assert.equal(calls, 1);
    assert.deepEqual(authsOf(fake.sockets[1]), ["fresh"]);
    assert.deepEqual(errors, []);
  } finally {
    await client.close();
  }
});

test("a token the hub refuses on a restore, with a tokenProvider: the provider is asked on that connection", { timeout: 5_000 }, async () => {
  const fake = fakeWebSocket((s) => {
    s.onsend = (f) => (f.op === "auth" && f.token === "bad" ? refuse(s, f) : answerOps(s, f));
    if (fake.sockets.length > 1) s.open(); // the first connection never opens until the test says so
  });
  let calls = 0;
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0, initialBackoffMs: 5 });
  client.on("error", () => {});
  try {
    client.connect();
    const authed = client.auth("bad", { tokenProvider: async () => { calls++; return "fresh"; } });
    await waitUntil(() => fake.sockets[0], 1_000, "a socket");
    fake.sockets[0].open();
    await assert.rejects(authed, { code: "unauthorized" });
    await waitUntil(() => authsOf(fake.sockets[0]).length === 2, 3_000, "a second auth on the same socket");
    assert.equal(calls, 1);
    assert.deepEqual(authsOf(fake.sockets[0]), ["bad", "fresh"]);
    await client.subscribe(["orders"]); // accepted: the connection is authenticated with the provider's token
  } finally {
    await client.close();
  }
});

test("a hung tokenProvider holds only the ops that need auth: public restore and pings go, no pong-timeout loop", { timeout: 5_000 }, async () => {
  let hang = false;
  const fake = fakeWebSocket((s) => { s.onsend = (f) => answerOps(s, f); s.open(); });
  const client = new NaxClient({
    url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 50, pongTimeoutMs: 40,
    tokenProviderTimeoutMs: 1_000, requestTimeoutMs: 1_000, initialBackoffMs: 5,
  });
  client.on("error", () => {});
  try {
    client.connect();
    await client.auth("t0", { tokenProvider: () => (hang ? new Promise(() => {}) : Promise.resolve("p")) });
    await client.subscribe(["book.BTC-USD"]);
    hang = true;
    fake.sockets[0].fail();
    await waitUntil(() => client.state === "open" && fake.sockets[1], 1_000, "the second connection");
    const placed = client.placeOrder(ORDER);
    placed.catch(() => {});
    const socket = fake.sockets[1];
    await waitUntil(() => socket.sent.filter((f) => f.op === "ping").length >= 4, 2_000, "four pings answered");
    assert.equal(fake.sockets.length, 2, "no reconnect (a held ping would time out: close 4000)");
    assert.equal(socket.closedWith, null);
    assert.ok(socket.sent.some((f) => f.op === "subscribe" && f.channels.includes("book.BTC-USD")), "the public restore was sent");
    assert.ok(!socket.sent.some((f) => f.op === "order.place" || f.op === "auth"), `held: ${socket.sent.map((f) => f.op)}`);
  } finally {
    await client.close();
  }
});

test("Outbox: a hold is of the socket it was taken on; a stale release does not release a newer socket's hold", () => {
  const outbox = new Outbox();
  const a = { sent: [], send(d) { this.sent.push(JSON.parse(d).op); } };
  const b = { sent: [], send(d) { this.sent.push(JSON.parse(d).op); } };
  outbox.attach(a);
  const releaseA = outbox.hold();
  outbox.detach();
  outbox.attach(b);
  const releaseB = outbox.hold();
  outbox.push({ op: "auth", id: 1, token: "t" }, true);
  outbox.push({ op: "order.place", id: 2 });
  outbox.push({ op: "subscribe", id: 3, channels: ["orders"] });
  outbox.push({ op: "subscribe", id: 4, channels: ["trades.BTC-USD"] });
  assert.deepEqual(b.sent, ["auth", "subscribe"]);
  releaseA();
  assert.deepEqual(b.sent, ["auth", "subscribe"], "the stale release changed nothing");
  releaseB();
  assert.deepEqual(b.sent, ["auth", "subscribe", "order.place", "subscribe"]);
  assert.deepEqual(a.sent, []);
  outbox.detach();
});

test("deauth() right after auth() on an open connection reconnects; the auth's late answer is not kept", { timeout: 5_000 }, async () => {
  const fake = fakeWebSocket((s) => { s.onsend = (f) => answerOps(s, f); s.open(); });
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0 });
  try {
    client.connect();
    await waitUntil(() => client.state === "open", 1_000, "open");
    const authed = client.auth("tokA");
    authed.catch(() => {});
    await client.deauth();
    await assert.rejects(authed);
    assert.equal(fake.sockets.length, 2, "a new connection: the hub forgets user A");
    assert.equal(fake.sockets[0].closedWith?.code, 1000);
    assert.deepEqual(authsOf(fake.sockets[1]), [], "no auth on the new connection");
  } finally {
    await client.close();
  }
});

test("deauth() while the hub stays down resolves after requestTimeoutMs", { timeout: 5_000 }, async () => {
  let up = true;
  const fake = fakeWebSocket((s) => { s.onsend = (f) => answerOps(s, f); if (up) s.open(); else s.fail(); });
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0, requestTimeoutMs: 300, initialBackoffMs: 20 });
  try {
    client.connect();
    await client.auth("t0");
    up = false;
    const started = performance.now();
    await client.deauth();
    const took = performance.now() - started;
    assert.ok(took >= 290 && took < 1_500, `resolved after ${Math.round(took)} ms`);
    assert.notEqual(client.state, "open");
  } finally {
    await client.close();
  }
});
