//! Server → client messages of docs/PROTOCOL.md, written straight into a byte
//! buffer: no intermediate structs, no `serde` on the hot path.
//!
//! A channel message is encoded **once** and the resulting [`Bytes`] is
//! shared (reference-counted) by every subscriber. Field order follows the
//! examples of docs/PROTOCOL.md. Every string we write is either a fixed key, a
//! channel name or epoch (ASCII we validated), or a decimal we format; so
//! nothing needs JSON escaping except free-text error messages, which go
//! through [`write_json_str`].

use super::message::ChannelMessage;
use super::names::MessageType;
use api::market_archive::{ArchivedTrade, TradeKey};
use bytes::Bytes;
use orderbook::candle::Candle;
use orderbook::{BookDelta, L2Book, MarketSpec, Price, Qty, Side};
use std::ops::Range;

mod candles;
mod rest;
mod ticker;

pub use ticker::Ticker;

/// The fields every channel message starts with.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub channel: &'a str,
    pub epoch: &'a str,
    pub seq: u64,
    pub prev_seq: u64,
    /// Hub ingest time of the causing event, µs since the Unix epoch.
    pub ts: u64,
}

/// A reusable encoder: one buffer, grown to the largest message seen.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
    /// Where the last message's `prev_seq` value is.
    prev_seq_at: Range<usize>,
}

impl Encoder {
    pub fn new() -> Self {
        Encoder {
            buf: Vec::with_capacity(4096),
            prev_seq_at: 0..0,
        }
    }

    /// The channel message this encoder wrote last (`text`, as one of the
    /// methods below returned it), ready for the fan-out
    /// ([`ChannelMessage`]).
    pub fn channel_message(&self, text: Bytes) -> ChannelMessage {
        ChannelMessage::new(text, self.prev_seq_at.clone())
    }

    // The building blocks below are `pub(crate)` so that a topic kind with
    // a message of its own (`protocol/kinds/`) writes it in its own file:
    // `start`, then fields, then `checksum_end` or `end`.

    /// The buffer, for a message's own fields (written as valid JSON).
    pub(crate) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Copies the message out as shared bytes and resets the buffer.
    pub(crate) fn finish(&mut self) -> Bytes {
        let out = Bytes::copy_from_slice(&self.buf);
        self.buf.clear();
        out
    }

    /// Starts a channel message: `type` and the header up to `prev_seq`.
    pub(crate) fn start(&mut self, kind: MessageType, h: &Header) {
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(b"{\"type\":\"");
        b.extend_from_slice(kind.as_str().as_bytes());
        b.extend_from_slice(b"\",\"channel\":\"");
        b.extend_from_slice(h.channel.as_bytes());
        b.extend_from_slice(b"\",\"epoch\":\"");
        b.extend_from_slice(h.epoch.as_bytes());
        b.extend_from_slice(b"\",\"seq\":");
        write_u64(b, h.seq);
        b.extend_from_slice(b",\"prev_seq\":");
        let at = b.len();
        write_u64(b, h.prev_seq);
        self.prev_seq_at = at..b.len();
    }

    /// `reason`, when given.
    pub(crate) fn reason(&mut self, reason: Option<&str>) {
        if let Some(r) = reason {
            self.buf.extend_from_slice(b",\"reason\":\"");
            self.buf.extend_from_slice(r.as_bytes());
            self.buf.push(b'"');
        }
    }

    /// `ts`.
    pub(crate) fn ts(&mut self, ts: u64) {
        self.buf.extend_from_slice(b",\"ts\":");
        write_u64(&mut self.buf, ts);
    }

    /// `key`: `[[price, qty], ...]` in the pair's scales.
    pub(crate) fn levels(
        &mut self,
        key: &str,
        spec: &MarketSpec,
        levels: impl Iterator<Item = (Price, Qty)>,
    ) {
        let b = &mut self.buf;
        b.extend_from_slice(b",\"");
        b.extend_from_slice(key.as_bytes());
        b.extend_from_slice(b"\":[");
        let mut first = true;
        for (p, q) in levels {
            if !first {
                b.push(b',');
            }
            first = false;
            b.extend_from_slice(b"[\"");
            spec.write_price(b, p);
            b.extend_from_slice(b"\",\"");
            spec.write_qty(b, q);
            b.extend_from_slice(b"\"]");
        }
        b.push(b']');
    }

