//! A trading pair's static description: symbol, assets and the fixed scales
//! every price and quantity of the pair is parsed and written in.

use crate::decimal::{self, DecimalError, MAX_SCALE};
use crate::{Price, Qty};
use serde::{Deserialize, Serialize};

/// One trading pair, e.g. `BTC-USD` with prices to 2 decimals and
/// quantities to 6. Parsing through a `MarketSpec` is the only way a price or
/// quantity string becomes a number, so the scale is enforced everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketSpec {
    /// `BASE-QUOTE`, upper case.
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub price_scale: u8,
    pub qty_scale: u8,
    /// Smallest order quantity accepted, raw at `qty_scale`.
    pub min_qty: Qty,
}

/// Why a `MarketSpec` is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarketSpecError {
    #[error("symbol {0:?} is not BASE-QUOTE in upper case")]
    BadSymbol(String),
    #[error("scale above {MAX_SCALE}")]
    BadScale,
    #[error("min_qty must be positive")]
    ZeroMinQty,
}

impl MarketSpec {
    /// Builds a spec from `BASE-QUOTE`, checking the symbol and scales.
    pub fn new(
        symbol: &str,
        price_scale: u8,
        qty_scale: u8,
        min_qty: Qty,
    ) -> Result<Self, MarketSpecError> {
        let bad = || MarketSpecError::BadSymbol(symbol.to_string());
        let (base, quote) = symbol.split_once('-').ok_or_else(bad)?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 10
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        };
        if !valid(base) || !valid(quote) {
            return Err(bad());
        }
        if price_scale > MAX_SCALE || qty_scale > MAX_SCALE {
            return Err(MarketSpecError::BadScale);
        }
        if min_qty.is_zero() {
            return Err(MarketSpecError::ZeroMinQty);
        }
        Ok(MarketSpec {
            symbol: symbol.to_string(),
            base: base.to_string(),
            quote: quote.to_string(),
            price_scale,
            qty_scale,
            min_qty,
        })
    }

    /// Parses a price string in this pair's scale; zero is refused.
    pub fn parse_price(&self, s: &str) -> Result<Price, DecimalError> {
        match decimal::parse_scaled(s, self.price_scale)? {
            0 => Err(DecimalError::Zero),
            raw => Ok(Price(raw)),
        }
    }

    /// Parses a quantity string in this pair's scale; zero is allowed
    /// (it deletes a level in a book delta).
    pub fn parse_qty(&self, s: &str) -> Result<Qty, DecimalError> {
        decimal::parse_scaled(s, self.qty_scale).map(Qty)
    }

    /// Writes a price with exactly `price_scale` decimals.
    pub fn write_price(&self, out: &mut Vec<u8>, p: Price) {
        decimal::write_scaled(out, p.0, self.price_scale)
    }

    /// Writes a quantity with exactly `qty_scale` decimals.
    pub fn write_qty(&self, out: &mut Vec<u8>, q: Qty) {
        decimal::write_scaled(out, q.0, self.qty_scale)
    }

    pub fn format_price(&self, p: Price) -> String {
        decimal::format_scaled(p.0, self.price_scale)
    }

    pub fn format_qty(&self, q: Qty) -> String {
        decimal::format_scaled(q.0, self.qty_scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> MarketSpec {
        MarketSpec::new("BTC-USD", 2, 6, Qty(10)).unwrap()
    }

    #[test]
    fn new_checks_symbol_and_scales() {
        assert_eq!(btc().base, "BTC");
        assert_eq!(btc().quote, "USD");
        for bad in ["btc-usd", "BTCUSD", "-USD", "BTC-", "BTC-US D"] {
            assert!(MarketSpec::new(bad, 2, 6, Qty(1)).is_err(), "{bad}");
        }
        assert_eq!(
            MarketSpec::new("A-B", 19, 2, Qty(1)),
            Err(MarketSpecError::BadScale)
        );
        assert_eq!(
            MarketSpec::new("A-B", 2, 2, Qty(0)),
            Err(MarketSpecError::ZeroMinQty)
        );
    }

    #[test]
    fn price_and_qty_use_their_own_scale() {
        let m = btc();
        assert_eq!(m.parse_price("64000.10"), Ok(Price(6_400_010)));
        assert_eq!(m.parse_price("0.00"), Err(DecimalError::Zero));
        assert_eq!(
            m.parse_price("1.001"),
            Err(DecimalError::TooManyDecimals { scale: 2 })
        );
        assert_eq!(m.parse_qty("0.000001"), Ok(Qty(1)));
        assert_eq!(m.parse_qty("0"), Ok(Qty(0)));
        assert_eq!(m.parse_qty("-1"), Err(DecimalError::Negative));
        assert_eq!(m.format_price(Price(6_400_010)), "64000.10");
        assert_eq!(m.format_qty(Qty(0)), "0.000000");
    }
}
