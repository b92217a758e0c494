//! Property tests over random order flow: the L2 invariants after every
//! step, and the engine against the naive reference matcher.

use super::reference::Reference;
use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

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
