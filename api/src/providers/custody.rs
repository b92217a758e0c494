//! The custody boundary ([`Custody`]): deposit addresses and outgoing
//! transfers, and the implementations `custody_provider` may name
//! ([`ADAPTERS`]). Production: Fireblocks (vault accounts per user,
//! transfers submitted with our transaction id as `externalTxId`; its
//! webhooks are [`crate::webhooks::fireblocks`]); default: the
//! [sandbox](super::custody_sandbox), which derives addresses locally and
//! completes every withdrawal after a delay with a Fireblocks-signed
//! webhook.

use super::{Adapter, ProviderContext, SetupError};
use crate::money::address::Network;
use async_trait::async_trait;
use std::sync::Arc;
use thiserror::Error;

/// How a custody implementation is built.
pub type BuildCustody = fn(&ProviderContext<'_>) -> Result<Arc<dyn Custody>, SetupError>;

/// The implementations `custody_provider` may name: one line per adapter.
pub const ADAPTERS: &[Adapter<BuildCustody>] = &[Adapter {
    name: "sandbox",
    build: super::custody_sandbox::build,
}];

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
}
