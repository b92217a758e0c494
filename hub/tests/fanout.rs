//! Acceptance tests of the fan-out: many clients on a busy book each keep a
//! correct book (snapshot + updates, `prev_seq` chains, checksums), a slow
//! client is conflated or closed without disturbing the others, and an
//! upstream resync reaches clients as a `snapshot` with `reason: "resync"`.

mod common;

use common::Ws;
use feeds::replay::{Recorder, ReplayFeed, ReplaySpeed};
use feeds::{MarketEvent, SnapshotReason};
use futures_util::StreamExt;
use orderbook::{L2Book, MarketSpec, Price, Qty, Side};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

const PAIR: &str = "BTC-USD";

/// A side of a book as the wire shows it: (price, qty) strings, best first.
type WireLevels = Vec<(String, String)>;

// ---- small helpers -----------------------------------------------------

/// `GET path`: the status code and the JSON body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let (status, body) = common::http_get(addr, path).await;
    (status, serde_json::from_str(&body).expect("JSON body"))
}

/// The pair's spec as `GET /markets` describes it.
async fn market_spec(addr: std::net::SocketAddr, pair: &str) -> MarketSpec {
    let (status, markets) = http_get(addr, "/markets").await;
    assert_eq!(status, 200);
    let m = markets
        .as_array()
        .expect("markets list")
        .iter()
        .find(|m| m["pair"] == pair)
        .expect("pair listed");
    let scale = |k: &str| m[k].as_u64().expect("scale") as u8;
    let (ps, qs) = (scale("price_scale"), scale("qty_scale"));
    let min_qty = orderbook::decimal::parse_scaled(m["min_qty"].as_str().unwrap(), qs).unwrap();
    let spec = MarketSpec::new(pair, ps, qs, Qty(min_qty)).expect("valid spec");
    let default = feeds::markets::default_pairs()
        .into_iter()
        .find(|p| p.spec.symbol == pair)
        .map(|p| p.spec);
    if let Some(default) = default {
        assert_eq!(spec, default, "GET /markets agrees with the default pairs");
    }
    spec
}

