//! Read-only questions to the engine: its book, one order, an account's
//! orders, and what a taker would fill right now.

use super::slab::{Level, NIL};
use super::{crosses, MatchingEngine};
use crate::engine::types::{AccountId, FillEstimate, OrderId, RestingOrder};
use crate::{L2Book, Price, Qty, Side};
use std::collections::BTreeMap;

impl MatchingEngine {
    /// The engine's aggregated L2 book (always equal to a book rebuilt from
    /// every delta emitted; never crossed).
    pub fn book(&self) -> &L2Book {
        &self.book
    }

    /// The resting order with this id, or `None` if it is not resting
    /// (unknown, filled, cancelled or rejected).
    pub fn order(&self, id: OrderId) -> Option<RestingOrder> {
        self.orders
            .by_id
            .get(&id)
            .map(|&i| self.orders.nodes[i].order)
    }

    /// Resting orders of one account (any order). Costs O(orders of that account).
    pub fn orders_of(&self, account: AccountId) -> Vec<RestingOrder> {
        let mut result = Vec::new();
        let mut i = self.orders.by_account.get(&account).copied().unwrap_or(NIL);
        while i != NIL {
            let node = &self.orders.nodes[i];
            result.push(node.order);
            i = node.acct_next;
        }
        result
    }

    /// How many orders are resting, both sides together.
    pub fn resting_count(&self) -> usize {
        self.orders.by_id.len()
    }

    /// What a taker order of `side` for `qty` with optional limit price would
    /// fill right now, skipping resting orders of `exclude` (they'd be
    /// self-trade-cancelled). Used by the venue to check funds (market buys)
    /// and by FOK.
    ///
    /// `fillable_qty ≤ qty`, and it is exactly what `submit` of such an order
    /// from account `exclude` would fill now; `notional_raw` is
    /// Σ `price.0 × qty.0` over the fills. Read-only.
    pub fn estimate_fill(
        &self,
        side: Side,
        qty: Qty,
        limit: Option<Price>,
        exclude: Option<AccountId>,
    ) -> FillEstimate {
        let opposite = self.levels(side.opposite());
        match side {
            // A buy takes asks, lowest first; a sell takes bids, highest first.
            Side::Buy => self.estimate_over(opposite.iter(), side, qty, limit, exclude),
            Side::Sell => self.estimate_over(opposite.iter().rev(), side, qty, limit, exclude),
        }
    }

    fn estimate_over<'a>(
        &self,
        levels: impl Iterator<Item = (&'a Price, &'a Level)>,
        side: Side,
        qty: Qty,
        limit: Option<Price>,
        exclude: Option<AccountId>,
    ) -> FillEstimate {
        let mut remaining = qty.0;
        let mut notional_raw = 0u128;
        for (&price, level) in levels {
            if remaining == 0 || limit.is_some_and(|limit| !crosses(side, limit, price)) {
                break;
            }
            let available = match exclude {
                None => level.total.0,
                Some(account) => {
                    // Walk the FIFO only as far as needed to cover `remaining`.
                    let mut sum = 0u64;
                    let mut i = level.head;
                    while i != NIL && sum < remaining {
                        let node = &self.orders.nodes[i];
                        if node.order.account != account {
                            sum += node.order.leaves_qty.0;
                        }
                        i = node.next;
                    }
                    sum
                }
            };
            let take = available.min(remaining);
            remaining -= take;
            notional_raw += u128::from(price.0) * u128::from(take);
        }
        FillEstimate {
            fillable_qty: Qty(qty.0 - remaining),
            notional_raw,
        }
    }

    pub(super) fn levels(&self, side: Side) -> &BTreeMap<Price, Level> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// Best price of the side a `side` taker trades against.
    pub(super) fn opposite_best(&self, side: Side) -> Option<Price> {
        match side {
            Side::Buy => self.asks.keys().next().copied(),
            Side::Sell => self.bids.keys().next_back().copied(),
        }
    }
}
