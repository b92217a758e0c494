//! Unit tests of what surrounds matching: cancels, invalid orders, the
//! deltas, updates and trade ids a call emits, fill estimates and queries.

use super::*;
use crate::engine::types::FillEstimate;

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
