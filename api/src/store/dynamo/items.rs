//! Records as DynamoDB items: the key attributes and the attributes the
//! indexes, conditions and TTL need are real attributes; the whole record
//! is also kept as its JSON in `doc`, which reads decode (the same bytes
//! the embedded store keeps, so amounts stay decimal strings).

use crate::events::Timestamp;
use crate::store::{
    normalize_email, ChainCredit, IdempotencyRecord, RefreshFamily, StoreError, SyncCheckpoint,
    Transaction, User, WebhookReceipt,
};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// An item or a key.
pub(super) type Item = HashMap<String, AttributeValue>;

/// The record's JSON.
pub(super) const DOC: &str = "doc";
/// Optimistic-concurrency version (Number) of versioned records.
pub(super) const VERSION: &str = "version";
/// Normalized email (String): the user's `email-index` key.
pub(super) const EMAIL: &str = "email";
/// A checkpoint's value (String), what `ReplaceCheckpoint` compares.
pub(super) const CHECKPOINT_VALUE: &str = "value";
/// Guard item: the user id holding the email.
pub(super) const OWNER: &str = "owner";

/// `user_id` of a user's email guard item: `EMAIL#<normalized email>`.
pub(super) const EMAIL_GUARD_PREFIX: &str = "EMAIL#";

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A key of one or two string attributes.
pub(super) fn key(parts: &[(&str, &str)]) -> Item {
    parts
        .iter()
        .map(|(name, value)| ((*name).to_owned(), s(*value)))
        .collect()
}

/// RFC 3339 UTC with six fractional digits, so string order is time order
/// (the `status-index` range key).
pub(super) fn sortable_time(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Epoch seconds, the only form DynamoDB's TTL reads.
pub(super) fn epoch_seconds(t: &Timestamp) -> AttributeValue {
    n(t.timestamp())
}

fn with_doc<T: serde::Serialize>(record: &T, mut item: Item) -> Result<Item, StoreError> {
    let json = serde_json::to_string(record)
        .map_err(|e| StoreError::Corrupt(format!("encode record: {e}")))?;
    item.insert(DOC.to_owned(), s(json));
    Ok(item)
}

/// An item's `doc`: the record's JSON.
pub(super) fn doc(item: &Item) -> Result<&str, StoreError> {
    match item.get(DOC) {
        Some(AttributeValue::S(json)) => Ok(json),
        _ => Err(StoreError::Corrupt("item has no string `doc`".to_owned())),
    }
}

/// Decodes an item's `doc`.
pub(super) fn decode<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    serde_json::from_str(doc(item)?).map_err(|e| StoreError::Corrupt(format!("decode record: {e}")))
}

/// The email guard's key.
pub(super) fn email_guard_key(email: &str) -> Item {
    let id = format!("{EMAIL_GUARD_PREFIX}{}", normalize_email(email));
    key(&[("user_id", &id)])
}

pub(super) fn email_guard(user: &User) -> Item {
    let mut item = email_guard_key(&user.email);
    item.insert(OWNER.to_owned(), s(&user.user_id));
    item
}

pub(super) fn user(u: &User) -> Result<Item, StoreError> {
    let mut item = key(&[("user_id", &u.user_id)]);
    item.insert(EMAIL.to_owned(), s(normalize_email(&u.email)));
    item.insert(VERSION.to_owned(), n(u.version));
    item.insert("created_at".to_owned(), s(sortable_time(&u.created_at)));
    with_doc(u, item)
}

/// The `kind` attribute's value: the record's JSON name (`fiat_deposit`).
pub(super) fn kind_name<K: serde::Serialize>(kind: &K) -> Result<String, StoreError> {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        other => Err(StoreError::Corrupt(format!(
            "transaction kind is not a string: {other:?}"
        ))),
    }
}

pub(super) fn transaction_key(user_id: &str, transaction_id: &str) -> Item {
    key(&[("user_id", user_id), ("transaction_id", transaction_id)])
}

pub(super) fn transaction(t: &Transaction) -> Result<Item, StoreError> {
    let mut item = transaction_key(&t.user_id, &t.transaction_id);
    item.insert("kind".to_owned(), s(kind_name(&t.kind)?));
    item.insert("status".to_owned(), s(&t.status));
    if let Some(pair) = &t.pair {
        item.insert("pair".to_owned(), s(pair));
    }
    item.insert("created_at".to_owned(), s(sortable_time(&t.created_at)));
    item.insert(VERSION.to_owned(), n(t.version));
    with_doc(t, item)
}

