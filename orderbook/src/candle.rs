//! Candles (OHLCV) of a pair's trades: the intervals the hub serves
//! (docs/PROTOCOL.md, "Candles") and one candle's figures. Pure data: the
//! hub's candle series (`hub/src/protocol/series.rs`) and the market
//! archive (`api/src/market_archive/`) build on it.
//!
//! A candle covers `[start, start + interval)` in venue time, aligned to
//! UTC (a 4 h candle starts at 00:00, 04:00, ...; a 1 d candle at 00:00
//! UTC). Volumes are exact: `volume` in quantity steps, `quote_volume` in
//! units of `10^-(price_scale + qty_scale)` (the exact sum of
//! price × quantity).

use crate::{Price, Qty};
use serde::{Deserialize, Serialize};

/// A candle interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "4h")]
    H4,
    #[serde(rename = "1d")]
    D1,
}

const MINUTE_US: u64 = 60_000_000;

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 6] = [
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::H1,
        Interval::H4,
        Interval::D1,
    ];

    /// The name used in channel names (`candles1m.PAIR`) and in the REST
    /// `interval` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::H4 => "4h",
            Interval::D1 => "1d",
        }
    }

    /// The interval named `name` (`"1m"`, ..., `"1d"`).
    pub fn parse(name: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.as_str() == name)
    }

    /// Its length in microseconds.
    pub fn micros(self) -> u64 {
        MINUTE_US
            * match self {
                Interval::M1 => 1,
                Interval::M5 => 5,
                Interval::M15 => 15,
                Interval::H1 => 60,
                Interval::H4 => 240,
                Interval::D1 => 1440,
            }
    }

    /// The start of the candle that holds time `ts_us` (µs since the Unix
    /// epoch, UTC-aligned).
    pub fn start_of(self, ts_us: u64) -> u64 {
        ts_us - ts_us % self.micros()
    }
}

/// One candle. `close` of an interval without trades equals the previous
/// candle's close, with zero volume and zero trades (a chart has no holes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    /// Start of the interval, µs since the Unix epoch, UTC-aligned.
    pub start: u64,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    /// Base volume, in quantity steps.
    pub volume: Qty,
    /// Quote volume: the exact sum of price × quantity, in units of
    /// `10^-(price_scale + qty_scale)`.
    pub quote_volume: u128,
    /// Number of trades.
    pub trades: u64,
}

impl Candle {
    /// A candle at `start` opened by a trade.
    pub fn opened(start: u64, price: Price, qty: Qty) -> Candle {
        Candle {
            start,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: qty,
            quote_volume: u128::from(price.0) * u128::from(qty.0),
            trades: 1,
        }
    }

    /// A candle at `start` without trades, flat at `close` (the previous
    /// candle's close).
    pub fn flat(start: u64, close: Price) -> Candle {
        Candle {
            start,
            open: close,
            high: close,
            low: close,
            close,
            volume: Qty::ZERO,
            quote_volume: 0,
            trades: 0,
        }
    }

    /// Adds a trade (in execution order) to the candle.
    pub fn add(&mut self, price: Price, qty: Qty) {
        if self.trades == 0 {
            self.open = price;
            self.high = price;
            self.low = price;
        } else {
            self.high = self.high.max(price);
            self.low = self.low.min(price);
        }
        self.close = price;
        self.volume = Qty(self.volume.0.saturating_add(qty.0));
        self.quote_volume = self
            .quote_volume
            .saturating_add(u128::from(price.0) * u128::from(qty.0));
        self.trades += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_align_to_utc() {
        let ts = 1_763_940_000_123_456; // 2025-11-23T23:20:00.123456Z
        assert_eq!(Interval::M1.start_of(ts), 1_763_940_000_000_000);
        assert_eq!(Interval::H4.start_of(ts) % (4 * 3_600_000_000), 0);
        assert_eq!(Interval::D1.start_of(ts), 1_763_856_000_000_000);
        for i in Interval::ALL {
            assert_eq!(Interval::parse(i.as_str()), Some(i));
        }
        assert_eq!(Interval::parse("2m"), None);
    }

    #[test]
    fn a_flat_candle_opens_at_its_first_trade() {
        let mut c = Candle::flat(0, Price(100));
        c.add(Price(105), Qty(2));
        c.add(Price(99), Qty(1));
        assert_eq!(
            (
                c.open,
                c.high,
                c.low,
                c.close,
                c.volume,
                c.quote_volume,
                c.trades
            ),
            (Price(105), Price(105), Price(99), Price(99), Qty(3), 309, 2)
        );
    }
}
