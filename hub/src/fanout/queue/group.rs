//! A group: consecutive messages of one channel that a shard worker found
//! waiting for the same subscribers (`fanout/shards.rs`), pushed to a
//! connection as one. An idle connection is written all of them in one
//! `writev`, under one turn of its lock, where one by one each would have
//! cost a lock and a write, or, queued, a wake-up of the writer
//! (docs/ARCHITECTURE.md, "Writes").

use super::through::{Took, MAX_FRAMES};
use super::{ChannelId, OutboundQueue, Pushed};
use crate::protocol::frame;
use crate::protocol::message::ChannelMessage;
use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;

/// One message of a group: its seq, the message and its ingest time (µs).
pub type GroupItem<'a> = (u64, &'a ChannelMessage, u64);

/// What a group's push did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroupPushed {
    /// Messages written to the socket at once (`items[from..from +
    /// written]`), and their payload bytes.
    pub written: usize,
    pub from: usize,
    pub bytes: usize,
    /// A message did not fit a conflatable channel: the caller arranges a
    /// fresh snapshot ([`Pushed::NeedsResync`]).
    pub resync: bool,
}

/// How every subscriber like one connection is sent a message after its
/// first on the channel: bytes shared by all of them.
pub(super) enum Shared<'m> {
    /// The compressed form, to a connection that negotiated
    /// permessage-deflate.
    Deflated(&'m Bytes),
    Text(&'m Utf8Bytes),
}

impl OutboundQueue {
    /// The form of `msg` this connection is sent: compressed if it
    /// negotiated permessage-deflate and the message has a compressed
    /// form, else the text.
    pub(super) fn shared_form<'m>(&self, msg: &'m ChannelMessage) -> Shared<'m> {
        match msg.deflated() {
            Some(packed) if self.deflate => Shared::Deflated(packed),
            _ => Shared::Text(msg.text()),
        }
    }

    /// Pushes `items`, consecutive messages of `channel` oldest first, with
    /// what [`OutboundQueue::push_channel`] would do to each in turn: while
    /// the connection is idle (nothing queued or held, the writer parked,
    /// not its first message on the channel) and they fit its bound, those
    /// above the subscription's floor go out in one write. What the socket
    /// does not take, and everything on a busy connection, is queued for
    /// the writer (a batch, not a write each).
    pub fn push_channel_group(&self, channel: ChannelId, items: &[GroupItem<'_>]) -> GroupPushed {
        let mut out = GroupPushed::default();
        let mut guard = self.state.lock();
        let s = &mut *guard;
        let mut rest = items;
        let idle = s.close.is_none() && s.frames.is_empty() && s.through.open();
        let queued = s.bytes;
        if let Some(sub) = s
            .subscriptions
            .get_mut(&channel)
            .filter(|sub| idle && sub.held.is_none() && !sub.resync_pending && !sub.first)
        {
            // Those above the floor (a prefix of the group is at or below
            // it), with their places in `items`.
            let mut frames = [(0u8, &[][..]); MAX_FRAMES];
            let mut places = [0usize; MAX_FRAMES];
            let (mut n, mut bytes) = (0, 0);
            for (place, &(seq, msg, _)) in items.iter().enumerate().take(MAX_FRAMES) {
                if seq > sub.floor {
                    frames[n] = wire(self.shared_form(msg));
                    places[n] = place;
                    bytes += frames[n].1.len();
                    n += 1;
                }
            }
            // Over the bound (other channels' held frames count), each
            // message meets the overflow policy one by one below.
            if queued + bytes <= self.max_bytes {
                rest = &items[items.len().min(MAX_FRAMES)..];
                if n > 0 {
                    if let Some(Took {
                        frames: sent,
                        bytes,
                    }) = s.through.write_frames::<MAX_FRAMES>(&frames[..n])
                    {
                        out.from = places[0];
                        out.written = sent;
                        out.bytes = bytes;
                        let last = places[sent - 1];
                        sub.last_drained = items[last].0;
                        if s.through.partial.is_some() {
                            self.notify.notify_one();
                        }
                        rest = &items[last + 1..];
                    } else {
                        rest = items;
                    }
                }
            }
        }
        for &(seq, msg, ts) in rest {
            if self.push_locked(s, channel, seq, msg, ts, false) == Pushed::NeedsResync {
                out.resync = true;
            }
        }
        out
    }
}

