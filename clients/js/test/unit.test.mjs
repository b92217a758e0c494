// Unit tests: CRC-32 and the book checksum (known vectors, the worked
// examples of orderbook/src/checksum.rs and docs/PROTOCOL.md, and the
// checksum a real hub serves over REST), OrderBook ordering and deletes,
// channel-name parsing.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { crc32, bookChecksum, OrderBook, comparePrices, parseChannel } from "../src/index.js";
import { ChannelState } from "../src/channels.js";
import { startHub } from "./support/hub.mjs";

test("crc32 known vectors", () => {
  assert.equal(crc32(""), 0);
  assert.equal(crc32("123456789"), 0xcbf43926);
  assert.equal(crc32("The quick brown fox jumps over the lazy dog"), 0x414fa339);
});

test("bookChecksum: worked examples of orderbook/src/checksum.rs", () => {
  // empty_book_is_crc_of_nothing
  assert.equal(bookChecksum([], []), 0);
  // matches_a_hand_computed_value: bid 64000.10 x 1.50000000, ask 64000.20 x 0.25000000
  assert.equal(
    bookChecksum([["64000.10", "1.50000000"]], [["64000.20", "0.25000000"]]),
    crc32("640002025000000" + "6400010150000000"),
  );
  // shallow_checksum_covers_only_the_top_levels: bids 20..1 qty p, asks 101..120 qty p (scale 0)
  const bids = [];
  const asks = [];
  for (let p = 20; p >= 1; p--) bids.push([String(p), String(p)]);
  for (let p = 1; p <= 20; p++) asks.push([String(100 + p), String(p)]);
  assert.equal(bookChecksum(bids, asks, 1), crc32("10112020"));
  assert.equal(bookChecksum(bids, asks, 50), bookChecksum(bids, asks));
  const book = new OrderBook(1);
  book.replace(bids, asks);
  assert.equal(book.checksum(), crc32("10112020"));
});

test("bookChecksum: the examples of docs/PROTOCOL.md", () => {
  // snapshot, then the update deleting 64000.10, then depth1 of the same book
  assert.equal(bookChecksum([["64000.10", "1.500000"], ["63999.90", "0.250000"]], [["64000.20", "0.250000"]]), 923035520);
  assert.equal(bookChecksum([["63999.90", "0.250000"]], [["64000.20", "0.250000"]]), 6450058);
  const book = new OrderBook();
  book.replace([["64000.10", "1.500000"], ["63999.90", "0.250000"]], [["64000.20", "0.250000"]]);
  assert.equal(book.checksum(), 923035520);
  book.apply([["64000.10", "0.000000"]], []);
  assert.equal(book.checksum(), 6450058);
});

test("comparePrices is exact: integer length first, then the digits", () => {
  assert.ok(comparePrices("999.99", "1000.00") < 0);
  assert.ok(comparePrices("1000.00", "999.99") > 0);
  assert.ok(comparePrices("0.10", "0.09") > 0);
  assert.equal(comparePrices("64000.10", "64000.10"), 0);
  // beyond float precision: 2^53 + 1 vs 2^53
  assert.ok(comparePrices("9007199254740993.00", "9007199254740992.00") > 0);
});

test("OrderBook keeps both sides sorted best first, updates and deletes exactly", () => {
  const book = new OrderBook();
  book.replace([["99.50", "1.0"], ["100.00", "2.0"], ["9.99", "3.0"]], [["101.00", "1.0"], ["100.50", "2.0"], ["1000.00", "3.0"]]);
  assert.deepEqual(book.bids.map((l) => l[0]), ["100.00", "99.50", "9.99"]);
  assert.deepEqual(book.asks.map((l) => l[0]), ["100.50", "101.00", "1000.00"]);
  book.apply([["99.75", "5.0"], ["100.00", "0.0"], ["9.99", "4.0"]], [["100.50", "0.0"], ["100.25", "1.5"], ["555.00", "0.0"]]);
  assert.deepEqual(book.bids, [["99.75", "5.0"], ["99.50", "1.0"], ["9.99", "4.0"]]);
  assert.deepEqual(book.asks, [["100.25", "1.5"], ["101.00", "1.0"], ["1000.00", "3.0"]]);
  assert.deepEqual(book.top(1), { bids: [["99.75", "5.0"]], asks: [["100.25", "1.5"]] });
  book.replace([], []);
  assert.equal(book.bids.length + book.asks.length, 0);
  assert.equal(book.checksum(), 0);
});

test("parseChannel knows the protocol's channel names", () => {
  assert.deepEqual(parseChannel("depth10.ETH-USD@100ms"), {
    name: "depth10.ETH-USD@100ms", kind: "depth", pair: "ETH-USD", depth: 10, interval: null, private: false,
  });
  assert.equal(parseChannel("candles4h.BTC-USD").interval, "4h");
  assert.equal(parseChannel("orders").private, true);
  assert.equal(parseChannel("book.btc-usd"), null);
  assert.equal(parseChannel("depth7.BTC-USD"), null);
});

