//! One WebSocket client: its reader, which decodes frames under the
//! connection's limits (size, rate, invalid frames) and hands ops to
//! `ops.rs`, beside the writer of `writer.rs`; and what they share.

use super::close_code::{self, close_for};
use super::private::PrivateState;
use super::rate::TokenBucket;
use super::socket::{self, ReadSide};
use super::{ops, writer, HubContext};
use crate::config::Limits;
use crate::fanout::Subscriber;
use crate::market::MarketChannel;
use crate::metrics as m;
use crate::protocol::ops::{decode, OpError};
use crate::protocol::{replies, ErrorCode};
use axum::extract::ws::Utf8Bytes;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// State shared by a connection's reader and writer.
pub(super) struct Shared {
    pub(super) subscriber: Arc<Subscriber>,
    pub(super) heartbeat: AtomicBool,
    /// Milliseconds since `started` at the last frame from the client.
    pub(super) last_seen_ms: AtomicU64,
    pub(super) started: Instant,
    /// The authenticated user and their private channels.
    pub(super) private: Arc<PrivateState>,
    /// Forwards the user's private updates once authenticated.
    pub(super) forwarder: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The dead-man's switch attachment of `auth`'s
    /// `cancel_on_disconnect`, released when the connection ends.
    pub(super) attached: parking_lot::Mutex<Option<Arc<api::trading::deadman::Attached>>>,
    /// What the connection's end-of-connection log line reports.
    pub(super) stats: Stats,
}

/// Per-connection counts for the line logged when it ends
/// (docs/OPERATIONS.md, "Logs").
#[derive(Default)]
pub(super) struct Stats {
    /// Text frames received.
    pub(super) messages_in: AtomicU64,
    /// Messages written.
    pub(super) messages_out: AtomicU64,
    /// Payload bytes written.
    pub(super) bytes_out: AtomicU64,
    /// The close code sent or received first; 0 until then.
    pub(super) close_code: std::sync::atomic::AtomicU32,
}

