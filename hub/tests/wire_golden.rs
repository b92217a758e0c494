//! The hub's wire output, byte for byte: a recorded session
//! (`fixtures/wire_golden/session.ndjson`, written by
//! `feeds::replay::Recorder`) is played through a real hub on 127.0.0.1
//! while WebSocket clients subscribe to every public channel (every topic
//! kind at every cadence, a second pair, `heartbeat`), resume, ping and
//! make mistakes; every text frame they receive must equal
//! `fixtures/wire_golden/golden.txt`. Regenerate both files with
//! `NAX_BLESS=1 cargo nextest run -p hub -E 'test(/^wire_golden::/)'` (only when
//! the wire format is meant to change).
//!
//! What makes it deterministic:
//!
//! - The recording is played one event at a time by a gated feed (the
//!   recording's own events, read with `RecordingReader`, but released by
//!   the test instead of the recorded clock). After each event the test
//!   waits for the event's raw message (`book.PAIR` or `trades.PAIR`
//!   with its seq), then for a tick barrier: a probe connection subscribes
//!   to a `@1000ms` channel and waits for its state message, which the pair
//!   task sends at its next 1,000 ms tick, after every `@100ms` and
//!   `@1000ms` topic has published the net of that event. So every
//!   conflated message nets exactly one upstream event, and its bytes are
//!   fixed.
//! - Messages of different channels on one connection may interleave
//!   differently from run to run (snapshots are queued by the pair task,
//!   updates by the shard workers; a subscribe can straddle a tick), so
//!   the golden file groups each connection's frames by channel, in
//!   arrival order within a channel: the order the protocol promises.
//! - The last event (a trade) is the cut: a connection's frames are read
//!   up to its raw `trades` message for that event, which comes after
//!   everything published before it (one shard worker per connection).
//!
//! What is masked, and why:
//!
//! - `ts` (top level only): the hub stamps channel messages with its own
//!   clock when the upstream event arrives (`now_micros()`), `pong` and
//!   `heartbeat` too. Written as `0`. (`venue_ts` of trades comes from the
//!   recording and is kept.)
//! - The order of levels inside a conflated (`@100ms`/`@1000ms`) `update`:
//!   the pair task nets changed levels in a `HashSet`, whose iteration
//!   order is random per process. Those levels are sorted; their text is
//!   kept.
//! - `heartbeat`: sent once a second on the connection's own clock; only
//!   the first two are kept.

use crate::common;

use feeds::replay::{Recorder, RecordingReader};
use feeds::{MarketEvent, MarketFeed, MarketStream, PublicTrade, SnapshotReason, VenueError};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use orderbook::{BookDelta, MarketSpec, Side};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const PAIR: &str = "BTC-USD";
const OTHER: &str = "ETH-USD";
const EPOCH: &str = "901dc0de";
/// How long any single wait may take before the test fails (generous: two
/// busy cores).
const WAIT: Duration = Duration::from_secs(30);

/// Every public channel of `PAIR`: each topic kind of docs/PROTOCOL.md
/// ("Channels") at each cadence.
fn public_channels() -> Vec<String> {
    let kinds = [
        "book",
        "depth1",
        "depth5",
        "depth10",
        "depth20",
        "depth50",
        "trades",
        "ticker",
        "candles1m",
        "candles5m",
        "candles15m",
        "candles1h",
        "candles4h",
        "candles1d",
    ];
    let mut out = Vec::new();
    for kind in kinds {
        for cadence in ["", "@100ms", "@1000ms"] {
            out.push(format!("{kind}.{PAIR}{cadence}"));
        }
    }
    out
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire_golden")
}

fn bless() -> bool {
    std::env::var("NAX_BLESS").is_ok_and(|v| v == "1")
}

// ---- the recording ------------------------------------------------------

fn spec_of(symbol: &str) -> MarketSpec {
    feeds::sandbox_pairs::default_pairs()
        .into_iter()
        .find(|p| p.spec.symbol == symbol)
        .map(|p| p.spec)
        .expect("a default pair")
}

