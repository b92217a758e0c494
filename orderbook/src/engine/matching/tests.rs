//! Tests of the matching engine: one unit test per rule, then property tests
//! over random order flow, checked against the L2 invariants and a naive
//! reference matcher.

use super::*;
use crate::engine::types::{AccountId, FillEstimate};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

const A: AccountId = AccountId(1);
const B: AccountId = AccountId(2);
const C: AccountId = AccountId(3);

fn order(id: u64, account: AccountId, side: Side, price: u64, qty: u64) -> NewOrder {
    NewOrder {
        id: OrderId(id),
        account,
        side,
        order_type: OrderType::Limit,
        price: Some(Price(price)),
        qty: Qty(qty),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
    }
}

fn tif(mut o: NewOrder, time_in_force: TimeInForce) -> NewOrder {
    o.time_in_force = time_in_force;
    o
}

fn market(id: u64, account: AccountId, side: Side, qty: u64) -> NewOrder {
    NewOrder {
        order_type: OrderType::Market,
        price: None,
        ..order(id, account, side, 0, qty)
    }
}

fn submit(e: &mut MatchingEngine, o: NewOrder) -> EngineEvents {
    let mut out = EngineEvents::default();
    e.submit(o, &mut out);
    out
}

/// An engine with the given resting orders, each of which must rest untouched.
fn engine_with(orders: &[NewOrder]) -> MatchingEngine {
    let mut e = MatchingEngine::new();
    for &o in orders {
        let out = submit(&mut e, o);
        assert!(out.trades.is_empty(), "setup order {o:?} traded");
        assert_eq!(
            out.updates.last().map(|u| u.status),
            Some(OrderStatus::Open)
        );
    }
    e
}

fn fills(out: &EngineEvents) -> Vec<(u64, u64, u64)> {
    out.trades
        .iter()
        .map(|t| (t.maker_order.0, t.price.0, t.qty.0))
        .collect()
}

fn deltas(out: &EngineEvents) -> Vec<(Side, u64, u64)> {
    out.deltas
        .iter()
        .map(|d| (d.side, d.price.0, d.qty.0))
        .collect()
}

fn taker(out: &EngineEvents) -> OrderUpdate {
    *out.updates
        .last()
        .expect("every submit ends with the taker's update")
}

fn levels(pairs: &[(u64, u64)]) -> Vec<(Price, Qty)> {
    pairs.iter().map(|&(p, q)| (Price(p), Qty(q))).collect()
}

#[test]
fn price_priority_best_price_fills_first() {
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 103, 5),
        order(2, A, Side::Sell, 101, 5),
        order(3, A, Side::Sell, 102, 5),
    ]);
    let out = submit(&mut e, order(10, B, Side::Buy, 103, 12));
    assert_eq!(fills(&out), vec![(2, 101, 5), (3, 102, 5), (1, 103, 2)]);
    let mut e = engine_with(&[
        order(1, A, Side::Buy, 98, 5),
        order(2, A, Side::Buy, 100, 5),
        order(3, A, Side::Buy, 99, 5),
    ]);
    let out = submit(&mut e, market(10, B, Side::Sell, 7));
    assert_eq!(fills(&out), vec![(2, 100, 5), (3, 99, 2)]);
}

#[test]
fn time_priority_is_fifo_within_a_level() {
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 101, 5),
        order(2, B, Side::Sell, 101, 5),
        order(3, A, Side::Sell, 101, 5),
    ]);
    let out = submit(&mut e, order(10, C, Side::Buy, 101, 7));
    assert_eq!(fills(&out), vec![(1, 101, 5), (2, 101, 2)]);
    // The partly filled order keeps its place at the head.
    let out = submit(&mut e, order(11, C, Side::Buy, 101, 4));
    assert_eq!(fills(&out), vec![(2, 101, 3), (3, 101, 1)]);
}

