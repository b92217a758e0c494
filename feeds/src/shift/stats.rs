//! Counters of what the adapter's streams went through (gaps, reconnects,
//! resyncs), for logs, metrics and tests. Shared by every stream of one
//! [`super::ShiftVenue`]; they only ever grow.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct StreamCounters {
    gaps: AtomicU64,
    resubscriptions: AtomicU64,
    reconnects: AtomicU64,
    slow_receiver_resyncs: AtomicU64,
    epoch_changes: AtomicU64,
    /// Set while the market connection is lost and not yet re-established.
    market_down: AtomicBool,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShiftStats {
    /// Deltas or trade batches that did not continue their sequence.
    pub gaps_detected: u64,
    /// Pair subscriptions restarted (after a gap, a refused snapshot or the
    /// venue completing one), each answered by a `Resync` snapshot.
    pub resubscriptions: u64,
    /// Subscription connections re-established after a loss.
    pub reconnects: u64,
    /// `Resync` snapshots sent because the hub's receiver was full.
    pub slow_receiver_resyncs: u64,
    /// Market streams ended because the venue's epoch changed.
    pub epoch_changes: u64,
}

impl StreamCounters {
    pub fn gap(&self) {
        self.gaps.fetch_add(1, Ordering::Relaxed);
    }

    pub fn resubscription(&self) {
        self.resubscriptions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub fn slow_receiver_resync(&self) {
        self.slow_receiver_resyncs.fetch_add(1, Ordering::Relaxed);
    }

    /// Records whether the market connection is down (lost, reconnecting).
    pub fn set_market_down(&self, down: bool) {
        self.market_down.store(down, Ordering::Relaxed);
    }

    pub fn market_down(&self) -> bool {
        self.market_down.load(Ordering::Relaxed)
    }

    pub fn epoch_change(&self) {
        self.epoch_changes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ShiftStats {
        ShiftStats {
            gaps_detected: self.gaps.load(Ordering::Relaxed),
            resubscriptions: self.resubscriptions.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            slow_receiver_resyncs: self.slow_receiver_resyncs.load(Ordering::Relaxed),
            epoch_changes: self.epoch_changes.load(Ordering::Relaxed),
        }
    }
}
