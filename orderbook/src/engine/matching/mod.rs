//! The matching engine proper: price-time priority over two sides of
//! resting orders, with the aggregated [`L2Book`] kept beside them.
//!
//! # Data structure
//!
//! Every resting order lives in one slot of a slab (`Vec<Node>` plus a free
//! list, so slots are reused and a steady-state book does not allocate).
//! A node sits on two intrusive doubly-linked lists at once:
//!
//! * its price level's FIFO (`prev`/`next`), the level being a
//!   `BTreeMap<Price, Level>` entry per side holding head, tail and the
//!   level's total quantity;
//! * its account's list (`acct_prev`/`acct_next`), headed from a
//!   `HashMap<AccountId, slot>`, for [`MatchingEngine::orders_of`].
//!
//! A `HashMap<OrderId, slot>` finds an order by id. So cancel is a few hash
//! operations, one `BTreeMap` look-up and O(1) unlinking; resting an order
//! that does not trade costs about the same; matching pops from the head of
//! the best level. Nothing is ever O(total orders).
//! Level totals are kept in the levels, so a delta never needs a walk over
//! the orders of a level.

use super::types::{
    CancelError, EngineEvents, NewOrder, OrderId, OrderReason, OrderStatus, OrderType, OrderUpdate,
    RestingOrder, TimeInForce, Trade,
};
use crate::{BookDelta, L2Book, Price, Qty, Side};
use std::collections::BTreeMap;

mod query;
mod slab;

use slab::{Level, Orders};

/// A price-time-priority matching engine for one pair.
///
/// Invariants kept after every call: the L2 book equals the book rebuilt by
/// applying every emitted delta in order to an empty book, equals the sum of
/// the resting orders' leaves per price and side, and is never crossed.
#[derive(Debug, Clone)]
pub struct MatchingEngine {
    bids: BTreeMap<Price, Level>,
    asks: BTreeMap<Price, Level>,
    orders: Orders,
    book: L2Book,
    next_trade_id: u64,
}

impl Default for MatchingEngine {
    /// Same as [`MatchingEngine::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a taker on `taker_side` limited to `limit` may trade at `maker_price`.
#[inline]
fn crosses(taker_side: Side, limit: Price, maker_price: Price) -> bool {
    match taker_side {
        Side::Buy => maker_price <= limit,
        Side::Sell => maker_price >= limit,
    }
}

/// Pushes `delta` to `out` and applies it to `book`: the only way the book changes.
#[inline]
fn emit(book: &mut L2Book, out: &mut EngineEvents, delta: BookDelta) {
    book.apply_delta(delta);
    out.deltas.push(delta);
}

/// The final update of an order that leaves the engine without resting.
fn final_update(
    order: &NewOrder,
    status: OrderStatus,
    filled: Qty,
    reason: Option<OrderReason>,
) -> OrderUpdate {
    OrderUpdate {
        id: order.id,
        account: order.account,
        side: order.side,
        status,
        filled_qty: filled,
        leaves_qty: Qty::ZERO,
        reason,
    }
}

/// The update of a resting order leaving the book for `reason`.
fn cancelled_update(order: &RestingOrder, reason: OrderReason) -> OrderUpdate {
    OrderUpdate {
        id: order.id,
        account: order.account,
        side: order.side,
        status: OrderStatus::Cancelled,
        filled_qty: Qty(order.original_qty.0 - order.leaves_qty.0),
        leaves_qty: Qty::ZERO,
        reason: Some(reason),
    }
}

impl MatchingEngine {
    /// An empty engine: no resting orders, an empty book, and the next trade
    /// id is 1.
    pub fn new() -> Self {
        MatchingEngine {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            orders: Orders::default(),
            book: L2Book::new(),
            next_trade_id: 1,
        }
    }