#[test]
fn partial_fills_leave_both_sides_consistent() {
    // Maker partly filled: stays resting with reduced leaves.
    let mut e = engine_with(&[order(1, A, Side::Sell, 101, 10)]);
    let out = submit(&mut e, order(10, B, Side::Buy, 101, 4));
    assert_eq!(out.updates[0].status, OrderStatus::PartiallyFilled);
    assert_eq!(
        (out.updates[0].filled_qty, out.updates[0].leaves_qty),
        (Qty(4), Qty(6))
    );
    assert_eq!(taker(&out).status, OrderStatus::Filled);
    assert_eq!(e.order(OrderId(1)).map(|o| o.leaves_qty), Some(Qty(6)));
    assert_eq!(e.order(OrderId(1)).map(|o| o.original_qty), Some(Qty(10)));
    // Taker partly filled: the remainder rests at its limit.
    let out = submit(&mut e, order(11, B, Side::Buy, 102, 10));
    assert_eq!(out.updates[0].status, OrderStatus::Filled);
    let t = taker(&out);
    assert_eq!(
        (t.status, t.filled_qty, t.leaves_qty),
        (OrderStatus::PartiallyFilled, Qty(6), Qty(4))
    );
    let rested = e.order(OrderId(11)).expect("remainder rests");
    assert_eq!(
        (rested.price, rested.original_qty, rested.leaves_qty),
        (Price(102), Qty(10), Qty(4))
    );
    assert_eq!(e.book().levels(), (levels(&[(102, 4)]), vec![]));
}

#[test]
fn trades_execute_at_the_maker_price() {
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 100, 5),
        order(2, A, Side::Buy, 90, 5),
    ]);
    let out = submit(&mut e, order(10, B, Side::Buy, 110, 5));
    assert_eq!(out.trades[0].price, Price(100));
    assert_eq!(out.trades[0].taker_side, Side::Buy);
    let out = submit(&mut e, order(11, B, Side::Sell, 80, 5));
    assert_eq!(out.trades[0].price, Price(90));
    assert_eq!(out.trades[0].taker_side, Side::Sell);
}

#[test]
fn ioc_remainder_is_cancelled() {
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 101, 3),
        order(2, A, Side::Sell, 105, 3),
    ]);
    let out = submit(
        &mut e,
        tif(order(10, B, Side::Buy, 102, 10), TimeInForce::Ioc),
    );
    assert_eq!(fills(&out), vec![(1, 101, 3)]);
    let t = taker(&out);
    assert_eq!(
        (t.status, t.filled_qty, t.leaves_qty),
        (OrderStatus::Cancelled, Qty(3), Qty(0))
    );
    assert_eq!(t.reason, Some(OrderReason::NotFilledImmediately));
    assert_eq!(e.order(OrderId(10)), None);
    assert_eq!(e.book().levels(), (vec![], levels(&[(105, 3)])));
    // An IOC that cannot trade at all is cancelled and changes nothing.
    let out = submit(
        &mut e,
        tif(order(11, B, Side::Buy, 100, 1), TimeInForce::Ioc),
    );
    assert!(out.trades.is_empty() && out.deltas.is_empty());
    assert_eq!(taker(&out).reason, Some(OrderReason::NotFilledImmediately));
}

#[test]
fn market_order_never_rests() {
    let mut e = MatchingEngine::new();
    let out = submit(&mut e, market(1, A, Side::Buy, 5));
    let t = taker(&out);
    assert_eq!(
        (t.status, t.filled_qty, t.reason),
        (
            OrderStatus::Cancelled,
            Qty(0),
            Some(OrderReason::NotFilledImmediately)
        )
    );
    assert!(out.deltas.is_empty());
    assert_eq!(e.resting_count(), 0);

    // GTC on a market order does not make it rest; it sweeps any price.
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 100, 2),
        order(2, A, Side::Sell, 1_000_000, 2),
    ]);
    let mut m = market(10, B, Side::Buy, 10);
    m.price = Some(Price(1)); // ignored
    let out = submit(&mut e, m);
    assert_eq!(fills(&out), vec![(1, 100, 2), (2, 1_000_000, 2)]);
    let t = taker(&out);
    assert_eq!((t.status, t.filled_qty), (OrderStatus::Cancelled, Qty(4)));
    assert_eq!(e.order(OrderId(10)), None);
    assert_eq!(e.resting_count(), 0);
    assert_eq!(e.book().levels(), (vec![], vec![]));
}

