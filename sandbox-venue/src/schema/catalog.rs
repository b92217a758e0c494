//! What the venue trades, fixed at start-up: every pair's `MarketSpec` and
//! every asset's scale, looked up by name with the contract's error codes.

use super::errors::{coded, ErrorCode};
use async_graphql::Error;
use feeds::venue::AssetSpec;
use orderbook::MarketSpec;
use std::collections::HashMap;

/// The venue's pairs and assets, in the venue's order.
#[derive(Debug, Clone)]
pub struct Catalog {
    markets: Vec<MarketSpec>,
    assets: Vec<AssetSpec>,
    market_index: HashMap<String, usize>,
    asset_index: HashMap<String, usize>,
}

impl Catalog {
    pub fn new(markets: Vec<MarketSpec>, assets: Vec<AssetSpec>) -> Self {
        let market_index = markets
            .iter()
            .enumerate()
            .map(|(i, m)| (m.symbol.clone(), i))
            .collect();
        let asset_index = assets
            .iter()
            .enumerate()
            .map(|(i, a)| (a.symbol.clone(), i))
            .collect();
        Catalog {
            markets,
            assets,
            market_index,
            asset_index,
        }
    }

    pub fn markets(&self) -> &[MarketSpec] {
        &self.markets
    }

    pub fn assets(&self) -> &[AssetSpec] {
        &self.assets
    }

    /// The pair's spec, or `UNKNOWN_PAIR`.
    pub fn market(&self, pair: &str) -> Result<&MarketSpec, Error> {
        self.market_index
            .get(pair)
            .map(|&i| &self.markets[i])
            .ok_or_else(|| coded(ErrorCode::UnknownPair, format!("unknown pair {pair}")))
    }

    /// The asset's scale, or `UNKNOWN_ASSET`.
    pub fn asset_scale(&self, asset: &str) -> Result<u8, Error> {
        self.asset_index
            .get(asset)
            .map(|&i| self.assets[i].scale)
            .ok_or_else(|| coded(ErrorCode::UnknownAsset, format!("unknown asset {asset}")))
    }
}
