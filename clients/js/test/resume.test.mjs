// Resume after the network drops every connection (a TCP proxy in front of
// a real hub is cut): the client reconnects by itself, resubscribes with
// `resume`, the hub recovers every channel, nothing is missed, the books
// still verify, and listeners registered before the drop still fire.

import { test } from "node:test";
import assert from "node:assert/strict";
import { NaxClient } from "../src/index.js";
import { hubBehindProxy } from "./support/fixture.mjs";
import { nextEvent, counter, waitUntil } from "./support/wait.mjs";

const CHANNELS = ["book.BTC-USD", "trades.BTC-USD", "ticker.BTC-USD", "candles1m.BTC-USD", "heartbeat"];
const env = hubBehindProxy();

test("a dropped connection is resumed: channels recovered, no gap, checksums verify, listeners kept", { timeout: 60_000 }, async (t) => {
  const client = new NaxClient({ url: `ws://127.0.0.1:${env.proxy.port}/ws`, initialBackoffMs: 100 });
  const errors = [];
  client.on("error", (e) => errors.push(e));
  const books = counter(client, "book", (e) => e.channel === "book.BTC-USD");
  const seen = new Set();
  for (const event of ["book", "trades", "ticker", "candles"]) client.on(event, (e) => seen.add(e.channel));
  const states = [];
  client.on("state", (e) => states.push(e.state));
  // The raw trades messages, checked below independently of the client's own chain check.
  const trades = [];
  client.on("message", (m) => { if (m.channel === "trades.BTC-USD") trades.push(m); });
  try {
    client.connect();
    await client.subscribe(CHANNELS);
    await waitUntil(() => seen.size === 4, 15_000, "a message on each of book, trades, ticker, candles");
    await waitUntil(() => books.count() > 50, 10_000, "50 book messages");

    const resumed = nextEvent(client, "resumed", () => true, 10_000, "resumed");
    const booksBefore = books.count();
    const verifiedBefore = client.stats.checksumsVerified;
    const fresh = counter(client, "book", (e) => e.reason !== null);
    env.proxy.dropAll();
    const { recovered, not_recovered } = await resumed;
    assert.deepEqual([...recovered].sort(), CHANNELS.filter((c) => c !== "heartbeat").sort(), "recovered");
    assert.deepEqual(not_recovered, []);
    assert.equal(client.state, "open");
    assert.ok(states.includes("reconnecting"), `states: ${states}`);

    // The listener registered before the drop keeps firing, and the books verify.
    await waitUntil(() => books.count() > booksBefore + 100, 15_000, "100 more book messages after the resume");
    assert.ok(client.stats.checksumsVerified > verifiedBefore + 100);
    assert.equal(fresh.count(), 0, "a snapshot after the resume: the book was not recovered");
    const tradesAtDrop = trades.length;
    await waitUntil(() => trades.length > tradesAtDrop + 3, 15_000, "3 trades messages after the resume");
    for (let i = 1; i < trades.length; i++) {
      assert.equal(trades[i].prev_seq, trades[i - 1].seq, `trades message ${i}: prev_seq chains on the previous seq`);
    }
    const ids = trades.flatMap((m) => m.trades.map((tr) => Number(/^T-(\d+)$/.exec(tr.id)?.[1])));
    ids.forEach((id, i) => { if (i) assert.equal(id, ids[i - 1] + 1, `trade ids consecutive: ${ids[i - 1]} then ${id}`); });
    const { stats } = client;
    assert.equal(stats.reconnects, 1, "reconnects");
    assert.equal(stats.recovered, 4, "stats.recovered");
    assert.equal(stats.notRecovered, 0, "stats.notRecovered");
    assert.equal(stats.gaps, 0, "gaps");
    assert.equal(stats.checksumMismatches, 0, "checksum mismatches");
    assert.equal(stats.resyncs, 0, "resyncs");
    assert.equal(env.proxy.connections, 1);
    assert.deepEqual(errors, []);
    t.diagnostic(`stats ${JSON.stringify(stats)}`);
  } finally {
    await client.close();
  }
});