/// The hub's cached book of `pair` (up to 1 000 levels a side).
async fn hub_book(addr: std::net::SocketAddr, pair: &str) -> (Value, WireLevels, WireLevels) {
    let (status, view) = http_get(addr, &format!("/markets/{pair}/orderbook?depth=1000")).await;
    assert_eq!(status, 200, "{view}");
    let side = |k: &str| {
        view[k]
            .as_array()
            .expect("levels")
            .iter()
            .map(|l| {
                (
                    l[0].as_str().unwrap().to_string(),
                    l[1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (bids, asks) = (side("bids"), side("asks"));
    (view, bids, asks)
}

/// A WebSocket client whose socket has a small receive buffer, so that
/// what a slow reader leaves unread piles up on the hub's side (its send
/// buffer, then its outbound queue) rather than in this client's kernel.
async fn connect_small_window(addr: std::net::SocketAddr) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    let stream = socket.connect(addr).await.expect("tcp connect");
    let url = format!("ws://{addr}/ws");
    tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .expect("websocket handshake")
        .0
}

fn wire_levels(spec: &MarketSpec, book: &L2Book, side: Side) -> WireLevels {
    book.top_n(side, 1000)
        .map(|l| (spec.format_price(l.price), spec.format_qty(l.qty)))
        .collect()
}

fn parse_levels(spec: &MarketSpec, v: &Value) -> Result<Vec<(Price, Qty)>, String> {
    v.as_array()
        .ok_or("levels not an array")?
        .iter()
        .map(|l| {
            let (p, q) = (l[0].as_str(), l[1].as_str());
            let (Some(p), Some(q)) = (p, q) else {
                return Err(format!("bad level {l}"));
            };
            // Exactly the pair's scale (the checksum depends on it).
            if spec.format_price(spec.parse_price(p).map_err(|e| e.to_string())?) != p
                || spec.format_qty(spec.parse_qty(q).map_err(|e| e.to_string())?) != q
            {
                return Err(format!("level {l} not in the pair's scale"));
            }
            Ok((spec.parse_price(p).unwrap(), spec.parse_qty(q).unwrap()))
        })
        .collect()
}

// ---- one client's view of a book channel --------------------------------

/// A client's book channel, checked message by message against
/// docs/PROTOCOL.md "Books and the checksum".
struct BookClient {
    spec: MarketSpec,
    channel: String,
    raw: bool,
    book: L2Book,
    epoch: Option<String>,
    last_seq: u64,
    have_snapshot: bool,
    updates: u64,
    snapshots: u64,
    slow_consumer: u64,
    resyncs: u64,
    /// Checks after the first `slow_consumer` snapshot (chain + checksum).
    checked_after_slow: u64,
    failures: u64,
    first_failures: Vec<String>,
}

impl BookClient {
    fn new(spec: MarketSpec, channel: &str) -> Self {
        BookClient {
            spec,
            channel: channel.to_string(),
            // Only the raw book channel numbers every change +1.
            raw: channel.starts_with("book.") && !channel.contains('@'),
            book: L2Book::new(),
            epoch: None,
            last_seq: 0,
            have_snapshot: false,
            updates: 0,
            snapshots: 0,
            slow_consumer: 0,
            resyncs: 0,
            checked_after_slow: 0,
            failures: 0,
            first_failures: Vec::new(),
        }
    }

    fn fail(&mut self, what: String) {
        self.failures += 1;
        if self.first_failures.len() < 5 {
            self.first_failures.push(what);
        }
    }

    /// Applies one channel message and checks it.
    fn on_message(&mut self, v: &Value) {
        if v["channel"] != self.channel.as_str() {
            self.fail(format!("message of another channel: {v}"));
            return;
        }
        let ty = v["type"].as_str().unwrap_or_default();
        let (Some(seq), Some(prev)) = (v["seq"].as_u64(), v["prev_seq"].as_u64()) else {
            self.fail(format!("no seq/prev_seq: {v}"));
            return;
        };
        let epoch = v["epoch"].as_str().unwrap_or_default().to_string();
        match &self.epoch {
            None => self.epoch = Some(epoch),
            Some(e) if *e != epoch => self.fail(format!("epoch changed {e} -> {epoch}")),
            Some(_) => {}
        }
        if prev != self.last_seq {
            self.fail(format!(
                "{ty} seq {seq}: prev_seq {prev} != last seq {}",
                self.last_seq
            ));
        }
        let bids = parse_levels(&self.spec, &v["bids"]);
        let asks = parse_levels(&self.spec, &v["asks"]);
        let (bids, asks) = match (bids, asks) {
            (Ok(b), Ok(a)) => (b, a),
            (Err(e), _) | (_, Err(e)) => {
                self.fail(format!("{ty} seq {seq}: {e}"));
                self.last_seq = seq;
                return;
            }
        };
        match ty {
            "snapshot" => {
                self.snapshots += 1;
                match v["reason"].as_str() {
                    Some("subscribe") if self.snapshots == 1 => {}
                    Some("slow_consumer") => self.slow_consumer += 1,
                    Some("resync") => self.resyncs += 1,
                    other => self.fail(format!("snapshot seq {seq} with reason {other:?}")),
                }
                if self.have_snapshot && seq < self.last_seq {
                    self.fail(format!("snapshot seq {seq} below {}", self.last_seq));
                }
                if let Err(e) = self.book.apply_snapshot(&bids, &asks) {
                    self.fail(format!("snapshot seq {seq} refused: {e}"));
                }
                self.have_snapshot = true;
            }
            // A depthN message replaces the client's (top-N) book; its
            // checksum covers the top 10, like the book's.
            "depth" => {
                match v["reason"].as_str() {
                    None => {}
                    Some("slow_consumer") => self.slow_consumer += 1,
                    Some("resync") => self.resyncs += 1,
                    other => self.fail(format!("depth seq {seq} with reason {other:?}")),
                }
                if let Err(e) = self.book.apply_snapshot(&bids, &asks) {
                    self.fail(format!("depth seq {seq} refused: {e}"));
                }
                self.have_snapshot = true;
                self.updates += 1;
            }
            "update" => {
                self.updates += 1;
                if !self.have_snapshot {
                    self.fail(format!("update seq {seq} before any snapshot"));
                }
                if self.raw && seq != self.last_seq + 1 {
                    self.fail(format!(
                        "raw update seq {seq} after {}: not +1",
                        self.last_seq
                    ));
                }
                if !self.raw && seq <= self.last_seq {
                    self.fail(format!("update seq {seq} after {}", self.last_seq));
                }
                for (side, levels) in [(Side::Buy, &bids), (Side::Sell, &asks)] {
                    for &(price, qty) in levels {
                        self.book
                            .apply_delta(orderbook::BookDelta { side, price, qty });
                    }
                }
            }
            other => {
                self.fail(format!("unexpected message type {other}: {v}"));
                return;
            }
        }
        self.last_seq = seq;
        let checksum = self.book.checksum();
        if v["checksum"].as_u64() != Some(u64::from(checksum)) {
            self.fail(format!(
                "{ty} seq {seq}: checksum {} != rebuilt {checksum}",
                v["checksum"]
            ));
        }
        if self.slow_consumer > 0 {
            self.checked_after_slow += 1;
        }
    }
}

// ---- the 50-client acceptance test --------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Raw,
    Late,
    Conflated,
    Slow,
}

struct Outcome {
    name: String,
    role: Role,
    client: BookClient,
    /// The slow client's second channel (`depth50`), there to make it
    /// receive enough bytes to back up into its hub queue quickly.
    ballast: Option<BookClient>,
    close_code: Option<u16>,
    /// Whether the stream ended (closed by the hub or broken).
    ended: bool,
    unexpected: Vec<String>,
}

/// Runs one client: subscribe, check every message until `stop` is set,
/// then drain whatever is still in flight (until 1 s without a message).
async fn run_client(
    hub_addr: std::net::SocketAddr,
    spec: MarketSpec,
    name: String,
    role: Role,
    join_after: Duration,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    sleep(join_after).await;
    let channel = match role {
        Role::Conflated => format!("book.{PAIR}@100ms"),
        _ => format!("book.{PAIR}"),
    };
    let mut ws = if role == Role::Slow {
        connect_small_window(hub_addr).await
    } else {
        let url = format!("ws://{hub_addr}/ws");
        tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects")
            .0
    };
    // The hub's socket send buffer autotunes to ~4 MB on loopback (`ss -tm`:
    // tb3939840); a slow client on book updates alone (~100 KB/s here)
    // would take ~40 s to fill it and back up into its 64 KiB hub queue.
    // depth50 (~3 KB per change) gets it there in a few seconds.
    let ballast = format!("depth50.{PAIR}");
    let channels = if role == Role::Slow {
        vec![channel.clone(), ballast.clone()]
    } else {
        vec![channel.clone()]
    };
    common::send(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "channels": channels}),
    )
    .await;
    let reply = common::recv_within(&mut ws, 10).await;
    assert_eq!(reply["type"], "subscribed", "{name}: {reply}");
    assert_eq!(reply["id"], 1, "{name}: {reply}");

    let mut out = Outcome {
        name,
        role,
        client: BookClient::new(spec.clone(), &channel),
        ballast: (role == Role::Slow).then(|| BookClient::new(spec, &ballast)),
        close_code: None,
        ended: false,
        unexpected: Vec::new(),
    };
    let mut draining = false;
    loop {
        if !draining && *stop.borrow() {
            draining = true;
        }
        // The slow client reads one frame every 200 ms until the drain.
        if role == Role::Slow && !draining {
            tokio::select! {
                _ = sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => { draining = true; }
            }
        }
        let next = if draining {
            match timeout(Duration::from_secs(1), ws.next()).await {
                Ok(next) => next,
                Err(_) => break, // quiet for 1 s: drained
            }
        } else {
            tokio::select! {
                next = ws.next() => next,
                _ = stop.changed() => continue,
            }
        };
        match next {
            None | Some(Err(_)) => {
                out.ended = true;
                break;
            }
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("hub sends JSON");
                match &mut out.ballast {
                    Some(b) if v["channel"] == ballast.as_str() => b.on_message(&v),
                    _ => out.client.on_message(&v),
                }
            }
            Some(Ok(Message::Close(frame))) => {
                out.close_code = frame.map(|f| u16::from(f.code));
                out.ended = true;
                break;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(other)) => out.unexpected.push(format!("{other:?}")),
        }
    }
    if !out.ended {
        let _ = ws.close(None).await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_on_a_busy_book_stay_consistent_and_a_slow_one_is_contained() {
    const RUN: Duration = Duration::from_secs(20);
    let hub = common::start_hub(|c| {
        c.venue.events_per_sec = 2_000;
        c.limits.outbound_queue_bytes = 65_536;
    })
    .await;
    let spec = market_spec(hub.addr, PAIR).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();

    let mut roles = Vec::new();
    for i in 0..30 {
        roles.push((format!("raw-{i:02}"), Role::Raw, Duration::ZERO));
    }
    for i in 0..10u64 {
        // 5.0 s, 5.5 s, ... 9.5 s
        let at = Duration::from_millis(5_000 + 500 * i);
        roles.push((format!("late-{i:02}"), Role::Late, at));
    }
    for i in 0..9 {
        roles.push((format!("100ms-{i}"), Role::Conflated, Duration::ZERO));
    }
    roles.push(("slow".to_string(), Role::Slow, Duration::ZERO));
    assert_eq!(roles.len(), 50);

    let tasks: Vec<_> = roles
        .into_iter()
        .map(|(name, role, at)| {
            tokio::spawn(run_client(
                hub.addr,
                spec.clone(),
                name,
                role,
                at,
                stop_rx.clone(),
            ))
        })
        .collect();

    sleep(RUN.saturating_sub(started.elapsed())).await;
    // The upstream stream ends: the hub's book stops changing.
    let venue = hub.venue.as_ref().expect("sandbox venue");
    let venue_book = venue.book(PAIR).expect("venue has the pair");
    timeout(Duration::from_secs(5), venue.stop())
        .await
        .expect("venue stops");
    stop_tx.send(true).unwrap();

    let mut outcomes = Vec::new();
    for t in tasks {
        let o = timeout(Duration::from_secs(15), t)
            .await
            .expect("client finishes draining")
            .expect("client task");
        outcomes.push(o);
    }
    // Every event the venue sent has been applied by now (clients saw 1 s of quiet).
    let (view, hub_bids, hub_asks) = hub_book(hub.addr, PAIR).await;
    let elapsed = started.elapsed();

    println!(
        "hub book seq {} ({} bids, {} asks, checksum {}), venue seq at stop >= {}; {:.1} s",
        view["seq"],
        hub_bids.len(),
        hub_asks.len(),
        view["checksum"],
        venue_book.0,
        elapsed.as_secs_f64()
    );
    println!("client      updates snaps slow resync fails close last_seq");
    for o in &outcomes {
        let c = &o.client;
        println!(
            "{:10} {:8} {:5} {:4} {:6} {:5} {:>5} {}",
            o.name,
            c.updates,
            c.snapshots,
            c.slow_consumer,
            c.resyncs,
            c.failures,
            o.close_code.map_or("-".to_string(), |c| c.to_string()),
            c.last_seq
        );
        for f in &c.first_failures {
            println!("    {f}");
        }
        if let Some(b) = &o.ballast {
            println!(
                "  +{:8} {:8} {:5} {:4} {:6} {:5}       {}",
                "depth50",
                b.updates,
                b.snapshots,
                b.slow_consumer,
                b.resyncs,
                b.failures,
                b.last_seq
            );
            for f in &b.first_failures {
                println!("    {f}");
            }
        }
    }

    assert!(
        hub_bids.len() < 1000 && hub_asks.len() < 1000,
        "whole book compared"
    );
    let final_seq = view["seq"].as_u64().unwrap();
    assert!(
        final_seq >= venue_book.0,
        "the hub applied the venue's changes"
    );
    for o in &outcomes {
        let c = &o.client;
        assert!(o.unexpected.is_empty(), "{}: {:?}", o.name, o.unexpected);
        assert_eq!(
            c.failures, 0,
            "{}: chain/checksum failures {:?}",
            o.name, c.first_failures
        );
        assert!(c.snapshots >= 1, "{}: no snapshot", o.name);
        if o.role == Role::Slow {
            continue;
        }
        assert!(
            !o.ended,
            "{}: the hub closed a healthy client ({:?})",
            o.name, o.close_code
        );
        assert_eq!(
            c.slow_consumer, 0,
            "{}: a healthy client was conflated",
            o.name
        );
        assert_eq!(c.resyncs, 0, "{}: unexpected upstream resync", o.name);
        let min_updates = match o.role {
            Role::Raw => 2_000,
            Role::Late => 1_000,
            _ => 50,
        };
        assert!(
            c.updates >= min_updates,
            "{}: only {} updates",
            o.name,
            c.updates
        );
        if o.role != Role::Conflated {
            assert_eq!(
                c.last_seq, final_seq,
                "{}: did not reach the final seq",
                o.name
            );
        }
        assert_eq!(
            wire_levels(&spec, &c.book, Side::Buy),
            hub_bids,
            "{}: bids differ from GET orderbook",
            o.name
        );
        assert_eq!(
            wire_levels(&spec, &c.book, Side::Sell),
            hub_asks,
            "{}: asks differ from GET orderbook",
            o.name
        );
    }

    let slow = outcomes.iter().find(|o| o.role == Role::Slow).unwrap();
    let ballast = slow.ballast.as_ref().unwrap();
    assert_eq!(
        ballast.failures, 0,
        "slow client's depth50: {:?}",
        ballast.first_failures
    );
    match slow.close_code {
        Some(code) => assert_eq!(code, 4008, "slow client closed with {code}"),
        None => {
            assert!(
                !slow.ended,
                "slow client's stream broke without a close frame"
            );
            assert!(
                slow.client.slow_consumer >= 1,
                "slow client got neither a slow_consumer snapshot nor a 4008 close"
            );
            assert!(
                slow.client.checked_after_slow >= 1,
                "nothing checked after the slow_consumer snapshot"
            );
            // Drained at full speed at the end: it holds the final book too.
            assert_eq!(wire_levels(&spec, &slow.client.book, Side::Buy), hub_bids);
            assert_eq!(wire_levels(&spec, &slow.client.book, Side::Sell), hub_asks);
        }
    }
    assert!(elapsed < Duration::from_secs(40), "took {elapsed:?}");
    hub.stop().await;
}

// ---- upstream resync -----------------------------------------------------

/// Writes a recording: `Subscribe` snapshots of every default pair, BTC-USD
/// deltas 101..=103, a `Resync` snapshot at seq 200 with other levels, then
/// deltas 201..=204; `venue_ts` spaced so a client can subscribe before the
/// resync. Returns the resync snapshot's levels as the wire shows them.
fn write_resync_recording(path: &std::path::Path) -> (WireLevels, WireLevels) {
    let pairs = feeds::markets::default_pairs();
    let specs: Vec<MarketSpec> = pairs.iter().map(|p| p.spec.clone()).collect();
    let btc = specs.iter().find(|s| s.symbol == PAIR).unwrap().clone();
    let mut rec = Recorder::create(path, "r35y", &specs).unwrap();
    let t0: u64 = 1_763_940_000_000_000;
    let ms = |n: u64| t0 + n * 1_000;
    let px = |s: &str| btc.parse_price(s).unwrap();
    let qty = |s: &str| btc.parse_qty(s).unwrap();
    let name: Arc<str> = Arc::from(PAIR);

    for p in &pairs {
        // BTC-USD: levels 1.00 apart (the deltas below rely on it).
        let step = if p.spec.symbol == PAIR {
            100
        } else {
            (p.start_price.0 / 1_000).max(1)
        };
        let start = p.start_price.0;
        let (seq, pair): (u64, Arc<str>) = if p.spec.symbol == PAIR {
            (100, name.clone())
        } else {
            (1, Arc::from(p.spec.symbol.as_str()))
        };
        rec.write(&MarketEvent::Snapshot {
            pair,
            reason: SnapshotReason::Subscribe,
            seq,
            trade_seq: 0,
            venue_ts: ms(0),
            bids: (1..=15)
                .map(|i| (Price(start - i * step), Qty(p.spec.min_qty.0 * i)))
                .collect(),
            asks: (1..=15)
                .map(|i| (Price(start + i * step), Qty(p.spec.min_qty.0 * (20 - i))))
                .collect(),
        })
        .unwrap();
    }
    let delta = |seq, at, side, price: &str, q: &str| MarketEvent::Delta {
        pair: name.clone(),
        seq,
        venue_ts: ms(at),
        deltas: vec![orderbook::BookDelta {
            side,
            price: px(price),
            qty: qty(q),
        }],
    };
    rec.write(&delta(101, 500, Side::Buy, "63999.00", "2.000000"))
        .unwrap();
    rec.write(&delta(102, 600, Side::Sell, "64001.00", "0.000000"))
        .unwrap();
    rec.write(&delta(103, 700, Side::Buy, "63999.50", "0.750000"))
        .unwrap();
    // The venue lost us: a new book, seq jumps from 103 to 200.
    let bids: Vec<_> = (0..12)
        .map(|i| (Price(6_390_000 - i * 50), Qty(100_000 + i * 3_333)))
        .collect();
    let asks: Vec<_> = (0..12)
        .map(|i| (Price(6_391_000 + i * 50), Qty(200_000 + i * 7_777)))
        .collect();
    let wire = |ls: &[(Price, Qty)]| -> WireLevels {
        ls.iter()
            .map(|(p, q)| (btc.format_price(*p), btc.format_qty(*q)))
            .collect()
    };
    let resync_levels = (wire(&bids), wire(&asks));
    rec.write(&MarketEvent::Snapshot {
        pair: name.clone(),
        reason: SnapshotReason::Resync,
        seq: 200,
        trade_seq: 0,
        venue_ts: ms(1_000),
        bids,
        asks,
    })
    .unwrap();
    rec.write(&delta(201, 1_100, Side::Buy, "63900.00", "0.000000"))
        .unwrap();
    rec.write(&delta(202, 1_200, Side::Sell, "63910.00", "9.000000"))
        .unwrap();
    rec.write(&delta(203, 1_300, Side::Buy, "63905.00", "1.234567"))
        .unwrap();
    rec.write(&delta(204, 1_400, Side::Sell, "63909.50", "0.100000"))
        .unwrap();
    rec.finish().unwrap();
    resync_levels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_resync_reaches_clients_as_a_chained_resync_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resync.ndjson");
    let (resync_bids, resync_asks) = write_resync_recording(&path);
    let feed = ReplayFeed::open(&path, ReplaySpeed::Recorded).unwrap();
    let hub = hub::app::start_with_feed(
        &common::test_config(|_| {}),
        std::sync::Arc::new(feed),
        None,
    )
    .await
    .expect("hub starts on the replay");
    common::wait_ready(&hub).await;
    let spec = market_spec(hub.addr, PAIR).await;

    let channel = format!("book.{PAIR}");
    let mut ws = common::connect(&hub).await;
    common::send(
        &mut ws,
        json!({"op": "subscribe", "id": 7, "channels": [channel]}),
    )
    .await;
    let reply = common::recv(&mut ws).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    let mut client = BookClient::new(spec.clone(), &channel);
    let mut trace = Vec::new();
    let mut resync: Option<(Value, u64)> = None;
    // The recording ends at 1.4 s; stop once seq 204 is in.
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.last_seq != 204 {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = match timeout(left, common::recv_within(&mut ws, 10)).await {
            Ok(v) => v,
            Err(_) => panic!("seq 204 not reached; saw {trace:?}"),
        };
        let before = client.last_seq;
        client.on_message(&v);
        trace.push(format!(
            "{} {} prev {} {}",
            v["type"],
            v["seq"],
            v["prev_seq"],
            v["reason"].as_str().unwrap_or("")
        ));
        if v["type"] == "snapshot" && v["reason"] == "resync" {
            resync = Some((v.clone(), before));
        }
    }
    println!("resync test messages: {trace:?}");
    assert_eq!(client.failures, 0, "{:?}", client.first_failures);
    assert_eq!(client.snapshots, 2, "subscribe + resync: {trace:?}");
    let first = trace.first().unwrap();
    assert!(
        first.ends_with("subscribe"),
        "first is the subscribe snapshot: {trace:?}"
    );

    let (snap, prev_seen) = resync.expect("a resync snapshot");
    assert_eq!(snap["seq"], 200);
    assert_eq!(
        snap["prev_seq"],
        json!(prev_seen),
        "chains from the previous message"
    );
    assert_eq!(
        prev_seen, 103,
        "the client had seen every delta before the gap"
    );
    let levels = |v: &Value| -> WireLevels {
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| (l[0].as_str().unwrap().into(), l[1].as_str().unwrap().into()))
            .collect()
    };
    assert_eq!(levels(&snap["bids"]), resync_bids);
    assert_eq!(levels(&snap["asks"]), resync_asks);
    // 201..=204 follow the resync one by one (checked by BookClient: +1 and checksums).
    assert_eq!(client.updates, 3 + 4, "{trace:?}");

    let (view, bids, asks) = hub_book(hub.addr, PAIR).await;
    assert_eq!(view["seq"], 204);
    assert_eq!(wire_levels(&spec, &client.book, Side::Buy), bids);
    assert_eq!(wire_levels(&spec, &client.book, Side::Sell), asks);
    assert_eq!(view["checksum"], json!(client.book.checksum()));
    hub.stop().await;
}

// ---- subscribing before the book is warm ---------------------------------

/// A client that subscribes while its pair is still cold (no upstream
/// snapshot yet) gets an empty `subscribe` snapshot, then the first upstream
/// snapshot as a `resync` that chains from it, then updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_subscribed_before_the_first_snapshot_gets_the_book_when_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late-snapshot.ndjson");
    let pairs = feeds::markets::default_pairs();
    let spec_of = |sym: &str| {
        pairs
            .iter()
            .find(|p| p.spec.symbol == sym)
            .unwrap()
            .spec
            .clone()
    };
    let (btc, eth) = (spec_of(PAIR), spec_of("ETH-USD"));
    let t0: u64 = 1_763_940_000_000_000;
    let mut rec = Recorder::create(&path, "c01d", &[btc.clone(), eth]).unwrap();
    // ETH-USD is answered at once, BTC-USD only 1 s later.
    rec.write(&MarketEvent::Snapshot {
        pair: Arc::from("ETH-USD"),
        reason: SnapshotReason::Subscribe,
        seq: 1,
        trade_seq: 0,
        venue_ts: t0,
        bids: vec![(Price(319_900), Qty(100))],
        asks: vec![(Price(320_100), Qty(100))],
    })
    .unwrap();
    let name: Arc<str> = Arc::from(PAIR);
    rec.write(&MarketEvent::Snapshot {
        pair: name.clone(),
        reason: SnapshotReason::Subscribe,
        seq: 50,
        trade_seq: 0,
        venue_ts: t0 + 1_000_000,
        bids: vec![(Price(6_399_900), Qty(1_000_000))],
        asks: vec![(Price(6_400_100), Qty(2_000_000))],
    })
    .unwrap();
    for (seq, at_ms, qty) in [(51, 1_300, 1_500_000), (52, 1_600, 2_000_000)] {
        rec.write(&MarketEvent::Delta {
            pair: name.clone(),
            seq,
            venue_ts: t0 + at_ms * 1_000,
            deltas: vec![orderbook::BookDelta {
                side: Side::Buy,
                price: Price(6_399_900),
                qty: Qty(qty),
            }],
        })
        .unwrap();
    }
    rec.finish().unwrap();

    let feed = ReplayFeed::open(&path, ReplaySpeed::Recorded).unwrap();
    let hub = hub::app::start_with_feed(
        &common::test_config(|_| {}),
        std::sync::Arc::new(feed),
        None,
    )
    .await
    .expect("hub starts on the replay");
    let mut ws = common::connect(&hub).await;
    assert_eq!(hub.context.markets.cold_pairs(), vec![PAIR.to_string()]);
    let (status, ready) = http_get(hub.addr, "/ready").await;
    assert_eq!(status, 503, "{ready}");
    let channel = format!("book.{PAIR}");
    common::send(
        &mut ws,
        json!({"op":"subscribe","id":1,"channels":[channel]}),
    )
    .await;
    assert_eq!(common::recv(&mut ws).await["type"], "subscribed");
    let mut client = BookClient::new(btc.clone(), &channel);
    let mut trace = Vec::new();
    while client.last_seq != 52 {
        let v = match timeout(Duration::from_secs(5), common::recv(&mut ws)).await {
            Ok(v) => v,
            Err(_) => panic!("seq 52 not reached: {trace:?}"),
        };
        trace.push(format!(
            "{} {} prev {} {}",
            v["type"],
            v["seq"],
            v["prev_seq"],
            v["reason"].as_str().unwrap_or("")
        ));
        client.on_message(&v);
    }
    assert_eq!(client.failures, 0, "{:?} {trace:?}", client.first_failures);
    assert_eq!(
        trace,
        [
            "\"snapshot\" 0 prev 0 subscribe",
            "\"snapshot\" 50 prev 0 resync",
            "\"update\" 51 prev 50 ",
            "\"update\" 52 prev 51 ",
        ]
    );
    let (_, bids, asks) = hub_book(hub.addr, PAIR).await;
    assert_eq!(wire_levels(&btc, &client.book, Side::Buy), bids);
    assert_eq!(wire_levels(&btc, &client.book, Side::Sell), asks);
    hub.stop().await;
}
