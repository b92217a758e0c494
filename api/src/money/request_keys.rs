//! Request keys (the `idempotency_key` field) of money-moving requests
//! (`withdraw`, `fiat_deposit`, `fiat_withdraw`): the same key with the same request answers with the
//! transaction the first request made; with a different request, 409
//! `duplicate_idempotency_key`. The key's record is committed in the same
//! batch as the transaction, and the store refuses a second record for a
//! key, so two concurrent requests with one key make one transaction.
//!
//! (Not to be confused with [`crate::resilience::Idempotency`], which
//! says whether an upstream call may be retried.)

use crate::error::ApiError;
use crate::store::{IdempotencyRecord, Store, Transaction};
use sha2::{Digest, Sha256};

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 128;

/// Checks a client's key: 1..=128 printable ASCII characters without
/// spaces (422 `invalid_field` naming `idempotency_key`).
pub fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field(
            "idempotency_key",
            format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

/// Digest of a request's normalized fields (asset symbol, raw amount, …),
/// so `"10"` and `"10.00"` are the same request.
pub fn fingerprint(fields: &[&str]) -> String {
    let mut hash = Sha256::new();
    for f in fields {
        hash.update((f.len() as u64).to_be_bytes());
        hash.update(f.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// The transaction an earlier request with this key made, if any; 409
/// `duplicate_idempotency_key` when that request was a different one.
pub async fn prior(
    store: &dyn Store,
    user_id: &str,
    scope: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Option<Transaction>, ApiError> {
    let Some(record) = store.idempotency(user_id, scope, key).await? else {
        return Ok(None);
    };
    if record.fingerprint != fingerprint {
        return Err(ApiError::conflict(
            "duplicate_idempotency_key",
            "idempotency_key was already used with a different request",
        ));
    }
    let tx = store
        .transaction(user_id, &record.transaction_id)
        .await?
        .ok_or_else(|| {
            ApiError::internal(format!(
                "idempotency record points at missing transaction {}",
                record.transaction_id
            ))
        })?;
    Ok(Some(tx))
}

/// The record to commit with a new transaction.
pub fn record(
    user_id: &str,
    scope: &str,
    key: &str,
    fingerprint: &str,
    transaction_id: &str,
) -> IdempotencyRecord {
    IdempotencyRecord {
        user_id: user_id.to_owned(),
        scope: scope.to_owned(),
        key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
        transaction_id: transaction_id.to_owned(),
        created_at: crate::events::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(check_key("abc-123_X").is_ok());
        assert!(check_key(&"k".repeat(128)).is_ok());
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(129)] {
            assert_eq!(check_key(bad).unwrap_err().code, "invalid_field", "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_separate_fields() {
        assert_eq!(fingerprint(&["a", "bc"]), fingerprint(&["a", "bc"]));
        assert_ne!(fingerprint(&["a", "bc"]), fingerprint(&["ab", "c"]));
    }
}
