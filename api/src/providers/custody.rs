//! The custody boundary ([`Custody`]): deposit addresses and outgoing
//! transfers, the implementations `custody_provider` may name
//! ([`super::CUSTODY`]), and [`CustodyAccess`], the breaker every call passes. Production: Fireblocks (vault accounts per user,
//! transfers submitted with our transaction id as `externalTxId`; its
//! webhooks are [`crate::webhooks::fireblocks`]); default: the
//! [sandbox](super::custody_sandbox), which derives addresses locally and
//! completes every withdrawal after a delay with a Fireblocks-signed
//! webhook.

use super::{ProviderContext, SetupError};
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::money::address::Network;
use crate::resilience::IntoApiError as _;
use crate::resilience::{CallError, Idempotency, Upstream};
use async_trait::async_trait;
use std::sync::Arc;
use thiserror::Error;

/// How a custody implementation is built.
pub type BuildCustody = fn(&ProviderContext<'_>) -> Result<Arc<dyn Custody>, SetupError>;

/// Why custody did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CustodyError {
    #[error("custody does not hold {0}")]
    UnsupportedAsset(String),
    /// A definitive refusal: nothing was or will be sent.
    #[error("custody refused: {0}")]
    Rejected(String),
    /// Custody could not be reached or did not answer; the request may or
    /// may not have been taken.
    #[error("custody unavailable: {0}")]
    Unavailable(String),
}

/// A user's address for receiving one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositAddress {
    pub asset: String,
    pub address: String,
    pub network: Network,
}

/// An outgoing transfer to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalOrder {
    /// Our transaction id; custody's idempotency key (`externalTxId`).
    pub transaction_id: String,
    pub user_id: String,
    pub asset: String,
    /// Decimal string at the asset's scale.
    pub amount: String,
    pub address: String,
}

/// Custody of the exchange's crypto funds.
#[async_trait]
pub trait Custody: Send + Sync + 'static {
    /// The user's deposit address for `asset`: the same on every call.
    async fn deposit_address(
        &self,
        user_id: &str,
        asset: &str,
    ) -> Result<DepositAddress, CustodyError>;

    /// Submits a transfer and returns custody's id for it. Idempotent on
    /// `order.transaction_id`: submitting again never sends twice. The
    /// outcome arrives later as a webhook naming the transaction.
    async fn submit_withdrawal(&self, order: &WithdrawalOrder) -> Result<String, CustodyError>;

    /// The user whose deposit address of `asset` (our symbol) `address`
    /// is, for notices that do not name them; `None` when custody knows
    /// no such address of ours. By default custody cannot say.
    async fn owner_of(&self, asset: &str, address: &str) -> Result<Option<String>, CustodyError> {
        let _ = (asset, address);
        Ok(None)
    }

    /// Our symbol of the asset custody calls `custody_asset` in its
    /// notices (Fireblocks' `BTC_TEST` may be our `BTC`); by default the
    /// same.
    fn our_asset(&self, custody_asset: &str) -> String {
        custody_asset.to_owned()
    }

    /// The status of the transfer custody calls `provider_ref` (a read;
    /// reconciliation asks it about transactions left open). An adapter
    /// that cannot answer keeps this default, which says custody cannot
    /// be asked.
    async fn transfer_status(
        &self,
        provider_ref: &str,
    ) -> Result<super::RemoteStatus, CustodyError> {
        let _ = provider_ref;
        Err(CustodyError::Unavailable(
            "this custody answers no status queries".to_owned(),
        ))
    }
}

/// The configured custody and the breaker in front of it; every custody
/// call goes through here.
pub struct CustodyAccess {
    pub custody: Arc<dyn Custody>,
    /// Timeout, retry and breaker policy of custody calls.
    pub custody_upstream: Upstream,
}

impl CustodyAccess {
    /// The configured `custody` behind its breaker.
    pub fn new(config: &ApiConfig, custody: Arc<dyn Custody>) -> CustodyAccess {
        CustodyAccess {
            custody,
            custody_upstream: Upstream::new("custody", crate::resilience::policy(config)),
        }
    }
}

impl CustodyAccess {
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

    /// The user of a deposit address (a read, so retried).
    pub async fn owner_of(&self, asset: &str, address: &str) -> Result<Option<String>, ApiError> {
        self.custody_upstream
            .call(Idempotency::Idempotent, custody_down, || {
                self.custody.owner_of(asset, address)
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