#[test]
fn fok_fills_completely_when_the_book_can() {
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 101, 3),
        order(2, A, Side::Sell, 102, 3),
    ]);
    let out = submit(
        &mut e,
        tif(order(10, B, Side::Buy, 102, 5), TimeInForce::Fok),
    );
    assert_eq!(fills(&out), vec![(1, 101, 3), (2, 102, 2)]);
    let t = taker(&out);
    assert_eq!((t.status, t.filled_qty), (OrderStatus::Filled, Qty(5)));
    // Market FOK: no limit.
    let out = submit(&mut e, tif(market(11, B, Side::Buy, 1), TimeInForce::Fok));
    assert_eq!(fills(&out), vec![(2, 102, 1)]);
    assert_eq!(taker(&out).status, OrderStatus::Filled);
}

#[test]
fn fok_that_cannot_fill_completely_trades_nothing() {
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 101, 3),
        order(2, A, Side::Sell, 103, 3),
        order(3, B, Side::Sell, 101, 10), // own liquidity does not count
    ]);
    let before = e.book().clone();
    for o in [
        tif(order(10, B, Side::Buy, 102, 4), TimeInForce::Fok), // only 3 within the limit
        tif(order(11, B, Side::Buy, 110, 7), TimeInForce::Fok), // only 6 not own
        tif(market(12, B, Side::Buy, 7), TimeInForce::Fok),
    ] {
        let out = submit(&mut e, o);
        assert!(out.trades.is_empty() && out.deltas.is_empty(), "{out:?}");
        assert_eq!(out.updates.len(), 1);
        let t = taker(&out);
        assert_eq!(
            (t.status, t.filled_qty, t.leaves_qty),
            (OrderStatus::Cancelled, Qty(0), Qty(0))
        );
        assert_eq!(t.reason, Some(OrderReason::FillOrKillUnfillable));
    }
    assert_eq!(*e.book(), before);
    assert_eq!(e.resting_count(), 3);
}

#[test]
fn post_only_is_rejected_when_it_would_trade() {
    let mut e = engine_with(&[order(1, A, Side::Sell, 101, 3)]);
    let before = e.book().clone();
    for price in [101, 102] {
        let mut o = order(10, B, Side::Buy, price, 1);
        o.post_only = true;
        let out = submit(&mut e, o);
        assert!(out.trades.is_empty() && out.deltas.is_empty());
        let t = taker(&out);
        assert_eq!(
            (t.status, t.reason),
            (OrderStatus::Rejected, Some(OrderReason::PostOnlyWouldTrade))
        );
    }
    assert_eq!(*e.book(), before);
    assert_eq!(e.order(OrderId(1)).map(|o| o.leaves_qty), Some(Qty(3)));
}

#[test]
fn post_only_rests_when_it_would_not_trade() {
    let mut e = engine_with(&[order(1, A, Side::Sell, 101, 3)]);
    let mut o = order(10, B, Side::Buy, 100, 2);
    o.post_only = true;
    let out = submit(&mut e, o);
    assert!(out.trades.is_empty());
    assert_eq!(deltas(&out), vec![(Side::Buy, 100, 2)]);
    assert_eq!(taker(&out).status, OrderStatus::Open);
    assert!(e.order(OrderId(10)).is_some());
}

#[test]
fn post_only_market_order_is_invalid() {
    let mut e = engine_with(&[order(1, A, Side::Sell, 101, 3)]);
    let mut o = market(10, B, Side::Buy, 1);
    o.post_only = true;
    let out = submit(&mut e, o);
    assert!(out.trades.is_empty() && out.deltas.is_empty());
    let t = taker(&out);
    assert_eq!(
        (t.status, t.reason),
        (OrderStatus::Rejected, Some(OrderReason::Invalid))
    );
}

