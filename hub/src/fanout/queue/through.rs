//! Writing through: a channel message pushed to a connection whose writer
//! is idle, with nothing queued before it, is written to the socket by the
//! pushing task itself, a non-blocking vectored write of the frame's header
//! and the shared payload (docs/ARCHITECTURE.md, "Writes"). That saves the
//! writer task's wake-up, its poll and two more turns of the queue's lock
//! per connection and message, the bulk of the fan-out's work once the
//! payload is shared.
//!
//! Only when the socket takes the whole frame at once does the queue stay
//! out of it. A socket that takes part of it leaves the rest in
//! [`Through::partial`], which goes out first, before anything queued
//! after it, and keeps every other push queued until the writer has sent
//! it. A socket that takes nothing (`WouldBlock`) or fails: the frame is
//! queued as before and the writer meets the full socket or the error.
//!
//! The writer and the pushes never write at once: a push writes only while
//! the writer is parked in `OutboundQueue::ready` with nothing in hand
//! ([`Through::writer_busy`] false), under the queue's lock; the writer
//! marks itself busy (under the same lock) before any write of its own.

use super::group::{wire, Shared};
use super::{Body, OutboundQueue};
use crate::protocol::frame;
use bytes::Bytes;
use std::io::{self, IoSlice};
use std::sync::Arc;

/// A socket a push may write to without waiting.
pub trait DirectSink: Send + Sync + std::fmt::Debug {
    /// Writes what the socket takes now, without waiting: `WouldBlock`
    /// when it takes nothing.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

/// The write-through state of one connection, under the queue's lock.
#[derive(Debug, Default)]
pub(super) struct Through {
    /// The socket, from the writer's start to its end.
    sink: Option<Arc<dyn DirectSink>>,
    /// The writer holds frames it drained and has not written yet, or is
    /// writing something of its own.
    pub(super) writer_busy: bool,
    /// The rest of a frame a push wrote in part.
    pub(super) partial: Option<Bytes>,
    /// Messages and payload bytes written by pushes.
    pub(super) messages: u64,
    pub(super) bytes: u64,
}

/// Frames one write-through may carry: a shard worker's group of one
/// channel's messages (`fanout/shards.rs`), two `iovec`s each.
pub const MAX_FRAMES: usize = 32;

/// The opcode byte (RSV1 set when compressed) and payload a channel
/// message goes out with; `None` for what only the writer writes.
pub(super) fn wire_form(body: &Body) -> Option<(u8, &[u8])> {
    match body {
        Body::Text(text) => Some(wire(Shared::Text(text))),
        Body::Deflated(packed) => Some(wire(Shared::Deflated(packed))),
        Body::ToCompress(_) | Body::Framed(_) | Body::Rest(_) => None,
    }
}

/// What a write-through took of the frames it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Took {
    /// Frames sent, the last one possibly in part (its rest in
    /// [`Through::partial`]).
    pub(super) frames: usize,
    /// Their payload bytes.
    pub(super) bytes: usize,
}

impl Through {
    /// Whether a push may write now: the socket is there, the writer idle
    /// and no rest of an earlier frame waiting.
    pub(super) fn open(&self) -> bool {
        self.sink.is_some() && !self.writer_busy && self.partial.is_none()
    }

    /// Writes `body` as one frame if [`Through::open`]. Returns the payload
    /// bytes if the frame went (whole, or in part with the rest in
    /// `partial`).
    pub(super) fn write(&mut self, body: &Body) -> Option<usize> {
        let frame = wire_form(body)?;
        self.write_frames::<1>(&[frame]).map(|took| took.bytes)
    }

