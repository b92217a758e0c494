// A busy stream for 20 s against a real sandbox hub: book.BTC-USD,
// depth10.ETH-USD, trades, ticker and candles1m of BTC-USD. Every channel
// chains on prev_seq (no gap), every book message's checksum verifies, and
// the kept book equals the hub's REST book at the same seq.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { NaxClient } from "../src/index.js";
import { startHub } from "./support/hub.mjs";
import { nextEvent, counter, waitUntil } from "./support/wait.mjs";

const RUN_MS = 20_000;
let hub;
before(async () => { hub = await startHub(); });
after(async () => { await hub?.stop(); });

test("20 s of a busy book: chains hold, every checksum verifies, the kept book is the hub's", { timeout: 60_000 }, async (t) => {
  const client = new NaxClient({ url: hub.wsUrl });
  const errors = [];
  client.on("error", (e) => errors.push(e));
  const resyncs = counter(client, "resync");
  // The kept book of book.BTC-USD after each message, by seq (the last 2,000).
  const kept = new Map();
  client.on("book", ({ channel, book }) => {
    if (channel !== "book.BTC-USD") return;
    kept.set(book.seq, JSON.stringify({ bids: book.bids, asks: book.asks }));
    if (kept.size > 2000) kept.delete(kept.keys().next().value);
  });
  const trades = counter(client, "trades");
  const tickers = counter(client, "ticker");
  const candles = counter(client, "candles");
  const depth = counter(client, "book", (e) => e.channel === "depth10.ETH-USD");
  try {
    const snapshot = nextEvent(client, "book", (e) => e.channel === "book.BTC-USD", 10_000, "BTC-USD snapshot");
    client.connect();
    await client.subscribe(["book.BTC-USD", "depth10.ETH-USD", "trades.BTC-USD", "ticker.BTC-USD", "candles1m.BTC-USD"]);
    assert.equal((await snapshot).reason, "subscribe");
    await new Promise((ok) => setTimeout(ok, RUN_MS));

    // Line the kept book up with the REST book: fetch it, then wait until the
    // client has passed that seq, and compare what it kept at that seq.
    let compared = 0;
    for (let i = 0; i < 5; i++) {
      const rest = await (await fetch(`${hub.base}/markets/BTC-USD/orderbook?depth=1000`)).json();
      await waitUntil(() => client.book("book.BTC-USD").seq >= rest.seq, 5_000, `client book at seq ${rest.seq}`, 10);
      const ours = kept.get(rest.seq);
      assert.ok(ours, `the client saw no message with seq ${rest.seq}`);
      assert.equal(client.book("book.BTC-USD").epoch, rest.epoch);
      assert.deepEqual(JSON.parse(ours), { bids: rest.bids, asks: rest.asks }, `book at seq ${rest.seq}`);
      compared++;
    }
    assert.equal(compared, 5);

    const { stats } = client;
    assert.equal(stats.gaps, 0, "gaps");
    assert.equal(stats.checksumMismatches, 0, "checksum mismatches");
    assert.equal(stats.resyncs, 0, "resyncs");
    assert.equal(resyncs.count(), 0);
    assert.ok(stats.checksumsVerified > 1000, `checksums verified: ${stats.checksumsVerified}`);
    assert.ok(depth.count() > 100, `depth10.ETH-USD messages: ${depth.count()}`);
    assert.ok(trades.count() > 20, `trades messages: ${trades.count()}`);
    assert.ok(tickers.count() > 20, `ticker messages: ${tickers.count()}`);
    assert.ok(candles.count() > 5, `candles messages: ${candles.count()}`);
    assert.ok(client.candles("candles1m.BTC-USD").length >= 1);
    assert.deepEqual(errors, []);
    t.diagnostic(`stats ${JSON.stringify(stats)}`);
  } finally {
    await client.close();
  }
});
