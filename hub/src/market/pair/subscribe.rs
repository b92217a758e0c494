//! Subscribers of the pair's topics: joining (with the kind's snapshot
//! rule, or a `resume` from history), leaving, and the fresh state
//! message a slow consumer gets after an overflow.

use super::{def, netted, PairTask};
use crate::fanout::{ChannelId, ResyncRequest, Subscriber};
use crate::metrics as m;
use crate::protocol::channel::Cadence;
use std::sync::Arc;
use std::time::Instant;

impl PairTask {
    /// Subscribes `sub` to `channel`; true when `resume` recovered it from
    /// history.
    pub(super) fn subscribe(
        &mut self,
        sub: Arc<Subscriber>,
        channel: ChannelId,
        resume: Option<(String, u64)>,
    ) -> bool {
        let Some(i) = self.index(channel) else {
            return false;
        };
        if self.topics[i].activate() {
            self.topics[i].last_seq = self.current_seq(i);
            // Nothing was noted while inactive; what an earlier active
            // period left is older than the state the subscriber gets.
            self.conflation[i].pending = Default::default();
        }
        self.topics[i].add(sub.clone());
        let on_overflow = self.topics[i].on_overflow;
        let last = self.topics[i].last_seq;
        if let Some((epoch, seq)) = resume.filter(|(e, _)| *e == self.state.epoch) {
            if self.topics[i].resume(&sub, seq, self.state.ts) {
                tracing::debug!(epoch, seq, "resumed from history");
                return true;
            }
        }
        let def = def(i);
        if !def.kind.kind().has_state() {
            sub.queue.subscribe(channel, last, on_overflow);
            sub.queue.expect_first(channel);
        } else if self.defer_state(i) {
            // Nothing until the tick's snapshot sets the floor.
            sub.queue.subscribe(channel, u64::MAX, on_overflow);
            self.conflation[i].waiting.push((sub, "subscribe"));
        } else {
            sub.queue.subscribe(channel, last, on_overflow);
            if let Some(text) = self.state_message(i, "subscribe", 0) {
                sub.queue.push_snapshot(channel, last, text, self.state.ts);
            }
        }
        false
    }

    /// Whether topic `i`'s state message waits for its next flush: a
    /// conflated topic, or a raw one with a floor that has a change not
    /// yet sent (its state now is ahead of its last seq).
    fn defer_state(&self, i: usize) -> bool {
        def(i).cadence != Cadence::Raw || (netted(i) && self.conflation[i].pending.dirty)
    }

    pub(super) fn unsubscribe(&mut self, conn_id: u64, channel: ChannelId) {
        if let Some(i) = self.index(channel) {
            self.topics[i].remove(conn_id, Instant::now());
            self.conflation[i]
                .waiting
                .retain(|(s, _)| s.conn_id != conn_id);
        }
    }

    /// A subscriber's queue overflowed on a conflatable channel: send it one
    /// fresh state message (now, or at the next tick for conflated topics).
    pub(super) fn resync_subscriber(&mut self, req: ResyncRequest) {
        let Some(i) = self.index(req.channel) else {
            return;
        };
        metrics::counter!(m::SLOW_CONSUMER_CONFLATIONS_TOTAL).increment(1);
        if !req.subscriber.queue.is_subscribed(req.channel) {
            return;
        }
        if self.defer_state(i) {
            self.conflation[i]
                .waiting
                .push((req.subscriber, "slow_consumer"));
            return;
        }
        let prev = req.subscriber.queue.last_delivered_seq(req.channel);
        let last = self.topics[i].last_seq;
        if let Some(text) = self.state_message(i, "slow_consumer", prev) {
            req.subscriber
                .queue
                .push_snapshot(req.channel, last, text, self.state.ts);
        }
    }
}
