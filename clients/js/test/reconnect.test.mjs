// Reconnect timing and the hub's limits: full-jitter exponential backoff,
// the `shutdown` message's delay, the liveness ping (scripted sockets), and
// the client's frame pacing against a real hub's 20 frames/s, burst 50.

import { test } from "node:test";
import assert from "node:assert/strict";
import { NaxClient } from "../src/index.js";
import { startHub } from "./support/hub.mjs";
import { fakeWebSocket } from "./support/fake.mjs";
import { waitUntil } from "./support/wait.mjs";

const SLACK_MS = 3; // timers may fire a little early in performance.now() terms

test("failed attempts back off exponentially up to maxBackoffMs (random = 1: the ceiling)", { timeout: 10_000 }, async () => {
  const fake = fakeWebSocket((socket) => socket.fail());
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, initialBackoffMs: 20, maxBackoffMs: 80, random: () => 1 });
  const attempts = [];
  client.on("state", (e) => { if (e.state === "reconnecting") attempts.push(e.attempt); });
  client.connect();
  await waitUntil(() => fake.sockets.length >= 6, 5_000, "6 attempts");
  await client.close();
  const gaps = fake.sockets.slice(1, 6).map((s, i) => s.createdAt - fake.sockets[i].createdAt);
  [20, 40, 80, 80, 80].forEach((ceiling, i) => assert.ok(gaps[i] >= ceiling - SLACK_MS, `gap ${i}: ${gaps[i]} < ${ceiling}`));
  assert.deepEqual(attempts.slice(0, 5), [1, 2, 3, 4, 5]);
  assert.equal(client.stats.reconnects, 0, "never opened, so no reconnect counted");
});

test("a dropped open connection reconnects at once-ish: delay drawn from [0, initialBackoffMs]", { timeout: 10_000 }, async () => {
  const fake = fakeWebSocket((socket) => {
    socket.open();
    if (socket === fake.sockets[0]) setTimeout(() => socket.fail(), 10);
  });
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, initialBackoffMs: 1000, random: () => 0.05 });
  client.connect();
  await waitUntil(() => fake.sockets.length === 2 && client.state === "open", 5_000, "second connection open");
  const gap = fake.sockets[1].createdAt - fake.sockets[0].createdAt;
  assert.ok(gap < 500, `reconnected after ${gap} ms, expected about 10 + 50`);
  assert.equal(client.stats.reconnects, 1);
  await client.close();
});

test("`shutdown` reconnects after reconnect_after_ms plus jitter", { timeout: 10_000 }, async () => {
  const fake = fakeWebSocket((socket) => {
    socket.open();
    if (socket === fake.sockets[0]) socket.deliver({ type: "shutdown", reconnect_after_ms: 300 });
  });
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, initialBackoffMs: 100, random: () => 0.5 });
  client.connect();
  await waitUntil(() => fake.sockets.length === 2, 5_000, "a new connection after the shutdown");
  const gap = fake.sockets[1].createdAt - fake.sockets[0].createdAt;
  assert.ok(gap >= 350 - SLACK_MS && gap < 1000, `reconnected after ${gap} ms, expected 300 + 0.5 × 100`);
  assert.equal(fake.sockets[0].closedWith?.code, 1000, "the client left the shutting-down hub itself");
  await client.close();
});

test("no pong within pongTimeoutMs: the socket is closed and replaced", { timeout: 10_000 }, async () => {
  const fake = fakeWebSocket((socket) => socket.open()); // never answers anything
  const client = new NaxClient({ url: "ws://x/ws", WebSocket: fake.WebSocket, pingIntervalMs: 50, pongTimeoutMs: 50, initialBackoffMs: 10 });
  client.connect();
  await waitUntil(() => fake.sockets.length >= 2, 5_000, "a second connection after the silent one");
  assert.equal(fake.sockets[0].sent[0].op, "ping");
  assert.equal(fake.sockets[0].closedWith?.code, 4000);
  await client.close();
});