/// Writes the session: both pairs' snapshots, then BTC-USD deltas (one
/// and several levels, deep and at the top, a removed best ask), trades
/// (two minutes, both sides), an upstream `resync` snapshot with a new
/// book, more changes, and a last trade (the cut).
fn write_recording(path: &Path) {
    let (btc, eth) = (spec_of(PAIR), spec_of(OTHER));
    let mut rec = Recorder::create(path, EPOCH, &[btc.clone(), eth.clone()]).unwrap();
    let t0: u64 = 1_763_940_000_000_000;
    let ms = |n: u64| t0 + n * 1_000;
    let px = |s: &str| btc.parse_price(s).unwrap();
    let qty = |s: &str| btc.parse_qty(s).unwrap();
    let name: Arc<str> = Arc::from(PAIR);
    let level = |p: String, q: String| (px(&p), qty(&q));
    // 55 levels a side, 1.00 apart: deeper than depth50.
    let bids = (0..55u64)
        .map(|i| level(format!("{}.00", 64_000 - i), format!("0.{:02}0000", i + 1)))
        .collect();
    let asks = (0..55u64)
        .map(|i| level(format!("{}.00", 64_001 + i), format!("0.{:02}0000", 60 - i)))
        .collect();
    rec.write(&MarketEvent::Snapshot {
        pair: name.clone(),
        reason: SnapshotReason::Subscribe,
        seq: 100,
        trade_seq: 0,
        venue_ts: ms(0),
        bids,
        asks,
    })
    .unwrap();
    let eth_px = |s: &str| eth.parse_price(s).unwrap();
    let eth_qty = |s: &str| eth.parse_qty(s).unwrap();
    rec.write(&MarketEvent::Snapshot {
        pair: Arc::from(OTHER),
        reason: SnapshotReason::Subscribe,
        seq: 7,
        trade_seq: 3,
        venue_ts: ms(0),
        bids: vec![
            (eth_px("3199.50"), eth_qty("1.5")),
            (eth_px("3199.00"), eth_qty("2")),
        ],
        asks: vec![(eth_px("3200.50"), eth_qty("0.25"))],
    })
    .unwrap();
    let delta = |seq, at, changes: &[(Side, &str, &str)]| MarketEvent::Delta {
        pair: name.clone(),
        seq,
        venue_ts: ms(at),
        deltas: changes
            .iter()
            .map(|(side, p, q)| BookDelta {
                side: *side,
                price: px(p),
                qty: qty(q),
            })
            .collect(),
    };
    let trades = |seq, at, list: &[(u64, &str, &str, Side)]| MarketEvent::Trades {
        pair: name.clone(),
        seq,
        venue_ts: ms(at),
        trades: list
            .iter()
            .map(|(id, p, q, side)| PublicTrade {
                trade_id: *id,
                price: px(p),
                qty: qty(q),
                side: *side,
                venue_ts: ms(at),
            })
            .collect(),
    };
    let events = [
        // The best bid's quantity: every topic.
        delta(101, 100, &[(Side::Buy, "64000.00", "2.5")]),
        // Deep: a bid removed (11th) and one added between levels, an ask
        // at the 30th: book, depth20 and depth50 only.
        delta(
            102,
            200,
            &[
                (Side::Buy, "63990.00", "0"),
                (Side::Buy, "63950.50", "0.3"),
                (Side::Sell, "64030.00", "1"),
            ],
        ),
        trades(
            1,
            300,
            &[
                (1001, "64001.00", "0.05", Side::Buy),
                (1002, "64001.00", "0.01", Side::Buy),
            ],
        ),
        // The best ask goes.
        delta(103, 400, &[(Side::Sell, "64001.00", "0")]),
        // A minute later, the other side.
        trades(2, 60_500, &[(1003, "63999.00", "0.2", Side::Sell)]),
    ];
    for e in &events {
        rec.write(e).unwrap();
    }
    // The venue lost us: a new book, seq 103 → 200.
    rec.write(&MarketEvent::Snapshot {
        pair: name.clone(),
        reason: SnapshotReason::Resync,
        seq: 200,
        trade_seq: 2,
        venue_ts: ms(61_000),
        bids: (0..12u64)
            .map(|i| level(format!("{}.50", 63_900 - i), format!("1.{:06}", i * 3_333)))
            .collect(),
        asks: (0..12u64)
            .map(|i| level(format!("{}.50", 63_910 + i), format!("2.{:06}", i * 7_777)))
            .collect(),
    })
    .unwrap();
    let after = [
        // Several levels a side: a new best bid, a changed and a removed ask.
        delta(
            201,
            61_100,
            &[
                (Side::Buy, "63905.00", "0.4"),
                (Side::Buy, "63899.50", "3"),
                (Side::Sell, "63910.50", "0"),
                (Side::Sell, "63912.50", "0.75"),
            ],
        ),
        // The cut.
        trades(3, 61_200, &[(1004, "63911.50", "0.125", Side::Buy)]),
    ];
    for e in &after {
        rec.write(e).unwrap();
    }
    rec.finish().unwrap();
}

