//! docs/PROTOCOL.md, checked from the outside: a real hub (sandbox venue) on
//! 127.0.0.1 and real WebSocket/HTTP clients. One test per rule; every test
//! is bounded in time.

use crate::common;

use common::{close_code, connect, http_get, recv, recv_type, send, start_hub, Ws};
use futures_util::{SinkExt, StreamExt};
use hub::app::RunningHub;
use orderbook::{BookDelta, L2Book, MarketSpec, Price, Qty, Side};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const PAIR: &str = "BTC-USD";
const BOOK: &str = "book.BTC-USD";
const TRADES: &str = "trades.BTC-USD";
const TICKER: &str = "ticker.BTC-USD";
const DEPTH10: &str = "depth10.BTC-USD";

// ---- helpers -------------------------------------------------------------

/// Runs a test body with an overall deadline.
async fn bounded<F: Future<Output = ()>>(secs: u64, body: F) {
    timeout(Duration::from_secs(secs), body)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {secs} s"));
}

async fn http_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, body) = http_get(addr, path).await;
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, v)
}

/// The pair's spec as `GET /markets` lists it.
async fn market_spec(addr: SocketAddr, pair: &str) -> MarketSpec {
    let (status, markets) = http_json(addr, "/markets").await;
    assert_eq!(status, 200, "{markets}");
    let m = markets
        .as_array()
        .expect("markets list")
        .iter()
        .find(|m| m["pair"] == pair)
        .unwrap_or_else(|| panic!("{pair} listed in {markets}"));
    let scale = |k: &str| m[k].as_u64().unwrap_or_else(|| panic!("{k} in {m}")) as u8;
    MarketSpec::new(pair, scale("price_scale"), scale("qty_scale"), Qty(1)).expect("valid spec")
}

/// CRC-32 (IEEE, reflected, polynomial 0xEDB88320), bit by bit: the
/// reference the hub's checksums are compared with.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// docs/PROTOCOL.md's checksum, word for word, on wire strings: the top 10 asks
/// (lowest first) then the top 10 bids (highest first), price then quantity,
/// each without `.` and leading zeros.
fn reference_checksum(bids: &[(String, String)], asks: &[(String, String)]) -> u32 {
    let strip = |s: &str| s.replace('.', "").trim_start_matches('0').to_string();
    let mut text = String::new();
    for side in [asks, bids] {
        for (p, q) in side.iter().take(10) {
            text += &strip(p);
            text += &strip(q);
        }
    }
    crc32(text.as_bytes())
}

/// A decimal string with exactly `scale` decimals, no sign, no exponent.
fn assert_scaled(s: &str, scale: u8, what: &str) {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    assert!(
        !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()),
        "{what}: {s:?} is not a plain decimal"
    );
    assert!(
        frac.len() == usize::from(scale) && frac.bytes().all(|b| b.is_ascii_digit()),
        "{what}: {s:?} does not have exactly {scale} decimals"
    );
    if scale == 0 {
        assert!(!s.contains('.'), "{what}: {s:?}");
    }
}

/// Wire levels `[[price, qty], ...]`, checked for the pair's scales.
fn wire_levels(spec: &MarketSpec, v: &Value, what: &str) -> Vec<(String, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what}: levels not an array: {v}"))
        .iter()
        .map(|l| {
            let (p, q) = (l[0].as_str(), l[1].as_str());
            let (Some(p), Some(q)) = (p, q) else {
                panic!("{what}: level {l} is not two strings")
            };
            assert_eq!(l.as_array().unwrap().len(), 2, "{what}: level {l}");
            assert_scaled(p, spec.price_scale, what);
            assert_scaled(q, spec.qty_scale, what);
            (p.to_string(), q.to_string())
        })
        .collect()
}

fn parse_levels(spec: &MarketSpec, levels: &[(String, String)]) -> Vec<(Price, Qty)> {
    levels
        .iter()
        .map(|(p, q)| (spec.parse_price(p).unwrap(), spec.parse_qty(q).unwrap()))
        .collect()
}

/// Bids strictly descending, asks strictly ascending, no zero quantity.
fn assert_sorted(spec: &MarketSpec, bids: &[(Price, Qty)], asks: &[(Price, Qty)], what: &str) {
    assert!(
        bids.windows(2).all(|w| w[0].0 > w[1].0),
        "{what}: bids not best first: {bids:?}"
    );
    assert!(
        asks.windows(2).all(|w| w[0].0 < w[1].0),
        "{what}: asks not best first: {asks:?}"
    );
    assert!(
        bids.iter().chain(asks).all(|(_, q)| !q.is_zero()),
        "{what}: zero quantity in a snapshot ({})",
        spec.symbol
    );
}

fn book_side(spec: &MarketSpec, book: &L2Book, side: Side, n: usize) -> Vec<(String, String)> {
    book.top_n(side, n)
        .map(|l| (spec.format_price(l.price), spec.format_qty(l.qty)))
        .collect()
}

fn assert_ts(v: &Value) {
    let ts = v["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("ts is not an integer: {v}"));
    // Microseconds since the Unix epoch: 2020-09 .. 2096.
    assert!(
        (1_600_000_000_000_000..4_000_000_000_000_000).contains(&ts),
        "ts {ts} is not in microseconds: {v}"
    );
}

/// Sends `subscribe` and returns the `subscribed` reply, which must be the
/// next frame on the connection.
async fn subscribe(ws: &mut Ws, id: i64, channels: &[&str]) -> Value {
    send(
        ws,
        json!({"op": "subscribe", "id": id, "channels": channels}),
    )
    .await;
    let reply = recv(ws).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    assert_eq!(reply["id"], id, "{reply}");
    reply
}

/// The next message of `channel` (other frames are skipped).
async fn next_on(ws: &mut Ws, channel: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["channel"] == channel {
            return v;
        }
    }
}

/// Every text frame that arrives within `dur`.
async fn collect_for(ws: &mut Ws, dur: Duration) -> Vec<Value> {
    let deadline = Instant::now() + dur;
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return out,
            Ok(Some(Ok(Message::Text(t)))) => {
                out.push(serde_json::from_str(&t).expect("hub sends JSON"))
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(other) => panic!("unexpected frame or end: {other:?}"),
        }
    }
}

