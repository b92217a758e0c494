//! The records the store holds. Amounts are decimal strings already
//! written at their asset's or pair's scale (exact, never floats).

use crate::events::Timestamp;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// KYC state of a user (docs/API.md `kyc_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KycStatus {
    None,
    Pending,
    Verified,
    Rejected,
}

/// A row of `Users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    /// Normalized ([`super::normalize_email`]); unique.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: Secret,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub country: Option<String>,
    pub kyc_status: KycStatus,
    pub kyc_updated_at: Timestamp,
    /// TOTP seed (base32), set by `mfa/setup`.
    pub mfa_secret: Option<Secret>,
    /// True once `mfa/verify` confirmed a code; login then needs `totp`.
    pub mfa_enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version, 1 on creation.
    pub version: u64,
}

/// What a transaction records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    Order,
    Fill,
    Deposit,
    Withdrawal,
    FiatDeposit,
    FiatWithdrawal,
    /// An operator's reconciliation correction (docs/RECONCILIATION.md):
    /// a venue credit or debit with its reason, status `applied`.
    Correction,
}

/// A row of `Transactions`: (user, id) with a kind-specific detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub user_id: String,
    /// Time-ordered (UUIDv7), so id order is creation order.
    pub transaction_id: String,
    pub kind: TxKind,
    /// Kind-specific status (`open`, `filled`, `pending`, `completed`, ...);
    /// indexed (`status-index`).
    pub status: String,
    /// Trading pair for orders and fills, asset/currency otherwise (for
    /// the `pair` filter).
    pub pair: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
    pub detail: Detail,
}

/// A transaction's kind-specific detail (an order, a fill, a movement),
/// kept as the JSON text it is stored as: a record read for its status
/// or version never builds the detail's map, and a reader decodes it
/// straight into its own type ([`Detail::decode`]). Two details are
/// equal when their texts are: a typed value serialized twice gives one
/// text, but the keys of a detail written through a `serde_json::Value`
/// (before this type, and by `json!`) are in sorted order, not the
/// type's. Only tests compare details.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Detail(Box<serde_json::value::RawValue>);

impl Detail {
    /// The detail of `value`, serialized once.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Detail> {
        serde_json::value::to_raw_value(value).map(Detail)
    }

    /// Decodes the detail as a `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.0.get())
    }

    /// The detail as a JSON value, for readers that pick fields; `Err`
    /// for text that is JSON but not a value serde_json keeps (nested past
    /// its depth bound, a number out of range).
    pub fn value(&self) -> serde_json::Result<serde_json::Value> {
        self.decode()
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }
}

impl From<serde_json::Value> for Detail {
    fn from(value: serde_json::Value) -> Detail {
        Detail::new(&value).expect("invariant: a JSON value serializes")
    }
}

impl PartialEq for Detail {
    fn eq(&self, other: &Detail) -> bool {
        self.text() == other.text()
    }
}

/// An idempotency key of a user's write (scope: `order`, `withdraw`,
/// `fiat_deposit`, `fiat_withdraw`), pointing at the transaction it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub user_id: String,
    pub scope: String,
    pub key: String,
    /// Digest of the request body; the same key with another body is a
    /// conflict.
    pub fingerprint: String,
    pub transaction_id: String,
    pub created_at: Timestamp,
}

/// Where a received webhook is (docs/API.md, "Webhooks"): stored by the
/// route as `received`, then moved once by the applier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Verified and stored; waiting for the applier.
    Received,
    /// Its state change was made.
    Applied,
    /// Nothing to do (another event type, already settled, a chain
    /// transfer already credited).
    Ignored,
    /// A permanent failure (unknown transaction, amount mismatch, ...):
    /// nothing changed; `error` says why, for an operator.
    Rejected,
}

impl ReceiptStatus {
    /// Its stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Received => "received",
            ReceiptStatus::Applied => "applied",
            ReceiptStatus::Ignored => "ignored",
            ReceiptStatus::Rejected => "rejected",
        }
    }
}

