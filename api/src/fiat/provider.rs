//! The payment-provider boundary ([`PaymentProvider`]): opening a deposit
//! (a payment page or bank-transfer instructions) and sending a payout.
//! Outcomes arrive later as the provider's signed webhook. Production:
//! Stripe, Banxa and BCB Group adapters; default: one
//! [`SandboxPaymentProvider`](super::sandbox::SandboxPaymentProvider) per
//! provider.

use crate::webhooks::notice::Provider;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The fiat providers a client may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FiatProvider {
    Stripe,
    Banxa,
    Bcb,
}

impl FiatProvider {
    pub const ALL: [FiatProvider; 3] =
        [FiatProvider::Stripe, FiatProvider::Banxa, FiatProvider::Bcb];

    /// The webhook provider it reports through.
    pub fn webhook(self) -> Provider {
        match self {
            FiatProvider::Stripe => Provider::Stripe,
            FiatProvider::Banxa => Provider::Banxa,
            FiatProvider::Bcb => Provider::Bcb,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.webhook().as_str()
    }
}

/// Where to send a bank transfer (BCB deposits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BankInstructions {
    pub bank_name: String,
    pub account_name: String,
    pub iban: String,
    pub bic: String,
    /// Must be quoted with the transfer; it names the deposit.
    pub reference: String,
}

/// What the user does next to pay a deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// A hosted payment page (card, open banking).
    PaymentUrl(String),
    /// A bank transfer.
    Instructions(BankInstructions),
}

/// A provider's answer to opening a deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositStart {
    /// The provider's id of the payment.
    pub provider_ref: String,
    pub next_step: NextStep,
}

/// A deposit or payout to ask a provider for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOrder {
    /// Our transaction id: the provider's idempotency key and the
    /// `transaction_id` its webhook names (with `user_id`).
    pub transaction_id: String,
    pub user_id: String,
    pub currency: String,
    /// Decimal string in the currency's minor units (`"10.50"`).
    pub amount: String,
}

/// Why a provider did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProviderError {
    /// A definitive refusal: nothing was or will be paid.
    #[error("provider refused: {0}")]
    Rejected(String),
    /// The provider could not be reached or did not answer; the request
    /// may or may not have been taken.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// A payment provider. Every call is idempotent on the order's
/// `transaction_id`.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Opens a deposit; the provider's webhook later says whether it was
    /// paid.
    async fn start_deposit(&self, order: &PaymentOrder) -> Result<DepositStart, ProviderError>;

    /// Sends a payout to `destination` (a bank account reference); the
    /// provider's webhook later says whether it arrived. Returns the
    /// provider's id of the payout.
    async fn start_payout(
        &self,
        order: &PaymentOrder,
        destination: &str,
    ) -> Result<String, ProviderError>;
}
