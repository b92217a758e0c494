//! Conflated channels (`@100ms`, `@1000ms`): what changed since a topic's
//! last message, and the tick that publishes the net of it and serves the
//! subscribers waiting for their snapshot.

use super::*;

/// Per conflated topic: what changed since its last message, and who waits
/// for a snapshot at the next tick.
#[derive(Default)]
pub(super) struct Conflation {
    pub(super) changed: HashSet<(Side, Price)>,
    pub(super) dirty: bool,
    pub(super) resync: bool,
    pub(super) trades: Vec<PublicTrade>,
    pub(super) waiting: Vec<(Arc<Subscriber>, &'static str)>,
}

impl PairTask {
    /// Publishes every conflated topic of `cadence` and serves its waiting
    /// subscribers.
    pub(super) fn tick(&mut self, cadence: Cadence) {
        // No book yet (before the first snapshot, or a new epoch's): nothing
        // to say. (A stream that ended keeps its book and still flushes.)
        if self.seq == 0 && !self.warm.load(Ordering::Relaxed) {
            return;
        }
        for i in 0..TOPICS_PER_PAIR {
            if topics::cadence_of(i) != cadence || !self.topics[i].is_active() {
                continue;
            }
            let kind = topics::kind_of(i);
            let mut c = std::mem::take(&mut self.conflation[i]);
            let prev = self.topics[i].last_seq;
            match kind {
                TopicKind::Book if c.resync => {
                    let bytes = self.encode_snapshot(i, "resync", self.seq, prev);
                    self.publish(i, self.seq, bytes);
                }
                TopicKind::Book if !c.changed.is_empty() => {
                    let deltas: Vec<BookDelta> = c
                        .changed
                        .drain()
                        .map(|(side, price)| BookDelta {
                            side,
                            price,
                            qty: self.book.qty_at(side, price),
                        })
                        .collect();
                    let h = header(&self.topics[i], &self.epoch, self.seq, prev, self.ts);
                    let bytes =
                        self.encoder
                            .book_update(&self.spec, &h, &deltas, self.book.checksum());
                    self.publish(i, self.seq, bytes);
                }
                TopicKind::Depth(n) if c.dirty => {
                    let bytes = self.encode_depth(i, n, None, self.seq, prev);
                    self.publish(i, self.seq, bytes);
                }
                TopicKind::Ticker if c.dirty => {
                    let seq = self.current_seq(kind);
                    let bytes = self.encode_ticker(i, None, seq, prev);
                    self.publish(i, seq, bytes);
                }
                TopicKind::Trades if !c.trades.is_empty() => {
                    let h = header(&self.topics[i], &self.epoch, self.trade_seq, prev, self.ts);
                    let bytes = self.encoder.trades(&self.spec, &h, &c.trades);
                    self.publish(i, self.trade_seq, bytes);
                }
                _ => {}
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
                if let Some(bytes) = self.state_message(i, reason, prev) {
                    sub.queue.push_snapshot(channel, last, utf8(bytes), self.ts);
                }
            }
            c.changed.clear();
            self.conflation[i] = Conflation {
                changed: c.changed,
                trades: Vec::new(),
                ..Conflation::default()
            };
        }
    }
}
