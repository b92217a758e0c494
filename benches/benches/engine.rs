//! Matching engine benches: an aggressive order sweeping 10 levels, a limit
//! order that rests, and a cancel.
//!
//! Run: `cargo bench -p benches --bench engine -- --warm-up-time 2 --measurement-time 5`
//!
//! Every bench runs on a steady-state engine (50 bid and 50 ask levels of 4
//! orders each) and uses `iter_custom`: each iteration times exactly one
//! engine call with its own `Instant` pair, then undoes its effect outside
//! the timed section (re-placing the taken liquidity, cancelling the rested
//! order, re-placing the cancelled one). So the engine's slab, free list and
//! hash maps are warm and sized as in a long-running venue, and the
//! `EngineEvents` buffer is reused (cleared outside the timed section) as
//! the engine docs recommend. The two `Instant::now` calls (~20-40 ns with
//! the TSC clock source) are included in every figure.

use benches::{engine_with_levels, maker_orders, sweep_buy, TAKER_ACCOUNT};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use orderbook::engine::{EngineEvents, MatchingEngine, NewOrder, OrderId, OrderType, TimeInForce};
use orderbook::{Qty, Side};
use std::time::{Duration, Instant};

const LEVELS: usize = 50;
const PER_LEVEL: usize = 4;
const SWEPT_LEVELS: usize = 10;

/// Events buffer with room for a whole sweep, so the timed section never
/// grows it.
fn events() -> EngineEvents {
    EngineEvents {
        trades: Vec::with_capacity(64),
        deltas: Vec::with_capacity(64),
        updates: Vec::with_capacity(64),
    }
}

/// Times `timed` once per iteration; `untimed` runs after each timed call
/// to restore the engine (and clear the events).
fn time_each(
    iters: u64,
    engine: &mut MatchingEngine,
    out: &mut EngineEvents,
    mut timed: impl FnMut(&mut MatchingEngine, &mut EngineEvents),
    mut untimed: impl FnMut(&mut MatchingEngine, &mut EngineEvents),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        timed(black_box(&mut *engine), &mut *out);
        total += start.elapsed();
        untimed(engine, out);
        out.clear();
    }
    total
}

fn sweep_10_levels(c: &mut Criterion) {
    let mut engine = engine_with_levels(LEVELS, PER_LEVEL);
    let mut out = events();
    let taker = sweep_buy(&engine, SWEPT_LEVELS, OrderId(u64::MAX));
    // The makers the sweep fills: the best 10 ask levels, oldest first.
    let refill: Vec<NewOrder> = maker_orders(Side::Sell, SWEPT_LEVELS, PER_LEVEL);

    // Sanity (untimed): one sweep fills 40 makers over exactly 10 levels.
    engine.submit(taker, &mut out);
    assert_eq!(out.trades.len(), SWEPT_LEVELS * PER_LEVEL);
    assert_eq!(out.deltas.len(), SWEPT_LEVELS);
    out.clear();
    for &o in &refill {
        engine.submit(o, &mut out);
    }
    out.clear();

    // Timed: one `submit` of the buy limit that takes 10 ask levels / 40
    // maker orders: validation, 40 trades + 41 order updates + 10 L2 deltas
    // pushed to the (pre-sized) events, 10 BTreeMap level removals, 40
    // slab/hash-map removals, 10 `L2Book::apply_delta` deletes at the top.
    // Not timed: re-submitting the 40 makers so the next sweep sees the
    // same book.
    c.bench_function("engine/sweep_10_levels_40_makers", |b| {
        b.iter_custom(|iters| {
            time_each(
                iters,
                &mut engine,
                &mut out,
                |e, out| e.submit(black_box(taker), out),
                |e, out| {
                    for &o in &refill {
                        e.submit(o, out);
                    }
                },
            )
        })
    });
}

fn rest_and_cancel(c: &mut Criterion) {
    let mut engine = engine_with_levels(LEVELS, PER_LEVEL);
    let mut out = events();
    let best_bid = engine.book().best_bid().expect("bids").price;
    // A buy limit at the best bid: below the best ask, so it joins the back
    // of the best bid level's queue without trading.
    let resting = NewOrder {
        id: OrderId(u64::MAX - 1),
        account: TAKER_ACCOUNT,
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some(best_bid),
        qty: Qty(1_000_000),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
    };

    // Timed: `submit` of that order (validation, slab insert, id and
    // account index inserts, FIFO append, one L2 delta updating the best
    // bid). Not timed: cancelling it again.
    c.bench_function("engine/limit_rests_no_match", |b| {
        b.iter_custom(|iters| {
            time_each(
                iters,
                &mut engine,
                &mut out,
                |e, out| e.submit(black_box(resting), out),
                |e, out| e.cancel(resting.id, out).expect("it rested"),
            )
        })
    });

    // Timed: `cancel` of that order from the back of the best bid level
    // (id look-up, BTreeMap level look-up, FIFO unlink, index removals,
    // one L2 delta). Not timed: placing it again.
    engine.submit(resting, &mut out);
    out.clear();
    c.bench_function("engine/cancel_resting", |b| {
        b.iter_custom(|iters| {
            time_each(
                iters,
                &mut engine,
                &mut out,
                |e, out| e.cancel(black_box(resting.id), out).expect("it rests"),
                |e, out| e.submit(resting, out),
            )
        })
    });
}

criterion_group!(benches, sweep_10_levels, rest_and_cancel);
criterion_main!(benches);
