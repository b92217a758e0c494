//! `/wallets` routes (docs/API.md "Routes"): balances, deposit addresses,
//! crypto withdrawals and the deposit/withdrawal history, over the
//! [`Custody`] boundary (`custody_provider`: Fireblocks in production,
//! the sandbox by default). Money movement itself is [`crate::money`]'s.

pub mod handlers;

use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::money::Ledger;
use crate::providers::custody::{Custody, CustodyError, DepositAddress, WithdrawalOrder};
use crate::resilience::IntoApiError as _;
use crate::resilience::{CallError, Idempotency, Upstream};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Wallet state: the custody and the breaker in front of it.
pub struct Wallets {
    pub custody: Arc<dyn Custody>,
    /// Timeout, retry and breaker policy of custody calls.
    pub custody_upstream: Upstream,
}

impl Wallets {
    /// The configured `custody` behind its breaker.
    pub fn new(config: &ApiConfig, custody: Arc<dyn Custody>) -> Wallets {
        Wallets {
            custody,
            custody_upstream: Upstream::new("custody", crate::resilience::policy(config)),
        }
    }
}

impl Wallets {
    /// The user's deposit address (stable, so retried).
    pub async fn deposit_address(
        &self,
        user_id: &str,
        asset: &str,
    ) -> Result<DepositAddress, ApiError> {
        self.custody_upstream
            .call(Idempotency::Idempotent, custody_down, || {
                self.custody.deposit_address(user_id, asset)
            })
            .await
            .map_err(|e| e.into_api("custody", custody_error))
    }

    /// Submits a withdrawal (deduplicated by custody, so retried). The raw
    /// outcome is returned: the caller decides what a refusal means.
    pub async fn submit_withdrawal(
        &self,
        order: &WithdrawalOrder,
    ) -> Result<String, CallError<CustodyError>> {
        self.custody_upstream
            .call(Idempotency::Idempotent, custody_down, || {
                self.custody.submit_withdrawal(order)
            })
            .await
    }
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

/// What the wallet routes use: money movement and custody.
#[derive(Clone)]
pub struct WalletsState {
    pub ledger: Ledger,
    pub wallets: Arc<Wallets>,
}

/// The routes of this module.
pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    WalletsState: axum::extract::FromRef<S>,
    crate::auth::AuthUser: axum::extract::FromRequestParts<S, Rejection = ApiError>,
{
    OpenApiRouter::new()
        .routes(routes!(handlers::balances))
        .routes(routes!(handlers::deposit_address))
        .routes(routes!(handlers::withdraw))
        .routes(routes!(handlers::transactions))
}
