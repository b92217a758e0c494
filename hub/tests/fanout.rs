//! Acceptance tests of the fan-out: many clients on a busy book each keep a
//! correct book (snapshot + updates, `prev_seq` chains, checksums), a slow
//! client is conflated or closed without disturbing the others, and an
//! upstream resync reaches clients as a `snapshot` with `reason: "resync"`.

use crate::common;

use common::Ws;
use feeds::replay::{Recorder, ReplayFeed, ReplaySpeed};
use feeds::{MarketEvent, SnapshotReason};
use futures_util::StreamExt;
use orderbook::{L2Book, MarketSpec, Price, Qty, Side};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

const PAIR: &str = "BTC-USD";

/// A side of a book as the wire shows it: (price, qty) strings, best first.
type WireLevels = Vec<(String, String)>;

// ---- small helpers -----------------------------------------------------

/// Microseconds since the Unix epoch (a venue timestamp).
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

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
    let default = feeds::sandbox_pairs::default_pairs()
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

/// Book changes the driven feed sends in the 50-client test: as many as
/// 20 s of the sandbox at 2,000 events/s make on one of its four pairs.
const EVENTS: u64 = 10_000;
/// The most the driven feed sends per second (the test may go slower: it
/// never runs ahead of the healthy clients by more than one batch).
const EVENTS_PER_SEC: u64 = 1_000;
/// Changes sent before the feed waits for every healthy client to have
/// read them: ~20 KB of raw updates per client, well within the 64 KiB
/// queue the test gives each.
const BATCH: u64 = 100;
/// Longest wait for any one awaited event of the test (a client's
/// subscription, every healthy client reading a batch, the slow client
/// being conflated, the drain).
const WAIT: Duration = Duration::from_secs(60);

/// A market feed the test drives: one pair; the hub's one subscription
/// gets the events the test sends, when it sends them.
struct DrivenFeed {
    spec: MarketSpec,
    stream: std::sync::Mutex<Option<feeds::MarketStream>>,
}

#[async_trait::async_trait]
impl feeds::MarketFeed for DrivenFeed {
    fn markets(&self) -> Vec<MarketSpec> {
        vec![self.spec.clone()]
    }

    async fn subscribe(&self) -> Result<feeds::MarketStream, feeds::VenueError> {
        self.stream
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| feeds::VenueError::Unavailable("the driven feed streams once".into()))
    }
}

/// The driven feed's book of [`PAIR`]: levels 1.00 apart, at most 100 a
/// side, bids below and asks above 64,000.00 (never crossed); each change
/// sets or removes one of the top 60 levels of a side, so that the book,
/// depth50 and conflated channels all move with it.
struct DrivenBook {
    spec: MarketSpec,
    book: L2Book,
    seq: u64,
    rng: rand::rngs::StdRng,
}

impl DrivenBook {
    const MID: u64 = 6_400_000;
    const STEP: u64 = 100;

    fn new(spec: MarketSpec) -> Self {
        use rand::SeedableRng as _;
        DrivenBook {
            spec,
            book: L2Book::new(),
            seq: 1,
            rng: rand::rngs::StdRng::seed_from_u64(50),
        }
    }

    fn price(side: Side, k: u64) -> Price {
        match side {
            Side::Buy => Price(Self::MID - k * Self::STEP),
            Side::Sell => Price(Self::MID + k * Self::STEP),
        }
    }

    /// The first event: a `Subscribe` snapshot of 40 levels a side.
    fn snapshot(&mut self) -> MarketEvent {
        let side = |s| -> Vec<(Price, Qty)> {
            (1..=40)
                .map(|k| (Self::price(s, k), Qty(self.spec.min_qty.0 * (k % 7 + 1))))
                .collect()
        };
        let (bids, asks) = (side(Side::Buy), side(Side::Sell));
        self.book.apply_snapshot(&bids, &asks).unwrap();
        MarketEvent::Snapshot {
            pair: Arc::from(PAIR),
            reason: SnapshotReason::Subscribe,
            seq: self.seq,
            trade_seq: 0,
            venue_ts: now_micros(),
            bids,
            asks,
        }
    }

    /// The next change; `top` sets the best bid (a change every channel
    /// of the pair shows).
    fn change(&mut self, top: bool) -> MarketEvent {
        use rand::Rng as _;
        let side = if top || self.rng.gen_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        };
        let k = if top { 1 } else { self.rng.gen_range(1..=60) };
        let price = Self::price(side, k);
        let present = !self.book.qty_at(side, price).is_zero();
        let qty = if present && !top && self.rng.gen_bool(0.3) {
            Qty(0)
        } else {
            Qty(self.spec.min_qty.0 * self.rng.gen_range(1..=50))
        };
        let delta = orderbook::BookDelta { side, price, qty };
        self.book.apply_delta(delta);
        self.seq += 1;
        MarketEvent::Delta {
            pair: Arc::from(PAIR),
            seq: self.seq,
            venue_ts: now_micros(),
            deltas: vec![delta],
        }
    }
}