    /// `checksum`, and the end of the message.
    pub(crate) fn checksum_end(&mut self, checksum: u32) -> Bytes {
        self.buf.extend_from_slice(b",\"checksum\":");
        write_u64(&mut self.buf, u64::from(checksum));
        self.buf.push(b'}');
        self.finish()
    }

    /// `update`: the changed levels (absolute quantities) and the checksum
    /// of the book after them.
    pub fn book_update(
        &mut self,
        spec: &MarketSpec,
        h: &Header,
        deltas: &[BookDelta],
        checksum: u32,
    ) -> Bytes {
        self.start(MessageType::Update, h);
        self.ts(h.ts);
        let side = |s: Side| {
            deltas
                .iter()
                .filter(move |d| d.side == s)
                .map(|d| (d.price, d.qty))
        };
        self.levels("bids", spec, side(Side::Buy));
        self.levels("asks", spec, side(Side::Sell));
        self.checksum_end(checksum)
    }

    /// `snapshot` of the top `depth` levels (all with `usize::MAX`).
    pub fn book_snapshot(
        &mut self,
        spec: &MarketSpec,
        h: &Header,
        reason: &str,
        book: &L2Book,
        depth: usize,
    ) -> Bytes {
        self.start(MessageType::Snapshot, h);
        self.reason(Some(reason));
        self.ts(h.ts);
        self.book_levels(spec, book, depth);
        self.checksum_end(book.checksum())
    }

    /// `depth`: the top `n` levels each side and their checksum (the top
    /// `min(n, 10)` levels: what the client holds).
    pub fn depth(
        &mut self,
        spec: &MarketSpec,
        h: &Header,
        book: &L2Book,
        n: usize,
        checksum: u32,
        reason: Option<&str>,
    ) -> Bytes {
        self.start(MessageType::Depth, h);
        self.reason(reason);
        self.ts(h.ts);
        self.book_levels(spec, book, n);
        self.checksum_end(checksum)
    }

    /// `bids` and `asks`: the top `depth` levels of `book`.
    pub(crate) fn book_levels(&mut self, spec: &MarketSpec, book: &L2Book, depth: usize) {
        let pairs = |side| book.top_n(side, depth).map(|l| (l.price, l.qty));
        self.levels("bids", spec, pairs(Side::Buy));
        self.levels("asks", spec, pairs(Side::Sell));
    }

    /// `trades`: one batch of executions.
    pub fn trades(
        &mut self,
        spec: &MarketSpec,
        h: &Header,
        trades: &[feeds::PublicTrade],
    ) -> Bytes {
        self.start(MessageType::Trades, h);
        self.ts(h.ts);
        let b = &mut self.buf;
        b.extend_from_slice(b",\"trades\":[");
        for (i, t) in trades.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            trade_fields(b, spec, t);
            b.push(b'}');
        }
        b.extend_from_slice(b"]}");
        self.finish()
    }

    /// The end of the message (`}`).
    pub(crate) fn end(&mut self) -> Bytes {
        self.buf.push(b'}');
        self.finish()
    }
}

/// A trade object of `trades.PAIR` without its closing `}` (the REST
/// history adds `seq` and `epoch`).
fn trade_fields(b: &mut Vec<u8>, spec: &MarketSpec, t: &feeds::PublicTrade) {
    b.extend_from_slice(b"{\"id\":\"T-");
    write_u64(b, t.trade_id);
    b.extend_from_slice(b"\",\"price\":\"");
    spec.write_price(b, t.price);
    b.extend_from_slice(b"\",\"qty\":\"");
    spec.write_qty(b, t.qty);
    b.extend_from_slice(b"\",\"side\":\"");
    b.extend_from_slice(t.side.as_str().as_bytes());
    b.extend_from_slice(b"\",\"venue_ts\":");
    write_u64(b, t.venue_ts);
}