/// Expects an `error` frame with `code` and `id` (null when `None`).
async fn expect_error(ws: &mut Ws, code: &str, id: Option<i64>) -> Value {
    let v = recv(ws).await;
    assert_eq!(v["type"], "error", "expected {code}: {v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["id"], id.map_or(Value::Null, Value::from), "{v}");
    assert!(v["message"].is_string(), "error without a message: {v}");
    v
}

/// `ping` → `pong`: the connection is open and answering.
async fn assert_alive(ws: &mut Ws, id: i64) {
    send(ws, json!({"op": "ping", "id": id})).await;
    let v = recv_type(ws, "pong").await;
    assert_eq!(v["id"], id, "{v}");
}

/// Closes clients, then stops the hub (bounded).
async fn finish(hub: RunningHub, clients: Vec<Ws>) {
    for mut ws in clients {
        let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
    }
    timeout(Duration::from_secs(10), hub.stop())
        .await
        .expect("hub stops");
}

// ---- a client's copy of a book channel -------------------------------------

/// A client's book rebuilt from `snapshot` + `update`s; every message is
/// checked against docs/PROTOCOL.md "Books and the checksum" (panics on a violation).
struct BookClient {
    spec: MarketSpec,
    channel: String,
    raw: bool,
    book: L2Book,
    epoch: Option<String>,
    last_seq: u64,
    snapshots: usize,
    updates: usize,
    /// Top 10 of each side after each message, by seq.
    tops: BTreeMap<u64, (WireLevels, WireLevels)>,
}

/// A side's levels as the wire's decimal strings, best first.
type WireLevels = Vec<(String, String)>;

impl BookClient {
    fn new(spec: &MarketSpec, channel: &str) -> Self {
        BookClient {
            spec: spec.clone(),
            channel: channel.to_string(),
            raw: !channel.contains('@'),
            book: L2Book::new(),
            epoch: None,
            last_seq: 0,
            snapshots: 0,
            updates: 0,
            tops: BTreeMap::new(),
        }
    }

    fn apply(&mut self, v: &Value) {
        assert_eq!(v["channel"], self.channel.as_str(), "{v}");
        let ty = v["type"].as_str().unwrap_or_default();
        let seq = v["seq"].as_u64().unwrap_or_else(|| panic!("seq: {v}"));
        let prev = v["prev_seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("prev_seq: {v}"));
        let epoch = v["epoch"]
            .as_str()
            .unwrap_or_else(|| panic!("epoch is not a string: {v}"))
            .to_string();
        assert_ts(v);
        match &self.epoch {
            None => self.epoch = Some(epoch),
            Some(e) => assert_eq!(*e, epoch, "epoch changed: {v}"),
        }
        assert_eq!(
            prev, self.last_seq,
            "{ty} seq {seq}: prev_seq {prev} != last seq seen {}",
            self.last_seq
        );
        let what = format!("{ty} seq {seq}");
        let bids_w = wire_levels(&self.spec, &v["bids"], &what);
        let asks_w = wire_levels(&self.spec, &v["asks"], &what);
        let (bids, asks) = (
            parse_levels(&self.spec, &bids_w),
            parse_levels(&self.spec, &asks_w),
        );
        match ty {
            "snapshot" => {
                self.snapshots += 1;
                assert!(v["reason"].is_string(), "snapshot without reason: {v}");
                assert_sorted(&self.spec, &bids, &asks, &what);
                self.book
                    .apply_snapshot(&bids, &asks)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            "update" => {
                self.updates += 1;
                assert!(self.snapshots > 0, "{what} before any snapshot");
                if self.raw {
                    assert_eq!(seq, self.last_seq + 1, "raw update not +1: {v}");
                } else {
                    assert!(seq > self.last_seq, "update seq went back: {v}");
                }
                for (side, levels) in [(Side::Buy, &bids), (Side::Sell, &asks)] {
                    let mut seen = std::collections::HashSet::new();
                    for &(price, qty) in levels.iter() {
                        assert!(seen.insert(price), "{what}: price twice on a side");
                        self.book.apply_delta(BookDelta { side, price, qty });
                    }
                }
            }
            other => panic!("unexpected message type {other} on {}: {v}", self.channel),
        }
        self.last_seq = seq;
        let (top_bids, top_asks) = (
            book_side(&self.spec, &self.book, Side::Buy, 10),
            book_side(&self.spec, &self.book, Side::Sell, 10),
        );
        let checksum = v["checksum"]
            .as_u64()
            .unwrap_or_else(|| panic!("checksum is not an integer: {v}"));
        assert_eq!(
            checksum,
            u64::from(self.book.checksum()),
            "{what}: checksum differs from the rebuilt book's"
        );
        assert_eq!(
            checksum,
            u64::from(reference_checksum(&top_bids, &top_asks)),
            "{what}: checksum differs from docs/PROTOCOL.md's definition"
        );
        self.tops.insert(seq, (top_bids, top_asks));
    }
}

// ---- subscribe, channels and message formats -------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_reply_precedes_first_messages_and_book_starts_with_a_subscribe_snapshot_in_pair_scale(
) {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let spec = market_spec(hub.addr, PAIR).await;
        let mut ws = connect(&hub).await;
        let channels = [BOOK, DEPTH10, TRADES, TICKER];
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 7, "channels": channels}),
        )
        .await;
        let first = recv(&mut ws).await;
        assert_eq!(
            first,
            json!({"type": "subscribed", "id": 7, "channels": channels,
                   "recovered": [], "not_recovered": []}),
            "the subscribed reply must be the first frame"
        );
        let snap = next_on(&mut ws, BOOK).await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        assert_eq!(snap["reason"], "subscribe", "{snap}");
        assert_eq!(snap["prev_seq"], 0, "{snap}");
        assert!(snap["seq"].as_u64().unwrap() > 0, "{snap}");
        assert!(snap["epoch"].is_string(), "{snap}");
        assert!(snap["checksum"].is_u64(), "{snap}");
        assert_ts(&snap);
        let bids = wire_levels(&spec, &snap["bids"], "snapshot bids");
        let asks = wire_levels(&spec, &snap["asks"], "snapshot asks");
        assert!(!bids.is_empty() && !asks.is_empty(), "warm book: {snap}");
        let (b, a) = (parse_levels(&spec, &bids), parse_levels(&spec, &asks));
        assert_sorted(&spec, &b, &a, "snapshot");
        assert!(b[0].0 < a[0].0, "snapshot book is crossed");
        assert_eq!(
            snap["checksum"].as_u64(),
            Some(u64::from(reference_checksum(&bids, &asks)))
        );

        // A second subscribe on a busy connection: its reply still comes
        // before the new channel's first message.
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 8, "channels": ["depth5.BTC-USD"]}),
        )
        .await;
        loop {
            let v = recv(&mut ws).await;
            assert_ne!(
                v["channel"], "depth5.BTC-USD",
                "depth5 message before its subscribed reply: {v}"
            );
            if v["type"] == "subscribed" {
                assert_eq!(v["id"], 8, "{v}");
                assert_eq!(v["channels"], json!(["depth5.BTC-USD"]), "{v}");
                break;
            }
        }
        let d5 = next_on(&mut ws, "depth5.BTC-USD").await;
        assert_eq!(d5["type"], "depth", "{d5}");
        assert_eq!(d5["prev_seq"], 0, "{d5}");
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn book_updates_chain_by_one_and_checksums_match_the_rebuilt_book() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let spec = market_spec(hub.addr, PAIR).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[BOOK]).await;
        let mut client = BookClient::new(&spec, BOOK);
        let snap = recv(&mut ws).await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        client.apply(&snap);
        while client.updates < 100 {
            let v = recv(&mut ws).await;
            client.apply(&v);
        }
        assert_eq!(
            client.snapshots, 1,
            "no resync expected on a healthy client"
        );
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth10_sends_sorted_top_ten_matching_the_book_with_checksums() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let spec = market_spec(hub.addr, PAIR).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[BOOK, DEPTH10]).await;
        let frames = collect_for(&mut ws, Duration::from_millis(1500)).await;
        let mut book = BookClient::new(&spec, BOOK);
        let mut depths = Vec::new();
        for v in &frames {
            match v["channel"].as_str() {
                Some(BOOK) => book.apply(v),
                Some(DEPTH10) => depths.push(v.clone()),
                _ => panic!("unexpected frame {v}"),
            }
        }
        assert!(
            depths.len() >= 3,
            "too few depth messages: {}",
            depths.len()
        );
        let (mut last_seq, mut matched) = (0u64, 0usize);
        for (i, v) in depths.iter().enumerate() {
            assert_eq!(v["type"], "depth", "{v}");
            assert!(v["epoch"].is_string(), "{v}");
            assert_ts(v);
            let seq = v["seq"].as_u64().expect("seq");
            assert_eq!(v["prev_seq"].as_u64(), Some(last_seq), "chain: {v}");
            if i > 0 {
                assert!(seq > last_seq, "depth seq went back: {v}");
            }
            last_seq = seq;
            let bids = wire_levels(&spec, &v["bids"], "depth bids");
            let asks = wire_levels(&spec, &v["asks"], "depth asks");
            assert!(bids.len() <= 10 && asks.len() <= 10, "{v}");
            assert!(!bids.is_empty() && !asks.is_empty(), "{v}");
            assert_sorted(
                &spec,
                &parse_levels(&spec, &bids),
                &parse_levels(&spec, &asks),
                "depth",
            );
            assert_eq!(
                v["checksum"].as_u64(),
                Some(u64::from(reference_checksum(&bids, &asks))),
                "depth checksum: {v}"
            );
            // Same top 10 as the book channel at the same seq.
            if let Some((b, a)) = book.tops.get(&seq) {
                assert_eq!((&bids, &asks), (b, a), "depth differs from book at {seq}");
                matched += 1;
            }
        }
        assert!(matched >= 2, "depth never compared with the book");
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_sends_trades_messages_with_protocol_fields_and_a_seq_chain() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let spec = market_spec(hub.addr, PAIR).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[TRADES]).await;
        let mut last: Option<u64> = None;
        for _ in 0..5 {
            let v = recv(&mut ws).await;
            assert_eq!(v["type"], "trades", "{v}");
            assert_eq!(v["channel"], TRADES, "{v}");
            assert!(v["epoch"].is_string(), "{v}");
            assert_ts(&v);
            let seq = v["seq"].as_u64().expect("seq");
            let prev = v["prev_seq"].as_u64().expect("prev_seq");
            assert!(seq > prev, "{v}");
            if let Some(last) = last {
                assert_eq!(prev, last, "prev_seq chain: {v}");
            }
            last = Some(seq);
            let trades = v["trades"].as_array().expect("trades array");
            assert!(!trades.is_empty(), "{v}");
            for t in trades {
                assert!(t["id"].is_string(), "{t}");
                assert_scaled(
                    t["price"].as_str().expect("price"),
                    spec.price_scale,
                    "price",
                );
                assert_scaled(t["qty"].as_str().expect("qty"), spec.qty_scale, "qty");
                assert!(t["side"] == "buy" || t["side"] == "sell", "{t}");
                let vts = t["venue_ts"].as_u64().expect("venue_ts integer");
                assert!(vts > 1_600_000_000_000_000, "venue_ts in µs: {t}");
            }
        }
        finish(hub, vec![ws]).await;
    })
    .await;
}

