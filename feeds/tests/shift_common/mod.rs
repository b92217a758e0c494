//! Harness of the Shift adapter's integration tests: the standalone venue
//! (`venue::serve`, the sandbox over the GraphQL contract) on 127.0.0.1,
//! an adapter config with short timeouts, a raw GraphQL client for what
//! the adapter does not expose (`orderBook`, the admin fault routes), a
//! TCP proxy whose connections a test can cut, and a mirror of the books
//! that checks every stream guarantee as events arrive.

#![allow(dead_code)]

use feeds::shift::{BreakerPolicy, ShiftConfig, ShiftToken};
use feeds::{MarketEvent, MarketStream, SandboxConfig, SnapshotReason};
use orderbook::{L2Book, MarketSpec};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use venue::{BearerToken, RunningVenueServer, VenueServerConfig};

pub const TOKEN: &str = "shift-adapter-test-token";
/// Longest wait for any one expected event.
pub const WAIT: Duration = Duration::from_secs(15);

/// A venue on `bind` (port 0: any) whose market makes `events_per_sec`
/// changes (0: books are seeded and move only when a test trades).
pub async fn start_venue(bind: SocketAddr, events_per_sec: u32) -> RunningVenueServer {
    let mut config = VenueServerConfig::new(bind, BearerToken::new(TOKEN).unwrap());
    config.sandbox = SandboxConfig {
        events_per_sec,
        seed: 7,
        ..SandboxConfig::default()
    };
    venue::serve(config).await.expect("venue starts")
}

/// The adapter's config for the venue at `addr`, with short timeouts.
pub fn config(addr: SocketAddr) -> ShiftConfig {
    let mut c = ShiftConfig::new(format!("http://{addr}/graphql"), ShiftToken::new(TOKEN));
    c.request_timeout = Duration::from_secs(3);
    c.backoff_min = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(400);
    c.keepalive = Duration::from_secs(2);
    c.breaker = BreakerPolicy {
        attempts: 2,
        failures_to_open: 3,
        open_for: Duration::from_millis(500),
    };
    c
}

/// POSTs `body` to `path` of the venue at `addr` with the right token.
pub async fn post(addr: SocketAddr, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("venue answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The venue's `orderBook(pair)` as (seq, bids, asks) at the pair's scale.
pub async fn order_book(addr: SocketAddr, spec: &MarketSpec) -> (u64, L2Book) {
    let (status, body) = post(
        addr,
        "/graphql",
        json!({
            "query": "query($p: String!) { orderBook(pair: $p) { seq bids { price qty } asks { price qty } } }",
            "variables": {"p": spec.symbol}
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let book = &body["data"]["orderBook"];
    let levels = |side: &str| -> Vec<_> {
        book[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    spec.parse_price(l["price"].as_str().unwrap()).unwrap(),
                    spec.parse_qty(l["qty"].as_str().unwrap()).unwrap(),
                )
            })
            .collect()
    };
    let mut l2 = L2Book::new();
    l2.apply_snapshot(&levels("bids"), &levels("asks")).unwrap();
    (book["seq"].as_u64().unwrap(), l2)
}

/// Makes the venue's current book subscribers of `pair` skip one delta.
pub async fn drop_next_delta(addr: SocketAddr, pair: &str) {
    let (status, body) = post(addr, "/admin/drop-next-delta", json!({"pair": pair})).await;
    assert_eq!(status, 204, "{body}");
}

/// Makes every trading call of the venue wait `ms` first.
pub async fn set_latency(addr: SocketAddr, ms: u64) {
    let (status, body) = post(addr, "/admin/latency", json!({"ms": ms})).await;
    assert_eq!(status, 204, "{body}");
}

/// The next event of `stream`; panics after [`WAIT`] or if it ended.
pub async fn next_event(stream: &mut MarketStream) -> MarketEvent {
    tokio::time::timeout(WAIT, stream.events.recv())
        .await
        .expect("an event within the wait")
        .expect("the stream is still open")
}

/// Every pair's book as the stream built it, checking the stream's
/// guarantees on each event: a snapshot first, deltas and trade batches at
/// the previous seq + 1.
#[derive(Default)]
pub struct Mirror {
    pub books: HashMap<String, (u64, L2Book)>,
    pub trade_seqs: HashMap<String, u64>,
    /// Per pair, the reasons of the snapshots seen, in order.
    pub snapshots: HashMap<String, Vec<SnapshotReason>>,
}

impl Mirror {
    pub fn apply(&mut self, event: &MarketEvent) {
        let pair = event.pair().to_string();
        match event {
            MarketEvent::Snapshot {
                reason,
                seq,
                trade_seq,
                bids,
                asks,
                ..
            } => {
                let mut book = L2Book::new();
                book.apply_snapshot(bids, asks).expect("a valid snapshot");
                self.books.insert(pair.clone(), (*seq, book));
                let t = self.trade_seqs.entry(pair.clone()).or_default();
                *t = (*t).max(*trade_seq);
                self.snapshots.entry(pair).or_default().push(*reason);
            }
            MarketEvent::Delta { seq, deltas, .. } => {
                let (last, book) = self
                    .books
                    .get_mut(&pair)
                    .unwrap_or_else(|| panic!("{pair}: a delta before any snapshot"));
                assert_eq!(*seq, *last + 1, "{pair}: delta seq gap reached the hub");
                *last = *seq;
                book.apply_deltas(deltas).expect("the book stays uncrossed");
            }
            MarketEvent::Trades { seq, .. } => {
                assert!(
                    self.books.contains_key(&pair),
                    "{pair}: trades before any snapshot"
                );
                let last = self.trade_seqs.entry(pair.clone()).or_default();
                assert_eq!(*seq, *last + 1, "{pair}: trade seq gap reached the hub");
                *last = *seq;
            }
        }
    }

    /// The reasons of `pair`'s snapshots so far.
    pub fn reasons(&self, pair: &str) -> &[SnapshotReason] {
        self.snapshots.get(pair).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A TCP proxy to `target` whose open connections [`CuttingProxy::cut`]
/// drops at once (new connections are served as usual): a network
/// failure that leaves the venue itself running.
pub struct CuttingProxy {
    pub addr: SocketAddr,
    cut: broadcast::Sender<()>,
}

impl CuttingProxy {
    pub async fn start(target: SocketAddr) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = broadcast::channel(4);
        let cuts = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut on_cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = on_cut.recv() => {}
                    }
                });
            }
        });
        CuttingProxy { addr, cut }
    }

    /// Drops every connection open now.
    pub fn cut(&self) {
        let _ = self.cut.send(());
    }
}
