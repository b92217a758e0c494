// Resync: a lost `update` (a gap in prev_seq) and a corrupted quantity (a
// checksum mismatch) on book.BTC-USD, injected by a WebSocket wrapper. The
// client counts the fault, subscribes the channel again, gets a fresh
// snapshot, and verifies every checksum afterwards.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { NaxClient, comparePrices } from "../src/index.js";
import { startHub } from "./support/hub.mjs";
import { faultyWebSocket } from "./support/faulty.mjs";
import { nextEvent, counter, waitUntil } from "./support/wait.mjs";

let hub;
before(async () => { hub = await startHub(); });
after(async () => { await hub?.stop(); });

/** Whether a frame is an `update` of book.BTC-USD (cheap test first). */
function isBtcUpdate(data) {
  return data.includes('"update"') && data.includes('"book.BTC-USD"');
}

/**
 * Runs a client through `fault`, waits for its resync and a fresh snapshot,
 * then for 100 more verified book messages; returns the client's stats.
 */
async function recoverFrom(makeFault, reason) {
  let client;
  const fault = makeFault(() => client);
  client = new NaxClient({ url: hub.wsUrl, WebSocket: faultyWebSocket(fault.onFrame) });
  const errors = [];
  client.on("error", (e) => errors.push(e));
  const broken = [];
  // No listener may ever see a book that fails its checksum.
  client.on("book", ({ book, channel }) => { if (channel === "book.BTC-USD") broken.push(book.checksum() !== fault.lastChecksum()); });
  try {
    const resync = nextEvent(client, "resync", () => true, 15_000, "resync");
    client.connect();
    await client.subscribe(["book.BTC-USD", "ticker.BTC-USD"]);
    const event = await resync;
    assert.deepEqual(event, { channel: "book.BTC-USD", reason });
    assert.ok(fault.done(), "the fault was injected");
    const snapshot = await nextEvent(client, "book", (e) => e.channel === "book.BTC-USD", 10_000, "fresh snapshot");
    assert.equal(snapshot.reason, "subscribe", "the first book after the resync is a fresh snapshot");
    const verified = client.stats.checksumsVerified;
    await waitUntil(() => client.stats.checksumsVerified > verified + 100, 15_000, "100 verified book messages after the resync");
    assert.deepEqual(broken.filter(Boolean), [], "a book was emitted whose checksum was not the hub's");
    assert.deepEqual(errors, []);
    return { ...client.stats };
  } finally {
    await client.close();
  }
}

test("a lost update is a gap: gaps 1, resyncs 1, fresh snapshot, checksums verify after", { timeout: 60_000 }, async (t) => {
  const stats = await recoverFrom(() => {
    let updates = 0;
    let dropped = false;
    let last = 0;
    return {
      onFrame(data) {
        if (isBtcUpdate(data) || data.includes('"snapshot"')) last = JSON.parse(data).checksum;
        if (isBtcUpdate(data) && ++updates === 20 && !dropped) {
          dropped = true;
          return null;
        }
        return data;
      },
      done: () => dropped,
      lastChecksum: () => last,
    };
  }, "gap");
  assert.equal(stats.gaps, 1, "gaps");
  assert.equal(stats.resyncs, 1, "resyncs");
  assert.equal(stats.checksumMismatches, 0, "checksum mismatches");
  t.diagnostic(`stats ${JSON.stringify(stats)}`);
});

test("a corrupted quantity is a checksum mismatch: mismatches 1, resyncs 1, recovers", { timeout: 60_000 }, async (t) => {
  const stats = await recoverFrom((getClient) => {
    let updates = 0;
    let corrupted = false;
    let last = 0;
    return {
      onFrame(data) {
        if (!isBtcUpdate(data) && !data.includes('"snapshot"')) return data;
        const msg = JSON.parse(data);
        if (!corrupted && msg.type === "update" && ++updates >= 20) {
          // Corrupt a bid within the client's top 10, so that the checksum covers it.
          const book = getClient().book("book.BTC-USD");
          const tenth = book.bids[Math.min(9, book.bids.length - 1)][0];
          const level = msg.bids.find(([price]) => comparePrices(price, tenth) >= 0);
          if (level) {
            level[1] = level[1] === "7.777777" ? "8.888888" : "7.777777";
            corrupted = true;
            last = -1; // the corrupted message's checksum no longer describes what the client would hold
            return JSON.stringify(msg);
          }
        }
        last = msg.checksum;
        return data;
      },
      done: () => corrupted,
      lastChecksum: () => last,
    };
  }, "checksum");
  assert.equal(stats.checksumMismatches, 1, "checksum mismatches");
  assert.equal(stats.resyncs, 1, "resyncs");
  assert.equal(stats.gaps, 0, "gaps");
  t.diagnostic(`stats ${JSON.stringify(stats)}`);
});
