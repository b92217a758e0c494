//! Every call the wallet, fiat and webhook routes make to the venue and to
//! custody, one function per call kind, each under the
//! [`resilience`](crate::resilience) policy: a timeout per attempt, the
//! upstream's circuit breaker (the venue's is shared with trading), and
//! retries only where repeating cannot change the outcome (reads, and
//! custody submissions, which custody deduplicates by our transaction id).
//! Venue credits and debits carry no idempotency key, so they are tried
//! once: a timeout there is ambiguous and is logged for reconciliation.

use super::custody::{CustodyError, DepositAddress, WithdrawalOrder};
use crate::error::ApiError;
use crate::resilience::IntoApiError as _;
use crate::resilience::{CallError, Idempotency, Upstream};
use crate::state::Api;
use feeds::venue::Balance;

use crate::trading::{venue_error, venue_failure as venue_down};

fn venue(api: &Api) -> &Upstream {
    &api.trading.venue_upstream
}

/// The user's balances of every venue asset (a read: retried).
pub async fn venue_balances(api: &Api, user_id: &str) -> Result<Vec<(String, Balance)>, ApiError> {
    venue(api)
        .call(Idempotency::Idempotent, venue_down, || {
            api.venue.balances(user_id)
        })
        .await
        .map_err(|e| e.into_api("venue", venue_error))
}

/// Takes `raw` of `asset` from the user's available balance (one attempt).
pub async fn venue_debit(api: &Api, user_id: &str, asset: &str, raw: u64) -> Result<(), ApiError> {
    let result = venue(api)
        .call(Idempotency::NotIdempotent, venue_down, || {
            api.venue.debit(user_id, asset, raw)
        })
        .await;
    if matches!(result, Err(CallError::Timeout)) {
        tracing::error!(
            user_id,
            asset,
            raw,
            "venue debit timed out: may or may not have happened; reconcile"
        );
    }
    result
        .map(|_| ())
        .map_err(|e| e.into_api("venue", venue_error))
}

/// Adds `raw` of `asset` to the user's available balance (one attempt).
pub async fn venue_credit(api: &Api, user_id: &str, asset: &str, raw: u64) -> Result<(), ApiError> {
    let result = venue(api)
        .call(Idempotency::NotIdempotent, venue_down, || {
            api.venue.credit(user_id, asset, raw)
        })
        .await;
    if matches!(result, Err(CallError::Timeout)) {
        tracing::error!(
            user_id,
            asset,
            raw,
            "venue credit timed out: may or may not have happened; reconcile"
        );
    }
    result
        .map(|_| ())
        .map_err(|e| e.into_api("venue", venue_error))
}

fn custody_down(e: &CustodyError) -> bool {
    matches!(e, CustodyError::Unavailable(_))
}

fn custody_error(e: CustodyError) -> ApiError {
    match e {
        CustodyError::UnsupportedAsset(a) => {
            ApiError::unprocessable("unsupported_asset", format!("unsupported asset: {a}"))
        }
        CustodyError::Rejected(why) => ApiError::unprocessable("custody_rejected", why),
        CustodyError::Unavailable(why) => {
            tracing::warn!(error = %why, "custody unavailable");
            ApiError::unavailable("custody_unavailable", "custody is unavailable", 1)
        }
    }
}

/// The user's deposit address (stable, so retried).
pub async fn custody_deposit_address(
    api: &Api,
    user_id: &str,
    asset: &str,
) -> Result<DepositAddress, ApiError> {
    let wallets = &api.wallets;
    wallets
        .custody_upstream
        .call(Idempotency::Idempotent, custody_down, || {
            wallets.custody.deposit_address(user_id, asset)
        })
        .await
        .map_err(|e| e.into_api("custody", custody_error))
}

/// Submits a withdrawal (deduplicated by custody, so retried). The raw
/// outcome is returned: the caller decides what a refusal means.
pub async fn custody_submit_withdrawal(
    api: &Api,
    order: &WithdrawalOrder,
) -> Result<String, CallError<CustodyError>> {
    let wallets = &api.wallets;
    wallets
        .custody_upstream
        .call(Idempotency::Idempotent, custody_down, || {
            wallets.custody.submit_withdrawal(order)
        })
        .await
}