test("60 subscribes at once stay under the hub's frame limit (no rate_limited)", { timeout: 30_000 }, async () => {
  const hub = await startHub();
  const client = new NaxClient({ url: hub.wsUrl });
  const errors = [];
  client.on("error", (e) => errors.push(e));
  try {
    client.connect();
    await client.subscribe(["heartbeat"]);
    const names = ["status"];
    for (const pair of ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC"]) {
      for (const kind of ["book", "trades", "ticker", "depth1", "depth5", "depth10", "depth20", "depth50", "candles1m", "candles5m", "candles15m", "candles1h", "candles4h", "candles1d"]) {
        names.push(`${kind}.${pair}`);
      }
    }
    names.push("trades.BTC-USD@100ms", "book.ETH-USD@1000ms", "ticker.SOL-USD@100ms");
    assert.equal(names.length, 60);
    // One frame each, all sent in the same tick: the hub would refuse past its burst of 50.
    await Promise.all(names.map((name) => client.subscribe([name])));
    assert.deepEqual(errors, []);
    assert.equal(client.stats.checksumMismatches, 0);
  } finally {
    await client.close();
    await hub.stop();
  }
});

test("120 frames at once: the hub's bucket (50, 20/s) never runs dry, the sustained rate stays under 20/s, no rate_limited", { timeout: 30_000 }, async () => {
  const hub = await startHub();
  const sentAt = [];
  // Timestamps of what actually goes onto the socket, whatever the client's pacer thinks.
  class CountingWebSocket extends WebSocket {
    send(data) {
      sentAt.push(performance.now());
      super.send(data);
    }
  }
  const client = new NaxClient({ url: hub.wsUrl, WebSocket: CountingWebSocket, pingIntervalMs: 0, requestTimeoutMs: 20_000 });
  const errors = [];
  client.on("error", (e) => errors.push(e));
  try {
    client.connect();
    await waitUntil(() => client.state === "open", 10_000, "open");
    const names = [];
    for (const pair of ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC"]) {
      for (const kind of ["book", "trades", "ticker", "depth1", "depth5", "depth10", "depth20", "depth50", "candles1m", "candles5m", "candles15m", "candles1h", "candles4h", "candles1d", "book"]) {
        names.push(`${kind}.${pair}${names.includes(`${kind}.${pair}`) ? "@100ms" : ""}`);
      }
    }
    assert.equal(new Set(names).size, 60);
    // 60 subscribes and their 60 unsubscribes, all asked for in the same tick.
    const ops = names.map((name) => client.subscribe([name]));
    ops.push(...names.map((name) => client.unsubscribe([name])));
    const results = await Promise.allSettled(ops);
    assert.deepEqual(results.filter((r) => r.status === "rejected").map((r) => r.reason.code), []);
    assert.equal(sentAt.length, 120);
    // The hub's limiter replayed on the send times: a full bucket of 50 refilled at 20/s.
    let tokens = 50;
    for (let i = 0; i < sentAt.length; i++) {
      if (i) tokens = Math.min(50, tokens + ((sentAt[i] - sentAt[i - 1]) / 1000) * 20);
      tokens -= 1;
      assert.ok(tokens >= 0, `frame ${i}: the hub's bucket ran dry`);
    }
    // After the burst: never more than 20 frames in any 1 s window.
    const steady = sentAt.slice(50);
    for (const start of steady) {
      const inWindow = steady.filter((t) => t >= start && t < start + 1000).length;
      assert.ok(inWindow <= 20, `${inWindow} frames in one second`);
    }
    assert.ok(sentAt.at(-1) - sentAt[0] >= 4_000, `120 frames within ${sentAt.at(-1) - sentAt[0]} ms`);
    assert.deepEqual(errors, []);
  } finally {
    await client.close();
    await hub.stop();
  }
});
