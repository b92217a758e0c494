//! A connection's writer: drains the outbound queue in batches (a
//! vectored write per batch of up to 32 frames, the shared payloads as
//! they are: `socket.rs`), sends pings, heartbeats and the shutdown
//! notice, and closes with the right code. While it is parked with
//! nothing in hand, pushes write channel messages to the socket
//! themselves (`fanout/queue/through.rs`); it marks itself busy before any
//! write of its own and takes the socket back before its Close.
//!
//! Every write (a batch's write, a Ping, the Close)
//! must complete within `pong_timeout_ms`, the patience
//! the hub has for a silent peer: a peer that stops reading fills its
//! socket buffer, and a write waiting on it would otherwise hold the
//! writer (and with it pings, the slow-consumer close and the shutdown
//! notice) and the connection's slot for ever. Such a peer is dropped
//! without a close frame (none could get through) and counted as a
//! slow-consumer close (docs/PROTOCOL.md, "Slow consumers").

use super::connection::Shared;
use super::socket::WriteHalf;
use super::{close_code, HubContext};
use crate::fanout::{deflate, Body, CloseReason, Frame, OutboundQueue};
use crate::metrics as m;
use crate::protocol::{frame, replies};
use feeds::event::now_micros;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Frames per vectored write: two slices each (header, payload), well
/// under the kernel's `IOV_MAX` of 1,024.
const FRAMES_PER_WRITE: usize = 32;

pub(super) async fn write_loop(
    mut sink: WriteHalf,
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
    // Made once, not per turn of the loop: each `triggered()` clones a
    // watch receiver and registers a waiter.
    let stopping = ctx.shutdown.triggered();
    tokio::pin!(stopping);
    let queue = &shared.subscriber.queue;
    let _release = Release(queue);
    let (code, reason) = loop {
        tokio::select! {
            _ = queue.ready() => {
                let close = queue.drain_into(&mut batch);
                match write_batch(&mut sink, &mut batch, &shared, stall).await {
                    Err(stop) => return stop.end(&shared),
                    // The protocol layer answered a Close: nothing follows.
                    Ok(Sent::Close) => return finish(&mut sink, queue, stall).await,
                    Ok(Sent::Frames) => {}
                }
                if close == Some(CloseReason::SlowConsumer) {
                    metrics::counter!(m::SLOW_CONSUMER_CLOSES_TOTAL).increment(1);
                    break (close_code::SLOW_CONSUMER, "slow consumer");
                }
            }
            msg = close_rx.recv() => {
                let Some((code, reason)) = msg else {
                    // The reader is gone: write what it left (the reply to
                    // the peer's Close) and stop.
                    queue.drain_into(&mut batch);
                    if let Err(stop) = write_batch(&mut sink, &mut batch, &shared, stall).await {
                        return stop.end(&shared);
                    }
                    return finish(&mut sink, queue, stall).await;
                };
                // Flush replies queued before the close (e.g. the last error).
                queue.drain_into(&mut batch);
                match write_batch(&mut sink, &mut batch, &shared, stall).await {
                    Err(Stop::Stalled) => return Stop::Stalled.end(&shared),
                    Ok(Sent::Close) => return finish(&mut sink, queue, stall).await,
                    _ => {}
                }
                break (code, reason);
            }
            _ = ping.tick() => {
                let silent = shared.started.elapsed().as_millis() as u64 - shared.last_seen_ms.load(Ordering::Relaxed);
                if silent > limits.pong_timeout_ms {
                    break (close_code::POLICY, "ping timeout");
                }
                let rest = queue.pause_through();
                if let Err(stop) = bounded(stall, write_after(&mut sink, rest, &frame::PING)).await {
                    return stop.end(&shared);
                }
            }
            _ = heartbeat.tick(), if shared.heartbeat.load(Ordering::Relaxed) => {
                beats += 1;
                shared.reply(replies::heartbeat(&ctx.markets.epoch(), beats, now_micros()));
            }
            () = &mut stopping => {
                shared.reply(replies::shutdown(ctx.reconnect_after_ms));
                queue.drain_into(&mut batch);
                match write_batch(&mut sink, &mut batch, &shared, stall).await {
                    Err(Stop::Stalled) => return Stop::Stalled.end(&shared),
                    Ok(Sent::Close) => return finish(&mut sink, queue, stall).await,
                    _ => {}
                }
                break (close_code::GOING_AWAY, "server shutdown");
            }
        }
    };
    shared.stats.closed(code);
    let rest = queue.stop_through();
    let close = frame::close_frame(code, reason);
    let _ = bounded(stall, write_after(&mut sink, rest, &close)).await;
    finish(&mut sink, queue, stall).await;
}

/// Ends the writing side: the server closes TCP first (RFC 6455 §7.1.1).
/// No push writes through after it; the rest of a frame one wrote in
/// part goes first.
async fn finish(sink: &mut WriteHalf, queue: &OutboundQueue, stall: Duration) {
    if let Some(rest) = queue.stop_through() {
        let _ = bounded(stall, sink.write_all(&rest)).await;
    }
    let _ = timeout(stall, sink.shutdown()).await;
}

/// Writes the rest of a frame that a push wrote in part, then `frame`.
async fn write_after(
    sink: &mut WriteHalf,
    rest: Option<bytes::Bytes>,
    frame: &[u8],
) -> std::io::Result<()> {
    if let Some(rest) = rest {
        sink.write_all(&rest).await?;
    }
    sink.write_all(frame).await
}

/// Takes the socket from the queue however the writer ends, so no push
/// writes after it and the socket closes when the writer drops it.
struct Release<'a>(&'a OutboundQueue);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.stop_through();
    }
}

