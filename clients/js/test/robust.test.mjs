// The client against scripted sockets (support/fake.mjs), for situations a
// real hub does not produce on demand: the order of frames on a reconnect,
// a token refresh on a live connection, refused and unanswered subscribes,
// ops that time out in the outbox, tokenProvider failures, throwing
// listeners, a failed checksum, close() and the bounds of the kept state.

import { test } from "node:test";
import assert from "node:assert/strict";
import { NaxClient, bookChecksum } from "../src/index.js";
import { fakeWebSocket, answerOps } from "./support/fake.mjs";
import { waitUntil, nextEvent } from "./support/wait.mjs";

const ORDER = { client_order_id: "c1", pair: "BTC-USD", side: "buy", type: "market", qty: "1.000000" };
const opsOf = (socket) => socket.sent.map((f) => f.op);
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

test("on a reconnect, an op sent from a `state: open` listener goes out after `auth` (kept token, and tokenProvider)", { timeout: 10_000 }, async () => {
  for (const withProvider of [false, true]) {
    const fake = fakeWebSocket((socket) => { socket.onsend = (f) => answerOps(socket, f); socket.open(); });
    const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, initialBackoffMs: 5, pingIntervalMs: 0 });
    try {
      client.connect();
      const tokenProvider = async () => { await sleep(30); return "fresh"; };
      await client.auth("t0", withProvider ? { tokenProvider } : {});
      client.on("state", ({ state }) => { if (state === "open") client.placeOrder(ORDER).catch(() => {}); });
      fake.sockets[0].fail();
      await waitUntil(() => fake.sockets[1]?.sent.some((f) => f.op === "order.place"), 5_000, "order.place on the second socket");
      const ops = opsOf(fake.sockets[1]);
      assert.ok(ops.indexOf("auth") >= 0 && ops.indexOf("auth") < ops.indexOf("order.place"), `provider ${withProvider}: ${ops}`);
      assert.equal(fake.sockets[1].sent[ops.indexOf("auth")].token, withProvider ? "fresh" : "t0");
    } finally {
      await client.close();
    }
  }
});

test("auth() again on a live connection (token refresh) keeps `orders` subscribed and its updates in flight", { timeout: 10_000 }, async () => {
  const fake = fakeWebSocket((socket) => { socket.onsend = (f) => answerOps(socket, f); socket.open(); });
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0 });
  const order = (seq, prev, status) => ({ type: "order", channel: "orders", epoch: "e", seq, prev_seq: prev, ts: 1, order: { order_id: "o1", status } });
  const seen = [];
  client.on("order", (e) => seen.push(e.order.status));
  try {
    client.connect();
    await client.auth("tok1");
    await client.subscribe(["orders"]);
    const socket = fake.sockets[0];
    socket.deliver(order(1, 0, "open"));
    const refreshed = client.auth("tok2");
    socket.deliver(order(2, 1, "partially_filled")); // queued by the hub before it read the new auth
    await refreshed;
    socket.deliver(order(3, 2, "filled"));
    assert.deepEqual(seen, ["open", "partially_filled", "filled"]);
    assert.equal(client.orders.get("o1").status, "filled");
    assert.equal(socket.sent.filter((f) => f.op === "subscribe").length, 1, "orders not subscribed again");
    assert.equal(client.stats.gaps, 0);
    assert.equal(client.stats.staleDropped, 0);
  } finally {
    await client.close();
  }
});

/** A socket that answers subscribes with `answer(frame, n)` (n: 1-based count), everything else as usual. */
function scripted(answer) {
  let n = 0;
  return fakeWebSocket((socket) => {
    socket.onsend = (f) => {
      if (f.op !== "subscribe") return answerOps(socket, f);
      n++;
      const msg = answer(f, n);
      if (msg) queueMicrotask(() => socket.deliver({ id: f.id, ...msg }));
    };
    socket.open();
  });
}
const SUBSCRIBED = (f) => ({ type: "subscribed", channels: f.channels, recovered: [], not_recovered: [] });
const ticker = (socket, seq, prev, epoch = "e") => socket.deliver({ type: "ticker", channel: "ticker.BTC-USD", epoch, seq, prev_seq: prev, ts: 1, bid: "1.00" });