/// docs/PROTOCOL.md: "Every channel message's `prev_seq` is the `seq` of the
/// previous message the client received on that channel (0 for the first)."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_first_message_after_subscribe_has_prev_seq_zero() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        // Trades happen (and are numbered) before this client arrives, and
        // another client keeps the channel active.
        let mut other = connect(&hub).await;
        subscribe(&mut other, 1, &[TRADES]).await;
        let _ = recv(&mut other).await;
        sleep(Duration::from_millis(500)).await;
        subscribe(&mut ws, 1, &[TRADES]).await;
        let v = recv(&mut ws).await;
        assert_eq!(v["type"], "trades", "{v}");
        assert_eq!(
            v["prev_seq"], 0,
            "first message on the channel must have prev_seq 0: {v}"
        );
        finish(hub, vec![ws, other]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticker_sends_ticker_messages_with_protocol_fields() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let spec = market_spec(hub.addr, PAIR).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[TICKER]).await;
        let mut last_seq = 0;
        let mut saw_last = false;
        for i in 0..8 {
            let v = recv(&mut ws).await;
            assert_eq!(v["type"], "ticker", "{v}");
            assert_eq!(v["channel"], TICKER, "{v}");
            assert!(v["epoch"].is_string(), "{v}");
            assert_ts(&v);
            let seq = v["seq"].as_u64().expect("seq");
            assert_eq!(v["prev_seq"].as_u64(), Some(last_seq), "chain: {v}");
            if i > 0 {
                assert!(seq > last_seq, "{v}");
            }
            last_seq = seq;
            for (k, scale) in [
                ("bid", spec.price_scale),
                ("ask", spec.price_scale),
                ("bid_qty", spec.qty_scale),
                ("ask_qty", spec.qty_scale),
                ("volume_24h", spec.qty_scale),
            ] {
                let s = v[k].as_str().unwrap_or_else(|| panic!("{k} missing: {v}"));
                assert_scaled(s, scale, k);
            }
            for k in ["last", "open_24h", "high_24h", "low_24h"] {
                match &v[k] {
                    Value::String(s) => assert_scaled(s, spec.price_scale, k),
                    Value::Null if v.get(k).is_some() => {}
                    other => panic!("{k} is {other}: {v}"),
                }
            }
            saw_last |= v["last"].is_string();
            let bid = spec.parse_price(v["bid"].as_str().unwrap()).unwrap();
            let ask = spec.parse_price(v["ask"].as_str().unwrap()).unwrap();
            assert!(bid < ask, "crossed ticker: {v}");
        }
        assert!(saw_last, "no last price after several ticker messages");
        finish(hub, vec![ws]).await;
    })
    .await;
}

