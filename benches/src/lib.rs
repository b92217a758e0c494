//! Deterministic workloads shared by the criterion benches in `benches/`.
//!
//! Everything here is a pure function of its arguments (and fixed seeds):
//! two runs build the same books, the same delta streams and the same
//! engines, so numbers from different machines or commits measure the same
//! work. Values are BTC-USD sized: prices around 64 000.00 at price scale 2
//! (raw ~6_400_000) and quantities from 0.001 to 100 BTC at quantity scale 6
//! (raw 1_000 to 10^8), which is what the checksum has to print.
//!
//! Level geometry: level `i` (0 = best) of either side sits `2i + 1` ticks
//! from [`MID`], so a fresh book has a one-tick gap between any two levels
//! and a two-tick spread. Those gaps are where the stream generator puts
//! inserted levels.

use orderbook::book::Levels;
use orderbook::engine::{
    AccountId, EngineEvents, MatchingEngine, NewOrder, OrderId, OrderType, TimeInForce,
};
use orderbook::{BookDelta, L2Book, MarketSpec, Price, Qty, Side};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Mid price, raw at price scale 2: 64 000.00.
pub const MID: u64 = 6_400_000;
/// Price scale of the simulated pair (cents).
pub const PRICE_SCALE: u8 = 2;
/// Quantity scale of the simulated pair (micro-BTC).
pub const QTY_SCALE: u8 = 6;
/// Smallest generated quantity, raw: 0.001 BTC.
pub const MIN_QTY: u64 = 1_000;
/// Largest generated quantity, raw: 100 BTC.
pub const MAX_QTY: u64 = 100_000_000;
/// Seed of the quantities of [`book_with_levels`].
pub const BOOK_SEED: u64 = 0x4E41_582D_424F_4F4B;
/// Seed the benches use for delta streams.
pub const STREAM_SEED: u64 = 0x4E41_582D_4454_4153;

/// Raw price `distance` ticks away from [`MID`] on `side` (bids below, asks
/// above). `distance` must be at least 1, which keeps every generated book
/// uncrossed.
#[inline]
pub fn price_at(side: Side, distance: u64) -> Price {
    match side {
        Side::Buy => Price(MID - distance),
        Side::Sell => Price(MID + distance),
    }
}

/// Price of level `i` (0 = best) of `side` in [`book_with_levels`].
#[inline]
pub fn level_price(side: Side, i: usize) -> Price {
    price_at(side, 2 * i as u64 + 1)
}

/// A quantity between [`MIN_QTY`] and [`MAX_QTY`], log-uniform (many small
/// levels, a few large ones, 4 to 9 digits), never zero.
pub fn random_qty(rng: &mut impl Rng) -> Qty {
    let span = (MAX_QTY as f64 / MIN_QTY as f64).ln();
    let q = (MIN_QTY as f64 * (span * rng.gen::<f64>()).exp()) as u64;
    Qty(q.clamp(MIN_QTY, MAX_QTY))
}

/// The levels of [`book_with_levels`]`(n)`: `n` bids and `n` asks, best
/// first, at [`level_price`], with quantities from [`BOOK_SEED`].
pub fn book_levels(n: usize) -> (Levels, Levels) {
    let mut rng = StdRng::seed_from_u64(BOOK_SEED);
    let mut side = |s: Side| -> Levels {
        (0..n)
            .map(|i| (level_price(s, i), random_qty(&mut rng)))
            .collect()
    };
    let bids = side(Side::Buy);
    let asks = side(Side::Sell);
    (bids, asks)
}

/// An uncrossed book with `n` levels per side (see the module docs for the
/// geometry). Built with `L2Book::apply_snapshot`, so each side has the
/// default reserved capacity (1 024 levels).
pub fn book_with_levels(n: usize) -> L2Book {
    let (bids, asks) = book_levels(n);
    let mut book = L2Book::new();
    book.apply_snapshot(&bids, &asks)
        .expect("generated levels are distinct, non-zero and uncrossed");
    book
}

/// How a delta stream chooses the level it touches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LevelPick {
    /// Level index from the top drawn from a geometric distribution with
    /// success probability `p` (mean `(1 - p) / p` levels from the top):
    /// traffic concentrated near the best price, as on a real venue.
    Geometric { p: f64 },
    /// Any level with the same probability: the worst case for a ladder
    /// that keeps the best price at the end of a `Vec`, since inserts and
    /// deletes deep in the book move most of it.
    Uniform,
}

/// The shape of a delta stream: relative weights of the three kinds of
/// delta, and where in the book they land.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaMix {
    /// Weight of deltas that set a new quantity on an existing level.
    pub update: u32,
    /// Weight of deltas that add a level at a free price.
    pub insert: u32,
    /// Weight of deltas that remove an existing level (quantity zero).
    pub delete: u32,
    pub pick: LevelPick,
}