impl Stats {
    /// Records `code` unless a close code is already recorded.
    pub(super) fn closed(&self, code: u16) {
        let _ = self.close_code.compare_exchange(
            0,
            u32::from(code),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
}

impl Shared {
    pub(super) fn touch(&self) {
        self.last_seen_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Queues a reply. If even that does not fit, the queue is closing and
    /// the writer closes 4008 (and counts it).
    pub(super) fn reply(&self, text: String) {
        self.subscriber.queue.push_control(Utf8Bytes::from(text));
    }

    pub(super) fn error(&self, e: &OpError) {
        self.reply(replies::error(e.id, e.code, &e.message));
    }
}

/// Runs one client until it leaves, breaks a limit, or the hub shuts down.
pub(super) async fn serve(
    upgraded: hyper::upgrade::Upgraded,
    config: WebSocketConfig,
    deflate: bool,
    ctx: Arc<HubContext>,
    conn_id: u64,
) {
    let max_queued = ctx.limits.outbound_queue_bytes;
    let subscriber = Arc::new(if deflate {
        Subscriber::compressing(conn_id, max_queued)
    } else {
        Subscriber::new(conn_id, max_queued)
    });
    let shared = Arc::new(Shared {
        subscriber,
        heartbeat: AtomicBool::new(false),
        last_seen_ms: AtomicU64::new(0),
        started: Instant::now(),
        private: Arc::default(),
        forwarder: parking_lot::Mutex::new(None),
        attached: parking_lot::Mutex::new(None),
        stats: Stats::default(),
    });
    // The socket's slot and count, held until reader and writer are done.
    let (stream, sink, _hold) = socket::split(upgraded, shared.subscriber.clone(), config).await;
    let (close_tx, close_rx) = mpsc::unbounded_channel();
    // Not instrumented with the connection's span: the writer logs
    // nothing, and entering a span on every wake-up is fan-out cost.
    let mut writer = tokio::spawn(writer::write_loop(
        sink,
        shared.clone(),
        ctx.clone(),
        close_rx,
    ));
    let mut subscriptions = Subscriptions::new();
    let mut writer_done = false;
    {
        let read = read_loop(stream, &shared, &ctx, &close_tx, &mut subscriptions);
        tokio::pin!(read);
        tokio::select! {
            _ = &mut read => {}
            _ = &mut writer => {
                // The writer closed (ping timeout, slow consumer, shutdown):
                // give the peer a moment to answer the close, then drop it
                // (an order op under way runs on to its end on its own
                // task: `orders.rs`).
                writer_done = true;
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut read).await;
            }
        }
    }
    // The reader ended (peer closed or vanished): stop the writer too.
    drop(close_tx);
    if let Some(forwarder) = shared.forwarder.lock().take() {
        forwarder.abort();
    }
    // However the connection ended (closed, killed, timed out): the
    // switch's grace starts now. The attachment stays on `shared`: an
    // order op still running tracks its order on it (`orders.rs`).
    let attached = shared.attached.lock().clone();
    if let (Some(on), Some(api)) = (attached, &ctx.api) {
        api.deadman.detach(&on).await;
    }
    for sub in subscriptions.values() {
        if let Sub::Market(channel) = sub {
            ctx.markets.unsubscribe(channel, conn_id);
        }
    }
    metrics::gauge!(m::SUBSCRIPTIONS).decrement(subscriptions.len() as f64);
    if !writer_done {
        let _ = writer.await;
    }
    // No close frame either way: the peer vanished (1006, RFC 6455 7.4.1).
    shared.stats.closed(1006);
    let stats = &shared.stats;
    let (through_messages, through_bytes) = shared.subscriber.queue.written_through();
    tracing::info!(
        target: api::http::access::TARGET,
        duration_ms = shared.started.elapsed().as_millis() as u64,
        messages_in = stats.messages_in.load(Ordering::Relaxed),
        messages_out = stats.messages_out.load(Ordering::Relaxed) + through_messages,
        bytes_out = stats.bytes_out.load(Ordering::Relaxed) + through_bytes,
        close_code = stats.close_code.load(Ordering::Relaxed),
        "connection closed"
    );
}

/// A subscription of this connection.
pub(super) enum Sub {
    Heartbeat,
    Market(MarketChannel),
    Private(api::private::PrivateChannel),
}

/// This connection's subscriptions by channel name.
pub(super) type Subscriptions = HashMap<String, Sub>;

async fn read_loop(
    mut stream: WebSocketStream<ReadSide>,
    shared: &Arc<Shared>,
    ctx: &Arc<HubContext>,
    close: &mpsc::UnboundedSender<(u16, &'static str)>,
    subscriptions: &mut Subscriptions,
) {
    let limits = &ctx.limits;
    let mut bucket = TokenBucket::new(limits.frames_per_sec, limits.frame_burst);
    let mut rejected = 0u32;
    while let Some(msg) = stream.next().await {
        shared.touch();
        let text = match msg {
            Ok(Message::Text(t)) => {
                shared.stats.messages_in.fetch_add(1, Ordering::Relaxed);
                t
            }
            Ok(Message::Close(frame)) => {
                shared.stats.closed(frame.map_or(1005, |f| f.code.into()));
                // Queues the protocol layer's reply to the Close.
                let _ = stream.flush().await;
                break;
            }
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Ok(Message::Binary(_)) => {
                reject(
                    shared,
                    &mut rejected,
                    limits,
                    close,
                    OpError::new(
                        None,
                        ErrorCode::BadRequest,
                        "binary frames are not supported",
                    ),
                );
                continue;
            }
            Err(e) => {
                if let Some(code) = close_for(e) {
                    let _ = close.send(code);
                }
                break;
            }
        };
        if !bucket.take() {
            let id = decode(&text).ok().map(|op| op.id());
            reject(
                shared,
                &mut rejected,
                limits,
                close,
                OpError::new(id, ErrorCode::RateLimited, "too many frames"),
            );
            continue;
        }
        let result = match decode(&text) {
            Ok(op) => ops::handle(op, shared, ctx, subscriptions, close).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            reject(shared, &mut rejected, limits, close, e);
        }
        if rejected >= limits.max_invalid_frames {
            let _ = close.send((close_code::POLICY, "too many invalid frames"));
            break;
        }
    }
}

fn reject(
    shared: &Shared,
    rejected: &mut u32,
    limits: &Limits,
    close: &mpsc::UnboundedSender<(u16, &'static str)>,
    e: OpError,
) {
    *rejected += 1;
    shared.error(&e);
    if *rejected >= limits.max_invalid_frames {
        let _ = close.send((close_code::POLICY, "too many invalid frames"));
    }
}
