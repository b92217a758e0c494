//! What a verified webhook tells us, in one shape for every provider
//! ([`Notice`]), and the ways verifying or reading one can fail.

use super::provider::{PaymentWebhooks, WebhookProvider};
use inbound::{BoundsError, JsonBounds};
use thiserror::Error;

/// Bounds of a webhook body, checked before it is parsed (see
/// docs/SECURITY.md, "Input bounds"). Providers' payloads are theirs to
/// grow, so these are loose: Stripe's deepest events nest about 6 levels
/// and carry a few hundred values. The size is also capped by the body
/// limit while it is read.
pub const WEBHOOK_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: crate::http::MAX_BODY_BYTES,
    max_depth: 32,
    max_elements: 8192,
};

/// A webhook provider of the registry ([`super::PROVIDERS`]), by
/// reference; equal when the names are.
#[derive(Clone, Copy)]
pub struct Provider(&'static dyn WebhookProvider);

impl Provider {
    /// Every provider, in registry (path) order.
    pub fn all() -> impl Iterator<Item = Provider> {
        super::PROVIDERS.iter().map(|p| Provider(*p))
    }

    /// The path segment and the name stored in receipts and transactions.
    pub fn as_str(self) -> &'static str {
        self.0.name()
    }

    /// The provider named by a path segment (exact, lowercase).
    pub fn parse(name: &str) -> Option<Provider> {
        Provider::all().find(|p| p.as_str() == name)
    }

    /// Its implementation.
    pub fn get(self) -> &'static dyn WebhookProvider {
        self.0
    }

    /// Its payment part; `None` for custody.
    pub fn payments(self) -> Option<&'static dyn PaymentWebhooks> {
        self.0.payments()
    }
}

impl PartialEq for Provider {
    fn eq(&self, other: &Provider) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Provider {}

impl std::hash::Hash for Provider {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::money::movement::{Direction, Outcome};
use serde::{Deserialize, Serialize};

/// [`Direction`] as a stored notice spells it (`in`, `out`).
#[derive(Serialize, Deserialize)]
#[serde(remote = "Direction", rename_all = "snake_case")]
enum DirectionDef {
    In,
    Out,
}

/// [`Outcome`] as a stored notice spells it (`completed`, `failed`).
#[derive(Serialize, Deserialize)]
#[serde(remote = "Outcome", rename_all = "snake_case")]
enum OutcomeDef {
    Completed,
    Failed,
}

/// A verified webhook, read. Every notice carries the provider's unique
/// id of the delivery (the deduplication key) and its event type.
///
/// The route stores it in the delivery's receipt as JSON (tagged by
/// `kind`: `settlement`, `provider_settlement`, `refund`,
/// `incoming_deposit`, `kyc_review`, `ignored`), and the applier
/// reads it back from there: what is applied is exactly what was
/// verified, without keeping the raw body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// The outcome of a transaction this service started (deposit session,
    /// payout, withdrawal), named by our user and transaction ids.
    Settlement {
        webhook_id: String,
        event_type: String,
        user_id: String,
        transaction_id: String,
        #[serde(with = "DirectionDef")]
        direction: Direction,
        #[serde(with = "OutcomeDef")]
        outcome: Outcome,
        /// The amount the provider reports, as a decimal string, when the
        /// payload has one; it must equal the transaction's.
        amount: Option<String>,
    },
    /// The outcome of a payment or payout named only by the provider's
    /// id of it (Banxa's `order_id`): the applier finds our transaction
    /// through the reference recorded when it was opened
    /// ([`crate::money::references`]).
    ProviderSettlement {
        webhook_id: String,
        event_type: String,
        provider_ref: String,
        #[serde(with = "OutcomeDef")]
        outcome: Outcome,
        /// As in `Settlement`.
        amount: Option<String>,
        /// The currency the provider reports, when the payload has one
        /// (BCB's transfer, Banxa's `fiat_currency`); it must be the
        /// transaction's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        currency: Option<String>,
    },
    /// The provider refunded (part of) a completed deposit it names by
    /// its id of the payment (Stripe's `charge.refunded`): the applier
    /// debits what was not debited before ([`super::refund`]).
    Refund {
        webhook_id: String,
        event_type: String,
        provider_ref: String,
        /// Refunded in total so far, a decimal string in the currency's
        /// units (Stripe's cumulative `amount_refunded`).
        refunded: String,
    },
    /// Funds that arrived at a user's deposit address (custody only).
    IncomingDeposit {
        webhook_id: String,
        event_type: String,
        /// Our user, when custody names them (Fireblocks' `customerRefId`);
        /// else found by the address ([`crate::providers::custody::Custody::owner_of`]).
        user_id: Option<String>,
        asset: String,
        amount: String,
        address: String,
        custody_ref: String,
        /// The chain transaction's hash as reported (checked and
        /// canonicalized when applied).
        tx_hash: Option<String>,
        /// Which transfer of the transaction (a UTXO's vout; the
        /// transfer's position on account chains), when reported.
        output_index: Option<u64>,
    },
    /// A KYC provider's review of a user's documents (Sumsub's
    /// `applicantReviewed`): verified, or rejected with the reason.
    KycReview {
        webhook_id: String,
        event_type: String,
        user_id: String,
        /// The provider's id of the user's applicant.
        applicant_id: String,
        verified: bool,
        reason: Option<String>,
        /// When the provider made the review (Sumsub's `createdAtMs`): a
        /// review made before the user's latest submission is about an
        /// earlier one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reviewed_at: Option<crate::events::Timestamp>,
    },
    /// A notice this service does not act on (another event type, an
    /// intermediate status); acknowledged so the provider stops sending it.
    Ignored {
        webhook_id: String,
        event_type: String,
    },
}

impl Notice {
    pub fn webhook_id(&self) -> &str {
        match self {
            Notice::Settlement { webhook_id, .. }
            | Notice::ProviderSettlement { webhook_id, .. }
            | Notice::Refund { webhook_id, .. }
            | Notice::KycReview { webhook_id, .. }
            | Notice::IncomingDeposit { webhook_id, .. }
            | Notice::Ignored { webhook_id, .. } => webhook_id,
        }
    }