test("a refused resync is retried with backoff; stale messages are counted; the channel comes back", { timeout: 10_000 }, async () => {
  const fake = scripted((f, n) => (n === 2 ? { type: "error", code: "rate_limited", message: "too many frames" } : SUBSCRIBED(f)));
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0 });
  let tickers = 0;
  client.on("ticker", () => tickers++);
  const errors = [];
  client.on("error", (e) => errors.push(e.code));
  try {
    client.connect();
    await client.subscribe(["ticker.BTC-USD"]);
    const socket = fake.sockets[0];
    ticker(socket, 10, 0);
    ticker(socket, 11, 10);
    ticker(socket, 13, 12); // a gap: resync, refused
    await waitUntil(() => errors.length === 1, 2_000, "the refusal as an error event");
    for (let i = 14; i < 20; i++) ticker(socket, i, i - 1); // the old stream goes on: dropped
    assert.equal(client.stats.staleDropped, 6);
    const subscribes = () => socket.sent.filter((f) => f.op === "subscribe");
    await waitUntil(() => subscribes().length === 3, 3_000, "the resync sent again");
    const [, refused, retried] = subscribes();
    assert.ok(retried.sentAt - refused.sentAt >= 450, `retried after ${retried.sentAt - refused.sentAt} ms`);
    ticker(socket, 30, 0); // the fresh state
    ticker(socket, 31, 30);
    assert.equal(tickers, 4);
    assert.deepEqual(errors, ["rate_limited"]);
  } finally {
    await client.close();
  }
});

test("watchdog: a channel whose first message does not come is subscribed again; a resync storm backs off", { timeout: 10_000 }, async () => {
  const fake = scripted(SUBSCRIBED);
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0, watchdogMs: 300 });
  const resyncs = [];
  client.on("resync", (e) => resyncs.push(e.reason));
  try {
    client.connect();
    await client.subscribe(["ticker.BTC-USD"]);
    const socket = fake.sockets[0];
    const subscribes = () => socket.sent.filter((f) => f.op === "subscribe");
    await waitUntil(() => subscribes().length === 2, 3_000, "a second subscribe from the watchdog");
    assert.deepEqual(resyncs, ["watchdog"]);
    assert.equal(client.stats.watchdogResyncs, 1);
    // Now the channel breaks again and again: the second resync waits a backoff.
    ticker(socket, 1, 0);
    ticker(socket, 3, 2);
    await waitUntil(() => subscribes().length === 3, 2_000, "the first gap's resync");
    ticker(socket, 10, 0);
    ticker(socket, 12, 11);
    const brokeAt = performance.now();
    await waitUntil(() => subscribes().length === 4, 3_000, "the second gap's resync");
    assert.ok(subscribes()[3].sentAt - brokeAt >= 450, `storm: resubscribed after ${subscribes()[3].sentAt - brokeAt} ms`);
    assert.equal(client.stats.gaps, 2);
  } finally {
    await client.close();
  }
});

test("an op that timed out in the outbox is never sent; the outbox is capped; a ping goes ahead of the backlog", { timeout: 15_000 }, async () => {
  const fake = fakeWebSocket((socket) => { socket.onsend = (f) => { if (f.op === "ping") answerOps(socket, f); }; socket.open(); });
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, requestTimeoutMs: 1000, pingIntervalMs: 200, pongTimeoutMs: 300 });
  try {
    client.connect();
    await waitUntil(() => client.state === "open", 1_000, "open");
    const socket = fake.sockets[0];
    const results = [];
    for (let i = 0; i < 1100; i++) client.placeOrder({ ...ORDER, client_order_id: `c${i}` }).catch((e) => { results[i] = e.code; });
    // Sent at once (the bucket), then 1,000 queued: the rest refused.
    const sentAtOnce = socket.sent.filter((f) => f.op === "order.place").length;
    await sleep(0);
    assert.equal(results.filter((code) => code === "queue_full").length, 1100 - 1000 - sentAtOnce);
    await waitUntil(() => results.filter(Boolean).length === 1100, 3_000, "every op rejected");
    const placedBy = socket.sent.filter((f) => f.op === "order.place").length;
    assert.ok(placedBy < 100, `${placedBy} sent within the timeout`);
    await sleep(1500);
    assert.equal(socket.sent.filter((f) => f.op === "order.place").length, placedBy, "a rejected op was sent later");
    assert.ok(results.slice(placedBy, sentAtOnce + 1000).every((code) => code === "timeout"), "the unsent ones: timeout");
    assert.ok(socket.sent.some((f) => f.op === "ping"), "pings went out ahead of the backlog");
    assert.equal(fake.sockets.length, 1, "no false pong timeout");
  } finally {
    await client.close();
  }
});

