//! A deliberately naive matcher for the property tests to compare the
//! engine with.

use super::*;

/// A deliberately naive matcher: resting orders in arrival order, the best
/// maker found by a linear scan. Same rules, no shared code.
#[derive(Default)]
pub(super) struct Reference {
    pub(super) resting: Vec<RestingOrder>,
    next_trade_id: u64,
}

impl Reference {
    fn best_maker(&self, taker: &NewOrder, limit: Option<Price>) -> Option<usize> {
        let ok = |o: &RestingOrder| {
            o.side != taker.side
                && match (taker.side, limit) {
                    (_, None) => true,
                    (Side::Buy, Some(l)) => o.price <= l,
                    (Side::Sell, Some(l)) => o.price >= l,
                }
        };
        let mut best: Option<usize> = None;
        for (i, o) in self.resting.iter().enumerate() {
            if !ok(o) {
                continue;
            }
            let better = match best {
                None => true,
                Some(b) => match taker.side {
                    Side::Buy => o.price < self.resting[b].price,
                    Side::Sell => o.price > self.resting[b].price,
                },
            };
            if better {
                best = Some(i);
            }
        }
        best
    }

    pub(super) fn submit(&mut self, o: NewOrder) -> (Vec<Trade>, Vec<OrderUpdate>) {
        let done = |status, filled, reason| OrderUpdate {
            id: o.id,
            account: o.account,
            side: o.side,
            status,
            filled_qty: Qty(filled),
            leaves_qty: Qty(0),
            reason,
        };
        let market = o.order_type == OrderType::Market;
        let limit = if market { None } else { o.price };
        if o.qty.0 == 0
            || (!market && o.price.is_none())
            || (market && o.post_only)
            || self.resting.iter().any(|r| r.id == o.id)
        {
            return (
                vec![],
                vec![done(OrderStatus::Rejected, 0, Some(OrderReason::Invalid))],
            );
        }
        if o.post_only && self.best_maker(&o, limit).is_some() {
            return (
                vec![],
                vec![done(
                    OrderStatus::Rejected,
                    0,
                    Some(OrderReason::PostOnlyWouldTrade),
                )],
            );
        }
        if o.time_in_force == TimeInForce::Fok {
            let available: u64 = self
                .resting
                .iter()
                .filter(|r| r.side != o.side && r.account != o.account)
                .filter(|r| match (o.side, limit) {
                    (_, None) => true,
                    (Side::Buy, Some(l)) => r.price <= l,
                    (Side::Sell, Some(l)) => r.price >= l,
                })
                .map(|r| r.leaves_qty.0)
                .sum();
            if available < o.qty.0 {
                return (
                    vec![],
                    vec![done(
                        OrderStatus::Cancelled,
                        0,
                        Some(OrderReason::FillOrKillUnfillable),
                    )],
                );
            }
        }
        let (mut trades, mut updates) = (vec![], vec![]);
        let mut left = o.qty.0;
        while left > 0 {
            let Some(i) = self.best_maker(&o, limit) else {
                break;
            };
            let m = self.resting[i];
            if m.account == o.account {
                self.resting.remove(i);
                updates.push(OrderUpdate {
                    id: m.id,
                    account: m.account,
                    side: m.side,
                    status: OrderStatus::Cancelled,
                    filled_qty: Qty(m.original_qty.0 - m.leaves_qty.0),
                    leaves_qty: Qty(0),
                    reason: Some(OrderReason::SelfTradePrevented),
                });
                continue;
            }
            let q = left.min(m.leaves_qty.0);
            left -= q;
            self.next_trade_id += 1;
            trades.push(Trade {
                trade_id: self.next_trade_id,
                price: m.price,
                qty: Qty(q),
                taker_side: o.side,
                maker_order: m.id,
                maker_account: m.account,
                taker_order: o.id,
                taker_account: o.account,
            });
            let leaves = m.leaves_qty.0 - q;
            updates.push(OrderUpdate {
                id: m.id,
                account: m.account,
                side: m.side,
                status: if leaves == 0 {
                    OrderStatus::Filled
                } else {
                    OrderStatus::PartiallyFilled
                },
                filled_qty: Qty(m.original_qty.0 - leaves),
                leaves_qty: Qty(leaves),
                reason: None,
            });
            if leaves == 0 {
                self.resting.remove(i);
            } else {
                self.resting[i].leaves_qty = Qty(leaves);
            }
        }
        let filled = o.qty.0 - left;
        updates.push(if left == 0 {
            done(OrderStatus::Filled, filled, None)
        } else if !market && o.time_in_force == TimeInForce::Gtc {
            self.resting.push(RestingOrder {
                id: o.id,
                account: o.account,
                side: o.side,
                price: o.price.expect("validated above"),
                original_qty: o.qty,
                leaves_qty: Qty(left),
            });
            OrderUpdate {
                status: if filled == 0 {
                    OrderStatus::Open
                } else {
                    OrderStatus::PartiallyFilled
                },
                leaves_qty: Qty(left),
                ..done(OrderStatus::Open, filled, None)
            }
        } else {
            done(
                OrderStatus::Cancelled,
                filled,
                Some(OrderReason::NotFilledImmediately),
            )
        });
        (trades, updates)
    }

    pub(super) fn cancel(&mut self, id: OrderId) -> Option<OrderUpdate> {
        let i = self.resting.iter().position(|r| r.id == id)?;
        let m = self.resting.remove(i);
        Some(OrderUpdate {
            id: m.id,
            account: m.account,
            side: m.side,
            status: OrderStatus::Cancelled,
            filled_qty: Qty(m.original_qty.0 - m.leaves_qty.0),
            leaves_qty: Qty(0),
            reason: Some(OrderReason::UserCancel),
        })
    }
}
