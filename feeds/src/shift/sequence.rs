//! Sequence checking of one pair's two subscriptions (book and trades),
//! with no I/O: what to forward to the hub, and when a gap means the pair
//! must be resubscribed.
//!
//! The book subscription is a snapshot then deltas at `seq + 1` each; the
//! trades subscription is batches at `seq + 1` each, and the snapshot says
//! which batch it follows (`trade_seq`). The two subscriptions are
//! separate streams on the wire, so a batch may arrive before the
//! snapshot it follows (buffered, then forwarded if newer) or after a
//! snapshot that already covers it (dropped). A delta or batch that does
//! not continue its sequence is a gap. A local copy of the book lets the
//! session replace events the hub was too slow to take with one snapshot.

use super::convert::{BookBody, BookUpdate, TradeUpdate};
use crate::event::{MarketEvent, Micros, SnapshotReason};
use orderbook::L2Book;
use std::sync::Arc;

/// Trade batches kept while waiting for a snapshot; more is a gap.
const MAX_BUFFERED_BATCHES: usize = 1024;

/// A break in one of the pair's sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// `"book"`, `"trades"` or `"snapshot"` (a snapshot the book refused).
    pub stream: &'static str,
    pub expected: u64,
    pub got: u64,
}

/// What one upstream event means: events to forward (in order), then
/// possibly a gap after them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub events: Vec<MarketEvent>,
    pub gap: Option<Gap>,
}

#[derive(Debug)]
enum Phase {
    /// Subscribed (again); trade batches wait for the snapshot.
    AwaitingSnapshot {
        trades: Vec<TradeUpdate>,
    },
    Live,
}

/// One pair's sequence state on one market stream.
#[derive(Debug)]
pub struct PairSequence {
    pair: Arc<str>,
    phase: Phase,
    /// A snapshot was already forwarded on this stream, so every later one
    /// replaces a book the hub holds: `Resync`.
    snapshotted: bool,
    book_seq: u64,
    trade_seq: u64,
    book: L2Book,
}

impl PairSequence {
    pub fn new(pair: Arc<str>) -> Self {
        PairSequence {
            pair,
            phase: Phase::AwaitingSnapshot { trades: Vec::new() },
            snapshotted: false,
            book_seq: 0,
            trade_seq: 0,
            book: L2Book::new(),
        }
    }

    /// True once a snapshot arrived since the last (re)subscription.
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live)
    }

    /// The pair is being subscribed again: wait for its snapshot.
    pub fn restart(&mut self) {
        self.phase = Phase::AwaitingSnapshot { trades: Vec::new() };
    }

    /// A `Resync` snapshot of the book as forwarded so far (for a hub that
    /// missed events); `None` until the pair is live.
    pub fn resync_snapshot(&self, now: Micros) -> Option<MarketEvent> {
        if !self.is_live() {
            return None;
        }
        let (bids, asks) = self.book.levels();
        Some(MarketEvent::Snapshot {
            pair: self.pair.clone(),
            reason: SnapshotReason::Resync,
            seq: self.book_seq,
            trade_seq: self.trade_seq,
            venue_ts: now,
            bids,
            asks,
        })
    }

    pub fn on_book(&mut self, update: BookUpdate) -> Step {
        match update.body {
            BookBody::Snapshot {
                trade_seq,
                resync,
                bids,
                asks,
            } => {
                if let Err(e) = self.book.apply_snapshot(&bids, &asks) {
                    tracing::warn!(pair = %self.pair, error = %e, "Shift snapshot refused");
                    return Step {
                        events: Vec::new(),
                        gap: Some(Gap {
                            stream: "snapshot",
                            expected: update.seq,
                            got: update.seq,
                        }),
                    };
                }
                let reason = if self.snapshotted || resync {
                    SnapshotReason::Resync
                } else {
                    SnapshotReason::Subscribe
                };
                self.snapshotted = true;
                self.book_seq = update.seq;
                self.trade_seq = self.trade_seq.max(trade_seq);
                let buffered = match std::mem::replace(&mut self.phase, Phase::Live) {
                    Phase::AwaitingSnapshot { trades } => trades,
                    Phase::Live => Vec::new(),
                };
                let mut step = Step {
                    events: vec![MarketEvent::Snapshot {
                        pair: self.pair.clone(),
                        reason,
                        seq: update.seq,
                        trade_seq: self.trade_seq,
                        venue_ts: update.venue_ts,
                        bids,
                        asks,
                    }],
                    gap: None,
                };
                for batch in buffered {
                    let next = self.on_trades(batch);
                    step.events.extend(next.events);
                    if next.gap.is_some() {
                        step.gap = next.gap;
                        break;
                    }
                }
                step
            }
            BookBody::Delta(deltas) => {
                if !self.is_live() {
                    // Only a stale subscription's message can get here.
                    return Step::default();
                }
                if update.seq != self.book_seq + 1 {
                    return Step {
                        events: Vec::new(),
                        gap: Some(Gap {
                            stream: "book",
                            expected: self.book_seq + 1,
                            got: update.seq,
                        }),
                    };
                }
                self.book_seq = update.seq;
                for d in &deltas {
                    self.book.apply_delta(*d);
                }
                Step {
                    events: vec![MarketEvent::Delta {
                        pair: self.pair.clone(),
                        seq: update.seq,
                        venue_ts: update.venue_ts,
                        deltas,
                    }],
                    gap: None,
                }
            }
        }
    }

    pub fn on_trades(&mut self, batch: TradeUpdate) -> Step {
        if let Phase::AwaitingSnapshot { trades } = &mut self.phase {
            if trades.len() >= MAX_BUFFERED_BATCHES {
                let got = batch.seq;
                trades.clear();
                return Step {
                    events: Vec::new(),
                    gap: Some(Gap {
                        stream: "trades",
                        expected: self.trade_seq + 1,
                        got,
                    }),
                };
            }
            trades.push(batch);
            return Step::default();
        }
        if batch.seq <= self.trade_seq {
            // Already covered by the snapshot (or a duplicate).
            return Step::default();
        }
        if batch.seq != self.trade_seq + 1 {
            return Step {
                events: Vec::new(),
                gap: Some(Gap {
                    stream: "trades",
                    expected: self.trade_seq + 1,
                    got: batch.seq,
                }),
            };
        }
        self.trade_seq = batch.seq;
        Step {
            events: vec![MarketEvent::Trades {
                pair: self.pair.clone(),
                seq: batch.seq,
                venue_ts: batch.venue_ts,
                trades: batch.trades,
            }],
            gap: None,
        }
    }
}

#[cfg(test)]
#[path = "sequence_tests.rs"]
mod tests;