    /// Writes up to `N` of `frames` (each an opcode byte and a
    /// payload: [`wire_form`]), in order, in one `writev`, if
    /// [`Through::open`]. Returns what the socket took, at least part of
    /// the first frame; a frame taken in part leaves its rest in `partial`
    /// and ends the count. `None`: nothing was written (closed, busy,
    /// `WouldBlock`, an error), and every frame is the caller's to queue.
    /// `N` ([`MAX_FRAMES`] for a group) sizes the arrays on the stack, so
    /// a single message's write-through, the common case, sets up one.
    pub(super) fn write_frames<const N: usize>(&mut self, frames: &[(u8, &[u8])]) -> Option<Took> {
        if !self.open() {
            return None;
        }
        let sink = self.sink.as_ref()?;
        let frames = &frames[..frames.len().min(N)];
        let mut heads = [[0u8; 10]; N];
        let mut lens = [0usize; N];
        for (i, (opcode, payload)) in frames.iter().enumerate() {
            lens[i] = frame::header(*opcode, payload.len(), &mut heads[i]);
        }
        // Each frame's header and payload, flattened into one list.
        let mut slices = [[IoSlice::new(&[]); 2]; N];
        for (i, (_, payload)) in frames.iter().enumerate() {
            slices[i] = [IoSlice::new(&heads[i][..lens[i]]), IoSlice::new(payload)];
        }
        let n = match sink.try_write_vectored(slices[..frames.len()].as_flattened()) {
            Ok(n) => n,
            // Nothing taken, or a failed socket: queued, the writer sees.
            Err(_) => return None,
        };
        if n == 0 {
            return None;
        }
        let mut took = Took {
            frames: 0,
            bytes: 0,
        };
        let mut left = n;
        for (i, (_, payload)) in frames.iter().enumerate() {
            let head = &heads[i][..lens[i]];
            let total = head.len() + payload.len();
            took.frames += 1;
            took.bytes += payload.len();
            if left < total {
                let mut rest = Vec::with_capacity(total - left);
                if left < head.len() {
                    rest.extend_from_slice(&head[left..]);
                    rest.extend_from_slice(payload);
                } else {
                    rest.extend_from_slice(&payload[left - head.len()..]);
                }
                self.partial = Some(rest.into());
                break;
            }
            left -= total;
            if left == 0 {
                break;
            }
        }
        self.messages += took.frames as u64;
        self.bytes += took.bytes as u64;
        Some(took)
    }
}

impl OutboundQueue {
    /// Lets pushes write to `sink` while the connection's writer is idle.
    pub fn attach_through(&self, sink: Arc<dyn DirectSink>) {
        self.state.lock().through.sink = Some(sink);
    }

    /// The writer is about to write something of its own (a Ping): no push
    /// writes until it is parked again. Returns the rest of a frame a push
    /// wrote in part, which must be written first.
    pub fn pause_through(&self) -> Option<Bytes> {
        let mut s = self.state.lock();
        s.through.writer_busy = true;
        s.through.partial.take()
    }

    /// The writer is ending (a Close follows, or nothing): no push writes
    /// again, and the socket is released. Returns the rest of a frame
    /// written in part, which must be written before the Close.
    pub fn stop_through(&self) -> Option<Bytes> {
        let mut s = self.state.lock();
        s.through.sink = None;
        s.through.writer_busy = true;
        s.through.partial.take()
    }