fn read_recording(path: &Path) -> (Vec<MarketSpec>, String, Vec<MarketEvent>) {
    let mut reader = RecordingReader::open(path).expect("the recording opens");
    let mut events = Vec::new();
    while let Some(e) = reader.next_event().expect("a valid recording") {
        events.push(e);
    }
    (reader.header.markets, reader.header.epoch, events)
}

// ---- a feed the test releases event by event ------------------------------

/// A [`MarketFeed`] whose one stream carries what the test sends.
struct GatedFeed {
    markets: Vec<MarketSpec>,
    epoch: String,
    events: Mutex<Option<mpsc::Receiver<MarketEvent>>>,
}

impl MarketFeed for GatedFeed {
    fn markets(&self) -> Vec<MarketSpec> {
        self.markets.clone()
    }

    // `MarketFeed` is an `async_trait`; this is its expanded form.
    fn subscribe<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = Result<MarketStream, VenueError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let events = self.events.lock().unwrap().take();
        let epoch = self.epoch.clone();
        Box::pin(async move {
            let events = events.ok_or_else(|| {
                VenueError::Unavailable("the gated feed streams once".to_string())
            })?;
            Ok(MarketStream { epoch, events })
        })
    }
}

// ---- clients ---------------------------------------------------------------

type Sink = SplitSink<common::Ws, Message>;

/// A WebSocket client whose frames are read (and pings answered) by a
/// background task; `log` keeps every text frame the test consumed.
struct Client {
    name: &'static str,
    sink: Sink,
    frames: mpsc::UnboundedReceiver<String>,
    log: Vec<String>,
}

impl Client {
    async fn connect(hub: &hub::app::RunningHub, name: &'static str) -> Client {
        let (sink, mut stream) = common::connect(hub).await.split();
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                if let Message::Text(t) = msg {
                    if tx.send(t.as_str().to_owned()).is_err() {
                        return;
                    }
                }
            }
        });
        Client {
            name,
            sink,
            frames,
            log: Vec::new(),
        }
    }

    async fn send(&mut self, v: Value) {
        self.sink
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    /// Reads (and logs) frames until one satisfies `pred`; returns it.
    async fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let text = tokio::time::timeout(WAIT, self.frames.recv())
                .await
                .unwrap_or_else(|_| panic!("{}: no {what} within {WAIT:?}", self.name))
                .unwrap_or_else(|| panic!("{}: closed before {what}", self.name));
            let v: Value = serde_json::from_str(&text).expect("the hub sends JSON");
            self.log.push(text);
            if pred(&v) {
                return v;
            }
        }
    }

    async fn until_type(&mut self, ty: &str) -> Value {
        self.until(ty, |v| v["type"] == ty).await
    }

    /// Reads until `channel`'s message with `seq`.
    async fn until_seq(&mut self, channel: &str, seq: u64) -> Value {
        let what = format!("{channel} seq {seq}");
        self.until(&what, |v| v["channel"] == channel && v["seq"] == seq)
            .await
    }
}

/// Waits until both `@100ms` and `@1000ms` topics of `PAIR` have had a
/// tick after everything the pair task did so far: the probe subscribes to
/// a `@1000ms` channel, whose state message comes at the next 1,000 ms tick
/// (after that tick's 100 ms work), and unsubscribes again.
async fn tick_barrier(probe: &mut Client, id: &mut i64) {
    let channel = format!("ticker.{PAIR}@1000ms");
    *id += 1;
    probe
        .send(json!({"op": "subscribe", "id": *id, "channels": [channel]}))
        .await;
    probe.until_type("subscribed").await;
    probe.until_type("ticker").await;
    *id += 1;
    probe
        .send(json!({"op": "unsubscribe", "id": *id, "channels": [channel]}))
        .await;
    probe.until_type("unsubscribed").await;
    probe.log.clear();
}

