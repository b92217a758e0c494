//! What the orders of a run look like: the pair's scales from
//! `GET /markets`, the order quantity, and the resting price (a fixed
//! percentage below the best bid of `GET /markets/{pair}/orderbook`, read
//! once at the start). All amounts are exact integers at the pair's
//! scales, never floats.

use super::rest::RestClient;
use orderbook::decimal::{format_scaled, parse_scaled};
use serde::Deserialize;

/// The orders a run sends, priced and sized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderShape {
    pub pair: String,
    pub price_scale: u8,
    pub qty_scale: u8,
    /// Quantity of every order, raw at `qty_scale`.
    pub qty_raw: u64,
    /// Best bid when the run started, raw at `price_scale`.
    pub reference_bid_raw: u64,
    /// Price of the resting buys, raw at `price_scale`.
    pub rest_price_raw: u64,
}

impl OrderShape {
    /// The order quantity as a decimal string.
    pub fn qty(&self) -> String {
        format_scaled(self.qty_raw, self.qty_scale)
    }

    /// The resting price as a decimal string.
    pub fn rest_price(&self) -> String {
        format_scaled(self.rest_price_raw, self.price_scale)
    }

    /// A quantity of this pair (e.g. an order's `filled_qty`) as raw units;
    /// `None` when it does not parse at the pair's scale.
    pub fn parse_qty(&self, text: &str) -> Option<u64> {
        parse_scaled(text, self.qty_scale).ok()
    }
}

#[derive(Deserialize)]
struct MarketEntry {
    pair: String,
    price_scale: u8,
    qty_scale: u8,
    min_qty: String,
}

#[derive(Deserialize)]
struct BookTop {
    bids: Vec<[String; 2]>,
    asks: Vec<[String; 2]>,
}

/// Reads the pair and its book top and shapes the orders: `qty` (default
/// the pair's `min_qty`), resting buys `distance_pct` percent below the
/// best bid (the best ask when the book has no bid).
pub async fn shape_orders(
    client: &RestClient,
    pair: &str,
    qty: Option<&str>,
    distance_pct: u8,
) -> Result<OrderShape, String> {
    let answer = client
        .get("/markets", None)
        .await
        .map_err(|e| format!("GET /markets: {e}"))?;
    if answer.status != 200 {
        return Err(format!("GET /markets: {}", answer.describe()));
    }
    let markets: Vec<MarketEntry> = serde_json::from_value(answer.body)
        .map_err(|e| format!("GET /markets: unreadable body: {e}"))?;
    let market = markets
        .into_iter()
        .find(|m| m.pair == pair)
        .ok_or_else(|| format!("--pair {pair}: the hub does not list it in GET /markets"))?;
    let min_qty = parse_scaled(&market.min_qty, market.qty_scale)
        .map_err(|e| format!("GET /markets: min_qty of {pair}: {e}"))?;
    let qty_raw = match qty {
        None => min_qty,
        Some(text) => {
            let raw = parse_scaled(text, market.qty_scale).map_err(|e| {
                format!(
                    "--order-qty {text}: {e} (qty scale of {pair}: {})",
                    market.qty_scale
                )
            })?;
            if raw < min_qty {
                return Err(format!(
                    "--order-qty {text}: below {pair}'s min_qty {}",
                    market.min_qty
                ));
            }
            raw
        }
    };

    let path = format!("/markets/{pair}/orderbook?depth=1");
    let answer = client
        .get(&path, None)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    if answer.status != 200 {
        return Err(format!("GET {path}: {}", answer.describe()));
    }
    let top: BookTop = serde_json::from_value(answer.body)
        .map_err(|e| format!("GET {path}: unreadable body: {e}"))?;
    let best = top
        .bids
        .first()
        .or(top.asks.first())
        .ok_or_else(|| format!("GET {path}: the book is empty; no price to rest below"))?;
    let reference_bid_raw = parse_scaled(&best[0], market.price_scale)
        .map_err(|e| format!("GET {path}: price {:?}: {e}", best[0]))?;
    Ok(OrderShape {
        pair: market.pair,
        price_scale: market.price_scale,
        qty_scale: market.qty_scale,
        qty_raw,
        reference_bid_raw,
        rest_price_raw: rest_price(reference_bid_raw, distance_pct),
    })
}

/// `distance_pct` percent below `reference`, rounded down, at least one
/// tick.
fn rest_price(reference: u64, distance_pct: u8) -> u64 {
    let below = u128::from(reference) * u128::from(100 - distance_pct.min(99)) / 100;
    u64::try_from(below).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resting_price_is_below_the_reference() {
        assert_eq!(rest_price(6_400_012, 50), 3_200_006);
        assert_eq!(rest_price(6_400_013, 50), 3_200_006);
        assert_eq!(rest_price(3, 99), 1, "at least one tick");
        let shape = OrderShape {
            pair: "BTC-USD".into(),
            price_scale: 2,
            qty_scale: 6,
            qty_raw: 10,
            reference_bid_raw: 6_400_000,
            rest_price_raw: 3_200_000,
        };
        assert_eq!(
            (shape.qty().as_str(), shape.rest_price().as_str()),
            ("0.000010", "32000.00")
        );
        assert_eq!(shape.parse_qty("0.000010"), Some(10));
        assert_eq!(shape.parse_qty("0.0000001"), None);
    }
}
