//! Harness of the Shift adapter's integration tests: the standalone venue
//! (`sandbox_venue::serve`, the sandbox over the GraphQL contract) on 127.0.0.1,
//! an adapter config with short timeouts, a raw GraphQL client for what
//! the adapter does not expose (`orderBook`, the admin fault routes), a
//! TCP proxy whose connections a test can cut, a relay that slips hostile
//! frames into the subscription connections, a fake HTTP upstream, and a
//! mirror of the books that checks every stream guarantee as events
//! arrive.

#![allow(dead_code)]

use feeds::shift::{BreakerPolicy, ShiftConfig, ShiftToken, ShiftVenue};
use feeds::venue::UserEvent;
use feeds::{MarketEvent, MarketStream, SandboxConfig, SnapshotReason, Venue};
use futures_util::{SinkExt as _, StreamExt as _};
use orderbook::{L2Book, MarketSpec};
use sandbox_venue::{BearerToken, RunningVenueServer, VenueServerConfig};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

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
    sandbox_venue::serve(config).await.expect("venue starts")
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

/// Credits `user` 1 unit of USD at a time until the balance event of the
/// latest credit arrives, and returns it: a user-event subscription (new,
/// or after a reconnect) is live only from some moment on, and events come
/// in venue order, so none of an earlier credit is still on its way.
/// Panics after [`WAIT`].
pub async fn credit_until_event(
    shift: &ShiftVenue,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<UserEvent>,
    user: &str,
) -> UserEvent {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no user event for {user} within {WAIT:?}"
        );
        let Ok(credited) = shift.credit(user, "USD", 1).await else {
            // The venue is still away.
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        let seen = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                let event = events.recv().await.expect("user events still open");
                if matches!(&event, UserEvent::Balance { user: u, balance, .. }
                    if u.as_str() == user && balance.available == credited.available)
                {
                    return event;
                }
            }
        })
        .await;
        if let Ok(event) = seen {
            return event;
        }
    }
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
            // No book or trade change.
            MarketEvent::Status { .. } | MarketEvent::Resyncing { .. } => {}
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
    refusing: Arc<AtomicBool>,
}

impl CuttingProxy {
    pub async fn start(target: SocketAddr) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = broadcast::channel(4);
        let cuts = cut.clone();
        let refusing = Arc::new(AtomicBool::new(false));
        let refuses = refusing.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if refuses.load(Ordering::SeqCst) {
                    continue; // dropped: the venue is out of reach
                }
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
        CuttingProxy {
            addr,
            cut,
            refusing,
        }
    }

    /// Drops every connection open now.
    pub fn cut(&self) {
        let _ = self.cut.send(());
    }

    /// Drops every connection open now and every later one: the venue
    /// stays out of reach.
    pub fn cut_for_good(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.cut();
    }
}

/// A relay to the venue at `target` that can slip messages of its own into
/// every subscription connection, toward the adapter: a hostile upstream on
/// real sockets. Queries and mutations (plain HTTP) pass through untouched.
pub struct InjectingProxy {
    pub addr: SocketAddr,
    inject: broadcast::Sender<Vec<Message>>,
}

impl InjectingProxy {
    pub async fn start(target: SocketAddr) -> InjectingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (inject, _) = broadcast::channel(4);
        let injects = inject.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, target, injects.subscribe()));
            }
        });
        InjectingProxy { addr, inject }
    }

    /// Sends `frames` to the adapter on every subscription connection open
    /// now: one message, or the frames of a fragmented one
    /// (`Message::Frame`).
    pub fn inject(&self, frames: Vec<Message>) {
        let _ = self.inject.send(frames);
    }
}

/// One connection of an [`InjectingProxy`]: a byte pipe for HTTP; for a
/// WebSocket upgrade, a handshake of its own on each side and a message
/// relay, so that injected messages fall between whole messages.
async fn relay(
    mut client: TcpStream,
    target: SocketAddr,
    mut injected: broadcast::Receiver<Vec<Message>>,
) {
    let Some(head) = read_head(&mut client).await else {
        return;
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let header = |name: &str| {
        text.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return;
    };
    let Some(key) = header("sec-websocket-key") else {
        if upstream.write_all(&head).await.is_ok() {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
        return;
    };
    let path = text.split_whitespace().nth(1).unwrap_or("/graphql");
    let mut request = format!("ws://{target}{path}")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let Ok((mut venue, _)) = tokio_tungstenite::client_async(request, upstream).await else {
        return;
    };
    let accepted = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    if client.write_all(accepted.as_bytes()).await.is_err() {
        return;
    }
    let mut adapter = WebSocketStream::from_raw_socket(client, Role::Server, None).await;
    let forwarded =
        |m: &Message| matches!(m, Message::Text(_) | Message::Binary(_) | Message::Close(_));
    loop {
        tokio::select! {
            m = adapter.next() => match m {
                Some(Ok(m)) if forwarded(&m) => if venue.send(m).await.is_err() { return },
                Some(Ok(_)) => {}
                _ => return,
            },
            m = venue.next() => match m {
                Some(Ok(m)) if forwarded(&m) => if adapter.send(m).await.is_err() { return },
                Some(Ok(_)) => {}
                _ => return,
            },
            frames = injected.recv() => {
                let Ok(frames) = frames else { return };
                for frame in frames {
                    if adapter.send(frame).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The bytes of an HTTP request up to the end of its head (and whatever
/// came with it); `None` if the connection ends first.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}

/// An HTTP server on 127.0.0.1 that answers every request 200 with `body`,
/// announcing its `Content-Length` or (`announce_length` false) ending it
/// by closing the connection.
pub async fn fake_http(body: Arc<Vec<u8>>, announce_length: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let Some(mut request) = read_head(&mut client).await else {
                    return;
                };
                // Read the request body too, so that closing does not reset.
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                let length: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let head_len = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                let mut buf = [0u8; 4096];
                while request.len() < head_len + length {
                    match client.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let length = if announce_length {
                    format!("Content-Length: {}\r\n", body.len())
                } else {
                    String::new()
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n"
                );
                if client.write_all(head.as_bytes()).await.is_ok() {
                    let _ = client.write_all(&body).await;
                }
                let _ = client.shutdown().await;
            });
        }
    });
    addr
}