/// The opcode byte and payload of a channel message's shared form.
pub(super) fn wire(form: Shared<'_>) -> (u8, &[u8]) {
    match form {
        Shared::Deflated(packed) => (frame::RSV1 | frame::OP_TEXT, packed),
        Shared::Text(text) => (frame::OP_TEXT, text.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::script::{drain, framed, msg, queue, queue_from, wire, writer_parks};
    use super::*;
    use crate::fanout::{Body, Frame, OnOverflow};

    /// `msgs` as a group, seqs from `first`.
    fn group(first: u64, msgs: &[ChannelMessage]) -> Vec<GroupItem<'_>> {
        msgs.iter()
            .enumerate()
            .map(|(i, m)| (first + i as u64, m, 0))
            .collect()
    }

    fn texts(list: &[&str]) -> Vec<ChannelMessage> {
        list.iter().map(|s| msg(s)).collect()
    }

    #[tokio::test]
    async fn an_idle_connection_gets_the_whole_group_in_one_write() {
        let (q, socket) = queue(&[]);
        let msgs = texts(&["one", "two", "three"]);
        let pushed = q.push_channel_group(1, &group(1, &msgs));
        assert_eq!(
            pushed,
            GroupPushed {
                written: 3,
                from: 0,
                bytes: 11,
                resync: false
            }
        );
        assert_eq!(*socket.calls.lock(), 1, "one writev");
        assert_eq!(
            *socket.bytes.lock(),
            [framed("one"), framed("two"), framed("three")].concat()
        );
        writer_parks(&q).await;
        assert!(drain(&q).is_empty());
        assert_eq!(q.last_delivered_seq(1), 3);
        assert_eq!(q.written_through(), (3, 11));
    }

    #[tokio::test]
    async fn a_group_cut_in_a_frame_sends_the_rest_first_then_the_others() {
        let msgs = texts(&["aaaa", "bbbb", "cccc", "dddd"]);
        let whole = [
            framed("aaaa"),
            framed("bbbb"),
            framed("cccc"),
            framed("dddd"),
        ]
        .concat();
        // Inside the second frame's header, inside its payload, at its end.
        for cut in [7, 9, 12] {
            let (q, socket) = queue(&[Some(cut)]);
            let pushed = q.push_channel_group(1, &group(1, &msgs));
            let sent = cut.div_ceil(6);
            assert_eq!(pushed.written, sent, "cut {cut}");
            q.ready().await;
            let frames = drain(&q);
            let mut all = socket.bytes.lock().clone();
            all.extend(wire(&frames));
            assert_eq!(all, whole, "cut {cut}");
            let seqs: Vec<u64> = frames
                .iter()
                .filter(|f| f.channel.is_some())
                .map(|f| f.seq)
                .collect();
            assert_eq!(
                seqs,
                ((sent as u64 + 1)..=4).collect::<Vec<_>>(),
                "cut {cut}"
            );
            let rest = frames.iter().any(|f| matches!(f.body, Body::Rest(_)));
            assert_eq!(rest, cut % 6 != 0, "cut {cut}");
        }
    }

    #[tokio::test]
    async fn messages_at_or_below_the_floor_are_left_out() {
        let (q, socket) = queue_from(2, &[]);
        let msgs = texts(&["m1", "m2", "m3", "m4"]);
        let pushed = q.push_channel_group(1, &group(1, &msgs));
        assert_eq!((pushed.from, pushed.written), (2, 2), "{pushed:?}");
        assert_eq!(*socket.calls.lock(), 1);
        assert_eq!(*socket.bytes.lock(), [framed("m3"), framed("m4")].concat());
        // All of a group below the floor: nothing written, nothing queued.
        let (q, socket) = queue_from(9, &[]);
        assert_eq!(
            q.push_channel_group(1, &group(1, &msgs)),
            GroupPushed::default()
        );
        assert_eq!(*socket.calls.lock(), 0);
        assert!(drain(&q).is_empty());
    }

    #[tokio::test]
    async fn a_busy_or_full_connection_has_the_group_queued_in_order() {
        let msgs = texts(&["m2", "m3", "m4"]);
        // Busy: a frame already queued.
        let (q, socket) = queue(&[]);
        q.push_channel_batched(1, 1, &msg("m1"), 0);
        assert_eq!(q.push_channel_group(1, &group(2, &msgs)).written, 0);
        assert_eq!(*socket.calls.lock(), 0);
        let seqs = |frames: Vec<Frame>| frames.iter().map(|f| f.seq).collect::<Vec<_>>();
        assert_eq!(seqs(drain(&q)), [1, 2, 3, 4]);
        // Full: the group's write takes nothing, and is not tried again
        // for each message.
        let (q, socket) = queue(&[None]);
        assert_eq!(q.push_channel_group(1, &group(2, &msgs)).written, 0);
        assert_eq!(*socket.calls.lock(), 1);
        q.ready().await;
        assert_eq!(seqs(drain(&q)), [2, 3, 4]);
    }

    #[tokio::test]
    async fn an_overflowing_group_asks_for_a_snapshot() {
        let (q, _socket) = queue(&[None]);
        let big = "x".repeat(40_000);
        let msgs = texts(&[&big, &big]);
        let pushed = q.push_channel_group(1, &group(1, &msgs));
        assert!(pushed.resync, "{pushed:?}");
        assert_eq!(pushed.written, 0);
    }

    #[tokio::test]
    async fn a_first_message_on_the_channel_has_the_group_queued_for_the_writer() {
        let (q, socket) = queue(&[]);
        q.expect_first(1);
        let msgs = texts(&["m1", "m2", "m3"]);
        assert_eq!(
            q.push_channel_group(1, &group(1, &msgs)),
            GroupPushed::default()
        );
        assert_eq!(*socket.calls.lock(), 0, "no write each");
        q.ready().await;
        assert_eq!(drain(&q).len(), 3);
    }

    #[tokio::test]
    async fn a_group_over_the_bound_meets_the_overflow_policy() {
        let (q, socket) = queue(&[]);
        // Another channel's frames, held until its reply, count.
        q.subscribe(2, 0, OnOverflow::Resync);
        let held = "h".repeat(40_000);
        assert_eq!(q.push_channel_batched(2, 1, &msg(&held), 0), Pushed::Queued);
        let big = "x".repeat(20_000);
        let msgs = texts(&[&big, &big]);
        let pushed = q.push_channel_group(1, &group(1, &msgs));
        assert!(pushed.resync, "{pushed:?}");
        assert_eq!(pushed.written, 0);
        assert_eq!(*socket.calls.lock(), 0);
    }
}