    /// Submits an order; appends trades, L2 deltas and order updates to `out`
    /// (does not clear it).
    ///
    /// Guarantees: trades are in execution order at the makers' prices with
    /// strictly increasing ids; one delta per changed level (absolute
    /// quantity, each `(side, price)` at most once); updates are the makers'
    /// (fills and self-trade-prevention cancels, in execution order) then
    /// exactly one update of the taker, last. An order refused as
    /// `Rejected` (invalid, post-only that would trade) or cancelled as an
    /// unfillable FOK changes nothing but appends its own update. The book
    /// is never left crossed.
    ///
    /// `Rejected(Invalid)`: zero quantity, a limit order without a price, a
    /// post-only market order, an id that is resting, or a GTC limit whose
    /// level total would overflow `u64`. A post-only IOC/FOK that would not
    /// trade is not rejected: it then ends as its time in force says.
    pub fn submit(&mut self, order: NewOrder, out: &mut EngineEvents) {
        let reject = |reason| final_update(&order, OrderStatus::Rejected, Qty::ZERO, Some(reason));
        let limit = match (order.order_type, order.price) {
            (OrderType::Limit, Some(price)) => Some(price),
            (OrderType::Limit, None) => return out.updates.push(reject(OrderReason::Invalid)),
            (OrderType::Market, _) => None,
        };
        let is_market = order.order_type == OrderType::Market;
        if order.qty.is_zero()
            || (is_market && order.post_only)
            || self.orders.by_id.contains_key(&order.id)
        {
            return out.updates.push(reject(OrderReason::Invalid));
        }
        let may_rest = !is_market && order.time_in_force == TimeInForce::Gtc;
        if let (true, Some(price)) = (may_rest, limit) {
            // The remainder could rest: its level total must still fit a u64.
            let level_total = self.levels(order.side).get(&price).map_or(0, |l| l.total.0);
            if level_total.checked_add(order.qty.0).is_none() {
                return out.updates.push(reject(OrderReason::Invalid));
            }
        }
        if let (true, Some(price)) = (order.post_only, limit) {
            if self
                .opposite_best(order.side)
                .is_some_and(|best| crosses(order.side, price, best))
            {
                return out.updates.push(reject(OrderReason::PostOnlyWouldTrade));
            }
        }
        if order.time_in_force == TimeInForce::Fok
            && self
                .estimate_fill(order.side, order.qty, limit, Some(order.account))
                .fillable_qty
                < order.qty
        {
            let update = final_update(
                &order,
                OrderStatus::Cancelled,
                Qty::ZERO,
                Some(OrderReason::FillOrKillUnfillable),
            );
            return out.updates.push(update);
        }

        let filled = self.take_liquidity(&order, limit, out);
        let leaves = Qty(order.qty.0 - filled.0);
        let update = if leaves.is_zero() {
            final_update(&order, OrderStatus::Filled, filled, None)
        } else if let (true, Some(price)) = (may_rest, limit) {
            self.rest(&order, price, leaves, out);
            OrderUpdate {
                id: order.id,
                account: order.account,
                side: order.side,
                status: if filled.is_zero() {
                    OrderStatus::Open
                } else {
                    OrderStatus::PartiallyFilled
                },
                filled_qty: filled,
                leaves_qty: leaves,
                reason: None,
            }
        } else {
            // IOC or market remainder. (A FOK that passed the estimate is
            // always filled completely: the estimate walks the same levels,
            // skipping exactly the orders self-trade prevention cancels.)
            debug_assert_ne!(
                order.time_in_force,
                TimeInForce::Fok,
                "FOK passed its estimate but was not filled"
            );
            final_update(
                &order,
                OrderStatus::Cancelled,
                filled,
                Some(OrderReason::NotFilledImmediately),
            )
        };
        out.updates.push(update);
    }

    /// Cancels a resting order; appends its Cancelled update (reason
    /// UserCancel) and the L2 delta of its level.
    ///
    /// `Err(NotOpen)` with nothing appended and nothing changed when `id` is
    /// not resting (unknown, filled, cancelled or rejected).
    pub fn cancel(&mut self, id: OrderId, out: &mut EngineEvents) -> Result<(), CancelError> {
        let &i = self.orders.by_id.get(&id).ok_or(CancelError::NotOpen)?;
        let order = self.orders.nodes[i].order;
        let levels = match order.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let level = levels
            .get_mut(&order.price)
            .expect("a resting order's level exists while the order is indexed");
        level.unlink(&mut self.orders.nodes, i);
        level.total.0 -= order.leaves_qty.0;
        let total = level.total;
        if level.is_empty() {
            levels.remove(&order.price);
        }
        self.orders.remove(i);
        emit(
            &mut self.book,
            out,
            BookDelta {
                side: order.side,
                price: order.price,
                qty: total,
            },
        );
        out.updates
            .push(cancelled_update(&order, OrderReason::UserCancel));
        Ok(())
    }

