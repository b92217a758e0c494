//! Conflated topics (`@100ms`, `@1000ms`): what changed since a topic's
//! last message (its kind's [`Pending`] notes), and the tick that
//! publishes the net of it and serves the subscribers waiting for their
//! snapshot.

use super::{def, header, PairTask};
use crate::fanout::Subscriber;
use crate::protocol::channel::Cadence;
use crate::protocol::kinds::{Cx, Pending};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Per conflated topic: what changed since its last message, and who waits
/// for a snapshot at the next tick.
#[derive(Default)]
pub(super) struct Conflation {
    pub(super) pending: Pending,
    pub(super) waiting: Vec<(Arc<Subscriber>, &'static str)>,
}

impl PairTask {
    /// Publishes every conflated topic of `cadence` and serves its waiting
    /// subscribers.
    pub(super) fn tick(&mut self, cadence: Cadence) {
        // No book yet (before the first snapshot, or a new epoch's): nothing
        // to say. (A stream that ended keeps its book and still flushes.)
        if self.state.seq == 0 && !self.warm.load(Ordering::Relaxed) {
            return;
        }
        for i in 0..self.topics.len() {
            if def(i).cadence != cadence || !self.topics[i].is_active() {
                continue;
            }
            let kind = def(i).kind.kind();
            let mut c = std::mem::take(&mut self.conflation[i]);
            let view = self.state.view();
            let seq = kind.numbering().seq(&view);
            let h = header(&self.topics[i], &self.state, seq, self.topics[i].last_seq);
            let cx = Cx::new(&mut self.encoder, &view, &h);
            if let Some(bytes) = kind.flush(cx, &c.pending) {
                self.publish(i, seq, bytes);
            }
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
                ..Conflation::default()
            };
        }
    }
}