#[test]
fn self_trade_prevention_cancels_the_maker_and_keeps_matching() {
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 101, 2),
        order(2, B, Side::Sell, 101, 3), // taker's own
        order(3, A, Side::Sell, 101, 4),
        order(4, B, Side::Sell, 102, 5), // own, not reached
    ]);
    let out = submit(&mut e, order(10, B, Side::Buy, 101, 5));
    assert_eq!(fills(&out), vec![(1, 101, 2), (3, 101, 3)]);
    assert!(out
        .trades
        .iter()
        .all(|t| t.maker_account != t.taker_account));
    let stp = out.updates[1];
    assert_eq!(
        (stp.id, stp.status, stp.reason),
        (
            OrderId(2),
            OrderStatus::Cancelled,
            Some(OrderReason::SelfTradePrevented)
        )
    );
    assert_eq!((stp.filled_qty, stp.leaves_qty), (Qty(0), Qty(0)));
    assert_eq!(e.order(OrderId(2)), None);
    assert!(e.order(OrderId(4)).is_some());
    assert_eq!(deltas(&out), vec![(Side::Sell, 101, 1)]);
    assert_eq!(taker(&out).status, OrderStatus::Filled);
    // A level holding only own orders is cleared and the taker rests behind it.
    let out = submit(&mut e, order(11, A, Side::Buy, 101, 2));
    assert!(out.trades.is_empty());
    assert_eq!(out.updates[0].reason, Some(OrderReason::SelfTradePrevented));
    assert_eq!(
        deltas(&out),
        vec![(Side::Sell, 101, 0), (Side::Buy, 101, 2)]
    );
    assert_eq!(
        e.book().levels(),
        (levels(&[(101, 2)]), levels(&[(102, 5)]))
    );
}

#[test]
fn cancel_removes_the_order_and_emits_its_level() {
    let mut e = engine_with(&[
        order(1, A, Side::Buy, 100, 2),
        order(2, B, Side::Buy, 100, 3),
    ]);
    submit(&mut e, order(9, C, Side::Sell, 100, 1)); // partly fills order 1
    let mut out = EngineEvents::default();
    assert_eq!(e.cancel(OrderId(1), &mut out), Ok(()));
    assert!(out.trades.is_empty());
    assert_eq!(deltas(&out), vec![(Side::Buy, 100, 3)]);
    assert_eq!(
        out.updates,
        vec![OrderUpdate {
            id: OrderId(1),
            account: A,
            side: Side::Buy,
            status: OrderStatus::Cancelled,
            filled_qty: Qty(1),
            leaves_qty: Qty(0),
            reason: Some(OrderReason::UserCancel),
        }]
    );
    assert_eq!(e.order(OrderId(1)), None);
    assert!(e.orders_of(A).is_empty());
    out.clear();
    assert_eq!(e.cancel(OrderId(2), &mut out), Ok(()));
    assert_eq!(deltas(&out), vec![(Side::Buy, 100, 0)]);
    assert_eq!(e.resting_count(), 0);
    assert_eq!(e.book().levels(), (vec![], vec![]));
}

#[test]
fn cancel_of_unknown_or_finished_order_is_not_open() {
    let mut e = engine_with(&[order(1, A, Side::Sell, 101, 2)]);
    submit(&mut e, order(2, B, Side::Buy, 101, 2)); // fills 1 and 2
    submit(&mut e, tif(order(3, B, Side::Buy, 90, 2), TimeInForce::Ioc)); // cancelled
    submit(&mut e, order(4, B, Side::Buy, 90, 0)); // rejected
    let mut x = engine_with(&[order(5, A, Side::Buy, 90, 1)]);
    let mut out = EngineEvents::default();
    x.cancel(OrderId(5), &mut out).unwrap();
    for (eng, id) in [(0, 1), (0, 2), (0, 3), (0, 4), (0, 99), (1, 5)] {
        let eng = if eng == 0 { &mut e } else { &mut x };
        let mut out = EngineEvents::default();
        assert_eq!(
            eng.cancel(OrderId(id), &mut out),
            Err(CancelError::NotOpen),
            "id {id}"
        );
        assert!(out.is_empty());
    }
}

#[test]
fn invalid_orders_change_nothing() {
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 101, 2),
        order(2, A, Side::Buy, 99, 2),
    ]);
    let zero_qty = order(10, B, Side::Buy, 101, 0);
    let mut no_price = order(11, B, Side::Buy, 101, 1);
    no_price.price = None;
    let duplicate = order(1, B, Side::Buy, 101, 1); // id 1 is resting
    let zero_market = market(12, B, Side::Sell, 0);
    let full = order(13, B, Side::Sell, 101, u64::MAX - 1); // level total would overflow
    let before = (e.book().clone(), e.orders_of(A), e.resting_count());
    for o in [zero_qty, no_price, duplicate, zero_market, full] {
        let out = submit(&mut e, o);
        assert!(out.trades.is_empty() && out.deltas.is_empty(), "{o:?}");
        assert_eq!(
            out.updates,
            vec![OrderUpdate {
                id: o.id,
                account: B,
                side: o.side,
                status: OrderStatus::Rejected,
                filled_qty: Qty(0),
                leaves_qty: Qty(0),
                reason: Some(OrderReason::Invalid),
            }]
        );
        assert_eq!(
            (e.book().clone(), e.orders_of(A), e.resting_count()),
            before
        );
    }
    // The next trade still gets id 1.
    let out = submit(&mut e, order(20, B, Side::Buy, 101, 1));
    assert_eq!(out.trades[0].trade_id, 1);
}

