//! A connection's outbound queue: bounded in bytes, filtered per
//! subscription, and the place where the slow-consumer policy of
//! docs/PROTOCOL.md is applied.
//!
//! Publishers (pair tasks and shard workers) push shared frames; the
//! connection's writer drains everything queued in one go and writes it as
//! one batch. A push never waits: it takes a short, uncontended mutex (only
//! this connection's writer competes for it) and returns. A channel message
//! pushed while nothing is queued and the writer is idle is written to the
//! socket by the push itself, without waiting (`through.rs`).
//!
//! Ordering without a global lock: every channel message carries its `seq`.
//! A subscription has a `floor`, the seq of the snapshot the client got;
//! anything at or below it is already in that snapshot and is dropped here.
//! That lets a snapshot be queued by one task while another task may still
//! be delivering older messages of the same channel.

use super::ChannelId;
use crate::protocol::message::ChannelMessage;
use axum::extract::ws::Utf8Bytes;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use tokio::sync::Notify;

mod frame;
mod group;
#[cfg(test)]
pub(crate) mod script;
mod through;
pub use frame::{Body, CloseReason, Frame, Pushed};
use group::Shared;
pub use group::{GroupItem, GroupPushed};
pub use through::{DirectSink, MAX_FRAMES};

/// What to do when a message of a subscription does not fit the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOverflow {
    /// Drop the channel's queued messages and ask for one fresh snapshot
    /// (book, depth, ticker).
    Resync,
    /// Close the connection with 4008 (trades, private channels).
    Close,
}

#[derive(Debug)]
struct Subscription {
    floor: u64,
    resync_pending: bool,
    on_overflow: OnOverflow,
    /// Seq of the last frame of this channel handed to the writer: the
    /// `prev_seq` a replacement snapshot must carry.
    last_drained: u64,
    /// The next frame is the client's first on this channel: it is the
    /// message's variant with `prev_seq` 0 (docs/PROTOCOL.md: "0 for the
    /// first").
    first: bool,
    /// While the `subscribed` reply is not queued yet, the channel's frames
    /// wait here (still counted against the byte bound).
    held: Option<VecDeque<Frame>>,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    bytes: usize,
    /// By channel id: small integers of the process's own, so the fast,
    /// non-keyed Fx hash (a client cannot choose them).
    subscriptions: FxHashMap<ChannelId, Subscription>,
    close: Option<CloseReason>,
    conflations: u64,
    through: through::Through,
}

/// The bounded outbound queue of one connection.
#[derive(Debug)]
pub struct OutboundQueue {
    state: Mutex<State>,
    notify: Notify,
    max_bytes: usize,
    /// The connection negotiated permessage-deflate.
    deflate: bool,
}