impl DeltaMix {
    /// 80 % updates, 10 % inserts, 10 % deletes; geometric level index with
    /// p = 0.1 (mean 9 levels from the top, ~65 % within the top 10).
    pub const REALISTIC: DeltaMix = DeltaMix {
        update: 80,
        insert: 10,
        delete: 10,
        pick: LevelPick::Geometric { p: 0.1 },
    };
    /// Only quantity changes of existing levels, geometric as [`Self::REALISTIC`].
    pub const UPDATES_ONLY: DeltaMix = DeltaMix {
        update: 100,
        insert: 0,
        delete: 0,
        pick: LevelPick::Geometric { p: 0.1 },
    };
    /// 50 % updates, 25 % inserts, 25 % deletes, level uniform over the
    /// whole depth.
    pub const WORST_CASE: DeltaMix = DeltaMix {
        update: 50,
        insert: 25,
        delete: 25,
        pick: LevelPick::Uniform,
    };
}

/// How far the depth of a side may drift from the target before the stream
/// generator turns inserts into deletes (or the reverse). 1 000 + 16 stays
/// inside the 1 024 levels `L2Book::new` reserves.
pub const DEPTH_SLACK: usize = 16;

/// A generator-side mirror of one side: distances from [`MID`] of the
/// levels present, best (smallest) first.
struct SideModel {
    side: Side,
    distances: Vec<u64>,
}

impl SideModel {
    fn pick(&self, rng: &mut impl Rng, pick: LevelPick, len: usize) -> usize {
        debug_assert!(len > 0);
        match pick {
            LevelPick::Uniform => rng.gen_range(0..len),
            LevelPick::Geometric { p } => {
                let u: f64 = rng.gen();
                let i = ((1.0 - u).ln() / (1.0 - p).ln()) as usize;
                i.min(len - 1)
            }
        }
    }

    /// A free distance at or below the picked position, keeping the level
    /// index roughly where `pick` says.
    fn free_distance(&self, rng: &mut impl Rng, pick: LevelPick) -> (usize, u64) {
        let len = self.distances.len();
        let mut i = self.pick(rng, pick, len + 1);
        loop {
            let prev = if i == 0 { 0 } else { self.distances[i - 1] };
            let next = if i < len { self.distances[i] } else { prev + 4 };
            if next - prev > 1 {
                return (i, rng.gen_range(prev + 1..next));
            }
            i += 1;
        }
    }
}

/// `n` deltas that are valid in sequence starting from
/// [`book_with_levels`]`(depth)`: every update and delete hits a level that
/// exists at that point, every insert a price that is free, the book never
/// crosses, and each side stays within [`DEPTH_SLACK`] levels of `depth`.
/// Sides alternate at random (50/50). Same `seed`, same stream.
pub fn delta_stream(seed: u64, n: usize, depth: usize, mix: DeltaMix) -> Vec<BookDelta> {
    assert!(depth > DEPTH_SLACK, "depth must exceed DEPTH_SLACK");
    let total = mix.update + mix.insert + mix.delete;
    assert!(total > 0, "a mix needs at least one non-zero weight");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sides = [Side::Buy, Side::Sell].map(|side| SideModel {
        side,
        distances: (0..depth as u64).map(|i| 2 * i + 1).collect(),
    });
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let model = &mut sides[usize::from(rng.gen_bool(0.5))];
        let len = model.distances.len();
        let roll = rng.gen_range(0..total);
        let mut insert = roll >= mix.update && roll < mix.update + mix.insert;
        let mut delete = roll >= mix.update + mix.insert;
        if insert && len >= depth + DEPTH_SLACK {
            (insert, delete) = (false, true);
        } else if delete && len <= depth - DEPTH_SLACK {
            (insert, delete) = (true, false);
        }
        let delta = if insert {
            let (i, distance) = model.free_distance(&mut rng, mix.pick);
            model.distances.insert(i, distance);
            BookDelta {
                side: model.side,
                price: price_at(model.side, distance),
                qty: random_qty(&mut rng),
            }
        } else {
            let i = model.pick(&mut rng, mix.pick, len);
            let price = price_at(model.side, model.distances[i]);
            let qty = if delete {
                model.distances.remove(i);
                Qty::ZERO
            } else {
                random_qty(&mut rng)
            };
            BookDelta {
                side: model.side,
                price,
                qty,
            }
        };
        out.push(delta);
    }
    out
}