#[test]
fn deltas_are_absolute_and_unique_per_level_per_call() {
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 101, 5),
        order(2, A, Side::Sell, 101, 5),
        order(3, B, Side::Sell, 101, 1), // self-trade cancelled on the same level
        order(4, A, Side::Sell, 102, 5),
        order(5, A, Side::Sell, 103, 5),
    ]);
    let out = submit(&mut e, order(10, B, Side::Buy, 103, 13));
    assert_eq!(fills(&out).len(), 3);
    // 101 emptied once (not once per maker), 102 reduced to an absolute 2.
    assert_eq!(
        deltas(&out),
        vec![(Side::Sell, 101, 0), (Side::Sell, 102, 2)]
    );
    let out = submit(&mut e, order(11, B, Side::Buy, 104, 10));
    assert_eq!(
        deltas(&out),
        vec![
            (Side::Sell, 102, 0),
            (Side::Sell, 103, 0),
            (Side::Buy, 104, 3)
        ]
    );
    // Adding to an existing level reports the new total, not the increment.
    let out = submit(&mut e, order(12, C, Side::Buy, 104, 4));
    assert_eq!(deltas(&out), vec![(Side::Buy, 104, 7)]);
}

#[test]
fn updates_are_makers_in_execution_order_then_the_taker() {
    let mut e = engine_with(&[
        order(1, A, Side::Buy, 100, 2),
        order(2, B, Side::Buy, 100, 2),
        order(3, A, Side::Buy, 99, 5),
    ]);
    let out = submit(&mut e, order(10, B, Side::Sell, 99, 4));
    let got: Vec<_> = out
        .updates
        .iter()
        .map(|u| (u.id.0, u.status, u.filled_qty.0, u.leaves_qty.0, u.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, OrderStatus::Filled, 2, 0, None),
            (
                2,
                OrderStatus::Cancelled,
                0,
                0,
                Some(OrderReason::SelfTradePrevented)
            ),
            (3, OrderStatus::PartiallyFilled, 2, 3, None),
            (10, OrderStatus::Filled, 4, 0, None),
        ]
    );
}

#[test]
fn trade_ids_increase_from_one_across_calls() {
    let mut e = engine_with(&[
        order(1, A, Side::Sell, 101, 1),
        order(2, A, Side::Sell, 102, 1),
    ]);
    let first = submit(&mut e, order(10, B, Side::Buy, 102, 2));
    submit(&mut e, order(3, A, Side::Sell, 101, 1));
    let second = submit(&mut e, order(11, B, Side::Buy, 101, 1));
    let ids: Vec<u64> = first
        .trades
        .iter()
        .chain(&second.trades)
        .map(|t| t.trade_id)
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
}

#[test]
fn events_are_appended_not_replaced() {
    let mut e = engine_with(&[order(1, A, Side::Sell, 101, 1)]);
    let mut out = EngineEvents::default();
    e.submit(order(10, B, Side::Buy, 101, 1), &mut out);
    e.submit(order(11, B, Side::Buy, 100, 1), &mut out);
    e.cancel(OrderId(11), &mut out).unwrap();
    assert_eq!(out.trades.len(), 1);
    assert_eq!(out.deltas.len(), 3);
    assert_eq!(out.updates.len(), 4);
}

