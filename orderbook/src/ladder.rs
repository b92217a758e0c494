//! One side of an L2 book: price levels kept in a sorted `Vec`, best price
//! at the **end**.
//!
//! Nearly all book traffic touches the first few levels. With the best level
//! last, an insert or delete near the top moves only the handful of levels
//! above it, a lookup is a binary search over contiguous memory, and
//! updating an existing level writes one `u64` in place: no allocation, no
//! pointer chasing. Capacity is reserved up front and only grows when the
//! book gets deeper than it has ever been (see `docs/BENCHMARKS.md`).

use crate::{Price, Qty, Side};

/// One price level: the total quantity resting at `price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub price: Price,
    pub qty: Qty,
}

/// The levels of one side, ordered worst → best in memory.
#[derive(Debug, Clone)]
pub struct Ladder {
    side: Side,
    levels: Vec<Level>,
}

/// Levels reserved per side when a book is created.
pub const DEFAULT_LEVEL_CAPACITY: usize = 1024;

impl Ladder {
    pub fn new(side: Side) -> Self {
        Self::with_capacity(side, DEFAULT_LEVEL_CAPACITY)
    }

    pub fn with_capacity(side: Side, capacity: usize) -> Self {
        Ladder {
            side,
            levels: Vec::with_capacity(capacity),
        }
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Index where `price` is or would go, keeping worst → best order.
    /// Bids: ascending price (highest last). Asks: descending (lowest last).
    #[inline]
    fn search(&self, price: Price) -> Result<usize, usize> {
        match self.side {
            Side::Buy => self.levels.binary_search_by(|l| l.price.cmp(&price)),
            Side::Sell => self.levels.binary_search_by(|l| price.cmp(&l.price)),
        }
    }

    /// Sets the absolute quantity at `price` (zero deletes the level) and
    /// returns the quantity that was there before (zero if none).
    #[inline]
    pub fn set(&mut self, price: Price, qty: Qty) -> Qty {
        match self.search(price) {
            Ok(i) => {
                let old = self.levels[i].qty;
                if qty.is_zero() {
                    self.levels.remove(i);
                } else {
                    self.levels[i].qty = qty;
                }
                old
            }
            Err(i) => {
                if !qty.is_zero() {
                    self.levels.insert(i, Level { price, qty });
                }
                Qty::ZERO
            }
        }
    }

    /// The quantity resting at `price` (zero if no level).
    pub fn get(&self, price: Price) -> Qty {
        self.search(price)
            .map(|i| self.levels[i].qty)
            .unwrap_or(Qty::ZERO)
    }

    /// The best level (highest bid, lowest ask).
    #[inline]
    pub fn best(&self) -> Option<Level> {
        self.levels.last().copied()
    }

    /// Levels best first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Level> + '_ {
        self.levels.iter().rev().copied()
    }

    /// Removes every level, keeping the allocation.
    pub fn clear(&mut self) {
        self.levels.clear();
    }

    /// Heap capacity in levels (for the no-allocation tests and metrics).
    pub fn capacity(&self) -> usize {
        self.levels.capacity()
    }

    /// Whether `a` is a better price than `b` on this side.
    pub fn is_better(&self, a: Price, b: Price) -> bool {
        match self.side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bids_are_best_first_highest_price() {
        let mut l = Ladder::new(Side::Buy);
        for p in [5, 9, 1, 7] {
            l.set(Price(p), Qty(p * 10));
        }
        let prices: Vec<u64> = l.iter().map(|lv| lv.price.0).collect();
        assert_eq!(prices, vec![9, 7, 5, 1]);
        assert_eq!(l.best().unwrap().price, Price(9));
    }

    #[test]
    fn asks_are_best_first_lowest_price() {
        let mut l = Ladder::new(Side::Sell);
        for p in [5, 9, 1, 7] {
            l.set(Price(p), Qty(1));
        }
        let prices: Vec<u64> = l.iter().map(|lv| lv.price.0).collect();
        assert_eq!(prices, vec![1, 5, 7, 9]);
    }

    #[test]
    fn set_is_absolute_and_zero_deletes() {
        let mut l = Ladder::new(Side::Sell);
        assert_eq!(l.set(Price(10), Qty(3)), Qty(0));
        assert_eq!(l.set(Price(10), Qty(5)), Qty(3));
        assert_eq!(l.get(Price(10)), Qty(5));
        assert_eq!(l.set(Price(10), Qty(0)), Qty(5));
        assert!(l.is_empty());
        // deleting a missing level is a no-op
        assert_eq!(l.set(Price(11), Qty(0)), Qty(0));
        assert!(l.is_empty());
    }

    #[test]
    fn updating_an_existing_level_never_reallocates() {
        let mut l = Ladder::with_capacity(Side::Buy, 4);
        for p in 1..=4 {
            l.set(Price(p), Qty(1));
        }
        let (cap, ptr) = (l.capacity(), l.levels.as_ptr());
        for q in 1..10_000 {
            l.set(Price(1 + q % 4), Qty(q));
        }
        assert_eq!((l.capacity(), l.levels.as_ptr()), (cap, ptr));
    }
}