/// What a batch held.
enum Sent {
    Frames,
    /// A Close frame (the protocol layer's reply to the peer's Close),
    /// written last: nothing may follow it.
    Close,
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
    F: std::future::Future<Output = std::io::Result<()>>,
{
    match timeout(stall, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Stop::Closed),
        Err(_) => Err(Stop::Stalled),
    }
}

/// Writes every frame of `batch`, [`FRAMES_PER_WRITE`] to a vectored
/// write: the shared payloads as they are, each behind its header. Each
/// write must make progress within `stall`, so a slow reader that takes
/// bytes is not mistaken for one that takes none. Frames after a Close
/// are dropped.
async fn write_batch(
    sink: &mut WriteHalf,
    batch: &mut VecDeque<Frame>,
    shared: &Shared,
    stall: Duration,
) -> Result<Sent, Stop> {
    if batch.is_empty() {
        return Ok(Sent::Frames);
    }
    for frame in batch.iter_mut() {
        if let Body::ToCompress(text) = &frame.body {
            frame.body = match deflate::compress(text.as_bytes()) {
                Some(packed) => Body::Deflated(packed),
                None => Body::Text(text.clone()),
            };
        }
    }
    let mut sent = Sent::Frames;
    if let Some(at) = close_at(batch) {
        batch.truncate(at + 1);
        sent = Sent::Close;
    }
    let now = now_micros();
    // The rest of a frame written in part was counted by its push.
    let count = batch
        .iter()
        .filter(|f| !matches!(f.body, Body::Rest(_)))
        .count();
    let mut bytes = 0usize;
    let mut tally = m::Tally::default();
    for frame in batch.iter() {
        if frame.ts > 0 {
            tally.latency(now.saturating_sub(frame.ts), 1);
        }
    }
    let result = async {
        for chunk in batch.make_contiguous().chunks(FRAMES_PER_WRITE) {
            let mut heads = [[0u8; 10]; FRAMES_PER_WRITE];
            let mut lens = [0usize; FRAMES_PER_WRITE];
            for ((frame, head), len) in chunk.iter().zip(&mut heads).zip(&mut lens) {
                let opcode = match &frame.body {
                    Body::Text(_) | Body::ToCompress(_) => frame::OP_TEXT,
                    Body::Deflated(_) => frame::RSV1 | frame::OP_TEXT,
                    Body::Framed(_) | Body::Rest(_) => continue,
                };
                *len = frame::header(opcode, frame.body.len(), head);
                bytes += frame.body.len();
            }
            let mut slices = [IoSlice::new(&[]); 2 * FRAMES_PER_WRITE];
            let mut n = 0;
            for ((frame, head), len) in chunk.iter().zip(&heads).zip(&lens) {
                let payload: &[u8] = match &frame.body {
                    Body::Text(text) | Body::ToCompress(text) => {
                        slices[n] = IoSlice::new(&head[..*len]);
                        n += 1;
                        text.as_bytes()
                    }
                    Body::Deflated(packed) => {
                        slices[n] = IoSlice::new(&head[..*len]);
                        n += 1;
                        packed
                    }
                    Body::Framed(raw) | Body::Rest(raw) if raw.is_empty() => continue,
                    Body::Framed(raw) | Body::Rest(raw) => raw,
                };
                slices[n] = IoSlice::new(payload);
                n += 1;
            }
            write_all_vectored(sink, &mut slices[..n], stall).await?;
        }
        Ok(())
    }
    .await;
    batch.clear();
    // The latencies count whatever the write's outcome (a frame that sat
    // in a slow reader's queue is the histogram's tail); the messages and
    // bytes only once written.
    if result.is_ok() {
        tally.written(count as u64, bytes as u64);
    }
    tally.add();
    result?;
    let stats = &shared.stats;
    stats
        .messages_out
        .fetch_add(count as u64, Ordering::Relaxed);
    stats.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    Ok(sent)
}

/// The index of the batch's first Close (the protocol layer's reply to
/// the peer's), after which nothing may be written. Only whole frames are
/// looked at: the rest of a frame written in part ([`Body::Rest`]) starts
/// mid-frame, and a payload byte there could read as a Close's header.
fn close_at(batch: &VecDeque<Frame>) -> Option<usize> {
    batch
        .iter()
        .position(|f| matches!(&f.body, Body::Framed(b) if frame::holds_close(b)))
}

/// Writes all of `slices`, as few writes as the socket takes.
async fn write_all_vectored(
    sink: &mut WriteHalf,
    mut slices: &mut [IoSlice<'_>],
    stall: Duration,
) -> Result<(), Stop> {
    while !slices.is_empty() {
        match timeout(stall, sink.write_vectored(slices)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(Stop::Closed),
            Ok(Ok(n)) => IoSlice::advance_slices(&mut slices, n),
            Err(_) => return Err(Stop::Stalled),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn queued(body: Body) -> Frame {
        Frame {
            channel: None,
            seq: 0,
            body,
            ts: 0,
        }
    }

    #[test]
    fn the_rest_of_a_frame_is_never_taken_for_a_close() {
        // A 200-byte text frame cut after its first byte: what is left,
        // read as frames, has a Close opcode in its third byte.
        let mut whole = vec![0x81, 0x7e, 0x00, 0xc8];
        whole.extend([b'h'; 200]);
        let rest = Bytes::copy_from_slice(&whole[1..]);
        assert!(frame::holds_close(&rest), "the trap this test is about");
        let mut batch: VecDeque<Frame> = [queued(Body::Rest(rest))].into();
        assert_eq!(close_at(&batch), None);
        // A Close reply behind it is still found.
        batch.push_back(queued(Body::Framed(frame::close_frame(1000, "").into())));
        assert_eq!(close_at(&batch), Some(1));
    }
}
