//! A connection's writer: drains the outbound queue in batches (one flush
//! per batch), sends pings, heartbeats and the shutdown notice, and closes
//! with the right code.
//!
//! Every write (a frame handed to the socket, a flush, a Ping, the Close)
//! must complete within `pong_timeout_ms`, the patience
//! the hub has for a silent peer: a peer that stops reading fills its
//! socket buffer, and a write waiting on it would otherwise hold the
//! writer (and with it pings, the slow-consumer close and the shutdown
//! notice) and the connection's slot for ever. Such a peer is dropped
//! without a close frame (none could get through) and counted as a
//! slow-consumer close (docs/PROTOCOL.md, "Slow consumers").

use super::connection::Shared;
use super::{close_code, HubContext};
use crate::fanout::{CloseReason, Frame};
use crate::metrics as m;
use crate::protocol::replies;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use feeds::event::now_micros;
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;

pub(super) async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    shared: Arc<Shared>,
    ctx: Arc<HubContext>,
    mut close_rx: mpsc::UnboundedReceiver<(u16, &'static str)>,
) {
    let limits = &ctx.limits;
    let stall = Duration::from_millis(limits.pong_timeout_ms);
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
                if let Err(stop) = write_batch(&mut sink, &mut batch, &shared, stall).await {
                    return stop.end(&shared);
                }
                if close == Some(CloseReason::SlowConsumer) {
                    metrics::counter!(m::SLOW_CONSUMER_CLOSES_TOTAL).increment(1);
                    break (close_code::SLOW_CONSUMER, "slow consumer");
                }
            }
            msg = close_rx.recv() => {
                let Some((code, reason)) = msg else {
                    // The reader is gone: flush (the Close reply) and stop.
                    let _ = timeout(stall, sink.close()).await;
                    return;
                };
                // Flush replies queued before the close (e.g. the last error).
                queue.drain_into(&mut batch);
                if let Err(Stop::Stalled) = write_batch(&mut sink, &mut batch, &shared, stall).await {
                    return Stop::Stalled.end(&shared);
                }
                break (code, reason);
            }
            _ = ping.tick() => {
                let silent = shared.started.elapsed().as_millis() as u64 - shared.last_seen_ms.load(Ordering::Relaxed);
                if silent > limits.pong_timeout_ms {
                    break (close_code::POLICY, "ping timeout");
                }
                if let Err(stop) = bounded(stall, sink.send(Message::Ping(bytes::Bytes::new()))).await {
                    return stop.end(&shared);
                }
            }
            _ = heartbeat.tick(), if shared.heartbeat.load(Ordering::Relaxed) => {
                beats += 1;
                shared.reply(replies::heartbeat(&ctx.markets.epoch(), beats, now_micros()));
            }
            _ = shutdown.triggered() => {
                shared.reply(replies::shutdown(ctx.reconnect_after_ms));
                queue.drain_into(&mut batch);
                if let Err(Stop::Stalled) = write_batch(&mut sink, &mut batch, &shared, stall).await {
                    return Stop::Stalled.end(&shared);
                }
                break (close_code::GOING_AWAY, "server shutdown");
            }
        }
    };
    shared.stats.closed(code);
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    };
    let _ = timeout(stall, async {
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    })
    .await;
}

/// Why writing stopped.
enum Stop {
    /// The connection failed or was closed.
    Closed,
    /// One write made no progress for the stall bound.
    Stalled,
}

impl Stop {
    /// Ends the writer: a stalled peer is counted as a slow consumer.
    fn end(self, shared: &Shared) {
        if let Stop::Stalled = self {
            metrics::counter!(m::SLOW_CONSUMER_CLOSES_TOTAL).increment(1);
            shared.stats.closed(close_code::SLOW_CONSUMER);
        }
    }
}

/// `write`, which must complete within `stall`.
async fn bounded<F>(stall: Duration, write: F) -> Result<(), Stop>
where
    F: std::future::Future<Output = Result<(), axum::Error>>,
{
    match timeout(stall, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Stop::Closed),
        Err(_) => Err(Stop::Stalled),
    }
}

/// Writes every frame of `batch` with one flush at the end; each write
/// (a frame handed over, the flush) must complete within `stall`, so a
/// slow reader that takes bytes is not mistaken for one that takes none.
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    batch: &mut VecDeque<Frame>,
    shared: &Shared,
    stall: Duration,
) -> Result<(), Stop> {
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
        bounded(stall, sink.feed(Message::Text(frame.text))).await?;
    }
    bounded(stall, sink.flush()).await?;
    metrics::counter!(m::MESSAGES_OUT_TOTAL).increment(count as u64);
    metrics::counter!(m::BYTES_OUT_TOTAL).increment(bytes as u64);
    let stats = &shared.stats;
    stats
        .messages_out
        .fetch_add(count as u64, Ordering::Relaxed);
    stats.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    Ok(())
}
