//! Fiat payouts after their debit ([`outflow`](crate::money::outflow)):
//! handing them to the provider, and the amounts providers are asked for
//! (the currency's minor units).

use super::Fiat;
use crate::money::amount::AssetAmount;
use crate::money::movement::Movement;
use crate::money::outflow::{Reference, Submission};
use crate::providers::payment::{FiatProvider, PaymentOrder, ProviderError};
use crate::resilience::CallError;
use crate::store::Transaction;
use orderbook::decimal::{format_scaled, pow10};

/// Decimals of the currencies' minor unit (cents): fiat amounts have at
/// most this many.
pub const MINOR_UNIT_DECIMALS: u8 = 2;

/// Hands a recorded payout to its provider.
pub async fn submit(
    fiat: &Fiat,
    provider: FiatProvider,
    tx: Transaction,
    amount: &AssetAmount,
    movement: Movement,
) -> Submission {
    let order = payment_order(&tx.transaction_id, &tx.user_id, amount);
    let destination = movement.destination.unwrap_or_default();
    match fiat.start_payout(provider, &order, &destination).await {
        Ok(provider_ref) => Submission::Accepted(Some(Reference {
            provider: provider.as_str().to_owned(),
            provider_ref,
        })),
        Err(CallError::Failed(ProviderError::Rejected(why))) => Submission::Refused(why),
        Err(e) => Submission::Unknown(format!("{e:?}")),
    }
}

/// What a provider is asked for: the amount in minor units.
pub fn payment_order(transaction_id: &str, user_id: &str, amount: &AssetAmount) -> PaymentOrder {
    PaymentOrder {
        transaction_id: transaction_id.to_owned(),
        user_id: user_id.to_owned(),
        currency: amount.asset.clone(),
        amount: minor_units(amount.raw, amount.scale),
    }
}

/// `raw` at `scale` written with [`MINOR_UNIT_DECIMALS`] decimals; exact
/// because fiat amounts are parsed with at most that many.
pub fn minor_units(raw: u64, scale: u8) -> String {
    if scale >= MINOR_UNIT_DECIMALS {
        format_scaled(
            raw / pow10(scale - MINOR_UNIT_DECIMALS),
            MINOR_UNIT_DECIMALS,
        )
    } else {
        format_scaled(
            raw.saturating_mul(pow10(MINOR_UNIT_DECIMALS - scale)),
            MINOR_UNIT_DECIMALS,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_are_exact() {
        assert_eq!(minor_units(1_050_000_000, 8), "10.50");
        assert_eq!(minor_units(7, 0), "7.00");
        assert_eq!(minor_units(105, 1), "10.50");
    }
}
