//! One unit test per matching rule: price and time priority, partial
//! fills, the trade price, time in force, post-only and self-trade
//! prevention.

use super::*;

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