/// What a client reports while it runs: the seq and checksum of its book
/// after each message (`None` until its subscribe snapshot).
type Progress = watch::Receiver<Option<(u64, u32)>>;

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

/// Runs one client: subscribe, check every message (reporting its book's
/// seq and checksum on `progress`) until `stop` is set. The slow client
/// reads one frame per 200 ms until then, and afterwards drains at full
/// speed until its book channel reaches `final_seq` (or the hub closed it).
async fn run_client(
    hub_addr: std::net::SocketAddr,
    spec: MarketSpec,
    name: String,
    role: Role,
    progress: watch::Sender<Option<(u64, u32)>>,
    mut stop: watch::Receiver<Option<u64>>,
) -> Outcome {
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
    // tb3939840); a slow client on book updates alone would take long to
    // fill it and back up into its 64 KiB hub queue. depth50 (~3 KB per
    // change) gets it there within a few thousand changes.
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
    let reply = common::recv_within(&mut ws, WAIT.as_secs()).await;
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
    loop {
        let final_seq = *stop.borrow();
        if let Some(final_seq) = final_seq {
            if role != Role::Slow || out.client.last_seq >= final_seq {
                break;
            }
        }
        // The slow client reads one frame every 200 ms until the stop.
        if role == Role::Slow && final_seq.is_none() {
            tokio::select! {
                _ = sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => continue,
            }
        }
        let next = if final_seq.is_some() {
            match timeout(WAIT, ws.next()).await {
                Ok(next) => next,
                Err(_) => {
                    out.unexpected
                        .push(format!("no message for {WAIT:?} while draining"));
                    break;
                }
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
                    _ => {
                        out.client.on_message(&v);
                        let c = &out.client;
                        progress.send_replace(Some((c.last_seq, c.book.checksum())));
                    }
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

/// A running client of the test: its task and what it reports.
struct Running {
    name: String,
    role: Role,
    progress: Progress,
    task: tokio::task::JoinHandle<Outcome>,
}

/// Starts a client and waits until it holds its subscribe snapshot.
async fn join(
    hub: &hub::app::RunningHub,
    spec: &MarketSpec,
    name: String,
    role: Role,
    stop: &watch::Receiver<Option<u64>>,
) -> Running {
    let (tx, mut progress) = watch::channel(None);
    let task = tokio::spawn(run_client(
        hub.addr,
        spec.clone(),
        name.clone(),
        role,
        tx,
        stop.clone(),
    ));
    timeout(WAIT, progress.wait_for(Option::is_some))
        .await
        .unwrap_or_else(|_| panic!("{name}: no subscribe snapshot within {WAIT:?}"))
        .unwrap_or_else(|_| panic!("{name}: ended before its subscribe snapshot"));
    Running {
        name,
        role,
        progress,
        task,
    }
}

/// Waits until `until` holds for what every client in `clients` reports;
/// panics naming the first that does not get there within [`WAIT`].
async fn wait_all<'a>(
    clients: impl IntoIterator<Item = &'a mut Running>,
    what: &str,
    until: impl Fn((u64, u32)) -> bool,
) {
    for c in clients {
        let reached = timeout(WAIT, c.progress.wait_for(|p| p.is_some_and(&until)))
            .await
            .map(|seen| seen.is_ok());
        match reached {
            Ok(true) => {}
            Ok(false) => panic!("{}: stopped before {what}", c.name),
            Err(_) => panic!(
                "{}: not at {what} within {WAIT:?} (at {:?})",
                c.name,
                *c.progress.borrow()
            ),
        }
    }
}

/// The slow-consumer conflations and closes `GET /metrics` counts.
async fn slow_consumer_events(addr: std::net::SocketAddr) -> f64 {
    let (status, text) = common::http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|l| {
            l.starts_with("nax_slow_consumer_conflations_total")
                || l.starts_with("nax_slow_consumer_closes_total")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// 50 clients on a busy book: 30 raw from the start, 10 joining while it
/// moves, 9 on the 100 ms conflated channel, one slow reader. The test
/// drives the feed, at most [`EVENTS_PER_SEC`] and never more than a batch
/// ahead of the healthy clients, so that "a healthy client is never
/// conflated" does not depend on how fast this machine runs them; the
/// slow client reads 5 frames a second whatever the machine, and the feed
/// goes on until the hub has conflated or closed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_on_a_busy_book_stay_consistent_and_a_slow_one_is_contained() {
    let started = Instant::now();
    let spec = feeds::sandbox_pairs::default_pairs()
        .into_iter()
        .find(|p| p.spec.symbol == PAIR)
        .unwrap()
        .spec;
    let mut market = DrivenBook::new(spec.clone());
    let (feed_tx, feed_rx) = tokio::sync::mpsc::channel(4 * BATCH as usize);
    feed_tx.send(market.snapshot()).await.unwrap();
    let feed = DrivenFeed {
        spec: spec.clone(),
        stream: std::sync::Mutex::new(Some(feeds::MarketStream {
            epoch: "f1f7".into(),
            events: feed_rx,
        })),
    };
    let hub = hub::app::start_with_feed(
        &common::test_config(|c| c.limits.outbound_queue_bytes = 65_536),
        Arc::new(feed),
        None,
    )
    .await
    .expect("hub starts on the driven feed");
    common::wait_ready(&hub).await;
    assert_eq!(market_spec(hub.addr, PAIR).await, spec);
    let slow_before = slow_consumer_events(hub.addr).await;
    let (stop_tx, stop_rx) = watch::channel(None);

    // Lockstepped: raw and late clients. Not: the conflated ones (10
    // messages a second cannot back up) and the slow one.
    let mut healthy = Vec::new();
    let mut others = Vec::new();
    for i in 0..30 {
        healthy.push(join(&hub, &spec, format!("raw-{i:02}"), Role::Raw, &stop_rx).await);
    }
    for i in 0..9 {
        others.push(join(&hub, &spec, format!("100ms-{i}"), Role::Conflated, &stop_rx).await);
    }
    others.push(join(&hub, &spec, "slow".into(), Role::Slow, &stop_rx).await);
    let mut late = (0..10u64).map(|i| (2_000 + 500 * i, format!("late-{i:02}")));
    let mut next_late = late.next();

    let feed_started = Instant::now();
    let mut sent = 0u64;
    let mut slow_contained = false;
    while sent < EVENTS || !slow_contained {
        assert!(
            started.elapsed() < 10 * WAIT,
            "the slow client was neither conflated nor closed after {sent} changes"
        );
        // A late client joins the moving book (the feed waits for its
        // snapshot, as for every healthy client's progress).
        if next_late.as_ref().is_some_and(|(at, _)| sent >= *at) {
            let (_, name) = next_late.take().unwrap();
            healthy.push(join(&hub, &spec, name, Role::Late, &stop_rx).await);
            next_late = late.next();
        }
        for _ in 0..BATCH {
            sleep_until(feed_started + Duration::from_micros(sent * 1_000_000 / EVENTS_PER_SEC))
                .await;
            feed_tx.send(market.change(false)).await.unwrap();
            sent += 1;
        }
        let seq = market.seq;
        wait_all(healthy.iter_mut(), &format!("seq {seq}"), |(s, _)| s >= seq).await;
        if !slow_contained && sent.is_multiple_of(1_000) {
            slow_contained = slow_consumer_events(hub.addr).await > slow_before;
        }
    }
    // A last change every channel shows; then every client holds the
    // final book.
    feed_tx.send(market.change(true)).await.unwrap();
    let final_seq = market.seq;
    let final_checksum = market.book.checksum();
    wait_all(healthy.iter_mut(), "the final seq", |(s, _)| s == final_seq).await;
    let conflated = others.iter_mut().filter(|c| c.role == Role::Conflated);
    wait_all(conflated, "the final book", |(_, sum)| {
        sum == final_checksum
    })
    .await;
    stop_tx.send_replace(Some(final_seq));

    let mut outcomes = Vec::new();
    for c in healthy.into_iter().chain(others) {
        let o = timeout(WAIT, c.task)
            .await
            .unwrap_or_else(|_| panic!("{} finishes", c.name))
            .expect("client task");
        outcomes.push(o);
    }
    let (view, hub_bids, hub_asks) = hub_book(hub.addr, PAIR).await;
    let elapsed = started.elapsed();

    println!(
        "{sent} changes sent in {:.1} s; the slow client contained",
        feed_started.elapsed().as_secs_f64()
    );
    println!(
        "hub book seq {} ({} bids, {} asks, checksum {}), feed seq {final_seq}; {:.1} s",
        view["seq"],
        hub_bids.len(),
        hub_asks.len(),
        view["checksum"],
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
    assert_eq!(view["seq"], final_seq, "the hub applied every change");
    assert_eq!(view["checksum"], json!(final_checksum));
    assert_eq!(wire_levels(&spec, &market.book, Side::Buy), hub_bids);
    assert_eq!(wire_levels(&spec, &market.book, Side::Sell), hub_asks);
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
    hub.stop().await;
}

// ---- upstream resync -----------------------------------------------------

/// Writes a recording: `Subscribe` snapshots of every default pair, BTC-USD
/// deltas 101..=103, a `Resync` snapshot at seq 200 with other levels, then
/// deltas 201..=204; `venue_ts` spaced so a client can subscribe before the
/// resync. Returns the resync snapshot's levels as the wire shows them.
fn write_resync_recording(path: &std::path::Path) -> (WireLevels, WireLevels) {
    let pairs = feeds::sandbox_pairs::default_pairs();
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
    let pairs = feeds::sandbox_pairs::default_pairs();
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
    // ETH-USD's snapshot is the replay's first event, BTC-USD's comes 1 s
    // later: wait for the first to be applied (a loaded machine can take
    // a moment), well before the second is due.
    let started = std::time::Instant::now();
    while hub.context.markets.cold_pairs() != vec![PAIR.to_string()]
        && started.elapsed() < Duration::from_millis(800)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