test("tokenProvider: a failure on a reconnect is retried, a refused token asks it again, and it gives up after a bounded number", { timeout: 20_000 }, async () => {
  let valid = "fresh-1";
  const fake = fakeWebSocket((socket) => {
    socket.onsend = (f) => {
      if (f.op === "auth" && f.token !== valid && f.token !== "t0") {
        queueMicrotask(() => socket.deliver({ type: "error", id: f.id, code: "unauthorized", message: "token expired" }));
      } else answerOps(socket, f);
    };
    socket.open();
  });
  let calls = 0;
  let script = [() => { throw new Error("network blip"); }, () => new Promise(() => {}), () => "fresh-1"];
  const tokenProvider = async () => script[calls++]?.() ?? "stale";
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0, initialBackoffMs: 5, tokenProviderTimeoutMs: 200 });
  const errors = [];
  client.on("error", (e) => errors.push(e));
  try {
    client.connect();
    await client.auth("t0", { tokenProvider });
    await client.subscribe(["orders"]);
    fake.sockets[0].fail();
    // Fails, hangs (timeout), then answers: the kept token t0 is never sent again.
    await waitUntil(() => fake.sockets[1]?.sent.some((f) => f.op === "subscribe"), 8_000, "orders subscribed on the second socket");
    assert.deepEqual(fake.sockets[1].sent.filter((f) => f.op === "auth").map((f) => f.token), ["fresh-1"]);
    assert.equal(calls, 3);

    // Now every token is refused: asked again up to the bound, then an error and no auth.
    valid = "none";
    calls = 0;
    script = [];
    fake.sockets[1].fail();
    await waitUntil(() => errors.some((e) => /tokenProvider attempts/.test(e.message)), 10_000, "the give-up error");
    const auths = fake.sockets[2].sent.filter((f) => f.op === "auth");
    assert.equal(auths.length, 4);
    assert.ok(auths.every((f) => f.token === "stale"));
    assert.ok(!fake.sockets[2].sent.some((f) => f.op === "subscribe"), "orders not subscribed unauthenticated");
  } finally {
    await client.close();
  }
});

test("without a provider, a kept token the hub refuses on a reconnect is reported once and never sent again", { timeout: 5_000 }, async () => {
  let expired = false;
  const fake = fakeWebSocket((socket) => {
    socket.onsend = (f) => {
      if (f.op === "auth" && expired) queueMicrotask(() => socket.deliver({ type: "error", id: f.id, code: "unauthorized", message: "token expired" }));
      else answerOps(socket, f);
    };
    socket.open();
  });
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0, initialBackoffMs: 5 });
  const errors = [];
  client.on("error", (e) => errors.push(e.code));
  try {
    client.connect();
    await client.auth("t0");
    expired = true;
    fake.sockets[0].fail();
    await waitUntil(() => errors.length === 1, 2_000, "the refusal reported");
    fake.sockets[1].fail();
    await waitUntil(() => fake.sockets[2] && client.state === "open", 2_000, "a third connection");
    await sleep(20);
    assert.deepEqual(fake.sockets.map((socket) => socket.sent.filter((f) => f.op === "auth").length), [1, 1, 0]);
    assert.deepEqual(errors, ["unauthorized"]);
  } finally {
    await client.close();
  }
});