#[test]
fn estimate_fill_walks_levels_within_the_limit() {
    let e = engine_with(&[
        order(1, A, Side::Sell, 101, 2),
        order(2, B, Side::Sell, 101, 3),
        order(3, A, Side::Sell, 102, 4),
        order(4, A, Side::Buy, 99, 5),
    ]);
    let est = e.estimate_fill(Side::Buy, Qty(6), None, None);
    assert_eq!(
        est,
        FillEstimate {
            fillable_qty: Qty(6),
            notional_raw: 101 * 5 + 102
        }
    );
    let est = e.estimate_fill(Side::Buy, Qty(6), None, Some(B));
    assert_eq!(
        est,
        FillEstimate {
            fillable_qty: Qty(6),
            notional_raw: 101 * 2 + 102 * 4
        }
    );
    let est = e.estimate_fill(Side::Buy, Qty(100), Some(Price(101)), None);
    assert_eq!(
        est,
        FillEstimate {
            fillable_qty: Qty(5),
            notional_raw: 101 * 5
        }
    );
    let est = e.estimate_fill(Side::Sell, Qty(100), Some(Price(100)), None);
    assert_eq!(est, FillEstimate::default());
    let est = e.estimate_fill(Side::Sell, Qty(3), None, Some(B));
    assert_eq!(
        est,
        FillEstimate {
            fillable_qty: Qty(3),
            notional_raw: 99 * 3
        }
    );
    // Large values do not overflow.
    let e = engine_with(&[order(1, A, Side::Sell, u64::MAX, u64::MAX)]);
    let est = e.estimate_fill(Side::Buy, Qty(u64::MAX), None, None);
    assert_eq!(
        est.notional_raw,
        u128::from(u64::MAX) * u128::from(u64::MAX)
    );
}

#[test]
fn queries_reflect_resting_orders() {
    let mut e = MatchingEngine::default();
    assert_eq!(e.resting_count(), 0);
    submit(&mut e, order(1, A, Side::Buy, 99, 1));
    submit(&mut e, order(2, B, Side::Sell, 101, 2));
    submit(&mut e, order(3, A, Side::Sell, 102, 3));
    assert_eq!(e.resting_count(), 3);
    let mut ids: Vec<u64> = e.orders_of(A).iter().map(|o| o.id.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 3]);
    assert!(e.orders_of(C).is_empty());
    assert_eq!(
        e.order(OrderId(2)),
        Some(RestingOrder {
            id: OrderId(2),
            account: B,
            side: Side::Sell,
            price: Price(101),
            original_qty: Qty(2),
            leaves_qty: Qty(2),
        })
    );
    let mut out = EngineEvents::default();
    e.cancel(OrderId(1), &mut out).unwrap();
    assert_eq!(
        e.orders_of(A).iter().map(|o| o.id.0).collect::<Vec<_>>(),
        vec![3]
    );
    // A finished id may be used again.
    let out = submit(&mut e, order(1, C, Side::Buy, 98, 1));
    assert_eq!(taker(&out).status, OrderStatus::Open);
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

/// A random step before ids are resolved.
#[derive(Debug, Clone)]
enum Op {
    Submit {
        side: Side,
        market: bool,
        tif: TimeInForce,
        post_only: bool,
        price: Option<u64>,
        qty: u64,
        account: u64,
        /// Reuse a known id instead of a fresh one.
        reuse: Option<prop::sample::Index>,
    },
    Cancel(prop::sample::Index),
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Submit(NewOrder),
    Cancel(OrderId),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let submit = (
        prop_oneof![Just(Side::Buy), Just(Side::Sell)],
        prop::bool::weighted(0.15),
        prop_oneof![
            6 => Just(TimeInForce::Gtc),
            2 => Just(TimeInForce::Ioc),
            2 => Just(TimeInForce::Fok)
        ],
        prop::bool::weighted(0.15),
        prop_oneof![1 => Just(None), 30 => (95u64..=105).prop_map(Some)],
        prop_oneof![1 => Just(0u64), 30 => 1u64..=20],
        0u64..3,
        prop::option::weighted(0.05, any::<prop::sample::Index>()),
    )
        .prop_map(
            |(side, market, tif, post_only, price, qty, account, reuse)| Op::Submit {
                side,
                market,
                tif,
                post_only,
                price,
                qty,
                account,
                reuse,
            },
        );
    prop_oneof![4 => submit, 1 => any::<prop::sample::Index>().prop_map(Op::Cancel)]
}

