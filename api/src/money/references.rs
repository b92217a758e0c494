//! A provider's id of a payment or payout → our transaction. A provider
//! whose notices name only its own id (Banxa's `order_id`) is resolved
//! through this ([`Notice::ProviderSettlement`](crate::webhooks::notice::Notice)).
//!
//! Kept in `SyncCheckpoints`, a keyed table both stores already have
//! (DynamoDB and embedded): service [`SERVICE`], type
//! `{provider}:{provider_ref}`, value `{"user_id", "transaction_id"}`.
//! A deposit's reference is written in the commit that records the
//! deposit; a payout's right after the provider took it (a notice that
//! overtakes that commit finds no reference and is retried by the queue
//! for a few minutes, then rejected; see
//! [`REFERENCE_GRACE`](crate::webhooks::process::REFERENCE_GRACE)). A
//! reference is created once: a provider id given twice is refused by
//! the store.

use crate::store::{Store, StoreResult, SyncCheckpoint, Write};
use serde::{Deserialize, Serialize};

/// The checkpoints' `service_name` of references.
pub const SERVICE: &str = "provider_ref";

/// Our names of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ours {
    pub user_id: String,
    pub transaction_id: String,
}

fn key(provider: &str, provider_ref: &str) -> String {
    format!("{provider}:{provider_ref}")
}

/// The write that records `provider_ref` of `provider` as `ours`.
pub fn record(provider: &str, provider_ref: &str, ours: &Ours) -> Write {
    Write::CreateCheckpoint(SyncCheckpoint {
        service_name: SERVICE.to_owned(),
        sync_type: key(provider, provider_ref),
        value: serde_json::to_string(ours).expect("two strings encode"),
        updated_at: crate::events::now(),
    })
}

/// The transaction `provider` calls `provider_ref`, if one was recorded.
pub async fn resolve(
    store: &dyn Store,
    provider: &str,
    provider_ref: &str,
) -> StoreResult<Option<Ours>> {
    let Some(found) = store
        .checkpoint(SERVICE, &key(provider, provider_ref))
        .await?
    else {
        return Ok(None);
    };
    // Written by `record` only; an unreadable value is no reference.
    Ok(serde_json::from_str(&found.value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use crate::store::{Conflict, StoreError};

    #[tokio::test]
    async fn a_reference_resolves_once_recorded_and_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let ours = Ours {
            user_id: "u1".into(),
            transaction_id: "t1".into(),
        };
        assert_eq!(resolve(&store, "banxa", "o1").await.unwrap(), None);
        store
            .commit(vec![record("banxa", "o1", &ours)])
            .await
            .unwrap();
        assert_eq!(
            resolve(&store, "banxa", "o1").await.unwrap(),
            Some(ours.clone())
        );
        // Another provider's id of the same spelling is another reference.
        assert_eq!(resolve(&store, "bcb", "o1").await.unwrap(), None);
        let again = Ours {
            user_id: "u2".into(),
            transaction_id: "t2".into(),
        };
        assert!(matches!(
            store.commit(vec![record("banxa", "o1", &again)]).await,
            Err(StoreError::Conflict(Conflict::AlreadyExists(_)))
        ));
        assert_eq!(resolve(&store, "banxa", "o1").await.unwrap(), Some(ours));
    }
}