    /// Messages and payload bytes that pushes wrote to the socket.
    pub fn written_through(&self) -> (u64, u64) {
        let s = self.state.lock();
        (s.through.messages, s.through.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::script::{drain, framed, msg, queue, wire, writer_parks};
    use super::*;
    use crate::fanout::{Body, OnOverflow, Pushed};

    #[tokio::test]
    async fn an_idle_connection_is_written_at_once_and_its_writer_not_woken() {
        let (q, socket) = queue(&[]);
        assert_eq!(q.push_channel(1, 1, &msg("one"), 0), Pushed::Written(3));
        assert_eq!(q.push_channel(1, 2, &msg("two"), 0), Pushed::Written(3));
        writer_parks(&q).await;
        assert!(drain(&q).is_empty());
        assert_eq!(
            *socket.bytes.lock(),
            [framed("one"), framed("two")].concat()
        );
        assert_eq!(q.written_through(), (2, 6));
        assert_eq!(q.last_delivered_seq(1), 2);
    }

    #[tokio::test]
    async fn the_rest_of_a_frame_taken_in_part_goes_first_and_holds_the_rest_back() {
        // Cut inside the payload, then inside the header.
        for cut in [4, 1] {
            let text = "a".repeat(200);
            let (q, socket) = queue(&[Some(cut)]);
            assert_eq!(q.push_channel(1, 1, &msg(&text), 0), Pushed::Written(200));
            // The rest waits: the next message queues behind it.
            assert_eq!(q.push_channel(1, 2, &msg("next"), 0), Pushed::Queued);
            q.ready().await;
            let frames = drain(&q);
            assert!(matches!(frames[0].body, Body::Rest(_)));
            assert_eq!(frames.len(), 2);
            let mut all = socket.bytes.lock().clone();
            assert_eq!(all.len(), cut);
            all.extend(wire(&frames));
            assert_eq!(all, [framed(&text), framed("next")].concat(), "cut {cut}");
            // The writer has them in hand: pushes queue until it parks.
            assert_eq!(q.push_channel(1, 3, &msg("three"), 0), Pushed::Queued);
            assert_eq!(drain(&q).len(), 1);
            writer_parks(&q).await;
            assert_eq!(q.push_channel(1, 4, &msg("four"), 0), Pushed::Written(4));
        }
    }

    #[tokio::test]
    async fn a_batched_push_is_queued_even_for_an_idle_connection() {
        let (q, socket) = queue(&[]);
        assert_eq!(q.push_channel_batched(1, 1, &msg("one"), 0), Pushed::Queued);
        q.ready().await;
        assert_eq!(wire(&drain(&q)), framed("one"));
        assert!(socket.bytes.lock().is_empty());
    }

    #[tokio::test]
    async fn a_full_socket_queues_the_message_for_the_writer() {
        let (q, socket) = queue(&[None]);
        assert_eq!(q.push_channel(1, 1, &msg("one"), 0), Pushed::Queued);
        assert_eq!(q.push_channel(1, 2, &msg("two"), 0), Pushed::Queued);
        q.ready().await;
        assert_eq!(wire(&drain(&q)), [framed("one"), framed("two")].concat());
        assert!(socket.bytes.lock().is_empty());
        assert_eq!(q.written_through(), (0, 0));
    }

    #[tokio::test]
    async fn held_frames_and_queued_replies_keep_their_place() {
        let (q, socket) = queue(&[]);
        q.push_control("reply".into());
        assert_eq!(q.push_channel(1, 1, &msg("one"), 0), Pushed::Queued);
        q.subscribe(2, 0, OnOverflow::Resync);
        assert_eq!(q.push_channel(2, 1, &msg("held"), 0), Pushed::Queued);
        assert_eq!(wire(&drain(&q)), [framed("reply"), framed("one")].concat());
        writer_parks(&q).await;
        assert_eq!(q.push_channel(2, 2, &msg("held2"), 0), Pushed::Queued);
        assert!(socket.bytes.lock().is_empty());
    }

    #[tokio::test]
    async fn a_pausing_or_ending_writer_takes_the_rest_and_stops_the_pushes() {
        let (q, socket) = queue(&[Some(3)]);
        assert_eq!(q.push_channel(1, 1, &msg("hello"), 0), Pushed::Written(5));
        // A Ping: the rest first, and no push writes until the writer parks.
        let rest = q.pause_through().expect("the rest");
        assert_eq!(
            [&socket.bytes.lock()[..], &rest[..]].concat(),
            framed("hello")
        );
        assert_eq!(q.push_channel(1, 2, &msg("two"), 0), Pushed::Queued);
        q.ready().await;
        drain(&q);
        writer_parks(&q).await;
        assert_eq!(q.push_channel(1, 3, &msg("three"), 0), Pushed::Written(5));
        // The end: nothing is written through after it.
        assert_eq!(q.stop_through(), None);
        writer_parks(&q).await;
        assert_eq!(q.push_channel(1, 4, &msg("four"), 0), Pushed::Queued);
        assert_eq!(Arc::strong_count(&socket), 1, "the queue let the socket go");
    }
}
