//! One simulated trading UI: connects, subscribes to its channel set,
//! reads every frame and records what it saw (latency, bytes, seq chain,
//! checksums), until the run stops, the hub closes it, or a resume storm
//! makes it drop the connection and come back with `resume`.
//!
//! A client never retries a failed connect: a failure is a data point,
//! counted by kind. Slow clients (slow-mix) sleep after every frame and
//! use a small socket receive buffer, so the hub's outbound queue for them
//! fills up instead of the kernel's.

use crate::stats::{Counter, LatencyClass, Stats};
use crate::target::HubTarget;
use crate::verify::{BookCheck, ChainCheck, ChannelChecker};
use crate::wire::Header;
use futures_util::{SinkExt, StreamExt};
use orderbook::MarketSpec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// What one client does.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    /// Position in the run, 0-based; also picks the stats shard.
    pub index: usize,
    /// Channels to subscribe to, in order.
    pub channels: Arc<[String]>,
    /// Rebuild book/depth channels and verify every checksum.
    pub verify: bool,
    /// Read slowly (slow-mix).
    pub slow: bool,
}

/// What every client of a run shares.
#[derive(Debug)]
pub struct ClientEnv {
    pub target: HubTarget,
    /// Pair → scales, from `GET /markets` (empty: nothing is verified).
    pub markets: HashMap<String, MarketSpec>,
    pub stats: Arc<Stats>,
    pub connect_timeout: Duration,
    pub slow_delay: Duration,
    pub slow_recv_buffer: u32,
    pub reconnect_jitter: Duration,
    pub seed: u64,
    /// The server is nginx/nchan: no subscribe op, every frame is a
    /// message of the first planned channel.
    pub nchan: bool,
}

/// The run's broadcast signals: `stop` turns true once, `storm` counts
/// resume storms.
#[derive(Debug, Clone)]
pub struct Signals {
    pub stop: watch::Receiver<bool>,
    pub storm: watch::Receiver<u64>,
}

/// Why a session ended.
enum SessionEnd {
    /// The run is over; the client closed politely.
    Stopped,
    /// A resume storm: reconnect with `resume`.
    Storm,
    /// The hub or the network ended the connection.
    Lost,
}