/// The account every taker order in the engine benches uses; no maker has it,
/// so self-trade prevention never fires.
pub const TAKER_ACCOUNT: AccountId = AccountId(1_000_000);

/// The maker orders that [`engine_with_levels`] rests: `per_level` GTC
/// limit orders on each of `levels` levels of `side` (at [`level_price`]),
/// best level first, oldest first within a level. Ids are unique across both
/// sides and below 10^9; accounts cycle over 1..=`per_level`.
pub fn maker_orders(side: Side, levels: usize, per_level: usize) -> Vec<NewOrder> {
    let base = match side {
        Side::Buy => 1,
        Side::Sell => 500_000_000,
    };
    let mut rng = StdRng::seed_from_u64(BOOK_SEED ^ base);
    let mut orders = Vec::with_capacity(levels * per_level);
    for i in 0..levels {
        for k in 0..per_level {
            orders.push(NewOrder {
                id: OrderId(base + (i * per_level + k) as u64),
                account: AccountId(1 + k as u64),
                side,
                order_type: OrderType::Limit,
                price: Some(level_price(side, i)),
                // 0.01 to 5 BTC per order
                qty: Qty(rng.gen_range(10_000..=5_000_000)),
                time_in_force: TimeInForce::Gtc,
                post_only: false,
            });
        }
    }
    orders
}

/// A matching engine with `levels` bid and `levels` ask levels of
/// `per_level` resting orders each (see [`maker_orders`]).
pub fn engine_with_levels(levels: usize, per_level: usize) -> MatchingEngine {
    let mut engine = MatchingEngine::new();
    let mut events = EngineEvents::default();
    for side in [Side::Buy, Side::Sell] {
        for order in maker_orders(side, levels, per_level) {
            engine.submit(order, &mut events);
            events.clear();
        }
    }
    engine
}

/// A GTC limit buy that takes exactly the best `levels` ask levels of
/// `engine` and nothing more: its limit is the price of the `levels`-th ask
/// and its quantity the sum of those levels, so it fills completely and
/// never rests. Panics if the book has fewer ask levels.
pub fn sweep_buy(engine: &MatchingEngine, levels: usize, id: OrderId) -> NewOrder {
    let asks: Vec<_> = engine.book().asks().iter().take(levels).collect();
    assert_eq!(asks.len(), levels, "not enough ask levels to sweep");
    NewOrder {
        id,
        account: TAKER_ACCOUNT,
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some(asks[levels - 1].price),
        qty: Qty(asks.iter().map(|l| l.qty.0).sum()),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
    }
}

/// The sandbox's BTC-USD spec (price scale 2, quantity scale 6), as the hub
/// serves it.
pub fn btc_usd() -> MarketSpec {
    feeds::sandbox_pairs::default_pairs()
        .into_iter()
        .find(|p| p.spec.symbol == "BTC-USD")
        .expect("BTC-USD is a default pair")
        .spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_valid() {
        for mix in [
            DeltaMix::REALISTIC,
            DeltaMix::UPDATES_ONLY,
            DeltaMix::WORST_CASE,
        ] {
            let a = delta_stream(7, 20_000, 1_000, mix);
            assert_eq!(a, delta_stream(7, 20_000, 1_000, mix));
            let mut book = book_with_levels(1_000);
            for d in &a {
                let old = book.apply_delta(*d);
                if d.qty.is_zero() {
                    assert!(!old.is_zero(), "delete of a missing level: {d:?}");
                } else {
                    assert!((MIN_QTY..=MAX_QTY).contains(&d.qty.0));
                }
                assert!(!book.is_crossed());
            }
            for side in [book.bids(), book.asks()] {
                assert!(side.len().abs_diff(1_000) <= DEPTH_SLACK);
                assert_eq!(side.capacity(), 1_024, "stream stayed in reserved capacity");
            }
        }
    }

    #[test]
    fn updates_only_never_changes_the_depth() {
        let mut book = book_with_levels(1_000);
        for d in delta_stream(1, 10_000, 1_000, DeltaMix::UPDATES_ONLY) {
            assert!(!book.apply_delta(d).is_zero());
        }
        assert_eq!((book.bids().len(), book.asks().len()), (1_000, 1_000));
    }

    #[test]
    fn sweep_takes_exactly_the_levels() {
        let mut engine = engine_with_levels(50, 4);
        let order = sweep_buy(&engine, 10, OrderId(u64::MAX));
        let mut events = EngineEvents::default();
        engine.submit(order, &mut events);
        assert_eq!(events.trades.len(), 40);
        assert_eq!(events.deltas.len(), 10);
        assert_eq!(engine.book().asks().len(), 40);
        assert!(engine.order(order.id).is_none());
    }
}
