//! The L2 book of one pair: two ladders, absolute-quantity deltas, top-N and
//! crossed-book detection. The book knows nothing of sequence numbers or
//! time; feeds and the hub keep those beside it.

use crate::checksum;
use crate::ladder::{Ladder, Level};
use crate::{Price, Qty, Side};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One level change: the new **absolute** quantity at `price` on `side`;
/// zero deletes the level (docs/PROTOCOL.md "Books and the checksum").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookDelta {
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
}

/// A side's levels as `(price, qty)`, best first.
pub type Levels = Vec<(Price, Qty)>;

/// Why a snapshot or update was refused. A refused snapshot leaves the book
/// as it was.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BookError {
    #[error("snapshot level at price {0} has zero quantity")]
    ZeroQtyLevel(u64),
    #[error("snapshot repeats price {0}")]
    DuplicatePrice(u64),
    #[error("book is crossed: best bid {bid} >= best ask {ask}")]
    Crossed { bid: u64, ask: u64 },
}

/// An L2 book. Applying a delta to an existing level does not allocate.
#[derive(Debug, Clone)]
pub struct L2Book {
    bids: Ladder,
    asks: Ladder,
}

impl Default for L2Book {
    fn default() -> Self {
        Self::new()
    }
}

impl L2Book {
    pub fn new() -> Self {
        L2Book {
            bids: Ladder::new(Side::Buy),
            asks: Ladder::new(Side::Sell),
        }
    }

    /// Replaces the whole book. Levels may come in any order. Refused (book
    /// unchanged) if a level has zero quantity, a price repeats on a side,
    /// or the result would be crossed.
    pub fn apply_snapshot(
        &mut self,
        bids: &[(Price, Qty)],
        asks: &[(Price, Qty)],
    ) -> Result<(), BookError> {
        let mut next = L2Book::new();
        for (ladder, levels) in [(&mut next.bids, bids), (&mut next.asks, asks)] {
            for &(price, qty) in levels {
                if qty.is_zero() {
                    return Err(BookError::ZeroQtyLevel(price.0));
                }
                if !ladder.set(price, qty).is_zero() {
                    return Err(BookError::DuplicatePrice(price.0));
                }
            }
        }
        next.check_not_crossed()?;
        *self = next;
        Ok(())
    }

    /// Applies one absolute-quantity delta and returns the previous quantity
    /// at that price (zero if the level was new). Does not check crossing:
    /// an upstream batch may cross transiently; call [`L2Book::check_not_crossed`]
    /// after the batch.
    #[inline]
    pub fn apply_delta(&mut self, delta: BookDelta) -> Qty {
        self.side_mut(delta.side).set(delta.price, delta.qty)
    }

    /// Applies a batch, then checks the book is not crossed.
    pub fn apply_deltas(&mut self, deltas: &[BookDelta]) -> Result<(), BookError> {
        for d in deltas {
            self.apply_delta(*d);
        }
        self.check_not_crossed()
    }

    pub fn side(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    pub fn bids(&self) -> &Ladder {
        &self.bids
    }

    pub fn asks(&self) -> &Ladder {
        &self.asks
    }

    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best()
    }

    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best()
    }

    /// The quantity at `price` on `side` (zero if none).
    pub fn qty_at(&self, side: Side, price: Price) -> Qty {
        self.side(side).get(price)
    }

    /// True when the best bid is at or above the best ask.
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some(b), Some(a)) if b.price >= a.price)
    }

    /// `Err(Crossed)` when [`L2Book::is_crossed`].
    pub fn check_not_crossed(&self) -> Result<(), BookError> {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) if b.price >= a.price => Err(BookError::Crossed {
                bid: b.price.0,
                ask: a.price.0,
            }),
            _ => Ok(()),
        }
    }

    /// The best `n` levels of `side`, best first.
    pub fn top_n(&self, side: Side, n: usize) -> impl Iterator<Item = Level> + '_ {
        self.side(side).iter().take(n)
    }

    /// The docs/PROTOCOL.md checksum of the top 10 levels.
    pub fn checksum(&self) -> u32 {
        checksum::book_checksum(self)
    }

    /// Removes every level, keeping allocations.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Bids then asks as `(price, qty)` pairs, best first: a canonical form
    /// for comparing books in tests and for snapshots.
    pub fn levels(&self) -> (Levels, Levels) {
        let pairs = |l: &Ladder| l.iter().map(|lv| (lv.price, lv.qty)).collect();
        (pairs(&self.bids), pairs(&self.asks))
    }
}

impl PartialEq for L2Book {
    fn eq(&self, other: &Self) -> bool {
        self.levels() == other.levels()
    }
}

impl Eq for L2Book {}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(side: Side, p: u64, q: u64) -> BookDelta {
        BookDelta {
            side,
            price: Price(p),
            qty: Qty(q),
        }
    }

    #[test]
    fn snapshot_then_deltas() {
        let mut b = L2Book::new();
        b.apply_snapshot(
            &[(Price(99), Qty(1)), (Price(100), Qty(2))],
            &[(Price(101), Qty(3))],
        )
        .unwrap();
        assert_eq!(b.best_bid().unwrap().price, Price(100));
        assert_eq!(b.best_ask().unwrap().price, Price(101));
        assert_eq!(b.apply_delta(d(Side::Buy, 100, 0)), Qty(2));
        assert_eq!(b.best_bid().unwrap().price, Price(99));
        b.apply_delta(d(Side::Sell, 100, 4));
        assert_eq!(
            b.best_ask().unwrap(),
            Level {
                price: Price(100),
                qty: Qty(4)
            }
        );
        let top: Vec<_> = b.top_n(Side::Sell, 1).collect();
        assert_eq!(top.len(), 1);
    }

    #[test]
    fn bad_snapshot_changes_nothing() {
        let mut b = L2Book::new();
        b.apply_snapshot(&[(Price(1), Qty(1))], &[]).unwrap();
        let before = b.clone();
        assert_eq!(
            b.apply_snapshot(&[(Price(5), Qty(0))], &[]),
            Err(BookError::ZeroQtyLevel(5))
        );
        assert_eq!(
            b.apply_snapshot(&[(Price(5), Qty(1)), (Price(5), Qty(2))], &[]),
            Err(BookError::DuplicatePrice(5))
        );
        assert_eq!(
            b.apply_snapshot(&[(Price(5), Qty(1))], &[(Price(5), Qty(1))]),
            Err(BookError::Crossed { bid: 5, ask: 5 })
        );
        assert_eq!(b, before);
    }

    #[test]
    fn crossing_delta_batch_is_detected() {
        let mut b = L2Book::new();
        b.apply_snapshot(&[(Price(100), Qty(1))], &[(Price(101), Qty(1))])
            .unwrap();
        assert!(!b.is_crossed());
        assert_eq!(
            b.apply_deltas(&[d(Side::Buy, 102, 1)]),
            Err(BookError::Crossed { bid: 102, ask: 101 })
        );
        assert!(b.is_crossed());
        // a batch that crosses mid-way but not at the end is fine
        b.apply_deltas(&[d(Side::Buy, 102, 0)]).unwrap();
        b.apply_deltas(&[
            d(Side::Buy, 103, 1),
            d(Side::Sell, 101, 0),
            d(Side::Sell, 104, 1),
        ])
        .unwrap();
        assert_eq!(b.best_bid().unwrap().price, Price(103));
    }
}
