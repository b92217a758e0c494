//! `depthN.PAIR`: the top N levels each side as a `depth` message whenever
//! they change, for N in 1, 5, 10, 20, 50 (one table entry each).

use super::{Change, Cx, Kind, PairView, Pending};
use bytes::Bytes;
use orderbook::checksum::checksum_top;
use orderbook::{BookDelta, L2Book, Side};

/// The `depthN` kind for one N.
pub struct Depth {
    name: &'static str,
    n: usize,
}

pub const DEPTH1: Depth = Depth::new("depth1", 1);
pub const DEPTH5: Depth = Depth::new("depth5", 5);
pub const DEPTH10: Depth = Depth::new("depth10", 10);
pub const DEPTH20: Depth = Depth::new("depth20", 20);
pub const DEPTH50: Depth = Depth::new("depth50", 50);

impl Depth {
    const fn new(name: &'static str, n: usize) -> Depth {
        Depth { name, n }
    }

    /// The message; `reason` only on a replacement (not on `subscribe`).
    fn message(&self, cx: Cx, reason: Option<&str>) -> Bytes {
        let (book, n) = (cx.pair.book, self.n);
        cx.enc
            .depth(cx.pair.spec, cx.h, book, n, checksum_top(book, n), reason)
    }

    fn changed(&self, pair: &PairView, change: &Change) -> bool {
        match change {
            Change::Book => true,
            Change::Levels(deltas) => top_changed(pair.book, deltas, self.n),
            Change::Trades(_)
            | Change::Ticker
            | Change::CandleClosed(..)
            | Change::CandlesReplaced(_) => false,
        }
    }
}

impl Kind for Depth {
    fn name(&self) -> &'static str {
        self.name
    }

    fn publish(&self, cx: Cx, change: &Change) -> Option<Bytes> {
        self.changed(cx.pair, change)
            .then(|| self.message(cx, None))
    }

    fn note(&self, pair: &PairView, change: &Change, pending: &mut Pending) {
        if self.changed(pair, change) {
            pending.dirty = true;
        }
    }

    fn flush(&self, cx: Cx, pending: &Pending) -> Option<Bytes> {
        pending.dirty.then(|| self.message(cx, None))
    }

    fn state(&self, cx: Cx, reason: &str) -> Option<Bytes> {
        Some(self.message(cx, Some(reason).filter(|r| *r != "subscribe")))
    }
}

/// Whether `deltas` (already applied) changed the top `n` levels of `book`:
/// a delta matters if its side now has fewer than `n` levels or its price
/// is at or better than the side's `n`-th price.
fn top_changed(book: &L2Book, deltas: &[BookDelta], n: usize) -> bool {
    let nth = |side: Side| book.top_n(side, n).nth(n - 1).map(|l| l.price);
    let (bid_nth, ask_nth) = (nth(Side::Buy), nth(Side::Sell));
    deltas.iter().any(|d| match (d.side, bid_nth, ask_nth) {
        (Side::Buy, Some(p), _) => d.price >= p,
        (Side::Sell, _, Some(p)) => d.price <= p,
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderbook::{Price, Qty};

    #[test]
    fn top_changed_sees_only_changes_within_the_top_n() {
        let mut book = L2Book::new();
        let bids: Vec<_> = (1..=10).map(|p| (Price(p), Qty(1))).collect();
        let asks: Vec<_> = (11..=20).map(|p| (Price(p), Qty(1))).collect();
        book.apply_snapshot(&bids, &asks).unwrap();
        let d = |side, p, q| BookDelta {
            side,
            price: Price(p),
            qty: Qty(q),
        };
        // bid top 5 are 10..6; a change at 3 is outside, at 6 inside
        assert!(!top_changed(&book, &[d(Side::Buy, 3, 2)], 5));
        assert!(top_changed(&book, &[d(Side::Buy, 6, 2)], 5));
        assert!(top_changed(&book, &[d(Side::Sell, 15, 2)], 5));
        assert!(!top_changed(&book, &[d(Side::Sell, 16, 2)], 5));
        // deleting the 5th best bid (6) makes 5 the new 5th: the change is inside
        book.apply_delta(d(Side::Buy, 6, 0));
        assert!(top_changed(&book, &[d(Side::Buy, 6, 0)], 5));
        // fewer levels than n: every change counts
        assert!(top_changed(&book, &[d(Side::Buy, 1, 5)], 50));
    }
}