impl OutboundQueue {
    pub fn new(max_bytes: usize) -> Self {
        OutboundQueue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            max_bytes,
            deflate: false,
        }
    }

    /// The queue of a connection that negotiated permessage-deflate.
    pub fn compressing(max_bytes: usize) -> Self {
        OutboundQueue {
            deflate: true,
            ..OutboundQueue::new(max_bytes)
        }
    }

    /// Whether its connection negotiated permessage-deflate.
    pub fn deflates(&self) -> bool {
        self.deflate
    }

    /// Starts (or restarts) a subscription: channel messages with a seq above
    /// `floor` will be accepted, and held back until [`OutboundQueue::release`]
    /// (so the `subscribed` reply goes first). Queued frames of an earlier
    /// subscription to the same channel are dropped.
    pub fn subscribe(&self, channel: ChannelId, floor: u64, on_overflow: OnOverflow) {
        let mut s = self.state.lock();
        drop_channel(&mut s, channel);
        s.subscriptions.insert(
            channel,
            Subscription {
                floor,
                resync_pending: false,
                on_overflow,
                last_drained: 0,
                first: false,
                held: Some(VecDeque::new()),
            },
        );
    }

    /// The channel's numbering restarted (a new upstream epoch): frames
    /// already queued stay, the next one is the client's first in the new
    /// numbering (`prev_seq` 0) and no floor of the old numbering filters
    /// it.
    pub fn restart_numbering(&self, channel: ChannelId) {
        if let Some(sub) = self.state.lock().subscriptions.get_mut(&channel) {
            sub.floor = 0;
            sub.first = true;
            sub.last_drained = 0;
            sub.resync_pending = false;
        }
    }

    /// Marks `channel`'s next frame as the client's first on it.
    pub fn expect_first(&self, channel: ChannelId) {
        if let Some(sub) = self.state.lock().subscriptions.get_mut(&channel) {
            sub.first = true;
        }
    }

    /// Lets the held frames of `channels` follow what is queued now.
    pub fn release(&self, channels: &[ChannelId]) {
        let mut s = self.state.lock();
        let mut moved = false;
        for ch in channels {
            if let Some(held) = s.subscriptions.get_mut(ch).and_then(|sub| sub.held.take()) {
                moved |= !held.is_empty();
                s.frames.extend(held);
            }
        }
        if moved {
            self.notify.notify_one();
        }
    }

    /// The `prev_seq` for a replacement snapshot of `channel`: the seq of
    /// the last frame of it that the client will have received.
    pub fn last_delivered_seq(&self, channel: ChannelId) -> u64 {
        self.state
            .lock()
            .subscriptions
            .get(&channel)
            .map_or(0, |sub| sub.last_drained)
    }

    /// Ends a subscription and drops its queued frames.
    pub fn unsubscribe(&self, channel: ChannelId) -> bool {
        let mut s = self.state.lock();
        drop_channel(&mut s, channel);
        s.subscriptions.remove(&channel).is_some()
    }

    pub fn is_subscribed(&self, channel: ChannelId) -> bool {
        self.state.lock().subscriptions.contains_key(&channel)
    }

    pub fn subscription_count(&self) -> usize {
        self.state.lock().subscriptions.len()
    }

    /// Queues a channel message with sequence `seq`, applying the
    /// subscription filter and the overflow policy, or writes it to the
    /// socket at once when nothing is queued and the writer is idle
    /// (`through.rs`).
    pub fn push_channel(
        &self,
        channel: ChannelId,
        seq: u64,
        msg: &ChannelMessage,
        ts: u64,
    ) -> Pushed {
        self.push_locked(&mut self.state.lock(), channel, seq, msg, ts, true)
    }

    /// [`OutboundQueue::push_channel`] that never writes through: under a
    /// backlog, what the writer batches costs fewer writes.
    pub fn push_channel_batched(
        &self,
        channel: ChannelId,
        seq: u64,
        msg: &ChannelMessage,
        ts: u64,
    ) -> Pushed {
        self.push_locked(&mut self.state.lock(), channel, seq, msg, ts, false)
    }

    /// A channel message's push, under the lock the caller holds;
    /// `through`: it may be written to the socket at once.
    fn push_locked(
        &self,
        s: &mut State,
        channel: ChannelId,
        seq: u64,
        msg: &ChannelMessage,
        ts: u64,
        through: bool,
    ) -> Pushed {
        if s.close.is_some() {
            return Pushed::Filtered;
        }
        // One lookup per push (the hot path): the subscription is held
        // mutably while the frame is queued.
        let Some(sub) = s.subscriptions.get_mut(&channel) else {
            return Pushed::Filtered;
        };
        if sub.resync_pending || seq <= sub.floor {
            return Pushed::Filtered;
        }
        // The first message on a channel goes plain: its variant is this
        // connection's own, not worth compressing for one.
        let body = if sub.first {
            Body::Text(msg.first_on_channel())
        } else {
            match self.shared_form(msg) {
                Shared::Deflated(packed) => Body::Deflated(packed.clone()),
                Shared::Text(text) => Body::Text(text.clone()),
            }
        };
        if s.bytes + body.len() > self.max_bytes {
            let on_overflow = sub.on_overflow;
            return self.overflow(s, channel, on_overflow);
        }
        sub.first = false;
        // Nothing before it and the writer idle: written now.
        if through && sub.held.is_none() && s.frames.is_empty() {
            if let Some(n) = s.through.write(&body) {
                sub.last_drained = seq;
                if s.through.partial.is_some() {
                    self.notify.notify_one();
                }
                return Pushed::Written(n);
            }
        }
        s.bytes += body.len();
        let frame = Frame {
            channel: Some(channel),
            seq,
            body,
            ts,
        };
        if let Some(held) = sub.held.as_mut() {
            held.push_back(frame);
            return Pushed::Queued;
        }
        let was_empty = s.frames.is_empty();
        s.frames.push_back(frame);
        if was_empty {
            self.notify.notify_one();
        }
        Pushed::Queued
    }

    /// Queues a message recovered from history for a resuming client and
    /// raises the floor to it, so a live copy of it still in flight from a
    /// shard is dropped.
    pub fn push_replay(
        &self,
        channel: ChannelId,
        seq: u64,
        msg: &ChannelMessage,
        ts: u64,
    ) -> Pushed {
        let pushed = self.push_channel(channel, seq, msg, ts);
        if matches!(pushed, Pushed::Queued | Pushed::Written(_)) {
            if let Some(sub) = self.state.lock().subscriptions.get_mut(&channel) {
                sub.floor = seq;
            }
        }
        pushed
    }

    /// Queues a snapshot that replaces everything the client had on
    /// `channel`: raises the floor to `seq` and clears a pending resync.
    /// A snapshot that does not fit even after the channel's own frames
    /// are dropped closes the connection.
    pub fn push_snapshot(&self, channel: ChannelId, seq: u64, text: Utf8Bytes, ts: u64) -> Pushed {
        // A snapshot is this connection's own: its writer compresses it.
        let body = if self.deflate {
            Body::ToCompress(text)
        } else {
            Body::Text(text)
        };
        let mut s = self.state.lock();
        if s.close.is_some() {
            return Pushed::Filtered;
        }
        let Some(sub) = s.subscriptions.get_mut(&channel) else {
            return Pushed::Filtered;
        };
        sub.floor = seq;
        sub.resync_pending = false;
        drop_channel(&mut s, channel);
        if s.bytes + body.len() > self.max_bytes {
            return self.close_locked(&mut s);
        }
        self.enqueue(
            &mut s,
            Frame {
                channel: Some(channel),
                seq,
                body,
                ts,
            },
        );
        Pushed::Queued
    }

    /// Queues a reply or per-connection message (never filtered). If even
    /// that does not fit, the connection is closing.
    pub fn push_control(&self, text: Utf8Bytes) -> Pushed {
        self.push_unfiltered(Body::Text(text))
    }

    /// Queues whole frames framed by the protocol layer (a Pong, a Close
    /// reply), bounded like a reply.
    pub fn push_framed(&self, frames: bytes::Bytes) -> Pushed {
        self.push_unfiltered(Body::Framed(frames))
    }

    fn push_unfiltered(&self, body: Body) -> Pushed {
        let mut s = self.state.lock();
        if s.close.is_some() {
            return Pushed::Filtered;
        }
        if s.bytes + body.len() > self.max_bytes {
            return self.close_locked(&mut s);
        }
        self.enqueue(
            &mut s,
            Frame {
                channel: None,
                seq: 0,
                body,
                ts: 0,
            },
        );
        Pushed::Queued
    }

    fn overflow(&self, s: &mut State, channel: ChannelId, on_overflow: OnOverflow) -> Pushed {
        match on_overflow {
            OnOverflow::Close => self.close_locked(s),
            OnOverflow::Resync => {
                drop_channel(s, channel);
                s.conflations += 1;
                if let Some(sub) = s.subscriptions.get_mut(&channel) {
                    sub.resync_pending = true;
                }
                Pushed::NeedsResync
            }
        }
    }

    fn close_locked(&self, s: &mut State) -> Pushed {
        s.close = Some(CloseReason::SlowConsumer);
        s.frames.clear();
        s.subscriptions.clear();
        s.bytes = 0;
        self.notify.notify_one();
        Pushed::Closing
    }

    fn enqueue(&self, s: &mut State, frame: Frame) {
        s.bytes += frame.body.len();
        if let Some(held) = frame
            .channel
            .and_then(|ch| s.subscriptions.get_mut(&ch))
            .and_then(|sub| sub.held.as_mut())
        {
            held.push_back(frame);
            return;
        }
        let was_empty = s.frames.is_empty();
        s.frames.push_back(frame);
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Moves every queued frame into `out` (which should be empty), behind
    /// the rest of a frame written in part, and returns the close reason if
    /// the connection must close. Pushes stop writing through until the
    /// caller, the writer, is back in [`OutboundQueue::ready`].
    pub fn drain_into(&self, out: &mut VecDeque<Frame>) -> Option<CloseReason> {
        let mut s = self.state.lock();
        std::mem::swap(&mut s.frames, out);
        let State {
            subscriptions,
            bytes,
            close,
            ..
        } = &mut *s;
        for f in out.iter() {
            *bytes -= f.body.len();
            if let Some(sub) = f.channel.and_then(|ch| subscriptions.get_mut(&ch)) {
                sub.last_drained = f.seq;
            }
        }
        let close = *close;
        if let Some(rest) = s.through.partial.take() {
            out.push_front(Frame {
                channel: None,
                seq: 0,
                body: Body::Rest(rest),
                ts: 0,
            });
        }
        s.through.writer_busy = !out.is_empty();
        close
    }

    /// Waits until something is queued or a close is requested. The
    /// writer calls it with nothing in hand: pushes may write through
    /// meanwhile.
    pub async fn ready(&self) {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock();
                if !s.frames.is_empty() || s.close.is_some() || s.through.partial.is_some() {
                    return;
                }
                s.through.writer_busy = false;
            }
            notified.await;
        }
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().bytes
    }

    /// How many times a channel of this connection was conflated.
    pub fn conflations(&self) -> u64 {
        self.state.lock().conflations
    }
}

fn drop_channel(s: &mut State, channel: ChannelId) {
    let mut dropped = 0;
    s.frames.retain(|f| {
        let keep = f.channel != Some(channel);
        if !keep {
            dropped += f.body.len();
        }
        keep
    });
    if let Some(held) = s
        .subscriptions
        .get_mut(&channel)
        .and_then(|sub| sub.held.as_mut())
    {
        dropped += held.iter().map(|f| f.body.len()).sum::<usize>();
        held.clear();
    }
    s.bytes -= dropped;
}

#[cfg(test)]
mod tests;