/// The gaps are read from the heartbeats' own `ts` (when the hub sent
/// each), not from when this client read them, so a busy test process
/// does not bend them. The hub's ticks never come early (no gap below
/// 600 ms); a tick can come late on a busy machine, so "about once per
/// second" is the smallest gap of several, which only a slower clock than
/// 1 s pushes past 1.5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_counts_up_by_one_about_once_per_second() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &["heartbeat"]).await;
        let mut sent_at = Vec::new();
        for n in 1..=5u64 {
            let v = recv(&mut ws).await;
            assert_eq!(v["type"], "heartbeat", "{v}");
            assert_eq!(v["channel"], "heartbeat", "{v}");
            assert!(v["epoch"].is_string(), "{v}");
            assert_eq!(v["seq"], n, "{v}");
            assert_eq!(v["prev_seq"], n - 1, "{v}");
            assert_ts(&v);
            sent_at.push(v["ts"].as_u64().unwrap());
        }
        let gaps: Vec<Duration> = sent_at
            .windows(2)
            .map(|w| Duration::from_micros(w[1].saturating_sub(w[0])))
            .collect();
        for gap in &gaps {
            assert!(
                *gap >= Duration::from_millis(600),
                "heartbeat gap {gap:?} (all: {gaps:?})"
            );
        }
        let shortest = gaps.iter().min().unwrap();
        assert!(
            *shortest <= Duration::from_millis(1500),
            "no heartbeat gap near 1 s: {gaps:?}"
        );
        finish(hub, vec![ws]).await;
    })
    .await;
}

/// A client that subscribes to `heartbeat` a while after connecting still
/// gets one heartbeat per second, not a burst of the ticks it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_subscribed_late_does_not_burst() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        sleep(Duration::from_millis(3300)).await;
        subscribe(&mut ws, 1, &["heartbeat"]).await;
        // Read by the hub's clock (`ts`), so that a late reader does not
        // see ticks that were in fact a second apart as a burst.
        let first = recv_type(&mut ws, "heartbeat").await;
        let first_ts = first["ts"].as_u64().expect("ts");
        let frames = collect_for(&mut ws, Duration::from_millis(2500)).await;
        let mut sent_at = vec![first_ts];
        sent_at.extend(
            frames
                .iter()
                .filter(|v| v["type"] == "heartbeat")
                .map(|v| v["ts"].as_u64().expect("ts")),
        );
        let within = sent_at
            .iter()
            .filter(|&&ts| ts < first_ts + 1_500_000)
            .count();
        assert!(
            within <= 2,
            "{within} heartbeats sent within 1.5 s of the first: {sent_at:?}"
        );
        for w in sent_at.windows(2) {
            assert!(
                w[1] >= w[0] + 600_000,
                "heartbeats sent {} µs apart: {sent_at:?}",
                w[1].saturating_sub(w[0])
            );
        }
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflated_book_at_100ms_sends_at_most_ten_per_second_and_chains() {
    bounded(30, async {
        let hub = start_hub(|c| c.venue.events_per_sec = 2_000).await;
        let spec = market_spec(hub.addr, PAIR).await;
        let channel = "book.BTC-USD@100ms";
        let mut ws = connect(&hub).await;
        // Nothing of the channel can be sent before the subscribe, so the
        // time from here to the last read bounds what the hub may have
        // sent, however late this client reads.
        let subscribing = Instant::now();
        let reply = subscribe(&mut ws, 1, &[channel]).await;
        assert_eq!(reply["channels"], json!([channel]), "{reply}");
        let mut client = BookClient::new(&spec, channel);
        let snap = recv(&mut ws).await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        assert_eq!(snap["reason"], "subscribe", "{snap}");
        assert_eq!(snap["prev_seq"], 0, "{snap}");
        client.apply(&snap);
        // At least 2 s and 5 updates (however long those take).
        let mut frames = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while subscribing.elapsed() < Duration::from_secs(2) || client.updates < 5 {
            assert!(Instant::now() < deadline, "only {} updates", client.updates);
            for v in collect_for(&mut ws, Duration::from_millis(500)).await {
                client.apply(&v);
                frames.push(v);
            }
        }
        let span = subscribing.elapsed();
        // 10/s over the span, one tick of slack for timer phase.
        let allowed = span.as_millis() as usize / 100 + 1;
        assert!(
            frames.len() <= allowed,
            "{} messages in {span:?} on a 100 ms channel (at most {allowed})",
            frames.len()
        );
        assert!(client.updates >= 5, "only {} updates", client.updates);
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_replies_and_stops_the_channel() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[BOOK]).await;
        let _ = next_on(&mut ws, BOOK).await;
        send(
            &mut ws,
            json!({"op": "unsubscribe", "id": 2, "channels": [BOOK]}),
        )
        .await;
        let reply = recv_type(&mut ws, "unsubscribed").await;
        assert_eq!(reply["id"], 2, "{reply}");
        assert_eq!(reply["channels"], json!([BOOK]), "{reply}");
        let after = collect_for(&mut ws, Duration::from_millis(700)).await;
        assert!(after.is_empty(), "frames after unsubscribed: {after:?}");
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_unsubscribe_changes_nothing() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[TICKER]).await;
        let _ = next_on(&mut ws, TICKER).await;
        // A valid channel held, then a bad name: one error, nothing removed.
        send(
            &mut ws,
            json!({"op": "unsubscribe", "id": 2, "channels": [TICKER, "candles.BTC-USD"]}),
        )
        .await;
        let v = loop {
            let v = recv(&mut ws).await;
            if v["type"] != "ticker" {
                break v;
            }
        };
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["code"], "unknown_channel", "{v}");
        send(
            &mut ws,
            json!({"op": "unsubscribe", "id": 3, "channels": [TICKER]}),
        )
        .await;
        let v = recv_type(&mut ws, "unsubscribed").await;
        assert_eq!(v["channels"], json!([TICKER]), "still subscribed: {v}");
        finish(hub, vec![ws]).await;
    })
    .await;
}