/// Receipts written before the status existed were applied in the same
/// commit that recorded them.
fn applied() -> ReceiptStatus {
    ReceiptStatus::Applied
}

fn first_version() -> u64 {
    1
}

/// A row of `WebhookReceipts` (kept 30 days): one verified delivery of a
/// provider, and what became of it. Fields after `expires_at` default
/// when absent, so receipts written by older builds still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReceipt {
    pub provider: String,
    pub webhook_id: String,
    pub received_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(default = "applied")]
    pub status: ReceiptStatus,
    /// The verified notice as read by the route (JSON of
    /// `webhooks::notice::Notice`), what the applier acts on.
    #[serde(default)]
    pub notice: Option<serde_json::Value>,
    /// What the applier did (`completed`, `deposit`, `ignored: already
    /// completed`, ...).
    #[serde(default)]
    pub action: Option<String>,
    /// Why it was rejected: `<code>: <message>`.
    #[serde(default)]
    pub error: Option<String>,
    /// When the status last changed.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// Optimistic-concurrency version, 1 on creation.
    #[serde(default = "first_version")]
    pub version: u64,
}

/// A row of `ChainCredits`: one transfer on a blockchain that was credited
/// to a user, kept forever (no TTL) so that the same transfer is never
/// credited again, whatever id a custody provider reports it under. The
/// key is (`asset`, `tx_hash`, `output`), each already in its canonical
/// spelling (see `money::chain`); callers keep `#` and `\0` out of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCredit {
    pub asset: String,
    /// The transaction hash, canonical for its network.
    pub tx_hash: String,
    /// Which output of the transaction (`index:<n>`, or `address:<a>`
    /// when the provider gives no index).
    pub output: String,
    /// The user and deposit transaction it was credited as.
    pub user_id: String,
    pub transaction_id: String,
    /// The custody provider that reported it.
    pub provider: String,
    pub credited_at: Timestamp,
}

/// A refresh-token family: every refresh token issued from one login.
/// Only the newest (`current_hash`) may be spent; presenting an older one
/// revokes the family (reuse detection). Access tokens name their family,
/// so revoking it stops them at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshFamily {
    pub family_id: String,
    pub user_id: String,
    /// SHA-256 (hex) of the current refresh token; tokens are never stored.
    pub current_hash: String,
    pub generation: u64,
    pub revoked: bool,
    pub expires_at: Timestamp,
    pub version: u64,
}

/// A row of `SyncCheckpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCheckpoint {
    pub service_name: String,
    pub sync_type: String,
    pub value: String,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A detail is stored as its text, read back as the same text, and
    /// decoded into the reader's type; a record whose detail is not JSON
    /// does not decode.
    #[test]
    fn a_detail_round_trips_as_its_text() {
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        struct Fill {
            qty: String,
            price: String,
        }
        let fill = Fill {
            qty: "0.01000000".into(),
            price: "65000.00".into(),
        };
        let tx = Transaction {
            user_id: "u".into(),
            transaction_id: "t".into(),
            kind: TxKind::Fill,
            status: "settled".into(),
            pair: Some("BTC-USD".into()),
            created_at: crate::events::now(),
            updated_at: crate::events::now(),
            version: 1,
            detail: Detail::new(&fill).unwrap(),
        };
        let stored = serde_json::to_string(&tx).unwrap();
        assert!(stored.contains(r#""detail":{"qty":"0.01000000","price":"65000.00"}"#));
        let read: Transaction = serde_json::from_slice(stored.as_bytes()).unwrap();
        assert_eq!(read, tx);
        assert_eq!(read.detail.decode::<Fill>().unwrap(), fill);
        assert_eq!(read.detail.value().unwrap()["price"], "65000.00");
        let broken = stored.replace(r#""detail":{"#, r#""detail":{,"#);
        assert!(serde_json::from_str::<Transaction>(&broken).is_err());
    }
}
