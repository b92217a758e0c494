//! Tests of the matching engine: one unit test per rule (`rules`: priority,
//! time in force, post-only, self-trade prevention; `lifecycle`: cancels,
//! invalid orders, the events a call emits, queries), then property tests
//! over random order flow (`props`), checked against the L2 invariants and
//! a naive reference matcher (`reference`).

use super::*;
use crate::engine::types::AccountId;

mod lifecycle;
mod props;
mod reference;
mod rules;

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