// ---- ops and errors ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_op_is_answered_with_pong_same_id_and_integer_ts() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        send(&mut ws, json!({"op": "ping", "id": 42})).await;
        let v = recv(&mut ws).await;
        assert_eq!(v["type"], "pong", "{v}");
        assert_eq!(v["id"], 42, "{v}");
        assert_ts(&v);
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_op_and_bad_request_errors_echo_the_id_and_keep_the_connection_open() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        send(&mut ws, json!({"op": "dance", "id": 5})).await;
        expect_error(&mut ws, "unknown_op", Some(5)).await;

        ws.send(Message::Text("not json".into())).await.unwrap();
        expect_error(&mut ws, "bad_request", None).await;
        ws.send(Message::Text("[1,2]".into())).await.unwrap();
        expect_error(&mut ws, "bad_request", None).await;
        // missing id
        send(&mut ws, json!({"op": "ping"})).await;
        expect_error(&mut ws, "bad_request", None).await;
        send(&mut ws, json!({"op": "subscribe", "channels": [BOOK]})).await;
        expect_error(&mut ws, "bad_request", None).await;
        // wrong types
        send(&mut ws, json!({"op": "ping", "id": "x"})).await;
        expect_error(&mut ws, "bad_request", None).await;
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 3, "channels": BOOK}),
        )
        .await;
        expect_error(&mut ws, "bad_request", Some(3)).await;
        send(&mut ws, json!({"op": 7, "id": 4})).await;
        expect_error(&mut ws, "bad_request", Some(4)).await;
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 6, "channels": [BOOK], "resume": {BOOK: {"epoch": 1, "seq": "2"}}}),
        )
        .await;
        expect_error(&mut ws, "bad_request", Some(6)).await;

        assert_alive(&mut ws, 9).await;
        // Nothing was subscribed by any of it.
        let after = collect_for(&mut ws, Duration::from_millis(500)).await;
        assert!(after.is_empty(), "{after:?}");
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_channel_is_refused_with_id_and_a_refused_subscribe_changes_nothing() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        for (id, channel) in [
            (11, "book.FOO-BAR"),
            (12, "candles.BTC-USD"),
            (13, "depth7.BTC-USD"),
            (14, "book.BTC-USD@250ms"),
            (15, "book.btc-usd"),
        ] {
            send(
                &mut ws,
                json!({"op": "subscribe", "id": id, "channels": [channel]}),
            )
            .await;
            let v = expect_error(&mut ws, "unknown_channel", Some(id)).await;
            assert!(
                v["message"].as_str().unwrap().contains(channel),
                "message names the channel: {v}"
            );
        }
        // One bad channel: the whole request is refused.
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 16, "channels": [BOOK, "book.FOO-BAR"]}),
        )
        .await;
        expect_error(&mut ws, "unknown_channel", Some(16)).await;
        let quiet = collect_for(&mut ws, Duration::from_millis(800)).await;
        assert!(
            quiet.is_empty(),
            "frames after a refused subscribe: {quiet:?}"
        );
        // A valid subscribe still works, and only its channel arrives.
        subscribe(&mut ws, 17, &[TICKER]).await;
        let frames = collect_for(&mut ws, Duration::from_millis(800)).await;
        assert!(!frames.is_empty(), "ticker delivers");
        for v in &frames {
            assert_eq!(v["channel"], TICKER, "frame of a refused channel: {v}");
        }
        send(
            &mut ws,
            json!({"op": "unsubscribe", "id": 18, "channels": [BOOK]}),
        )
        .await;
        let v = recv_type(&mut ws, "unsubscribed").await;
        assert_eq!(v["id"], 18, "{v}");
        assert_eq!(v["channels"], json!([]), "book was never subscribed: {v}");
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_channels_and_auth_are_unauthorized() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        for (id, channels) in [
            (21, vec!["orders"]),
            (22, vec!["balances"]),
            (23, vec![TICKER, "orders"]),
        ] {
            send(
                &mut ws,
                json!({"op": "subscribe", "id": id, "channels": channels}),
            )
            .await;
            expect_error(&mut ws, "unauthorized", Some(id)).await;
        }
        send(&mut ws, json!({"op": "auth", "id": 24, "token": "abc"})).await;
        expect_error(&mut ws, "unauthorized", Some(24)).await;
        let quiet = collect_for(&mut ws, Duration::from_millis(500)).await;
        assert!(quiet.is_empty(), "a refused subscribe delivered: {quiet:?}");
        assert_alive(&mut ws, 25).await;
        finish(hub, vec![ws]).await;
    })
    .await;
}