    /// Matches `taker` against the opposite side while its best price is
    /// within `limit` (any price when `None`) and the taker has quantity
    /// left. Returns the quantity filled.
    ///
    /// Each level it enters changes (every visit trades or self-trade-cancels
    /// its head order), and levels are visited once, best first, so each
    /// gets exactly one delta with its final quantity.
    fn take_liquidity(
        &mut self,
        taker: &NewOrder,
        limit: Option<Price>,
        out: &mut EngineEvents,
    ) -> Qty {
        let MatchingEngine {
            bids,
            asks,
            orders,
            book,
            next_trade_id,
        } = self;
        let opposite = taker.side.opposite();
        let mut remaining = taker.qty.0;
        while remaining > 0 {
            let entry = match opposite {
                Side::Buy => bids.last_entry(),
                Side::Sell => asks.first_entry(),
            };
            let Some(mut entry) = entry else { break };
            let price = *entry.key();
            if limit.is_some_and(|limit| !crosses(taker.side, limit, price)) {
                break;
            }
            let level = entry.get_mut();
            while remaining > 0 && !level.is_empty() {
                let i = level.head;
                let maker = orders.nodes[i].order;
                if maker.account == taker.account {
                    level.unlink(&mut orders.nodes, i);
                    level.total.0 -= maker.leaves_qty.0;
                    orders.remove(i);
                    out.updates
                        .push(cancelled_update(&maker, OrderReason::SelfTradePrevented));
                    continue;
                }
                let qty = remaining.min(maker.leaves_qty.0);
                let leaves = maker.leaves_qty.0 - qty;
                remaining -= qty;
                level.total.0 -= qty;
                out.trades.push(Trade {
                    trade_id: *next_trade_id,
                    price,
                    qty: Qty(qty),
                    taker_side: taker.side,
                    maker_order: maker.id,
                    maker_account: maker.account,
                    taker_order: taker.id,
                    taker_account: taker.account,
                });
                *next_trade_id += 1;
                out.updates.push(OrderUpdate {
                    id: maker.id,
                    account: maker.account,
                    side: maker.side,
                    status: if leaves == 0 {
                        OrderStatus::Filled
                    } else {
                        OrderStatus::PartiallyFilled
                    },
                    filled_qty: Qty(maker.original_qty.0 - leaves),
                    leaves_qty: Qty(leaves),
                    reason: None,
                });
                if leaves == 0 {
                    level.unlink(&mut orders.nodes, i);
                    orders.remove(i);
                } else {
                    orders.nodes[i].order.leaves_qty = Qty(leaves);
                }
            }
            let total = level.total;
            if level.is_empty() {
                debug_assert!(total.is_zero(), "an empty level has a zero total");
                entry.remove();
            }
            emit(
                book,
                out,
                BookDelta {
                    side: opposite,
                    price,
                    qty: total,
                },
            );
        }
        Qty(taker.qty.0 - remaining)
    }

    /// Rests `leaves` of `order` at the back of its level at `price`.
    /// `submit` checked that the level total cannot overflow.
    fn rest(&mut self, order: &NewOrder, price: Price, leaves: Qty, out: &mut EngineEvents) {
        let i = self.orders.insert(RestingOrder {
            id: order.id,
            account: order.account,
            side: order.side,
            price,
            original_qty: order.qty,
            leaves_qty: leaves,
        });
        let levels = match order.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let level = levels.entry(price).or_insert(Level::EMPTY);
        level.push_back(&mut self.orders.nodes, i);
        level.total.0 = level
            .total
            .0
            .checked_add(leaves.0)
            .expect("submit refuses an order whose level total would overflow u64");
        let total = level.total;
        emit(
            &mut self.book,
            out,
            BookDelta {
                side: order.side,
                price,
                qty: total,
            },
        );
    }
}

#[cfg(test)]
mod tests;