test("chain rules: prev_seq continues, a gap, a new epoch, heartbeat across epochs, fresh and resume modes", () => {
  const msg = (type, epoch, seq, prev_seq) => ({ type, epoch, seq, prev_seq });
  const book = new ChannelState(parseChannel("book.BTC-USD"));
  assert.equal(book.check(msg("update", "e1", 5, 4)), "stale", "fresh: only a first message");
  assert.equal(book.check(msg("update", "e1", 5, 0)), "stale", "fresh book: only a snapshot");
  assert.equal(book.check(msg("snapshot", "e1", 5, 0)), "ok");
  book.advance(msg("snapshot", "e1", 5, 0));
  assert.equal(book.check(msg("update", "e1", 6, 5)), "ok");
  assert.equal(book.check(msg("update", "e1", 7, 6)), "gap");
  assert.equal(book.check(msg("snapshot", "e2", 1, 0)), "ok", "a new epoch starts at prev_seq 0");
  assert.equal(book.check(msg("update", "e1", 6, 0)), "gap", "prev_seq 0 in the same epoch");
  book.mode = "resume";
  assert.equal(book.check(msg("update", "e1", 6, 5)), "ok", "resume: the replay chains");
  assert.equal(book.check(msg("snapshot", "e1", 9, 0)), "ok", "resume: or starts fresh (not recovered)");
  assert.equal(book.check(msg("update", "e1", 9, 8)), "gap");

  book.advance(msg("update", "e1", 9, 8));
  book.mode = "fresh"; // a resync in flight: the old stream may go on until the fresh snapshot
  book.book.synced = true;
  assert.equal(book.check(msg("update", "e1", 10, 9)), "chained", "fresh: a message chaining on a good seq is not stale");
  book.book.synced = false;
  assert.equal(book.check(msg("update", "e1", 10, 9)), "stale", "fresh: nothing chains on a book that failed");
  assert.equal(book.check(msg("snapshot", "e1", 12, 0)), "ok");

  const heartbeat = new ChannelState(parseChannel("heartbeat"));
  heartbeat.advance(msg("heartbeat", "e1", 3, 2));
  assert.equal(heartbeat.check(msg("heartbeat", "e2", 4, 3)), "ok", "heartbeat keeps its numbering in a new epoch");

  const candles = new ChannelState(parseChannel("candles1m.BTC-USD"));
  assert.equal(candles.check(msg("candles", "e1", 100, 0)), "ok");
  candles.advance(msg("candles", "e1", 100, 0));
  assert.equal(candles.check(msg("candle", "e2", 3, 0)), "ok", "candles continue in a new epoch from a candle message");
});

test("candles: state replaces, updates replace the last or append, a closed candle opens the flat next one", () => {
  const st = new ChannelState(parseChannel("candles1m.BTC-USD"));
  const c = (start, close, closed = false) => ({ start, open: "1.00", high: close, low: "1.00", close, volume: "0.500000", quote_volume: "0.50000000", trades: 1, closed });
  st.applyCandles({ type: "candles", candles: [c(0, "1.00", true), c(60e6, "2.00")] });
  st.applyCandles({ type: "candle", candle: c(60e6, "3.00") });
  assert.deepEqual(st.candles.map((k) => [k.start, k.close]), [[0, "1.00"], [60e6, "3.00"]]);
  st.applyCandles({ type: "candle", candle: c(60e6, "4.00", true) });
  assert.deepEqual(st.candles[2], {
    start: 120e6, open: "4.00", high: "4.00", low: "4.00", close: "4.00", volume: "0.000000", quote_volume: "0.00000000", trades: 0, closed: false,
  });
  st.applyCandles({ type: "candle", candle: c(120e6, "5.00") });
  assert.equal(st.candles.length, 3);
  assert.equal(st.candles[2].close, "5.00");
  for (let i = 3; i < 1100; i++) st.applyCandles({ type: "candle", candle: c(i * 60e6, "5.00") });
  assert.equal(st.candles.length, 1000, "at most 1,000 kept");
  assert.equal(st.candles[999].start, 1099 * 60e6);
});

let hub;
before(async () => { hub = await startHub(); });
after(async () => { await hub?.stop(); });

test("bookChecksum equals the checksum the hub serves with GET /markets/{pair}/orderbook", { timeout: 30_000 }, async () => {
  for (const pair of ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC"]) {
    for (const depth of [10, 1000]) {
      const answer = await (await fetch(`${hub.base}/markets/${pair}/orderbook?depth=${depth}`)).json();
      assert.ok(answer.bids.length > 0 && answer.asks.length > 0, `${pair}: the sandbox book is empty`);
      assert.equal(bookChecksum(answer.bids, answer.asks), answer.checksum, `${pair} depth=${depth} seq ${answer.seq}`);
      const book = new OrderBook();
      book.replace([...answer.bids].reverse(), [...answer.asks].reverse());
      assert.equal(book.checksum(), answer.checksum, `${pair}: OrderBook sorts the reversed levels back`);
    }
  }
});
