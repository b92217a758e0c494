//! One WebSocket client: a reader that decodes and answers ops under the
//! connection's limits, and a writer that drains the outbound queue in
//! batches (one flush per batch), sends pings, heartbeats and the shutdown
//! notice, and closes with the right code.

use super::private::{self, PrivateState};
use super::HubContext;
use crate::config::Limits;
use crate::fanout::{CloseReason, Frame, Subscriber};
use crate::market::MarketChannel;
use crate::metrics as m;
use crate::protocol::channel::{Channel, ChannelKind};
use crate::protocol::ops::{decode, Op, OpError, ResumePoint};
use crate::protocol::{replies, ErrorCode};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use feeds::event::now_micros;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Close codes of docs/PROTOCOL.md ("Limits and close codes").
pub mod close_code {
    pub const GOING_AWAY: u16 = 1001;
    /// A frame that breaks the WebSocket protocol (RFC 6455 §7.4.1).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const SLOW_CONSUMER: u16 = 4008;
}

/// State shared by a connection's reader and writer.
struct Shared {
    subscriber: Arc<Subscriber>,
    heartbeat: AtomicBool,
    /// Milliseconds since `started` at the last frame from the client.
    last_seen_ms: AtomicU64,
    started: Instant,
    /// The authenticated user and their private channels.
    private: Arc<PrivateState>,
    /// Forwards the user's private updates once authenticated.
    forwarder: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    fn touch(&self) {
        self.last_seen_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Queues a reply. If even that does not fit, the queue is closing and
    /// the writer closes 4008 (and counts it).
    fn reply(&self, text: String) {
        self.subscriber.queue.push_control(Utf8Bytes::from(text));
    }

    fn error(&self, e: &OpError) {
        self.reply(replies::error(e.id, e.code, &e.message));
    }
}

/// Runs one client until it leaves, breaks a limit, or the hub shuts down.
pub async fn serve(socket: WebSocket, ctx: Arc<HubContext>, conn_id: u64) {
    let subscriber = Arc::new(Subscriber::new(conn_id, ctx.limits.outbound_queue_bytes));
    let shared = Arc::new(Shared {
        subscriber,
        heartbeat: AtomicBool::new(false),
        last_seen_ms: AtomicU64::new(0),
        started: Instant::now(),
        private: Arc::default(),
        forwarder: parking_lot::Mutex::new(None),
    });
    let (sink, stream) = socket.split();
    let (close_tx, close_rx) = mpsc::unbounded_channel();
    let mut writer = tokio::spawn(write_loop(sink, shared.clone(), ctx.clone(), close_rx));
    let mut subscriptions = Subscriptions::new();
    let mut writer_done = false;
    {
        let read = read_loop(stream, &shared, &ctx, &close_tx, &mut subscriptions);
        tokio::pin!(read);
        tokio::select! {
            _ = &mut read => {}
            _ = &mut writer => {
                // The writer closed (ping timeout, slow consumer, shutdown):
                // give the peer a moment to answer the close, then drop it.
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
    for sub in subscriptions.values() {
        if let Sub::Market(channel) = sub {
            ctx.markets.unsubscribe(channel, conn_id);
        }
    }
    metrics::gauge!(m::SUBSCRIPTIONS).decrement(subscriptions.len() as f64);
    if !writer_done {
        let _ = writer.await;
    }
}

/// A subscription of this connection.
enum Sub {
    Heartbeat,
    Market(MarketChannel),
    Private(api::private::PrivateChannel),
}

/// This connection's subscriptions by channel name.
type Subscriptions = HashMap<String, Sub>;

async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    shared: &Shared,
    ctx: &HubContext,
    close: &mpsc::UnboundedSender<(u16, &'static str)>,
    subscriptions: &mut Subscriptions,
) {
    let limits = &ctx.limits;
    let mut bucket = TokenBucket::new(limits.frames_per_sec, limits.frame_burst);
    let mut rejected = 0u32;
    while let Some(msg) = stream.next().await {
        shared.touch();
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) => break,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
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
            Ok(op) => handle(op, shared, ctx, subscriptions, close).await,
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

/// The close code for a client stream that broke: 1009 for a frame over
/// the size limit, 1007 for a text frame that is not UTF-8, 1002 for any
/// other protocol violation (unmasked frame, reserved bits, bad opcode,
/// fragmentation errors); `None` when the peer is simply gone.
fn close_for(e: axum::Error) -> Option<(u16, &'static str)> {
    use tungstenite::Error;
    match e.into_inner().downcast_ref::<Error>()? {
        Error::Capacity(_) => Some((close_code::TOO_BIG, "frame too large")),
        Error::Utf8(_) => Some((close_code::INVALID_DATA, "text frame is not UTF-8")),
        Error::Protocol(_) | Error::AttackAttempt => {
            Some((close_code::PROTOCOL_ERROR, "protocol error"))
        }
        _ => None,
    }
}

async fn handle(
    op: Op,
    shared: &Shared,
    ctx: &HubContext,
    subs: &mut Subscriptions,
    close: &mpsc::UnboundedSender<(u16, &'static str)>,
) -> Result<(), OpError> {
    match op {
        Op::Ping { id } => {
            shared.reply(replies::pong(id, now_micros()));
            Ok(())
        }
        Op::Auth { id, token } => authenticate(id, &token, shared, ctx, close).await,
        Op::Unsubscribe { id, channels } => {
            let channels = dedup(channels);
            // Validate everything first: a refused request changes nothing.
            for name in &channels {
                Channel::parse(name).map_err(|e| {
                    OpError::new(Some(id), ErrorCode::UnknownChannel, e.to_string())
                })?;
            }
            let mut removed = Vec::new();
            for name in channels {
                if let Some(entry) = subs.remove(&name) {
                    match entry {
                        Sub::Market(ch) => {
                            shared.subscriber.queue.unsubscribe(ch.id);
                            ctx.markets.unsubscribe(&ch, shared.subscriber.conn_id);
                        }
                        Sub::Heartbeat => shared.heartbeat.store(false, Ordering::Relaxed),
                        Sub::Private(ch) => shared.private.unsubscribe(ch),
                    }
                    removed.push(name);
                }
            }
            metrics::gauge!(m::SUBSCRIPTIONS).decrement(removed.len() as f64);
            shared.reply(replies::unsubscribed(id, &removed));
            Ok(())
        }
        Op::Subscribe {
            id,
            channels,
            resume,
        } => subscribe(id, channels, resume, shared, ctx, subs).await,
    }
}

async fn subscribe(
    id: i64,
    channels: Vec<String>,
    resume: HashMap<String, ResumePoint>,
    shared: &Shared,
    ctx: &HubContext,
    subs: &mut Subscriptions,
) -> Result<(), OpError> {
    let err = |code, msg: String| OpError::new(Some(id), code, msg);
    let channels = dedup(channels);
    if channels.is_empty() {
        return Err(err(
            ErrorCode::BadRequest,
            "channels must not be empty".into(),
        ));
    }
    // Validate everything first: a refused request changes nothing.
    let mut resolved = Vec::with_capacity(channels.len());
    for name in &channels {
        let channel =
            Channel::parse(name).map_err(|e| err(ErrorCode::UnknownChannel, e.to_string()))?;
        let sub = match channel.kind {
            _ if channel.is_private() => {
                if shared.private.user().is_none() {
                    return Err(err(ErrorCode::Unauthorized, format!("{name} needs auth")));
                }
                Sub::Private(private::parse(name).ok_or_else(|| {
                    err(
                        ErrorCode::UnknownChannel,
                        format!("no such channel: {name}"),
                    )
                })?)
            }
            ChannelKind::Heartbeat => Sub::Heartbeat,
            _ => Sub::Market(ctx.markets.resolve(&channel).ok_or_else(|| {
                err(
                    ErrorCode::UnknownChannel,
                    format!("no such channel: {name}"),
                )
            })?),
        };
        resolved.push((name.clone(), sub));
    }
    let new = resolved
        .iter()
        .filter(|(n, _)| !subs.contains_key(n))
        .count();
    if subs.len() + new > ctx.limits.max_subscriptions {
        return Err(err(
            ErrorCode::TooManySubscriptions,
            format!(
                "at most {} channels per connection",
                ctx.limits.max_subscriptions
            ),
        ));
    }
    let (mut recovered, mut not_recovered) = (Vec::new(), Vec::new());
    let mut release = Vec::new();
    let mut pending = Vec::new();
    let mut private_subs = Vec::new();
    for (name, sub) in resolved {
        let point = resume.get(&name).map(|p| (p.epoch.clone(), p.seq));
        match &sub {
            Sub::Heartbeat => shared.heartbeat.store(true, Ordering::Relaxed),
            Sub::Private(ch) => {
                // Private channels keep no history: a resume is never recovered.
                if point.is_some() {
                    not_recovered.push(name.clone());
                }
                private_subs.push(*ch);
            }
            Sub::Market(ch) => {
                release.push(ch.id);
                let rx = ctx
                    .markets
                    .subscribe(ch, shared.subscriber.clone(), point.clone());
                pending.push((name.clone(), point.is_some(), rx));
            }
        }
        if subs.insert(name, sub).is_none() {
            metrics::gauge!(m::SUBSCRIPTIONS).increment(1.0);
        }
    }
    for (name, asked, rx) in pending {
        let ok = rx.await.unwrap_or(false);
        if asked {
            if ok {
                recovered.push(name)
            } else {
                not_recovered.push(name)
            }
        }
    }
    shared.reply(replies::subscribed(
        id,
        &channels,
        &recovered,
        &not_recovered,
    ));
    shared.subscriber.queue.release(&release);
    // After the reply, so the reply precedes the channel's first message.
    for ch in private_subs {
        shared.private.subscribe(ch);
    }
    Ok(())
}

/// `auth`: verifies the access token with the API, records the user and
/// starts forwarding their private updates.
async fn authenticate(
    id: i64,
    token: &str,
    shared: &Shared,
    ctx: &HubContext,
    close: &mpsc::UnboundedSender<(u16, &'static str)>,
) -> Result<(), OpError> {
    let Some(api) = &ctx.api else {
        return Err(OpError::new(
            Some(id),
            ErrorCode::Unauthorized,
            "this hub runs without the REST API",
        ));
    };
    let user = api
        .auth
        .verify_access(token)
        .await
        .map_err(|e| OpError::new(Some(id), ErrorCode::Unauthorized, e.message))?;
    if !shared.private.set_user(&user.user_id, token) {
        return Err(OpError::new(
            Some(id),
            ErrorCode::BadRequest,
            "already authenticated as another user",
        ));
    }
    let mut forwarder = shared.forwarder.lock();
    if forwarder.as_ref().is_none_or(|f| f.is_finished()) {
        let updates = api.private.subscribe(&user.user_id);
        *forwarder = Some(tokio::spawn(private::forward(
            api.clone(),
            updates,
            shared.private.clone(),
            shared.subscriber.clone(),
            ctx.markets.epoch().to_string(),
            close.clone(),
        )));
    }
    shared.reply(replies::authed(id, &user.user_id));
    Ok(())
}

fn dedup(channels: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    channels
        .into_iter()
        .filter(|c| seen.insert(c.clone()))
        .collect()
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    shared: Arc<Shared>,
    ctx: Arc<HubContext>,
    mut close_rx: mpsc::UnboundedReceiver<(u16, &'static str)>,
) {
    let limits = &ctx.limits;
    let mut batch: VecDeque<Frame> = VecDeque::new();
    let mut ping = tokio::time::interval(Duration::from_millis(limits.ping_interval_ms));
    ping.tick().await;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut beats: u64 = 0;
    let shutdown = ctx.shutdown.clone();
    let queue = &shared.subscriber.queue;
    let (code, reason) = loop {
        tokio::select! {
            _ = queue.ready() => {
                let close = queue.drain_into(&mut batch);
                if write_batch(&mut sink, &mut batch).await.is_err() {
                    return;
                }
                if close == Some(CloseReason::SlowConsumer) {
                    metrics::counter!(m::SLOW_CONSUMER_CLOSES_TOTAL).increment(1);
                    break (close_code::SLOW_CONSUMER, "slow consumer");
                }
            }
            msg = close_rx.recv() => {
                let Some((code, reason)) = msg else {
                    // The reader is gone: flush (the Close reply) and stop.
                    let _ = sink.close().await;
                    return;
                };
                // Flush replies queued before the close (e.g. the last error).
                queue.drain_into(&mut batch);
                let _ = write_batch(&mut sink, &mut batch).await;
                break (code, reason);
            }
            _ = ping.tick() => {
                let silent = shared.started.elapsed().as_millis() as u64 - shared.last_seen_ms.load(Ordering::Relaxed);
                if silent > limits.pong_timeout_ms {
                    break (close_code::POLICY, "ping timeout");
                }
                if sink.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    return;
                }
            }
            _ = heartbeat.tick(), if shared.heartbeat.load(Ordering::Relaxed) => {
                beats += 1;
                shared.reply(replies::heartbeat(&ctx.markets.epoch(), beats, now_micros()));
            }
            _ = shutdown.triggered() => {
                shared.reply(replies::shutdown(ctx.reconnect_after_ms));
                queue.drain_into(&mut batch);
                let _ = write_batch(&mut sink, &mut batch).await;
                break (close_code::GOING_AWAY, "server shutdown");
            }
        }
    };
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
    let _ = sink.close().await;
}

/// Writes every frame of `batch` with one flush at the end.
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    batch: &mut VecDeque<Frame>,
) -> Result<(), axum::Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let now = now_micros();
    let (mut bytes, count) = (0usize, batch.len());
    for frame in batch.drain(..) {
        bytes += frame.text.len();
        if frame.ts > 0 {
            metrics::histogram!(m::PUBLISH_TO_WRITE_SECONDS)
                .record(now.saturating_sub(frame.ts) as f64 / 1e6);
        }
        sink.feed(Message::Text(frame.text)).await?;
    }
    sink.flush().await?;
    metrics::counter!(m::MESSAGES_OUT_TOTAL).increment(count as u64);
    metrics::counter!(m::BYTES_OUT_TOTAL).increment(bytes as u64);
    Ok(())
}

/// The client frame-rate limit: `rate` frames per second, bursts of `burst`.
struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32, burst: u32) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            rate: f64::from(rate),
            burst: f64::from(burst),
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_allows_the_burst_then_the_rate() {
        let mut b = TokenBucket::new(20, 50);
        assert_eq!((0..60).filter(|_| b.take()).count(), 50);
        b.last -= Duration::from_millis(500);
        assert_eq!((0..60).filter(|_| b.take()).count(), 10);
    }
}
