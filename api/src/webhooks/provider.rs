//! The webhook-provider trait ([`WebhookProvider`]): one implementation
//! per provider, in that provider's file ([`stripe`](super::stripe),
//! [`banxa`](super::banxa), [`bcb`](super::bcb),
//! [`fireblocks`](super::fireblocks); the HMAC payment providers as an
//! [`HmacPayments`] value), listed once in
//! [`PROVIDERS`](super::PROVIDERS). A provider names its path segment,
//! verifies a delivery with our keys and reads it into a typed
//! [`Notice`]. A payment provider also says how the payment
//! sandbox imitates it ([`PaymentWebhooks`]); every provider with one is
//! a fiat provider clients may choose
//! ([`FiatProvider`](crate::providers::payment::FiatProvider)).

use super::delivery::Report;
use super::keys::{KeyError, WebhookKeys};
use super::notice::{Notice, PayloadError, SignatureError};
use crate::config::ApiConfig;
use crate::providers::payment::{NextStep, PaymentOrder};
use crate::secret::Secret;
use async_trait::async_trait;
use axum::http::HeaderMap;

/// One webhook provider (`POST /webhooks/{name}`).
#[async_trait]
pub trait WebhookProvider: Send + Sync + 'static {
    /// The path segment, and the name stored in receipts and transactions
    /// (exact, lowercase).
    fn name(&self) -> &'static str;

    /// Checks the signature of `body` at Unix time `now`. The outer error
    /// is a key of ours that could not be loaded (not the sender's fault).
    async fn verify(
        &self,
        keys: &WebhookKeys,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Result<(), SignatureError>, KeyError>;

    /// Reads a verified body.
    fn read(&self, body: &[u8]) -> Result<Notice, PayloadError>;

    /// The HMAC secret deliveries are verified with, when the scheme uses
    /// one ([`WebhookKeys`] loads or generates it).
    fn hmac_secret(&self) -> Option<HmacSecret> {
        None
    }

    /// A payment provider's part; `None` for custody, whose notices settle
    /// crypto withdrawals and report deposits.
    fn payments(&self) -> Option<&dyn PaymentWebhooks> {
        None
    }
}

/// Where a provider's HMAC secret comes from: the configuration, else a
/// file generated once into `<data_dir>/keys/`.
#[derive(Debug, Clone, Copy)]
pub struct HmacSecret {
    /// File name inside the keys folder.
    pub file: &'static str,
    /// Put before the generated random hex (Stripe's `whsec_`).
    pub prefix: &'static str,
    /// The configured secret, if any.
    pub configured: fn(&ApiConfig) -> Option<Secret>,
}

/// How the payment sandbox imitates a payment provider: its ids, what a
/// deposit asks the user to do, and its signed notices (its real webhook
/// format and signature scheme).
pub trait PaymentWebhooks: Send + Sync {
    /// The provider's id of a payment or payout, made from a random `id`.
    fn sandbox_ref(&self, id: &str) -> String;

    /// What the user does next to pay a deposit.
    fn sandbox_next_step(&self, provider_ref: &str, order: &PaymentOrder) -> NextStep;

    /// The provider's notice about one of our transactions.
    fn event_body(&self, report: &Report<'_>, webhook_id: &str) -> Vec<u8>;

    /// The signature headers of `body`, POSTed to `path` (see
    /// [`WebhookKeys::signed_path`]), signed with `secret` at `now`.
    fn sign(&self, secret: &Secret, path: &str, body: &[u8], now: i64) -> SignatureHeaders;
}

/// Signature headers of a delivery: `(name, value)` pairs.
pub type SignatureHeaders = Vec<(&'static str, String)>;

/// An HMAC scheme's check: `(secret, path, headers, body, now)`.
pub type VerifyFn = fn(&Secret, &str, &HeaderMap, &[u8], i64) -> Result<(), SignatureError>;

/// A payment provider whose deliveries carry an HMAC signature, described
/// by its functions: a provider file declares one as a `static` and lists
/// it in [`PROVIDERS`](super::PROVIDERS).
pub struct HmacPayments {
    /// See [`WebhookProvider::name`].
    pub name: &'static str,
    pub secret: HmacSecret,
    /// Checks a delivery POSTed to the path (see
    /// [`WebhookKeys::signed_path`]; only schemes that sign the path read
    /// it) with the secret at Unix time `now`.
    pub verify: VerifyFn,
    pub read: fn(&[u8]) -> Result<Notice, PayloadError>,
    /// Put before the sandbox's random ids of payments and payouts.
    pub sandbox_ref_prefix: &'static str,
    /// See [`PaymentWebhooks::sandbox_next_step`].
    pub sandbox_next_step: fn(&str, &PaymentOrder) -> NextStep,
    pub event_body: fn(&Report<'_>, &str) -> Vec<u8>,
    /// See [`PaymentWebhooks::sign`].
    pub sign: fn(&Secret, &str, &[u8], i64) -> SignatureHeaders,
}

#[async_trait]
impl WebhookProvider for HmacPayments {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn verify(
        &self,
        keys: &WebhookKeys,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Result<(), SignatureError>, KeyError> {
        let path = keys.signed_path(self.name);
        // The previous secret too, for a while after a rotation.
        let secret = keys.hmac(self.name)?;
        Ok(secret.verify(|s| (self.verify)(s, &path, headers, body, now)))
    }

    fn read(&self, body: &[u8]) -> Result<Notice, PayloadError> {
        (self.read)(body)
    }

    fn hmac_secret(&self) -> Option<HmacSecret> {
        Some(self.secret)
    }

    fn payments(&self) -> Option<&dyn PaymentWebhooks> {
        Some(self)
    }
}

impl PaymentWebhooks for HmacPayments {
    fn sandbox_ref(&self, id: &str) -> String {
        format!("{}{id}", self.sandbox_ref_prefix)
    }

    fn sandbox_next_step(&self, provider_ref: &str, order: &PaymentOrder) -> NextStep {
        (self.sandbox_next_step)(provider_ref, order)
    }

    fn event_body(&self, report: &Report<'_>, webhook_id: &str) -> Vec<u8> {
        (self.event_body)(report, webhook_id)
    }

    fn sign(&self, secret: &Secret, path: &str, body: &[u8], now: i64) -> SignatureHeaders {
        (self.sign)(secret, path, body, now)
    }
}