test("a throwing listener is reported (reportError, else console.error) and never rethrown", { timeout: 5_000 }, async () => {
  const fake = fakeWebSocket((socket) => socket.open());
  const reported = [];
  const uncaught = [];
  const onUncaught = (e) => uncaught.push(e);
  process.on("uncaughtException", onUncaught);
  const savedConsoleError = console.error;
  globalThis.reportError = (e) => reported.push(e);
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0 });
  let later = 0;
  client.on("state", () => { throw new Error("bug in an app listener"); });
  client.on("state", () => later++);
  try {
    client.connect();
    await waitUntil(() => client.state === "open", 1_000, "open");
    delete globalThis.reportError;
    const logged = [];
    console.error = (...args) => logged.push(args);
    await client.close();
    console.error = savedConsoleError;
    await sleep(20);
    assert.ok(reported.length >= 1 && reported.every((e) => e.message === "bug in an app listener"), `reported: ${reported}`);
    assert.ok(logged.length >= 1, "console.error without reportError");
    assert.ok(later >= 2, "the other listener still ran");
    assert.deepEqual(uncaught, []);
  } finally {
    console.error = savedConsoleError;
    delete globalThis.reportError;
    process.off("uncaughtException", onUncaught);
  }
});

test("a book that failed its checksum is never handed out: book() undefined, the held object unsynced, until the fresh snapshot", { timeout: 5_000 }, async () => {
  const fake = scripted(SUBSCRIBED);
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0 });
  const handed = [];
  client.on("book", (e) => handed.push(e.book.checksum()));
  const bids = [["100.00", "1.000000"]];
  const asks = [["101.00", "2.000000"]];
  const msg = (type, seq, prev, b, a, checksum) => ({ type, channel: "book.BTC-USD", epoch: "e", seq, prev_seq: prev, ts: 1, bids: b, asks: a, checksum });
  try {
    client.connect();
    await client.subscribe(["book.BTC-USD"]);
    assert.equal(client.book("book.BTC-USD"), undefined, "no book before the snapshot");
    const socket = fake.sockets[0];
    socket.deliver(msg("snapshot", 1, 0, bids, asks, bookChecksum(bids, asks)));
    const held = client.book("book.BTC-USD");
    assert.ok(held?.synced);
    socket.deliver(msg("update", 2, 1, [["100.00", "3.000000"]], [], 12345)); // wrong checksum
    assert.equal(client.book("book.BTC-USD"), undefined);
    assert.equal(held.synced, false);
    socket.deliver(msg("update", 3, 2, [["99.00", "1.000000"]], [], 1)); // chains on the failed one: dropped
    assert.equal(client.book("book.BTC-USD"), undefined);
    socket.deliver(msg("snapshot", 9, 0, bids, asks, bookChecksum(bids, asks)));
    assert.equal(client.book("book.BTC-USD")?.synced, true);
    assert.deepEqual(handed, [bookChecksum(bids, asks), bookChecksum(bids, asks)], "only verified books were handed to listeners");
    assert.equal(client.stats.checksumMismatches, 1);
  } finally {
    await client.close();
  }
});

/** A fake hub whose close handshake never completes: refuses `auth` with "other-user" (bad_request), never answers order.cancel_all. */
function quietHub() {
  return fakeWebSocket((socket) => {
    socket.onsend = (f) => {
      if (f.op === "auth" && f.token === "other-user") queueMicrotask(() => socket.deliver({ type: "error", id: f.id, code: "bad_request", message: "auth as a second user" }));
      else if (f.op !== "order.cancel_all") answerOps(socket, f);
    };
    socket.close = () => {};
    socket.open();
  });
}

test("close() sets `closed` at once: an op right after it rejects with `closed` and is not sent", { timeout: 5_000 }, async () => {
  const fake = quietHub();
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0 });
  client.connect();
  await waitUntil(() => client.state === "open", 1_000, "open");
  const closing = client.close();
  assert.equal(client.state, "closed");
  await assert.rejects(client.placeOrder(ORDER), (e) => e.code === "closed");
  assert.ok(!fake.sockets[0].sent.some((f) => f.op === "order.place"));
  await closing;
});

