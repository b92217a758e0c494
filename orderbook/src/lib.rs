//! The pure core of NA-X Stream: exact fixed-scale decimals, the L2 order
//! book with its CRC-32 checksum, and the price-time-priority matching engine
//! the sandbox venue runs on. No I/O, no clocks, no threads: every function
//! here is deterministic, which is what lets the property tests and the
//! replay feed rebuild byte-identical books.

pub mod book;
pub mod candle;
pub mod checksum;
pub mod decimal;
pub mod engine;
pub mod ladder;
pub mod spec;

pub use book::{BookDelta, BookError, L2Book};
pub use decimal::DecimalError;
pub use spec::MarketSpec;

use serde::{Deserialize, Serialize};

/// A price as a raw count of the pair's price tick (`10^-price_scale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Price(pub u64);

/// A quantity as a raw count of the pair's quantity step (`10^-qty_scale`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Qty(pub u64);

impl Qty {
    pub const ZERO: Qty = Qty(0);

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Which side of the book: `Buy` orders rest on the bid side, `Sell` orders
/// on the ask side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// The side an order of this side trades against.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// The wire name: `"buy"` or `"sell"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}
