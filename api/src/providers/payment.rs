//! The payment-provider boundary ([`PaymentProvider`]): opening a deposit
//! (a payment page or bank-transfer instructions) and sending a payout,
//! and the implementations `payment_provider` may name ([`super::PAYMENTS`]).
//! Outcomes arrive later as the provider's signed webhook. The fiat
//! providers a client may choose ([`FiatProvider`]) are the payment
//! providers of the webhook registry ([`crate::webhooks::PROVIDERS`]);
//! the configured adapter serves each of them. Default: the
//! [sandbox](super::payment_sandbox), one per fiat provider.

use super::{ProviderContext, SetupError};
pub use crate::money::movement::BankInstructions;
use crate::webhooks::notice::Provider;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, LazyLock};
use thiserror::Error;

/// How a payment adapter is built, for one fiat provider.
pub type BuildPayments =
    fn(&ProviderContext<'_>, FiatProvider) -> Result<Arc<dyn PaymentProvider>, SetupError>;

/// A fiat provider a client may choose: a registered webhook provider
/// that takes payments (`stripe`, `banxa`, `bcb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiatProvider(Provider);

/// The names of [`FiatProvider::all`], in registry order.
static NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| FiatProvider::all().map(FiatProvider::as_str).collect());

impl FiatProvider {
    /// Every fiat provider, in registry order.
    pub fn all() -> impl Iterator<Item = FiatProvider> {
        Provider::all()
            .filter(|p| p.payments().is_some())
            .map(FiatProvider)
    }

    /// The fiat provider named `name` (exact, lowercase).
    pub fn parse(name: &str) -> Option<FiatProvider> {
        FiatProvider::all().find(|p| p.as_str() == name)
    }

    /// The webhook provider it reports through.
    pub fn webhook(self) -> Provider {
        self.0
    }

    pub fn as_str(self) -> &'static str {
        self.0.as_str()
    }
}

impl Serialize for FiatProvider {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FiatProvider {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        FiatProvider::parse(&name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, NAMES.as_slice()))
    }
}

impl utoipa::PartialSchema for FiatProvider {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some("The fiat providers a client may choose."))
            .enum_values(Some(NAMES.iter().copied()))
            .into()
    }
}

impl utoipa::ToSchema for FiatProvider {}

/// What the user does next to pay a deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// A hosted payment page (card, open banking).
    PaymentUrl(String),
    /// A bank transfer.
    Instructions(BankInstructions),
    /// A payment the client confirms with the provider's own script
    /// (Stripe.js `confirmPayment`), by the payment's client secret.
    ClientSecret(String),
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

    /// The status of the deposit or payout the provider calls
    /// `provider_ref` (a read; reconciliation asks it about transactions
    /// left open). An adapter that cannot answer keeps this default,
    /// which says the provider cannot be asked.
    async fn payment_status(
        &self,
        provider_ref: &str,
    ) -> Result<super::RemoteStatus, ProviderError> {
        let _ = provider_ref;
        Err(ProviderError::Unavailable(
            "this payment provider answers no status queries".to_owned(),
        ))
    }
}