/// Resolves ids: fresh ones count up; reused and cancelled ones come from
/// every id submitted so far (resting or not).
fn resolve(ops: &[Op]) -> Vec<Action> {
    let mut known: Vec<OrderId> = Vec::new();
    let mut next = 1;
    ops.iter()
        .map(|op| match op {
            Op::Submit {
                side,
                market,
                tif,
                post_only,
                price,
                qty,
                account,
                reuse,
            } => {
                let id = match reuse {
                    Some(ix) if !known.is_empty() => known[ix.index(known.len())],
                    _ => {
                        next += 1;
                        OrderId(next - 1)
                    }
                };
                known.push(id);
                Action::Submit(NewOrder {
                    id,
                    account: AccountId(*account),
                    side: *side,
                    order_type: if *market {
                        OrderType::Market
                    } else {
                        OrderType::Limit
                    },
                    price: price.map(Price),
                    qty: Qty(*qty),
                    time_in_force: *tif,
                    post_only: *post_only,
                })
            }
            Op::Cancel(ix) if !known.is_empty() => Action::Cancel(known[ix.index(known.len())]),
            Op::Cancel(_) => Action::Cancel(OrderId(u64::MAX)),
        })
        .collect()
}

/// Every resting order of the (three) accounts, sorted by id.
fn all_resting(e: &MatchingEngine) -> Vec<RestingOrder> {
    let mut v: Vec<RestingOrder> = (0..3).flat_map(|a| e.orders_of(AccountId(a))).collect();
    v.sort_by_key(|o| o.id);
    v
}

type Levels = (Vec<(Price, Qty)>, Vec<(Price, Qty)>);

/// One executed action with what it emitted and the state around it.
struct Step {
    action: Action,
    events: EngineEvents,
    cancel_result: Option<Result<(), CancelError>>,
    resting_before: Vec<RestingOrder>,
    resting_after: Vec<RestingOrder>,
    resting_count_after: usize,
    book_after: Levels,
    crossed_after: bool,
}

fn run(actions: &[Action]) -> Vec<Step> {
    let mut e = MatchingEngine::new();
    actions
        .iter()
        .map(|&action| {
            let resting_before = all_resting(&e);
            let mut events = EngineEvents::default();
            let cancel_result = match action {
                Action::Submit(o) => {
                    e.submit(o, &mut events);
                    None
                }
                Action::Cancel(id) => Some(e.cancel(id, &mut events)),
            };
            Step {
                action,
                events,
                cancel_result,
                resting_before,
                resting_after: all_resting(&e),
                resting_count_after: e.resting_count(),
                book_after: e.book().levels(),
                crossed_after: e.book().is_crossed(),
            }
        })
        .collect()
}

/// The book aggregated from resting orders: Σ leaves per price per side.
fn aggregate(resting: &[RestingOrder]) -> Levels {
    let mut bids: BTreeMap<Price, u64> = BTreeMap::new();
    let mut asks: BTreeMap<Price, u64> = BTreeMap::new();
    for o in resting {
        let side = if o.side == Side::Buy {
            &mut bids
        } else {
            &mut asks
        };
        *side.entry(o.price).or_default() += o.leaves_qty.0;
    }
    (
        bids.into_iter().rev().map(|(p, q)| (p, Qty(q))).collect(),
        asks.into_iter().map(|(p, q)| (p, Qty(q))).collect(),
    )
}

/// A deliberately naive matcher: resting orders in arrival order, the best
/// maker found by a linear scan. Same rules, no shared code.
#[derive(Default)]
struct Reference {
    resting: Vec<RestingOrder>,
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