    pub fn event_type(&self) -> &str {
        match self {
            Notice::Settlement { event_type, .. }
            | Notice::ProviderSettlement { event_type, .. }
            | Notice::Refund { event_type, .. }
            | Notice::KycReview { event_type, .. }
            | Notice::IncomingDeposit { event_type, .. }
            | Notice::Ignored { event_type, .. } => event_type,
        }
    }
}

/// Why a webhook's signature was refused (all answer 401
/// `invalid_signature`; the reason is only logged).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
    #[error("signed with a key the provider's key set does not hold")]
    UnknownKey,
}

/// Why a correctly signed body could not be read (400 `invalid_payload`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayloadError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body refused: {0}")]
    Refused(BoundsError),
    #[error("missing or invalid {0}")]
    Field(&'static str),
}

/// Longest id or reference read from a payload; longer ones are refused
/// (they become store keys).
pub const MAX_ID_LEN: usize = 128;

/// Reads a required string at a JSON pointer: printable, no `\0`, at most
/// [`MAX_ID_LEN`] characters.
pub fn id_at(
    value: &serde_json::Value,
    pointer: &str,
    field: &'static str,
) -> Result<String, PayloadError> {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_ID_LEN && !s.chars().any(char::is_control))
        .map(str::to_owned)
        .ok_or(PayloadError::Field(field))
}

/// Reads an optional string at a JSON pointer (present but not a sane
/// string is an error).
pub fn optional_id_at(
    value: &serde_json::Value,
    pointer: &str,
    field: &'static str,
) -> Result<Option<String>, PayloadError> {
    match value.pointer(pointer) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(_) => id_at(value, pointer, field).map(Some),
    }
}

/// Parses a body as JSON, once it is within [`WEBHOOK_BOUNDS`].
pub fn json(body: &[u8]) -> Result<serde_json::Value, PayloadError> {
    WEBHOOK_BOUNDS.check(body).map_err(PayloadError::Refused)?;
    serde_json::from_slice(body).map_err(|e| PayloadError::NotJson(e.to_string()))
}

/// The value of a header as text, or `Missing`.
pub fn header<'a>(
    headers: &'a axum::http::HeaderMap,
    name: &'static str,
) -> Result<&'a str, SignatureError> {
    let value = headers.get(name).ok_or(SignatureError::Missing(name))?;
    value.to_str().map_err(|_| SignatureError::Malformed(name))
}

/// A header map holding `name: value` (unit tests of the schemes).
#[cfg(test)]
pub(crate) fn header_map(name: &'static str, value: &str) -> axum::http::HeaderMap {
    let mut h = axum::http::HeaderMap::new();
    let value = axum::http::HeaderValue::from_str(value).expect("a test header value");
    h.insert(name, value);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_over_the_bounds_are_refused_before_parsing() {
        assert!(json(br#"{"id":"evt_1","data":{"object":{}}}"#).is_ok());
        let deep = format!(r#"{{"id":"e","x":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        assert_eq!(
            json(deep.as_bytes()),
            Err(PayloadError::Refused(BoundsError::TooDeep { max: 32 }))
        );
        let many = format!(r#"{{"id":"e","x":[{}0]}}"#, "0,".repeat(10_000));
        assert_eq!(
            json(many.as_bytes()),
            Err(PayloadError::Refused(BoundsError::TooManyElements {
                max: 8192
            }))
        );
        // Every provider reads through it.
        for read in [
            super::super::stripe::read,
            super::super::banxa::read,
            super::super::bcb::read,
            super::super::fireblocks::read,
        ] {
            assert!(matches!(
                read(deep.as_bytes()),
                Err(PayloadError::Refused(_))
            ));
        }
    }
}
