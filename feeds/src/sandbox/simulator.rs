//! Simulated market participants for one pair: market makers quoting around
//! a drifting fair price, and takers crossing the spread.
//!
//! Each [`Simulator::step`] is one participant action (place, cancel or
//! take) on the real matching engine, so the stream it causes is exactly
//! what the engine emits. Seeded, so a run is reproducible.

use super::pair::PairState;
use crate::sandbox_pairs::PairConfig;
use orderbook::engine::{AccountId, NewOrder, OrderId, OrderType, TimeInForce};
use orderbook::{Price, Qty, Side};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Market-maker accounts are 1..=3, takers 10..=12 (users start at 1,000).
const MAKERS: [AccountId; 3] = [AccountId(1), AccountId(2), AccountId(3)];
const TAKERS: [AccountId; 3] = [AccountId(10), AccountId(11), AccountId(12)];

/// Resting simulated orders kept per pair at most (beyond it makers cancel).
const MAX_RESTING: usize = 800;
/// Levels each side the book is seeded with.
const SEED_LEVELS: u64 = 40;

pub(crate) struct Simulator {
    rng: StdRng,
    start: u64,
    /// Fair price the makers quote around (raw price).
    fair: u64,
    /// Quote grid in raw price ticks (about half a basis point).
    grid: u64,
    min_qty: u64,
    resting: Vec<OrderId>,
}

impl Simulator {
    pub fn new(config: &PairConfig, seed: u64) -> Self {
        let start = config.start_price.0;
        Simulator {
            rng: StdRng::seed_from_u64(seed),
            start,
            fair: start,
            grid: (start / 20_000).max(1),
            min_qty: config.spec.min_qty.0,
            resting: Vec::with_capacity(MAX_RESTING + 64),
        }
    }

    /// Places the initial ladder of maker quotes.
    pub fn seed_book(
        &mut self,
        pair: &mut PairState,
        next_id: &mut dyn FnMut() -> OrderId,
        now: u64,
    ) {
        for distance in 1..=SEED_LEVELS {
            for side in [Side::Buy, Side::Sell] {
                let price = self.price_at(side, distance);
                let qty = self.maker_qty();
                self.place(pair, next_id(), side, price, qty, now);
            }
        }
    }

    /// One participant action. `pair.events` afterwards holds what this
    /// action did on the engine, nothing else: a cancel with nothing of
    /// its own resting makes no engine call, and the events of the call
    /// before it (a user's order, already settled) must not be settled
    /// again by the caller.
    pub fn step(&mut self, pair: &mut PairState, next_id: &mut dyn FnMut() -> OrderId, now: u64) {
        pair.events.clear();
        self.drift();
        let roll: f32 = self.rng.gen();
        if roll < 0.15 {
            self.take(pair, next_id(), now);
        } else if roll < 0.50 || self.resting.len() > MAX_RESTING {
            self.cancel_one(pair, now);
        } else {
            let side = if self.rng.gen() {
                Side::Buy
            } else {
                Side::Sell
            };
            // Most quotes land near the top of the book.
            let u: f64 = self.rng.gen();
            let distance = 1 + (u * u * 30.0) as u64;
            let price = self.price_at(side, distance);
            let qty = self.maker_qty();
            self.place(pair, next_id(), side, price, qty, now);
        }
    }

    /// Random walk of the fair price, pulled back towards the start.
    fn drift(&mut self) {
        let roll: f32 = self.rng.gen();
        let pull_down = self.fair > self.start + self.start / 20;
        let pull_up = self.fair < self.start - self.start / 20;
        if roll < 0.05 && !pull_down {
            self.fair += self.grid;
        } else if roll < 0.10 && !pull_up && self.fair > 2 * self.grid {
            self.fair -= self.grid;
        }
    }

    fn price_at(&self, side: Side, distance: u64) -> Price {
        let offset = distance * self.grid;
        match side {
            Side::Buy => Price(self.fair.saturating_sub(offset).max(1)),
            Side::Sell => Price(self.fair + offset),
        }
    }

    fn maker_qty(&mut self) -> Qty {
        Qty(self.min_qty * self.rng.gen_range(1..=400))
    }

    fn place(
        &mut self,
        pair: &mut PairState,
        id: OrderId,
        side: Side,
        price: Price,
        qty: Qty,
        now: u64,
    ) {
        let account = MAKERS[self.rng.gen_range(0..MAKERS.len())];
        pair.submit(
            NewOrder {
                id,
                account,
                side,
                order_type: OrderType::Limit,
                price: Some(price),
                qty,
                time_in_force: TimeInForce::Gtc,
                post_only: false,
            },
            now,
        );
        if pair.engine.order(id).is_some() {
            self.resting.push(id);
        }
    }

    fn cancel_one(&mut self, pair: &mut PairState, now: u64) {
        while !self.resting.is_empty() {
            let i = self.rng.gen_range(0..self.resting.len());
            let id = self.resting.swap_remove(i);
            // Orders filled meanwhile are gone from the engine: skip them.
            if pair.cancel(id, now).is_ok() {
                return;
            }
        }
    }

    fn take(&mut self, pair: &mut PairState, id: OrderId, now: u64) {
        let side = if self.rng.gen() {
            Side::Buy
        } else {
            Side::Sell
        };
        let account = TAKERS[self.rng.gen_range(0..TAKERS.len())];
        let qty = Qty(self.min_qty * self.rng.gen_range(1..=300));
        let (order_type, price) = if self.rng.gen_bool(0.5) {
            (OrderType::Market, None)
        } else {
            // Limit IOC a few grid steps through the fair price.
            (OrderType::Limit, Some(self.price_at(side.opposite(), 3)))
        };
        pair.submit(
            NewOrder {
                id,
                account,
                side,
                order_type,
                price,
                qty,
                time_in_force: TimeInForce::Ioc,
                post_only: false,
            },
            now,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::ledger::AssetConversion;
    use orderbook::engine::{AccountId, Trade};

    /// A trade a user's order made just before: already settled.
    fn settled_trade() -> Trade {
        Trade {
            trade_id: u64::MAX,
            price: Price(3_199_840),
            qty: Qty(10),
            taker_side: Side::Sell,
            maker_order: OrderId(1),
            maker_account: AccountId(1_000),
            taker_order: OrderId(2),
            taker_account: AccountId(1_001),
        }
    }

    /// Whatever a step does, including nothing (a cancel with nothing of
    /// its own resting, which the sandbox's hub runs hit under load: a
    /// user's fill settled twice, and the ledger's invariant panicked),
    /// the events it leaves are its own.
    #[test]
    fn a_step_leaves_only_its_own_events() {
        let config = &crate::sandbox_pairs::default_pairs()[0];
        let conversion = AssetConversion::new(&config.spec, 8, 8).unwrap();
        let mut pair = PairState::new(config.spec.clone(), conversion);
        let mut sim = Simulator::new(config, 7);
        let mut next = 10u64;
        let mut next_id = || {
            next += 1;
            OrderId(next)
        };
        let mut idle = 0;
        for _ in 0..500 {
            pair.events.trades.push(settled_trade());
            // Nothing of its own resting, as when takers filled it all.
            sim.resting.clear();
            sim.step(&mut pair, &mut next_id, 1);
            assert!(
                pair.events.trades.iter().all(|t| t.trade_id != u64::MAX),
                "a step left the events of the call before it"
            );
            idle += usize::from(sim.resting.is_empty() && pair.events.updates.is_empty());
        }
        assert!(idle > 0, "no step found nothing of its own resting");
    }
}
