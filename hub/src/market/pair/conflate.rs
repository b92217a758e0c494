//! Netted topics (`@100ms`, `@1000ms`, and a raw one whose kind sets a
//! floor, e.g. candles at 250 ms): what changed since a topic's last
//! message (its kind's [`Pending`] notes), and the tick that publishes
//! the net of it and serves the subscribers waiting for their snapshot.
//! The floor is checked on the 100 ms tick, so a raw topic that keeps
//! changing publishes every 300 ms for a 250 ms floor (never more often
//! than the floor). Kinds that do not need the book
//! ([`crate::protocol::kinds::Kind::needs_book`]) flush without one.

use super::{def, header, PairTask};
use crate::fanout::Subscriber;
use crate::protocol::channel::Cadence;
use crate::protocol::kinds::{Cx, Pending};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per netted topic: what changed since its last message, and who waits
/// for a snapshot at the next flush.
#[derive(Default)]
pub(super) struct Conflation {
    pub(super) pending: Pending,
    pub(super) waiting: Vec<(Arc<Subscriber>, &'static str)>,
    /// When a raw topic with a floor last published a netted message.
    pub(super) last_flush: Option<Instant>,
}

impl PairTask {
    /// Publishes every conflated topic of `cadence` and serves its waiting
    /// subscribers.
    pub(super) fn tick(&mut self, cadence: Cadence) {
        for i in 0..self.topics.len() {
            if def(i).cadence == cadence && self.topics[i].is_active() && self.can_flush(i) {
                self.flush(i);
            }
        }
    }

    /// Publishes every raw topic with a floor whose floor has passed since
    /// its last netted message (called on the 100 ms tick).
    pub(super) fn flush_raw(&mut self, now: Instant) {
        for i in 0..self.topics.len() {
            let Some(every) = def(i).kind.kind().raw_every_ms() else {
                continue;
            };
            if !self.can_flush(i) {
                continue;
            }
            let c = &self.conflation[i];
            let due = c
                .last_flush
                .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(every));
            let busy = c.pending.dirty || !c.waiting.is_empty();
            let raw = def(i).cadence == Cadence::Raw && self.topics[i].is_active();
            if raw && due && busy && self.flush(i) {
                self.conflation[i].last_flush = Some(now);
            }
        }
    }

    /// Whether topic `i` may flush now: its kind does not need the book,
    /// or there is one. No book yet (before the first snapshot, or a new
    /// epoch's): nothing to say. (A stream that ended keeps its book and
    /// still flushes.)
    fn can_flush(&self, i: usize) -> bool {
        !def(i).kind.kind().needs_book() || self.state.seq != 0 || self.warm.load(Ordering::Relaxed)
    }

    /// Publishes the net of topic `i`'s pending changes and serves its
    /// waiting subscribers; true when a message went out.
    fn flush(&mut self, i: usize) -> bool {
        let kind = def(i).kind.kind();
        let mut c = std::mem::take(&mut self.conflation[i]);
        let view = self.state.view();
        let seq = kind.numbering().seq(&view);
        let h = header(&self.topics[i], &self.state, seq, self.topics[i].last_seq);
        let cx = Cx::new(&mut self.encoder, &view, &h);
        let sent = match kind.flush(cx, &c.pending) {
            Some(bytes) => {
                self.publish(i, seq, bytes);
                true
            }
            None => false,
        };
        let channel = self.topics[i].id;
        let last = self.topics[i].last_seq;
        for (sub, reason) in c.waiting.drain(..) {
            if !sub.queue.is_subscribed(channel) {
                continue;
            }
            let prev = if reason == "subscribe" {
                0
            } else {
                sub.queue.last_delivered_seq(channel)
            };
            if let Some(text) = self.state_message(i, reason, prev) {
                sub.queue.push_snapshot(channel, last, text, self.state.ts);
            }
        }
        // Keep the set's allocation for the next interval.
        c.pending.changed.clear();
        self.conflation[i] = Conflation {
            pending: Pending {
                changed: c.pending.changed,
                ..Pending::default()
            },
            last_flush: c.last_flush,
            ..Conflation::default()
        };
        sent
    }
}
