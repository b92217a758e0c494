//! Trades, candles, unique pairs and a clock the cases move forward.

use api::market_archive::{ArchivedTrade, Clock, TradeKey};
use feeds::PublicTrade;
use orderbook::candle::{Candle, Interval};
use orderbook::{Price, Qty, Side};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// 2026-11-30T00:00:00Z in µs: a venue time aligned to every interval.
pub const T0_US: u64 = 1_764_460_800_000_000;

/// A clock the test moves: epoch seconds, starting at the real time.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    pub fn new() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        TestClock(Arc::new(AtomicU64::new(now)))
    }

    /// The archive's view of this clock.
    pub fn clock(&self) -> Clock {
        let now = self.0.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    }

    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

/// A pair no other case uses (`T<hex>-USD`).
pub fn unique_pair() -> String {
    format!("T{}-USD", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Trade `id` at venue time `venue_ts`, in trade batch `seq`; its price
/// and quantity derive from `id`, so a changed item shows.
pub fn trade(venue_ts: u64, id: u64) -> ArchivedTrade {
    ArchivedTrade {
        epoch: "e-archive".to_owned(),
        seq: id / 3 + 1,
        trade: PublicTrade {
            trade_id: id,
            price: Price(5_000_000 + id),
            qty: Qty(10 + id),
            side: if id.is_multiple_of(2) {
                Side::Buy
            } else {
                Side::Sell
            },
            venue_ts,
        },
    }
}

/// `n` trades, ids `1..=n`, every two sharing a venue time (so the order
/// by trade id within one venue time shows), one second apart.
pub fn trades(n: u64) -> Vec<ArchivedTrade> {
    (1..=n)
        .map(|id| trade(T0_US + (id / 2) * 1_000_000, id))
        .collect()
}

pub fn keys(trades: &[ArchivedTrade]) -> Vec<TradeKey> {
    trades.iter().map(ArchivedTrade::key).collect()
}

/// The candle of `interval` number `i` after [`T0_US`], figures from `i`.
pub fn candle(interval: Interval, i: u64) -> Candle {
    let price = Price(4_000_000 + i);
    let mut c = Candle::opened(T0_US + i * interval.micros(), price, Qty(1 + i));
    c.add(Price(price.0 + 7), Qty(2));
    c
}

pub fn candles(interval: Interval, n: u64) -> Vec<Candle> {
    (0..n).map(|i| candle(interval, i)).collect()
}