test("cancelAll waits cancelAllTimeoutMs, not requestTimeoutMs", { timeout: 5_000 }, async () => {
  const fake = quietHub();
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0, requestTimeoutMs: 100, cancelAllTimeoutMs: 400 });
  try {
    client.connect();
    await waitUntil(() => client.state === "open", 1_000, "open");
    const started = performance.now();
    await assert.rejects(client.cancelAll(), (e) => e.code === "timeout");
    assert.ok(performance.now() - started >= 390, `cancelAll timed out after ${performance.now() - started} ms`);
  } finally {
    await client.close();
  }
});

test("an auth refused with bad_request (a second user) does not keep its token: the reconnect sends the first user's", { timeout: 5_000 }, async () => {
  const fake = quietHub();
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0, initialBackoffMs: 5 });
  try {
    client.connect();
    await client.auth("user-a");
    await assert.rejects(client.auth("other-user"), (e) => e.code === "bad_request");
    fake.sockets[0].fail();
    await waitUntil(() => fake.sockets[1]?.sent.some((f) => f.op === "auth"), 2_000, "auth on the second socket");
    assert.equal(fake.sockets[1].sent.find((f) => f.op === "auth").token, "user-a");
  } finally {
    await client.close();
  }
});

test("client.orders keeps every open order and the newest 1,000 finished ones", { timeout: 5_000 }, async () => {
  const fake = quietHub();
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0 });
  const order = (seq, order_id, status) => ({ type: "order", channel: "orders", epoch: "e", seq, prev_seq: seq - 1, ts: 1, order: { order_id, status } });
  try {
    client.connect();
    await client.auth("user-a");
    await client.subscribe(["orders"]);
    const socket = fake.sockets[0];
    socket.deliver(order(1, "open0", "open"));
    for (let i = 2; i <= 1101; i++) socket.deliver(order(i, `f${i}`, i % 2 ? "filled" : "cancelled"));
    socket.deliver(order(1102, "open1", "open"));
    socket.deliver(order(1103, "f2", "cancelled")); // an update moves it to the newest
    assert.equal(client.orders.size, 1002);
    assert.ok(client.orders.has("open0") && client.orders.has("open1") && client.orders.has("f1101") && client.orders.has("f2"));
    assert.ok(!client.orders.has("f3") && !client.orders.has("f102"));
    assert.ok(client.orders.has("f103"));
  } finally {
    await client.close();
  }
});

test("a refused restore drops only the channel the hub names; the others are resumed", { timeout: 10_000 }, async () => {
  let restarted = false;
  const fake = scripted((f) => (restarted && f.channels.includes("ticker.SOL-USD")
    ? { type: "error", code: "unknown_channel", message: "no such channel: ticker.SOL-USD" }
    : SUBSCRIBED(f)));
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 0, initialBackoffMs: 5 });
  const errors = [];
  client.on("error", (e) => errors.push(e.code));
  try {
    client.connect();
    await client.subscribe(["ticker.BTC-USD", "ticker.SOL-USD", "status"]);
    ticker(fake.sockets[0], 5, 0);
    restarted = true;
    const resumed = nextEvent(client, "resumed", () => true, 5_000, "resumed");
    fake.sockets[0].fail();
    await resumed;
    const frames = fake.sockets[1].sent.filter((f) => f.op === "subscribe");
    assert.equal(frames.length, 2);
    assert.deepEqual(frames[1].channels, ["ticker.BTC-USD", "status"]);
    assert.deepEqual(frames[1].resume, { "ticker.BTC-USD": { epoch: "e", seq: 5 } });
    assert.deepEqual(errors, ["unknown_channel"]);
    ticker(fake.sockets[1], 6, 5);
    assert.equal(client.stats.gaps, 0);
  } finally {
    await client.close();
  }
});