    fn submit(&mut self, o: NewOrder) -> (Vec<Trade>, Vec<OrderUpdate>) {
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

    fn cancel(&mut self, id: OrderId) -> Option<OrderUpdate> {
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

fn ops() -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec(op_strategy(), 1..150).prop_map(|ops| resolve(&ops))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// (1) Applying every emitted delta, in order, to an empty book gives
    /// `engine.book()` after every step.
    #[test]
    fn prop_book_rebuilt_from_deltas_equals_engine_book(actions in ops()) {
        let mut rebuilt = L2Book::new();
        for step in run(&actions) {
            for d in &step.events.deltas {
                rebuilt.apply_delta(*d);
            }
            prop_assert_eq!(&rebuilt.levels(), &step.book_after, "after {:?}", step.action);
        }
    }

    /// (2) The engine's book is never crossed.
    #[test]
    fn prop_book_never_crossed(actions in ops()) {
        for step in run(&actions) {
            prop_assert!(!step.crossed_after, "crossed after {:?}: {:?}", step.action, step.book_after);
        }
    }

    /// (3) The engine's book is the aggregate of the resting orders' leaves,
    /// and `resting_count` counts them.
    #[test]
    fn prop_book_equals_aggregate_of_resting_orders(actions in ops()) {
        for step in run(&actions) {
            prop_assert_eq!(&aggregate(&step.resting_after), &step.book_after, "after {:?}", step.action);
            prop_assert_eq!(step.resting_after.len(), step.resting_count_after);
            prop_assert!(step.resting_after.iter().all(|o| !o.leaves_qty.is_zero() && o.leaves_qty <= o.original_qty));
        }
    }

    /// (4) Conservation: the taker's filled quantity is the sum of the
    /// call's trades, and each trade is positive and at most what both the
    /// maker and the taker had left; trade ids strictly increase.
    #[test]
    fn prop_fills_are_conserved(actions in ops()) {
        let mut last_trade_id = 0;
        for step in run(&actions) {
            let Action::Submit(o) = step.action else {
                prop_assert!(step.events.trades.is_empty());
                continue;
            };
            let t = *step.events.updates.last().expect("taker update");
            prop_assert_eq!(t.id, o.id);
            let traded: u64 = step.events.trades.iter().map(|t| t.qty.0).sum();
            prop_assert_eq!(t.filled_qty.0, traded);
            let mut maker_left: HashMap<OrderId, (u64, Price)> = step
                .resting_before
                .iter()
                .map(|r| (r.id, (r.leaves_qty.0, r.price)))
                .collect();
            let mut taker_left = o.qty.0;
            for tr in &step.events.trades {
                prop_assert!(tr.trade_id > last_trade_id);
                last_trade_id = tr.trade_id;
                let (left, price) = maker_left.get_mut(&tr.maker_order).expect("maker was resting");
                prop_assert!(tr.qty.0 > 0 && tr.qty.0 <= *left && tr.qty.0 <= taker_left, "{:?}", tr);
                prop_assert_eq!(tr.price, *price);
                if o.order_type == OrderType::Limit {
                    let limit = o.price.expect("a limit order that traded has a price");
                    let within = match o.side {
                        Side::Buy => tr.price <= limit,
                        Side::Sell => tr.price >= limit,
                    };
                    prop_assert!(within, "{:?} outside the limit of {:?}", tr, o);
                }
                *left -= tr.qty.0;
                taker_left -= tr.qty.0;
            }
            prop_assert_eq!(t.leaves_qty.0, if t.status.is_final() { 0 } else { taker_left });
        }
    }

    /// Each call emits at most one delta per (side, price), and cancels emit
    /// exactly one when they succeed and nothing when they fail.
    #[test]
    fn prop_deltas_unique_per_level_per_call(actions in ops()) {
        for step in run(&actions) {
            let mut seen = HashSet::new();
            for d in &step.events.deltas {
                prop_assert!(seen.insert((d.side, d.price)), "{:?} twice in {:?}", d, step.events.deltas);
            }
            if let Some(result) = step.cancel_result {
                let n = if result.is_ok() { 1 } else { 0 };
                prop_assert_eq!(step.events.deltas.len(), n);
                prop_assert_eq!(step.events.updates.len(), n);
            }
        }
    }

    /// Trades, order updates (in order) and resting orders agree exactly with
    /// a naive linear-scan matcher.
    #[test]
    fn prop_matches_the_naive_reference(actions in ops()) {
        let mut reference = Reference::default();
        for step in run(&actions) {
            match step.action {
                Action::Submit(o) => {
                    let (trades, updates) = reference.submit(o);
                    prop_assert_eq!(&step.events.trades, &trades, "trades of {:?}", o);
                    prop_assert_eq!(&step.events.updates, &updates, "updates of {:?}", o);
                }
                Action::Cancel(id) => {
                    let update = reference.cancel(id);
                    prop_assert_eq!(step.cancel_result == Some(Ok(())), update.is_some());
                    prop_assert_eq!(step.events.updates.first().copied(), update);
                }
            }
            let mut expected = reference.resting.clone();
            expected.sort_by_key(|o| o.id);
            prop_assert_eq!(&step.resting_after, &expected, "after {:?}", step.action);
        }
    }
}