/// The raw message an upstream event causes on `PAIR`: (channel, seq).
fn marker(event: &MarketEvent) -> Option<(String, u64)> {
    if **event.pair() != *PAIR {
        return None;
    }
    Some(match event {
        MarketEvent::Snapshot { seq, .. } | MarketEvent::Delta { seq, .. } => {
            (format!("book.{PAIR}"), *seq)
        }
        MarketEvent::Trades { seq, .. } => (format!("trades.{PAIR}"), *seq),
        MarketEvent::Status { .. } | MarketEvent::Resyncing { .. } => return None,
    })
}

// ---- the golden text ---------------------------------------------------------

/// `text` with its top-level `"ts"` value (the hub's clock) written as 0.
fn mask_ts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\"ts\":") {
        let after_key = at + "\"ts\":".len();
        let prev = rest[..at].chars().last();
        out.push_str(&rest[..after_key]);
        rest = &rest[after_key..];
        if matches!(prev, Some(',') | Some('{')) {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let ts: u64 = rest[..digits].parse().expect("ts is an integer");
            assert!(ts > 1_700_000_000_000_000, "ts is a clock reading: {text}");
            out.push('0');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// A conflated `update` with the levels of each side sorted (their order
/// is a `HashSet`'s, see the module doc).
fn sort_conflated_levels(text: &str, v: &Value) -> String {
    let conflated = v["channel"].as_str().is_some_and(|c| c.contains('@'));
    if v["type"] != "update" || !conflated {
        return text.to_owned();
    }
    let mut out = text.to_owned();
    for (key, end) in [
        ("\"bids\":[", "],\"asks\":"),
        ("\"asks\":[", "],\"checksum\":"),
    ] {
        let start = out.find(key).expect("levels") + key.len();
        let stop = start + out[start..].find(end).expect("end of levels");
        let mut levels: Vec<String> = out[start..stop]
            .split("],[")
            .map(|l| l.trim_start_matches('[').trim_end_matches(']').to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        levels.sort();
        let sorted = levels
            .iter()
            .map(|l| format!("[{l}]"))
            .collect::<Vec<_>>()
            .join(",");
        out.replace_range(start..stop, &sorted);
    }
    out
}

/// One connection's frames, grouped by channel (`-` for replies).
fn render(client: &Client, out: &mut String) {
    let mut by_channel: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for text in &client.log {
        let v: Value = serde_json::from_str(text).unwrap();
        let channel = v["channel"].as_str().unwrap_or("-").to_owned();
        let frame = mask_ts(&sort_conflated_levels(text, &v));
        by_channel.entry(channel).or_default().push(frame);
    }
    for (channel, frames) in by_channel {
        for frame in frames {
            out.push_str(&format!("{} {channel} {frame}\n", client.name));
        }
    }
}

const HEADER: &str = "\
# The wire output of hub/tests/wire_golden.rs (see its module doc).
# Regenerate: NAX_BLESS=1 cargo nextest run -p hub -E 'test(/^wire_golden::/)'
# One line per text frame: connection, channel (- for replies), frame.
# Grouped by connection and channel, in arrival order within a channel.
# Masked: top-level \"ts\" (the hub's clock) written as 0; the levels of
# conflated updates sorted (HashSet order).
";

// ---- the session ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_session_reaches_clients_byte_for_byte() {
    let recording = fixtures().join("session.ndjson");
    let golden = fixtures().join("golden.txt");
    if bless() {
        std::fs::create_dir_all(fixtures()).unwrap();
        write_recording(&recording);
    }
    let (markets, epoch, events) = read_recording(&recording);
    assert_eq!(epoch, EPOCH);
    let (upstream, rx) = mpsc::channel(64);
    let feed = GatedFeed {
        markets,
        epoch,
        events: Mutex::new(Some(rx)),
    };
    let hub = hub::app::start_with_feed(&common::test_config(|_| {}), Arc::new(feed), None)
        .await
        .expect("hub starts on the gated feed");

    // Both pairs' first snapshots, before anyone subscribes.
    let mut events = events.into_iter().peekable();
    while let Some(e) = events.next_if(|e| matches!(e, MarketEvent::Snapshot { .. })) {
        upstream.send(e).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while !hub.context.markets.cold_pairs().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "books not loaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut probe = Client::connect(&hub, "probe").await;
    let mut probe_id = 0;
    let mut heart = Client::connect(&hub, "heartbeat").await;
    heart
        .send(json!({"op": "subscribe", "id": 1, "channels": ["heartbeat", "heartbeat@1000ms"]}))
        .await;
    let mut main = Client::connect(&hub, "main").await;
    let mut channels = public_channels();
    channels.push(format!("book.{OTHER}"));
    main.send(json!({"op": "subscribe", "id": 1, "channels": channels}))
        .await;
    main.until_type("subscribed").await;
    tick_barrier(&mut probe, &mut probe_id).await;

    let mut late: Option<Client> = None;
    let mut n = 0;
    while let Some(event) = events.next() {
        n += 1;
        let (channel, seq) = marker(&event).expect("every later event is PAIR's");
        let last = events.peek().is_none();
        upstream.send(event).await.unwrap();
        main.until_seq(&channel, seq).await;
        if last {
            if let Some(late) = late.as_mut() {
                late.until_seq(&channel, seq).await;
            }
            break;
        }
        tick_barrier(&mut probe, &mut probe_id).await;
        if n == 4 {
            // After the best ask went: a client that resumes `book` from
            // history, resumes `trades` in an old epoch, subscribes to
            // conflated channels, pings and errs.
            let mut c = Client::connect(&hub, "late").await;
            c.send(json!({"op": "subscribe", "id": 10,
                "channels": [format!("book.{PAIR}"), format!("trades.{PAIR}"),
                             format!("depth5.{PAIR}@100ms"), format!("ticker.{PAIR}@1000ms"),
                             format!("book.{PAIR}")],
                "resume": {
                    format!("book.{PAIR}"): {"epoch": EPOCH, "seq": 101},
                    format!("trades.{PAIR}"): {"epoch": "0ld", "seq": 1},
                    format!("depth5.{PAIR}@100ms"): {"epoch": EPOCH, "seq": 1}}}))
                .await;
            c.until_type("subscribed").await;
            tick_barrier(&mut probe, &mut probe_id).await;
            c.send(json!({"op": "ping", "id": 11})).await;
            c.until_type("pong").await;
            c.send(json!({"op": "dance", "id": 12})).await;
            c.until_type("error").await;
            c.send(json!({"op": "subscribe", "id": 13, "channels": ["book.FOO-BAR"]}))
                .await;
            c.until_type("error").await;
            c.send(json!({"op": "subscribe", "id": 14, "channels": [format!("depth3.{PAIR}")]}))
                .await;
            c.until_type("error").await;
            c.send(json!({"op": "unsubscribe", "id": 15,
                "channels": [format!("depth5.{PAIR}@100ms"), format!("ticker.{PAIR}")]}))
                .await;
            c.until_type("unsubscribed").await;
            late = Some(c);
        }
    }
    heart.until_type("subscribed").await;
    heart
        .until("the first heartbeat", |v| {
            v["type"] == "heartbeat" && v["seq"] == 1
        })
        .await;
    heart
        .until("the second heartbeat", |v| {
            v["type"] == "heartbeat" && v["seq"] == 2
        })
        .await;

    let mut text = HEADER.to_owned();
    for client in [Some(&main), late.as_ref(), Some(&heart)]
        .into_iter()
        .flatten()
    {
        render(client, &mut text);
    }
    hub.stop().await;
    if bless() {
        std::fs::write(&golden, &text).unwrap();
        println!("blessed {}", golden.display());
        return;
    }
    let want = std::fs::read_to_string(&golden).expect("the golden file (NAX_BLESS=1 writes it)");
    if want != text {
        let got_path = std::env::temp_dir().join("wire_golden.got.txt");
        std::fs::write(&got_path, &text).unwrap();
        let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), text.lines().collect());
        let first = w
            .iter()
            .zip(&g)
            .position(|(a, b)| a != b)
            .unwrap_or(w.len().min(g.len()));
        panic!(
            "wire output differs from {} at line {} (whole output in {}):\n want: {}\n  got: {}\n({} lines wanted, {} got)",
            golden.display(),
            first + 1,
            got_path.display(),
            w.get(first).unwrap_or(&"<end>"),
            g.get(first).unwrap_or(&"<end>"),
            w.len(),
            g.len()
        );
    }
}
