// Restores against a real hub: a subscribe the hub refuses, made while the
// connection is down, does not take the remembered channels with it; a
// restarted hub (same port, new epoch) answers the resume with
// `not_recovered` and every channel comes back from fresh state, the books
// verifying.

import { test } from "node:test";
import assert from "node:assert/strict";
import { NaxClient } from "../src/index.js";
import { startHub } from "./support/hub.mjs";
import { startProxy } from "./support/proxy.mjs";
import { nextEvent, counter, waitUntil } from "./support/wait.mjs";

test("a subscribe refused while reconnecting is rejected alone; the remembered channels are resumed and live", { timeout: 60_000 }, async () => {
  const hub = await startHub();
  const proxy = await startProxy(hub.port);
  const client = new NaxClient({ url: `ws://127.0.0.1:${proxy.port}/ws`, initialBackoffMs: 300, random: () => 1 });
  const errors = [];
  client.on("error", (e) => errors.push(e.code));
  try {
    client.connect();
    await client.subscribe(["ticker.BTC-USD", "book.BTC-USD"]);
    await waitUntil(() => client.book("book.BTC-USD"), 10_000, "the book");
    const resumed = nextEvent(client, "resumed", () => true, 10_000, "resumed");
    proxy.dropAll();
    await waitUntil(() => client.state !== "open", 2_000, "the drop seen");
    const refused = client.subscribe(["ticker.FOO-BAR"]);
    await assert.rejects(refused, (e) => e.code === "unknown_channel");
    const { recovered } = await resumed;
    assert.deepEqual([...recovered].sort(), ["book.BTC-USD", "ticker.BTC-USD"]);
    const books = counter(client, "book");
    await waitUntil(() => books.count() >= 20, 10_000, "20 book events after the restore");
    books.off();
    assert.deepEqual(errors, [], "the refusal answered the call, not the restore");
    assert.equal(client.stats.gaps + client.stats.checksumMismatches, 0);
  } finally {
    await client.close();
    await proxy.close();
    await hub.stop();
  }
});

const CHANNELS = ["book.BTC-USD", "book.ETH-USD@100ms", "depth5.ETH-USD", "trades.BTC-USD", "ticker.BTC-USD", "candles1m.BTC-USD", "status"];

test("a hub restarted on the same port (new epoch): the resume is not_recovered, every book from a fresh snapshot, checksums verify", { timeout: 90_000 }, async () => {
  let hub = await startHub();
  const port = hub.port;
  const client = new NaxClient({ url: hub.wsUrl, initialBackoffMs: 100, maxBackoffMs: 400 });
  const errors = [];
  client.on("error", (e) => errors.push(e.code));
  const epochs = new Map();
  client.on("message", (m) => { if (m.channel) epochs.set(m.channel, m.epoch); });
  try {
    client.connect();
    await client.subscribe(CHANNELS);
    await waitUntil(() => ["book.BTC-USD", "book.ETH-USD@100ms", "depth5.ETH-USD"].every((c) => client.book(c)), 15_000, "three books");
    // A channel without a message has no position to resume (it is subscribed afresh, listed in neither list).
    await waitUntil(() => CHANNELS.every((c) => epochs.has(c)), 15_000, "a message on every channel");
    const before = new Map(epochs);
    const resumed = nextEvent(client, "resumed", () => true, 30_000, "resumed after the restart");
    const fresh = new Set();
    client.on("book", (e) => { if (e.reason === "subscribe" || e.channel.startsWith("depth")) fresh.add(e.channel); });
    await hub.stop();
    hub = await startHub({ port });
    const { recovered, not_recovered } = await resumed;
    assert.deepEqual(recovered, []);
    assert.deepEqual([...not_recovered].sort(), [...CHANNELS].sort());
    const verified = client.stats.checksumsVerified;
    await waitUntil(() => fresh.size === 3, 15_000, "a fresh state of every book");
    await waitUntil(() => client.stats.checksumsVerified > verified + 30, 15_000, "30 more verified checksums");
    for (const channel of ["book.BTC-USD", "ticker.BTC-USD", "status"]) {
      assert.notEqual(epochs.get(channel), before.get(channel), `${channel}: a new epoch`);
    }
    assert.equal(client.stats.checksumMismatches, 0);
    assert.equal(client.stats.gaps, 0);
    assert.equal(client.stats.notRecovered, CHANNELS.length);
    assert.deepEqual(errors, []);
  } finally {
    await client.close();
    await hub.stop();
  }
});