/// `scope_key` of IdempotencyKeys: `<scope>#<key>` (scopes hold no `#`).
pub(super) fn idempotency_key(user_id: &str, scope: &str, key_: &str) -> Item {
    key(&[
        ("user_id", user_id),
        ("scope_key", &format!("{scope}#{key_}")),
    ])
}

pub(super) fn idempotency(r: &IdempotencyRecord) -> Result<Item, StoreError> {
    with_doc(r, idempotency_key(&r.user_id, &r.scope, &r.key))
}

pub(super) fn webhook_key(provider: &str, webhook_id: &str) -> Item {
    key(&[("provider", provider), ("webhook_id", webhook_id)])
}

pub(super) fn webhook(r: &WebhookReceipt) -> Result<Item, StoreError> {
    let mut item = webhook_key(&r.provider, &r.webhook_id);
    item.insert("expires_at".to_owned(), epoch_seconds(&r.expires_at));
    item.insert(VERSION.to_owned(), n(r.version));
    with_doc(r, item)
}

/// `transfer` of ChainCredits: `<asset>#<tx hash>#<output>` (none of
/// which holds a `#`).
pub(super) fn chain_credit_key(asset: &str, tx_hash: &str, output: &str) -> Item {
    key(&[("transfer", &format!("{asset}#{tx_hash}#{output}"))])
}

/// No `expires_at`: a credited transfer is remembered for good.
pub(super) fn chain_credit(c: &ChainCredit) -> Result<Item, StoreError> {
    for part in [&c.asset, &c.tx_hash, &c.output] {
        if part.contains('#') {
            return Err(StoreError::Corrupt(format!(
                "chain credit key part {part:?} holds a '#'"
            )));
        }
    }
    with_doc(c, chain_credit_key(&c.asset, &c.tx_hash, &c.output))
}

pub(super) fn family_key(family_id: &str) -> Item {
    key(&[("family_id", family_id)])
}

pub(super) fn family(f: &RefreshFamily) -> Result<Item, StoreError> {
    let mut item = family_key(&f.family_id);
    item.insert("user_id".to_owned(), s(&f.user_id));
    item.insert(VERSION.to_owned(), n(f.version));
    item.insert("expires_at".to_owned(), epoch_seconds(&f.expires_at));
    with_doc(f, item)
}

pub(super) fn checkpoint_key(service_name: &str, sync_type: &str) -> Item {
    key(&[("service_name", service_name), ("sync_type", sync_type)])
}

pub(super) fn checkpoint(c: &SyncCheckpoint) -> Result<Item, StoreError> {
    let mut item = checkpoint_key(&c.service_name, &c.sync_type);
    item.insert(CHECKPOINT_VALUE.to_owned(), s(&c.value));
    with_doc(c, item)
}

/// The key attributes of `item` (the ones named by `spec`).
pub(super) fn key_of(item: &Item, spec: &super::tables::TableSpec) -> Item {
    let mut k = Item::new();
    for name in std::iter::once(spec.hash_key).chain(spec.range_key) {
        if let Some(v) = item.get(name) {
            k.insert(name.to_owned(), v.clone());
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn sortable_time_has_fixed_width() {
        let whole = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let fraction = whole + chrono::TimeDelta::microseconds(7);
        assert_eq!(sortable_time(&whole), "2026-01-02T03:04:05.000000Z");
        assert_eq!(sortable_time(&fraction), "2026-01-02T03:04:05.000007Z");
        assert!(sortable_time(&whole) < sortable_time(&fraction));
    }

    #[test]
    fn epoch_seconds_is_a_number() {
        let t = chrono::Utc.timestamp_opt(1_800_000_000, 5).unwrap();
        assert_eq!(epoch_seconds(&t), AttributeValue::N("1800000000".into()));
    }

    #[test]
    fn email_guard_normalizes() {
        let k = email_guard_key("  Ada@Example.COM ");
        assert_eq!(k["user_id"], s("EMAIL#ada@example.com"));
    }
}
