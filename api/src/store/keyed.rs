//! Reads by key: [`RecordKey`] names one record, [`Record`] is what a
//! store found under it. A store implements the one read
//! [`Store::get`](super::Store::get); the typed look-ups (`user`,
//! `transaction`, `idempotency`, ...) are written once, on the trait.

use super::*;

/// The key of one record (see [`Store::get`](super::Store::get)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKey<'a> {
    User {
        user_id: &'a str,
    },
    Transaction {
        user_id: &'a str,
        transaction_id: &'a str,
    },
    Idempotency {
        user_id: &'a str,
        scope: &'a str,
        key: &'a str,
    },
    WebhookReceipt {
        provider: &'a str,
        webhook_id: &'a str,
    },
    RefreshFamily {
        family_id: &'a str,
    },
    Checkpoint {
        service_name: &'a str,
        sync_type: &'a str,
    },
}

impl RecordKey<'_> {
    /// The record of this key's kind stored as `json` (both stores keep a
    /// record as its JSON); [`StoreError::Corrupt`] when it does not
    /// decode.
    pub fn decode(&self, json: &[u8]) -> StoreResult<Record> {
        fn read<T: serde::de::DeserializeOwned>(json: &[u8]) -> StoreResult<T> {
            serde_json::from_slice(json)
                .map_err(|e| StoreError::Corrupt(format!("decode record: {e}")))
        }
        Ok(match self {
            RecordKey::User { .. } => Record::User(read(json)?),
            RecordKey::Transaction { .. } => Record::Transaction(read(json)?),
            RecordKey::Idempotency { .. } => Record::Idempotency(read(json)?),
            RecordKey::WebhookReceipt { .. } => Record::WebhookReceipt(read(json)?),
            RecordKey::RefreshFamily { .. } => Record::RefreshFamily(read(json)?),
            RecordKey::Checkpoint { .. } => Record::Checkpoint(read(json)?),
        })
    }
}

/// A record type [`Record`] carries.
pub(super) trait Keyed: Sized {
    fn from_record(record: Record) -> Option<Self>;
}

/// [`Record`], with a [`Keyed`] impl for each of its record types.
macro_rules! records {
    ($($variant:ident($record:ty)),* $(,)?) => {
        /// A record read by its [`RecordKey`].
        #[derive(Debug, Clone, PartialEq)]
        pub enum Record {
            $($variant($record),)*
        }

        $(impl Keyed for $record {
            fn from_record(record: Record) -> Option<Self> {
                match record {
                    Record::$variant(r) => Some(r),
                    _ => None,
                }
            }
        })*
    };
}

records!(
    User(User),
    Transaction(Transaction),
    Idempotency(IdempotencyRecord),
    WebhookReceipt(WebhookReceipt),
    RefreshFamily(RefreshFamily),
    Checkpoint(SyncCheckpoint),
);

/// The found record as a `T`; a record of another kind under the key is
/// [`StoreError::Corrupt`].
pub(super) fn found<T: Keyed>(record: Option<Record>) -> StoreResult<Option<T>> {
    record
        .map(|r| {
            T::from_record(r)
                .ok_or_else(|| StoreError::Corrupt("a record of another kind under its key".into()))
        })
        .transpose()
}
