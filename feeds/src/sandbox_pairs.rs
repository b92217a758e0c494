//! The sandbox's default pairs: four pairs with realistic scales, and the
//! assets they trade, all held at 8 decimals so that every trade's notional
//! (price × qty, at `price_scale + qty_scale` ≤ 8 decimals) is exact.

use crate::venue::AssetSpec;
use orderbook::{MarketSpec, Price, Qty};

/// One pair the sandbox runs, with the price its simulated market starts at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairConfig {
    pub spec: MarketSpec,
    pub start_price: Price,
}

fn pair(symbol: &str, price_scale: u8, qty_scale: u8, min_qty: u64, start: u64) -> PairConfig {
    PairConfig {
        spec: MarketSpec::new(symbol, price_scale, qty_scale, Qty(min_qty))
            .expect("built-in market specs are valid"),
        start_price: Price(start),
    }
}

/// BTC-USD (0.01 / 0.000001), ETH-USD (0.01 / 0.00001), SOL-USD
/// (0.01 / 0.0001) and ETH-BTC (0.00001 / 0.001).
pub fn default_pairs() -> Vec<PairConfig> {
    vec![
        pair("BTC-USD", 2, 6, 10, 6_400_000),
        pair("ETH-USD", 2, 5, 100, 320_000),
        pair("SOL-USD", 2, 4, 100, 15_000),
        pair("ETH-BTC", 5, 3, 1, 5_000),
    ]
}

/// USD, BTC, ETH and SOL, each at 8 decimals.
pub fn default_assets() -> Vec<AssetSpec> {
    assets(&["USD", "BTC", "ETH", "SOL"])
}

/// A second market of four pairs, quoted in Australian dollars, for a
/// second venue beside the default one (docs/ARCHITECTURE.md, "Several
/// venues"): BTC-AUD (0.01 / 0.000001), ETH-AUD (0.01 / 0.00001), SOL-AUD
/// (0.01 / 0.0001) and USDC-AUD (0.0001 / 0.01).
pub fn aud_pairs() -> Vec<PairConfig> {
    vec![
        pair("BTC-AUD", 2, 6, 10, 9_700_000),
        pair("ETH-AUD", 2, 5, 100, 490_000),
        pair("SOL-AUD", 2, 4, 100, 23_000),
        pair("USDC-AUD", 4, 2, 100, 15_200),
    ]
}

/// AUD, BTC, ETH, SOL and USDC, each at 8 decimals.
pub fn aud_assets() -> Vec<AssetSpec> {
    assets(&["AUD", "BTC", "ETH", "SOL", "USDC"])
}

fn assets(symbols: &[&str]) -> Vec<AssetSpec> {
    symbols
        .iter()
        .map(|s| AssetSpec {
            symbol: s.to_string(),
            scale: 8,
        })
        .collect()
}