/// Runs one client to the end of the run.
pub async fn run(plan: ClientPlan, env: Arc<ClientEnv>, mut signals: Signals) {
    let mut client = Client::new(plan, &env);
    let mut rng = StdRng::seed_from_u64(
        env.seed ^ (client.plan.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let mut resume = false;
    loop {
        if *signals.stop.borrow() {
            return;
        }
        let ws = match client.connect().await {
            Ok(ws) => ws,
            Err(kind) => {
                env.stats
                    .record(client.plan.index, |s| s.count(Counter::ConnectFailures, 1));
                env.stats.error(kind);
                return;
            }
        };
        env.stats.opened();
        let end = client.session(ws, resume, &mut signals).await;
        env.stats.closed();
        match end {
            SessionEnd::Stopped | SessionEnd::Lost => return,
            SessionEnd::Storm => {
                let jitter = env.reconnect_jitter.as_millis() as u64;
                let pause = Duration::from_millis(rng.gen_range(0..=jitter));
                tokio::select! {
                    _ = signals.stop.changed() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                resume = true;
            }
        }
    }
}

/// A client's state across its connections.
struct Client<'a> {
    plan: ClientPlan,
    env: &'a ClientEnv,
    checkers: HashMap<String, ChannelChecker>,
    next_id: i64,
    /// The pending subscribe: its id, when it was sent (for the round
    /// trip), and the same in µs since the epoch (messages ingested earlier
    /// are state or replay, not live).
    subscribe_id: i64,
    subscribe_sent: Instant,
    subscribe_sent_us: u64,
}

impl<'a> Client<'a> {
    fn new(plan: ClientPlan, env: &'a ClientEnv) -> Client<'a> {
        let checkers = plan
            .channels
            .iter()
            .map(|name| {
                let spec = plan
                    .verify
                    .then(|| crate::channel::ChannelInfo::parse(name).pair)
                    .flatten()
                    .and_then(|pair| env.markets.get(&pair).cloned());
                (name.clone(), ChannelChecker::new(name, spec))
            })
            .collect();
        Client {
            plan,
            env,
            checkers,
            next_id: 1,
            subscribe_id: 0,
            subscribe_sent: Instant::now(),
            subscribe_sent_us: 0,
        }
    }

    fn stats(&self) -> &Stats {
        &self.env.stats
    }

    /// TCP connect and WebSocket handshake, within the connect timeout.
    async fn connect(&self) -> Result<Ws, String> {
        let env = self.env;
        self.stats()
            .record(self.plan.index, |s| s.count(Counter::ConnectAttempts, 1));
        let started = Instant::now();
        let attempt = async {
            let addr = env.target.addr;
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(|e| format!("socket: {:?}", e.kind()))?;
            if self.plan.slow {
                // Best effort: the kernel may round or clamp it.
                let _ = socket.set_recv_buffer_size(env.slow_recv_buffer);
            }
            let stream = socket
                .connect(addr)
                .await
                .map_err(|e| format!("connect: {:?}", e.kind()))?;
            let _ = stream.set_nodelay(true);
            // tungstenite zero-fills this much of its buffer before every
            // read; a read here takes a few frames (8 KiB holds a hub
            // group of 32 book updates), so more is memset for nothing.
            let config = WebSocketConfig::default()
                .read_buffer_size(8 * 1024)
                .write_buffer_size(0);
            let (ws, _) = tokio_tungstenite::client_async_with_config(
                env.target.url.as_str(),
                stream,
                Some(config),
            )
            .await
            .map_err(|e| format!("handshake: {}", error_kind(&e)))?;
            Ok::<Ws, String>(ws)
        };
        let ws = tokio::time::timeout(env.connect_timeout, attempt)
            .await
            .map_err(|_| "connect: timed out".to_string())??;
        let micros = started.elapsed().as_micros() as u64;
        self.stats()
            .events(|e| e.connect_time.saturating_record(micros.max(1)));
        self.stats()
            .record(self.plan.index, |s| s.count(Counter::Connected, 1));
        Ok(ws)
    }

    /// One connection: subscribe (resuming if asked), then read until the
    /// run stops, a storm comes, or the connection ends.
    async fn session(&mut self, mut ws: Ws, resume: bool, signals: &mut Signals) -> SessionEnd {
        // Only storms that come while this connection is up end it.
        signals.storm.borrow_and_update();
        if self.env.nchan {
            self.subscribe_sent = Instant::now();
            self.subscribe_sent_us = now_micros();
            self.stats().subscribed_now();
            self.stats()
                .record(self.plan.index, |s| s.count(Counter::Subscribed, 1));
        }
        let frame = self.subscribe_frame(resume);
        if self.env.nchan {
            // nothing to send: nchan subscribes by URL
        } else if let Err(e) = ws.send(Message::text(frame)).await {
            self.stats().error(format!("send: {}", error_kind(&e)));
            self.lost(None);
            return SessionEnd::Lost;
        }
        // Made once for the session, not once per frame: a watch's
        // `changed()` registers and drops a waiter each time it is made,
        // a tenth of the client's CPU per message at high rates.
        let stop = signals.stop.changed();
        let storm = signals.storm.changed();
        tokio::pin!(stop, storm);
        loop {
            let next = tokio::select! {
                biased;
                _ = &mut stop => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    return SessionEnd::Stopped;
                }
                _ = &mut storm => return SessionEnd::Storm,
                next = ws.next() => next,
            };
            match next {
                Some(Ok(Message::Text(text))) => self.on_text(text.as_str()),
                Some(Ok(Message::Close(frame))) => {
                    self.lost(Some(frame.map_or(1005, |f| u16::from(f.code))));
                    return SessionEnd::Lost;
                }
                Some(Ok(Message::Binary(_))) => self.stats().error("binary frame"),
                Some(Ok(_)) => continue, // ping/pong: answered by tungstenite
                Some(Err(e)) => {
                    self.stats().error(format!("read: {}", error_kind(&e)));
                    self.lost(None);
                    return SessionEnd::Lost;
                }
                None => {
                    self.lost(None);
                    return SessionEnd::Lost;
                }
            }
            if self.plan.slow {
                tokio::time::sleep(self.env.slow_delay).await;
            }
        }
    }

    fn lost(&self, code: Option<u16>) {
        self.stats().close(code);
        self.stats()
            .record(self.plan.index, |s| s.count(Counter::Closes, 1));
    }

    /// The `subscribe` frame for every channel, with a `resume` point for
    /// each channel that has one when `resume` is set.
    fn subscribe_frame(&mut self, resume: bool) -> String {
        let mut points = serde_json::Map::new();
        for name in self.plan.channels.iter() {
            let checker = self
                .checkers
                .get_mut(name)
                .expect("a checker exists for every planned channel");
            let point = resume
                .then(|| checker.resume_point().map(|(e, s)| (e.to_string(), s)))
                .flatten();
            checker.subscribing(point.as_ref().map(|p| p.1));
            if let Some((epoch, seq)) = point {
                points.insert(
                    name.clone(),
                    serde_json::json!({"epoch": epoch, "seq": seq}),
                );
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.subscribe_id = id;
        self.subscribe_sent = Instant::now();
        self.subscribe_sent_us = now_micros();
        let mut frame =
            serde_json::json!({"op": "subscribe", "id": id, "channels": &*self.plan.channels});
        if !points.is_empty() {
            self.stats()
                .record(self.plan.index, |s| s.count(Counter::ResumeAttempts, 1));
            frame["resume"] = serde_json::Value::Object(points);
        }
        frame.to_string()
    }

    /// Handles one text frame.
    fn on_text(&mut self, text: &str) {
        let received_us = now_micros();
        let index = self.plan.index;
        let header: Header = match serde_json::from_str(text) {
            Ok(h) => h,
            Err(e) => {
                self.stats().record(index, |s| {
                    s.count(Counter::Messages, 1);
                    s.count(Counter::Bytes, text.len() as u64);
                    s.count(Counter::ParseFailures, 1);
                });
                self.stats().failure(format!(
                    "client {index}: unreadable frame ({e}): {:.120}",
                    text
                ));
                return;
            }
        };
        if self.env.nchan {
            // The plan's list, not a copy of the name: no allocation per
            // message on this path (the hub's borrows it from the frame).
            let channels = Arc::clone(&self.plan.channels);
            return self.on_channel_message(&channels[0], &header, text, received_us);
        }
        let extra = match (header.kind, header.channel) {
            ("subscribed", _) => {
                self.on_subscribed(&header);
                Some(Counter::Subscribed)
            }
            ("error", _) => {
                self.stats()
                    .error(format!("error frame: {}", header.code.unwrap_or("?")));
                Some(Counter::ErrorFrames)
            }
            ("shutdown", _) => {
                self.stats().error("shutdown notice");
                None
            }
            ("pong" | "unsubscribed" | "authed", _) => None,
            (_, Some(channel)) => {
                return self.on_channel_message(channel, &header, text, received_us)
            }
            (kind, None) => {
                self.stats()
                    .error(format!("unexpected message type {kind:.40}"));
                None
            }
        };
        self.stats().record(index, |s| {
            s.count(Counter::Messages, 1);
            s.count(Counter::Bytes, text.len() as u64);
            if let Some(c) = extra {
                s.count(c, 1);
            }
        });
    }

    fn on_subscribed(&mut self, h: &Header) {
        if h.id != Some(self.subscribe_id) {
            return;
        }
        let rtt = self.subscribe_sent.elapsed().as_micros() as u64;
        self.stats()
            .events(|e| e.subscribe_rtt.saturating_record(rtt.max(1)));
        self.stats().subscribed_now();
        for (list, recovered) in [(&h.recovered, true), (&h.not_recovered, false)] {
            for name in list.iter() {
                if let Some(checker) = self.checkers.get_mut(*name) {
                    checker.settle(recovered);
                }
            }
        }
        let (rec, not) = (h.recovered.len() as u64, h.not_recovered.len() as u64);
        self.stats().record(self.plan.index, |s| {
            s.count(Counter::ChannelsRecovered, rec);
            s.count(Counter::ChannelsNotRecovered, not);
        });
    }

    fn on_channel_message(&mut self, channel: &str, h: &Header, text: &str, received_us: u64) {
        let index = self.plan.index;
        let Some(checker) = self.checkers.get_mut(channel) else {
            self.stats().error("message on a channel not subscribed");
            return;
        };
        let chain = checker.check_chain(h);
        let book = checker.check_book(h, text);
        let class = if self.plan.slow {
            LatencyClass::Slow
        } else if checker.info().conflated {
            LatencyClass::Conflated
        } else {
            LatencyClass::Live
        };
        // A message ingested before our subscribe is a state message or a
        // replay from history: its age is not a delivery latency.
        let latency =
            h.ts.filter(|ts| *ts >= self.subscribe_sent_us)
                .map(|ts| received_us.saturating_sub(ts));
        let stats = &self.env.stats;
        stats.record(index, |s| {
            s.count(Counter::Messages, 1);
            s.count(Counter::Bytes, text.len() as u64);
            s.count(Counter::ChannelMessages, 1);
            s.count(Counter::ChainChecked, 1);
            match latency {
                Some(us) => s.latency(class, us),
                None => s.count(Counter::StaleMessages, 1),
            }
            match h.reason {
                Some("slow_consumer") => s.count(Counter::SlowConsumerSnapshots, 1),
                Some("resync") => s.count(Counter::ResyncSnapshots, 1),
                _ => {}
            }
            match &chain {
                ChainCheck::Ok => {}
                ChainCheck::FirstNotZero => s.count(Counter::FirstPrevSeqNotZero, 1),
                ChainCheck::BeforeSubscribed => s.count(Counter::BeforeSubscribed, 1),
                ChainCheck::EpochChanged => s.count(Counter::EpochChanges, 1),
                ChainCheck::Broken(_) => s.count(Counter::ChainFailures, 1),
            }
            match &book {
                BookCheck::NotApplicable => {}
                BookCheck::Match => s.count(Counter::ChecksumChecked, 1),
                BookCheck::Skipped => s.count(Counter::ChecksumSkipped, 1),
                BookCheck::Mismatch(_) => {
                    s.count(Counter::ChecksumChecked, 1);
                    s.count(Counter::ChecksumFailures, 1);
                }
            }
        });
        if let ChainCheck::Broken(why) = chain {
            stats.failure(format!("client {index} {channel}: chain: {why}"));
        }
        if let BookCheck::Mismatch(why) = book {
            stats.failure(format!("client {index} {channel}: checksum: {why}"));
        }
    }
}

/// A short, bounded-cardinality name for a WebSocket error.
fn error_kind(e: &WsError) -> String {
    match e {
        WsError::Io(io) => format!("io {:?}", io.kind()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => "closed".into(),
        WsError::Http(response) => format!("http {}", response.status().as_u16()),
        WsError::Capacity(_) => "capacity".into(),
        WsError::Protocol(p) => format!("protocol: {p}"),
        other => {
            let text = other.to_string();
            text.chars().take(60).collect()
        }
    }
}

/// Now, µs since the Unix epoch: the clock the hub's `ts` uses.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