// ---- limits --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_subscriptions_beyond_max_subscriptions() {
    bounded(20, async {
        let hub = start_hub(|c| c.limits.max_subscriptions = 3).await;
        let mut ws = connect(&hub).await;
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 1, "channels": [BOOK, TRADES, TICKER, DEPTH10]}),
        )
        .await;
        expect_error(&mut ws, "too_many_subscriptions", Some(1)).await;
        subscribe(&mut ws, 2, &[TRADES, TICKER, "heartbeat"]).await;
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 3, "channels": [DEPTH10]}),
        )
        .await;
        let v = recv_type(&mut ws, "error").await;
        assert_eq!(v["code"], "too_many_subscriptions", "{v}");
        assert_eq!(v["id"], 3, "{v}");
        // Re-subscribing a channel it already has adds nothing.
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 4, "channels": [TICKER]}),
        )
        .await;
        let v = recv_type(&mut ws, "subscribed").await;
        assert_eq!(v["id"], 4, "{v}");
        // After an unsubscribe there is room again.
        send(
            &mut ws,
            json!({"op": "unsubscribe", "id": 5, "channels": [TRADES]}),
        )
        .await;
        let v = recv_type(&mut ws, "unsubscribed").await;
        assert_eq!(v["id"], 5, "{v}");
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 6, "channels": [DEPTH10]}),
        )
        .await;
        loop {
            let v = recv(&mut ws).await;
            assert_ne!(v["type"], "error", "{v}");
            if v["type"] == "subscribed" {
                assert_eq!(v["id"], 6, "{v}");
                break;
            }
        }
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_beyond_the_burst_are_rate_limited() {
    bounded(20, async {
        // A slow refill makes "the 51st frame within a second" deterministic.
        let hub = start_hub(|c| c.limits.frames_per_sec = 1).await;
        let mut ws = connect(&hub).await;
        for id in 1..=60 {
            let text = json!({"op": "ping", "id": id}).to_string();
            ws.feed(Message::Text(text.into())).await.unwrap();
        }
        ws.flush().await.unwrap();
        for id in 1..=60i64 {
            let v = recv(&mut ws).await;
            if id <= 50 {
                assert_eq!(v["type"], "pong", "frame {id} is within the burst: {v}");
                assert_eq!(v["id"], id, "{v}");
            } else {
                assert_eq!(v["type"], "error", "frame {id} is beyond the burst: {v}");
                assert_eq!(v["code"], "rate_limited", "{v}");
                assert_eq!(v["id"], id, "{v}");
            }
        }
        // The connection stays open; a token comes back after a second.
        sleep(Duration::from_millis(1200)).await;
        assert_alive(&mut ws, 61).await;
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_frame_budget_closes_with_1008() {
    bounded(20, async {
        let hub = start_hub(|c| c.limits.max_invalid_frames = 5).await;
        let mut ws = connect(&hub).await;
        for id in 1..=4 {
            send(&mut ws, json!({"op": "dance", "id": id})).await;
            expect_error(&mut ws, "unknown_op", Some(id)).await;
        }
        assert_alive(&mut ws, 100).await;
        send(&mut ws, json!({"op": "dance", "id": 5})).await;
        // The 5th rejected frame: its error, then close 1008.
        let mut saw_error = false;
        let deadline = Instant::now() + Duration::from_secs(5);
        let code = loop {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => panic!("no close within 5 s"),
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    assert_eq!(v["code"], "unknown_op", "{v}");
                    saw_error = true;
                }
                Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| f.code),
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("stream ended without a close frame: {other:?}"),
            }
        };
        assert!(saw_error, "the last rejected frame is answered too");
        assert_eq!(code, Some(CloseCode::Policy));
        finish(hub, vec![]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_frame_over_max_frame_bytes_closes_with_1009() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        // Just under the limit is fine.
        let pad = "x".repeat(16 * 1024 - 100);
        send(&mut ws, json!({"op": "nope", "id": 1, "pad": pad})).await;
        expect_error(&mut ws, "unknown_op", Some(1)).await;
        let pad = "x".repeat(17 * 1024);
        let _ = ws
            .send(Message::Text(
                json!({"op": "ping", "id": 2, "pad": pad})
                    .to_string()
                    .into(),
            ))
            .await;
        assert_eq!(close_code(&mut ws, 5).await, Some(CloseCode::Size));
        finish(hub, vec![]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_beyond_max_connections_is_refused_with_503() {
    bounded(20, async {
        let hub = start_hub(|c| c.limits.max_connections = 2).await;
        let a = connect(&hub).await;
        let mut b = connect(&hub).await;
        let url = format!("ws://{}/ws", hub.addr);
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 503)
            }
            Err(e) => panic!("expected HTTP 503, got {e}"),
            Ok(_) => panic!("a third connection was accepted"),
        }
        assert_alive(&mut b, 1).await;
        finish(hub, vec![a, b]).await;
    })
    .await;
}

/// docs/PROTOCOL.md's connection limit is about live clients: once a client has
/// gone (here: its TCP connection dropped), its slot is free for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_frees_its_slot_for_the_next_one() {
    bounded(20, async {
        let hub = start_hub(|c| c.limits.max_connections = 1).await;
        let a = connect(&hub).await;
        drop(a);
        let url = format!("ws://{}/ws", hub.addr);
        let deadline = Instant::now() + Duration::from_secs(3);
        let b = loop {
            match tokio_tungstenite::connect_async(url.clone()).await {
                Ok((ws, _)) => break ws,
                Err(_) if Instant::now() < deadline => {
                    sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!(
                    "3 s after the only client left, a new one is still refused ({e}); \
                     connections() = {}",
                    hub.context.connections()
                ),
            }
        };
        finish(hub, vec![b]).await;
    })
    .await;
}

/// RFC 6455 5.5.1: the hub answers a client's Close with a Close and ends
/// the connection (and releases its slot) promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_initiated_close_is_answered_and_the_connection_ends() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[TICKER]).await;
        ws.close(None).await.expect("send close");
        let answer = timeout(Duration::from_secs(3), async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(_))) => return Ok(()),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("{e}")),
                    None => return Err("stream ended".into()),
                }
            }
        })
        .await;
        assert!(
            matches!(answer, Ok(Ok(()))),
            "no Close reply within 3 s: {answer:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(2);
        while hub.context.connections() > 0 && Instant::now() < deadline {
            sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(hub.context.connections(), 0, "connection slot still held");
        finish(hub, vec![]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_timeout_closes_a_client_that_never_answers() {
    bounded(20, async {
        let hub = start_hub(|c| {
            c.limits.ping_interval_ms = 200;
            c.limits.pong_timeout_ms = 500;
        })
        .await;
        let mut ws = connect(&hub).await;
        // Never read, so never answer a Ping.
        sleep(Duration::from_secs(2)).await;
        let deadline = Instant::now() + Duration::from_secs(3);
        let code = loop {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => panic!("connection still open after the pong timeout"),
                Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| f.code),
                Ok(Some(Ok(_))) => {}
                Ok(None) | Ok(Some(Err(_))) => break None,
            }
        };
        assert!(
            code.is_none() || code == Some(CloseCode::Policy),
            "close code {code:?}"
        );
        finish(hub, vec![]).await;
    })
    .await;
}

/// A peer that is gone (never reads, never answers the close handshake)
/// must not keep its connection slot after the pong timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_timeout_frees_the_connection_slot_of_a_dead_peer() {
    bounded(20, async {
        let hub = start_hub(|c| {
            c.limits.ping_interval_ms = 200;
            c.limits.pong_timeout_ms = 500;
        })
        .await;
        let ws = connect(&hub).await;
        assert_eq!(hub.context.connections(), 1);
        let deadline = Instant::now() + Duration::from_secs(4);
        while hub.context.connections() > 0 && Instant::now() < deadline {
            sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            hub.context.connections(),
            0,
            "the timed-out connection still holds its slot 4 s later"
        );
        drop(ws);
        finish(hub, vec![]).await;
    })
    .await;
}

