//! What a market-data feed emits: per pair, a snapshot, then seq-numbered
//! deltas, and seq-numbered trade batches, each stamped with the venue's
//! own time. The hub numbers its public channels with these sequence
//! numbers, so every hub node numbers a channel the same way.

use orderbook::{BookDelta, Price, Qty, Side};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Microseconds since the Unix epoch.
pub type Micros = u64;

/// The current wall-clock time in microseconds since the Unix epoch.
pub fn now_micros() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Why the venue sent a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotReason {
    /// First message of a subscription.
    Subscribe,
    /// The subscriber fell behind or a gap was detected: replace the book.
    Resync,
}

/// One public execution, at the maker's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublicTrade {
    pub trade_id: u64,
    pub price: Price,
    pub qty: Qty,
    /// The aggressor's side.
    pub side: Side,
    pub venue_ts: Micros,
}

/// Whether the venue lets a pair trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradingStatus {
    /// Orders are accepted.
    Open,
    /// The venue halted trading in the pair: new orders are refused
    /// (`VenueError::MarketHalted`), cancels still work.
    Halted {
        /// The venue's words, for people.
        reason: String,
    },
}

/// One message of a market-data stream.
///
/// Guarantees, per pair: the first message is a `Snapshot`; each `Delta`'s
/// `seq` is the previous book `seq` + 1; each `Trades`' `seq` is the previous
/// trade-batch `seq` + 1; after a `Snapshot` with reason `Resync` the book
/// sequence continues from the snapshot's `seq` (and trades may have a gap,
/// which is announced by `trade_seq` in the snapshot).
///
/// `Status` and `Resyncing` carry no seq and do not touch the book. A feed
/// that never sends `Status` means trading is open (recordings made before
/// it existed stay valid); the sandbox sends one after every snapshot it
/// sends and whenever an operator halts or resumes the pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketEvent {
    Snapshot {
        pair: Arc<str>,
        reason: SnapshotReason,
        /// Seq of the last book change included.
        seq: u64,
        /// Seq of the last trade batch emitted before the snapshot.
        trade_seq: u64,
        venue_ts: Micros,
        /// Best first.
        bids: Vec<(Price, Qty)>,
        /// Best first.
        asks: Vec<(Price, Qty)>,
    },
    Delta {
        pair: Arc<str>,
        seq: u64,
        venue_ts: Micros,
        /// Absolute quantities, each (side, price) at most once.
        deltas: Vec<BookDelta>,
    },
    Trades {
        pair: Arc<str>,
        seq: u64,
        venue_ts: Micros,
        trades: Vec<PublicTrade>,
    },
    /// The pair's trading status now: sent when the venue halts or resumes
    /// it, and may be repeated at any time (a receiver keeps the last).
    Status {
        pair: Arc<str>,
        venue_ts: Micros,
        status: TradingStatus,
    },
    /// The feed lost the pair's sequence (a gap, an unreadable event, a
    /// lost connection) and asked the venue for a new snapshot: the book
    /// held so far is not trustworthy until the next `Snapshot`.
    Resyncing {
        pair: Arc<str>,
        /// When the feed noticed, on its own clock.
        venue_ts: Micros,
        /// Why, for people (e.g. "upstream seq gap").
        reason: String,
    },
}

impl MarketEvent {
    pub fn pair(&self) -> &Arc<str> {
        match self {
            MarketEvent::Snapshot { pair, .. }
            | MarketEvent::Delta { pair, .. }
            | MarketEvent::Trades { pair, .. }
            | MarketEvent::Status { pair, .. }
            | MarketEvent::Resyncing { pair, .. } => pair,
        }
    }

    pub fn venue_ts(&self) -> Micros {
        match self {
            MarketEvent::Snapshot { venue_ts, .. }
            | MarketEvent::Delta { venue_ts, .. }
            | MarketEvent::Trades { venue_ts, .. }
            | MarketEvent::Status { venue_ts, .. }
            | MarketEvent::Resyncing { venue_ts, .. } => *venue_ts,
        }
    }
}

/// A live market-data subscription: the venue's `epoch` (changes whenever
/// its sequence numbering restarts) and the events of every pair. The
/// stream ends (`recv` returns `None`) when the feed stops.
pub struct MarketStream {
    pub epoch: String,
    pub events: mpsc::Receiver<MarketEvent>,
}