/// Appends an unsigned fixed-point value written with exactly `scale`
/// decimals (`150` at scale 2 is `"1.50"`; wider than `u64` for quote
/// volumes).
pub fn write_scaled_u128(out: &mut Vec<u8>, raw: u128, scale: u8) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(raw).as_bytes();
    let scale = usize::from(scale);
    if digits.len() <= scale {
        out.push(b'0');
        if scale > 0 {
            out.push(b'.');
            out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
            out.extend_from_slice(digits);
        }
        return;
    }
    let int = digits.len() - scale;
    out.extend_from_slice(&digits[..int]);
    if scale > 0 {
        out.push(b'.');
        out.extend_from_slice(&digits[int..]);
    }
}

/// Appends a `u64` in decimal.
#[inline]
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends `s` as a JSON string literal, escaping as RFC 8259 requires.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn spec() -> MarketSpec {
        MarketSpec::new("BTC-USD", 2, 8, Qty(1)).unwrap()
    }

    fn header(seq: u64) -> Header<'static> {
        Header {
            channel: "book.BTC-USD",
            epoch: "9f2c",
            seq,
            prev_seq: seq - 1,
            ts: 1_763_940_000_124_001,
        }
    }

    fn parse(b: &Bytes) -> Value {
        serde_json::from_slice(b).expect("encoder writes valid JSON")
    }

    #[test]
    fn update_matches_the_protocol_example() {
        let deltas = [BookDelta {
            side: Side::Buy,
            price: Price(6_400_010),
            qty: Qty(0),
        }];
        let msg = Encoder::new().book_update(&spec(), &header(1043), &deltas, 1_183_529_100);
        assert_eq!(
            parse(&msg),
            json!({"type":"update","channel":"book.BTC-USD","epoch":"9f2c","seq":1043,"prev_seq":1042,
                   "ts":1_763_940_000_124_001_u64,"bids":[["64000.10","0.00000000"]],"asks":[],"checksum":1_183_529_100})
        );
    }

    #[test]
    fn snapshot_lists_levels_best_first_with_the_book_checksum() {
        let mut book = L2Book::new();
        book.apply_snapshot(
            &[
                (Price(6_400_010), Qty(150_000_000)),
                (Price(6_400_000), Qty(1)),
            ],
            &[
                (Price(6_400_030), Qty(2)),
                (Price(6_400_020), Qty(25_000_000)),
            ],
        )
        .unwrap();
        let msg =
            Encoder::new().book_snapshot(&spec(), &header(1042), "subscribe", &book, usize::MAX);
        let v = parse(&msg);
        assert_eq!(v["type"], "snapshot");
        assert_eq!(v["reason"], "subscribe");
        assert_eq!(
            v["bids"],
            json!([["64000.10", "1.50000000"], ["64000.00", "0.00000001"]])
        );
        assert_eq!(
            v["asks"],
            json!([["64000.20", "0.25000000"], ["64000.30", "0.00000002"]])
        );
        assert_eq!(v["checksum"], json!(book.checksum()));
        let top1 = Encoder::new().depth(&spec(), &header(1042), &book, 1, 7, Some("slow_consumer"));
        assert_eq!(parse(&top1)["bids"], json!([["64000.10", "1.50000000"]]));
        assert_eq!(parse(&top1)["reason"], "slow_consumer");
    }

    #[test]
    fn trades_and_ticker_use_decimal_strings() {
        let t = feeds::PublicTrade {
            trade_id: 77,
            price: Price(6_400_020),
            qty: Qty(1_000_000),
            side: Side::Buy,
            venue_ts: 5,
        };
        let v = parse(&Encoder::new().trades(&spec(), &header(77), &[t]));
        assert_eq!(
            v["trades"],
            json!([{"id":"T-77","price":"64000.20","qty":"0.01000000","side":"buy","venue_ts":5}])
        );
        let ticker = Ticker {
            bid: Some(Price(6_400_010)),
            last: Some(Price(6_400_020)),
            volume_24h: Qty(123_456_000_000),
            ..Ticker::default()
        };
        let v = parse(&Encoder::new().ticker(&spec(), &header(12), &ticker, None));
        assert_eq!(v["bid"], "64000.10");
        assert_eq!(v["ask"], Value::Null);
        assert_eq!(v["last"], "64000.20");
        assert_eq!(v["volume_24h"], "1234.56000000");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = Vec::new();
        write_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }
}