// ---- resume ----------------------------------------------------------------------

/// `(epoch, seq, prev_seq)` of each message of `channel` in `frames`.
fn seqs(frames: &[Value], channel: &str) -> Vec<(String, u64, u64)> {
    frames
        .iter()
        .filter(|v| v["channel"] == channel)
        .map(|v| {
            (
                v["epoch"].as_str().unwrap().to_string(),
                v["seq"].as_u64().unwrap(),
                v["prev_seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_trades_within_history_replays_missed_messages_in_order() {
    bounded(30, async {
        let hub = start_hub(|c| c.venue.events_per_sec = 1_000).await;
        // A witness that stays subscribed the whole time.
        let mut witness = connect(&hub).await;
        subscribe(&mut witness, 1, &[TRADES]).await;
        let mut client = connect(&hub).await;
        subscribe(&mut client, 1, &[TRADES]).await;
        let mut last = None;
        for _ in 0..3 {
            let v = recv(&mut client).await;
            assert_eq!(v["type"], "trades", "{v}");
            last = Some((
                v["epoch"].as_str().unwrap().to_string(),
                v["seq"].as_u64().unwrap(),
            ));
        }
        let (epoch, seq) = last.unwrap();
        client.close(None).await.unwrap();
        drop(client);
        sleep(Duration::from_millis(600)).await;

        let mut client = connect(&hub).await;
        send(
            &mut client,
            json!({"op": "subscribe", "id": 2, "channels": [TRADES],
                   "resume": {TRADES: {"epoch": epoch, "seq": seq}}}),
        )
        .await;
        let reply = recv(&mut client).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        assert_eq!(reply["recovered"], json!([TRADES]), "{reply}");
        assert_eq!(reply["not_recovered"], json!([]), "{reply}");
        let resumed = collect_for(&mut client, Duration::from_millis(800)).await;
        let resumed = seqs(&resumed, TRADES);
        assert!(
            resumed.len() >= 3,
            "too few messages after resume: {resumed:?}"
        );
        let mut last_seq = seq;
        for (e, s, p) in &resumed {
            assert_eq!(*e, epoch);
            assert_eq!(*p, last_seq, "chain from the resume point: {resumed:?}");
            assert!(*s > *p);
            last_seq = *s;
        }
        // Exactly what the witness saw after `seq`, in the same order.
        let witnessed = seqs(
            &collect_for(&mut witness, Duration::from_millis(300)).await,
            TRADES,
        );
        let at = witnessed
            .iter()
            .position(|(_, s, _)| *s == seq)
            .expect("the witness saw the resume point");
        let expected: Vec<_> = witnessed[at + 1..]
            .iter()
            .take(resumed.len())
            .cloned()
            .collect();
        assert!(expected.len() >= 3, "witness too far behind: {witnessed:?}");
        assert_eq!(resumed[..expected.len()], expected[..]);
        finish(hub, vec![client, witness]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_book_within_history_continues_the_chain_and_the_checksums() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let spec = market_spec(hub.addr, PAIR).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[BOOK]).await;
        let mut client = BookClient::new(&spec, BOOK);
        while client.updates < 10 {
            let v = recv(&mut ws).await;
            client.apply(&v);
        }
        let (epoch, seq) = (client.epoch.clone().unwrap(), client.last_seq);
        ws.close(None).await.unwrap();
        drop(ws);
        sleep(Duration::from_millis(500)).await;

        let mut ws = connect(&hub).await;
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 2, "channels": [BOOK],
                   "resume": {BOOK: {"epoch": epoch, "seq": seq}}}),
        )
        .await;
        let reply = recv(&mut ws).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        assert_eq!(reply["recovered"], json!([BOOK]), "{reply}");
        assert_eq!(reply["not_recovered"], json!([]), "{reply}");
        let first = recv(&mut ws).await;
        assert_eq!(first["type"], "update", "recovery replays updates: {first}");
        assert_eq!(first["prev_seq"].as_u64(), Some(seq), "{first}");
        client.apply(&first);
        while client.updates < 60 {
            let v = recv(&mut ws).await;
            client.apply(&v);
        }
        assert_eq!(client.snapshots, 1, "no snapshot after a recovered resume");
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_a_wrong_epoch_is_not_recovered_and_gets_a_fresh_snapshot() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let spec = market_spec(hub.addr, PAIR).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[BOOK]).await;
        let snap = recv(&mut ws).await;
        let seq = snap["seq"].as_u64().unwrap();
        let epoch = snap["epoch"].as_str().unwrap().to_string();
        drop(ws);

        let mut ws = connect(&hub).await;
        let wrong = format!("{epoch}-not");
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 2, "channels": [BOOK, TRADES],
                   "resume": {BOOK: {"epoch": wrong, "seq": seq},
                              TRADES: {"epoch": wrong, "seq": 1}}}),
        )
        .await;
        let reply = recv(&mut ws).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        assert_eq!(reply["recovered"], json!([]), "{reply}");
        assert_eq!(reply["not_recovered"], json!([BOOK, TRADES]), "{reply}");
        let snap = next_on(&mut ws, BOOK).await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        assert_eq!(snap["prev_seq"], 0, "{snap}");
        assert_eq!(snap["epoch"], epoch.as_str(), "{snap}");
        let mut client = BookClient::new(&spec, BOOK);
        client.apply(&snap);
        while client.updates < 10 {
            let v = next_on(&mut ws, BOOK).await;
            client.apply(&v);
        }
        let t = next_on(&mut ws, TRADES).await;
        assert_eq!(t["type"], "trades", "live trades after not_recovered: {t}");
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_a_seq_older_than_the_history_is_not_recovered_and_gets_a_fresh_snapshot() {
    bounded(30, async {
        let hub = start_hub(|c| {
            c.history.max_messages = 5;
            c.history.max_age_ms = 50;
        })
        .await;
        let spec = market_spec(hub.addr, PAIR).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[BOOK, TRADES]).await;
        let snap = next_on(&mut ws, BOOK).await;
        let book_seq = snap["seq"].as_u64().unwrap();
        let epoch = snap["epoch"].as_str().unwrap().to_string();
        let trade = next_on(&mut ws, TRADES).await;
        let trade_seq = trade["seq"].as_u64().unwrap();
        drop(ws);
        // Far more than 5 messages and 50 ms go by.
        sleep(Duration::from_millis(1500)).await;

        let mut ws = connect(&hub).await;
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 2, "channels": [BOOK, TRADES],
                   "resume": {BOOK: {"epoch": epoch, "seq": book_seq},
                              TRADES: {"epoch": epoch, "seq": trade_seq}}}),
        )
        .await;
        let reply = recv(&mut ws).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        assert_eq!(reply["recovered"], json!([]), "{reply}");
        assert_eq!(reply["not_recovered"], json!([BOOK, TRADES]), "{reply}");
        let snap = next_on(&mut ws, BOOK).await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        assert_eq!(snap["prev_seq"], 0, "{snap}");
        assert!(snap["seq"].as_u64().unwrap() > book_seq + 5, "{snap}");
        let mut client = BookClient::new(&spec, BOOK);
        client.apply(&snap);
        while client.updates < 10 {
            let v = next_on(&mut ws, BOOK).await;
            client.apply(&v);
        }
        finish(hub, vec![ws]).await;
    })
    .await;
}

