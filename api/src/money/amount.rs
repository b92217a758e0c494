//! Amounts of deposits and withdrawals: exact decimals at the asset's
//! scale (never rounded: more decimals than the scale is 422
//! `invalid_amount`) and the per-request limits of each asset (422
//! `amount_out_of_range`).

use crate::error::ApiError;
use feeds::venue::AssetSpec;
use orderbook::decimal::{format_scaled, parse_scaled};

/// Smallest and largest amount of one deposit or withdrawal request, per
/// asset, as decimal strings. Assets not listed: one smallest unit up to
/// the largest representable amount.
pub const LIMITS: &[(&str, &str, &str)] = &[
    ("BTC", "0.00001", "100"),
    ("ETH", "0.0001", "1000"),
    ("SOL", "0.001", "100000"),
    ("USD", "1", "1000000"),
    ("EUR", "1", "1000000"),
    ("GBP", "1", "1000000"),
];

/// A validated amount of one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetAmount {
    /// The venue's symbol.
    pub asset: String,
    pub scale: u8,
    /// Smallest units at `scale`; always positive.
    pub raw: u64,
}

impl AssetAmount {
    /// Parses `text` (field `field`) as a positive amount of `spec` with at
    /// most `max_decimals` decimals (the asset's scale, or less for fiat
    /// minor units), within the asset's [`LIMITS`].
    pub fn parse(
        field: &str,
        text: &str,
        spec: &AssetSpec,
        max_decimals: u8,
    ) -> Result<AssetAmount, ApiError> {
        let invalid =
            |why: String| ApiError::unprocessable("invalid_amount", format!("{field}: {why}"));
        let decimals = max_decimals.min(spec.scale);
        // Parse at the allowed decimals first so "too many decimals" is exact.
        parse_scaled(text, decimals).map_err(|e| invalid(e.to_string()))?;
        let raw = parse_scaled(text, spec.scale).map_err(|e| invalid(e.to_string()))?;
        if raw == 0 {
            return Err(invalid("must be greater than zero".into()));
        }
        let (min, max) = limits(spec);
        if raw < min || raw > max {
            return Err(ApiError::unprocessable(
                "amount_out_of_range",
                format!(
                    "{field}: must be between {} and {} {}",
                    format_scaled(min, spec.scale),
                    format_scaled(max, spec.scale),
                    spec.symbol
                ),
            ));
        }
        Ok(AssetAmount {
            asset: spec.symbol.clone(),
            scale: spec.scale,
            raw,
        })
    }

    /// The amount as a decimal string with exactly `scale` decimals.
    pub fn decimal(&self) -> String {
        format_scaled(self.raw, self.scale)
    }
}

/// `(min, max)` raw amounts of one request of `spec`'s asset.
pub fn limits(spec: &AssetSpec) -> (u64, u64) {
    LIMITS
        .iter()
        .find(|(asset, _, _)| *asset == spec.symbol)
        .and_then(|(_, min, max)| {
            Some((
                parse_scaled(min, spec.scale).ok()?,
                parse_scaled(max, spec.scale).ok()?,
            ))
        })
        .unwrap_or((1, u64::MAX))
}

/// The venue's asset named `symbol` (case-insensitive), if any. Symbols
/// longer than 16 characters are never assets.
pub fn find_asset(assets: &[AssetSpec], symbol: &str) -> Option<AssetSpec> {
    if symbol.is_empty() || symbol.len() > 16 {
        return None;
    }
    assets
        .iter()
        .find(|a| a.symbol.eq_ignore_ascii_case(symbol))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(symbol: &str) -> AssetSpec {
        AssetSpec {
            symbol: symbol.into(),
            scale: 8,
        }
    }

    fn code(r: Result<AssetAmount, ApiError>) -> String {
        r.unwrap_err().code.into_owned()
    }

    #[test]
    fn exact_amounts_at_scale() {
        let a = AssetAmount::parse("amount", "0.5", &spec("BTC"), 8).unwrap();
        assert_eq!((a.raw, a.decimal().as_str()), (50_000_000, "0.50000000"));
        let a = AssetAmount::parse("amount", "0.00000001", &spec("XYZ"), 8).unwrap();
        assert_eq!(a.raw, 1);
    }

    #[test]
    fn refuses_bad_amounts() {
        let btc = spec("BTC");
        for bad in ["0", "0.000000001", "-1", "1e3", "abc", "", " 1", "NaN"] {
            assert_eq!(
                code(AssetAmount::parse("amount", bad, &btc, 8)),
                "invalid_amount",
                "{bad}"
            );
        }
        assert_eq!(
            code(AssetAmount::parse("amount", "10.001", &spec("USD"), 2)),
            "invalid_amount"
        );
    }

    #[test]
    fn enforces_limits() {
        let btc = spec("BTC");
        assert_eq!(
            code(AssetAmount::parse("amount", "0.000001", &btc, 8)),
            "amount_out_of_range"
        );
        assert_eq!(
            code(AssetAmount::parse("amount", "100.00000001", &btc, 8)),
            "amount_out_of_range"
        );
        assert!(AssetAmount::parse("amount", "100", &btc, 8).is_ok());
        assert_eq!(
            code(AssetAmount::parse("amount", "0.99", &spec("USD"), 2)),
            "amount_out_of_range"
        );
    }

    #[test]
    fn finds_assets_case_insensitively() {
        let assets = vec![spec("BTC"), spec("USD")];
        assert_eq!(find_asset(&assets, "btc").unwrap().symbol, "BTC");
        assert!(find_asset(&assets, "DOGE").is_none());
        assert!(find_asset(&assets, "").is_none());
    }
}