// ---- shutdown ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_sends_a_shutdown_notice_then_closes_1001() {
    bounded(30, async {
        let hub = start_hub(|c| c.reconnect_after_ms = 1_234).await;
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[BOOK]).await;
        let _ = next_on(&mut ws, BOOK).await;
        let stop = tokio::spawn(hub.stop());
        let notice = recv_type(&mut ws, "shutdown").await;
        assert_eq!(
            notice,
            json!({"type": "shutdown", "reconnect_after_ms": 1_234}),
            "{notice}"
        );
        assert_eq!(close_code(&mut ws, 5).await, Some(CloseCode::Away));
        timeout(Duration::from_secs(10), stop)
            .await
            .expect("stop returns")
            .expect("stop task");
    })
    .await;
}

// ---- HTTP ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_orderbook_returns_the_cached_book_and_unknown_pair_is_404() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let spec = market_spec(hub.addr, PAIR).await;
        let (status, v) = http_json(hub.addr, "/markets/BTC-USD/orderbook").await;
        assert_eq!(status, 200, "{v}");
        for k in ["pair", "seq", "epoch", "ts", "bids", "asks", "checksum"] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
        assert_eq!(v["pair"], PAIR);
        assert!(v["seq"].as_u64().unwrap() > 0, "{v}");
        assert!(v["epoch"].is_string(), "{v}");
        assert_ts(&v);
        let bids = wire_levels(&spec, &v["bids"], "rest bids");
        let asks = wire_levels(&spec, &v["asks"], "rest asks");
        assert!(!bids.is_empty() && !asks.is_empty(), "{v}");
        assert_sorted(
            &spec,
            &parse_levels(&spec, &bids),
            &parse_levels(&spec, &asks),
            "rest",
        );
        assert_eq!(
            v["checksum"].as_u64(),
            Some(u64::from(reference_checksum(&bids, &asks))),
            "{v}"
        );
        // Same epoch as the WebSocket channels.
        let mut ws = connect(&hub).await;
        subscribe(&mut ws, 1, &[BOOK]).await;
        let snap = recv(&mut ws).await;
        assert_eq!(snap["epoch"], v["epoch"]);

        let (status, v) = http_json(hub.addr, "/markets/FOO-BAR/orderbook").await;
        assert_eq!(status, 404, "{v}");
        assert_eq!(v["error"]["code"], "unknown_pair", "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
        finish(hub, vec![ws]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics_endpoints_answer() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let ws = connect(&hub).await;
        let (status, v) = http_json(hub.addr, "/health").await;
        assert_eq!((status, &v), (200, &json!({"status": "ok"})));
        let (status, v) = http_json(hub.addr, "/ready").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "ready", "{v}");
        let (status, text) = http_get(hub.addr, "/metrics").await;
        assert_eq!(status, 200, "{text}");
        assert!(
            text.lines().any(|l| l.starts_with("nax_connections")),
            "no nax_connections in /metrics:\n{text}"
        );
        finish(hub, vec![ws]).await;
    })
    .await;
}
