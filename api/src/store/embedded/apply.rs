//! One [`Write`] of a batch applied inside a redb write transaction, its
//! condition checked first (the embedded store's half of
//! [`Store::commit`]).

use super::marks::Tx;
use super::*;

/// Applies one write inside a redb write transaction, checking its
/// condition first.
pub(super) fn apply(tx: &Tx<'_>, write: &Write, next_outbox: &mut u64) -> Result<(), StoreError> {
    match write {
        Write::CreateUser(user) => {
            let mut emails = tx.open_table(EMAILS).map_err(unavailable)?;
            let mut users = tx.open_table(USERS).map_err(unavailable)?;
            let email = normalize_email(&user.email);
            if emails.get(email.as_str()).map_err(unavailable)?.is_some() {
                return Err(StoreError::Conflict(Conflict::EmailTaken));
            }
            if users
                .get(user.user_id.as_str())
                .map_err(unavailable)?
                .is_some()
            {
                return Err(StoreError::Conflict(Conflict::AlreadyExists("user")));
            }
            emails
                .insert(email.as_str(), user.user_id.as_str())
                .map_err(unavailable)?;
            users
                .insert(user.user_id.as_str(), encode(&user)?.as_slice())
                .map_err(unavailable)?;
        }
        Write::UpdateUser {
            user,
            expected_version,
        } => {
            let mut users = tx.open_table(USERS).map_err(unavailable)?;
            let stored: User = match users.get(user.user_id.as_str()).map_err(unavailable)? {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::Conflict(Conflict::VersionMismatch("user"))),
            };
            if stored.version != *expected_version {
                return Err(StoreError::Conflict(Conflict::VersionMismatch("user")));
            }
            if normalize_email(&stored.email) != normalize_email(&user.email) {
                // Emails are immutable here (no route changes them); a
                // change would need the index updated in the same batch.
                return Err(StoreError::Corrupt("user email cannot change".into()));
            }
            users
                .insert(user.user_id.as_str(), encode(&user)?.as_slice())
                .map_err(unavailable)?;
        }
        Write::CreateTransaction(t) => {
            let key = compound_key(&[&t.user_id, &t.transaction_id]);
            insert_new(tx, TXS, &key, &t, Conflict::AlreadyExists("transaction"))?;
        }
        Write::UpdateTransaction {
            tx: t,
            expected_version,
        } => {
            let mut txs = tx.open_table(TXS).map_err(unavailable)?;
            let key = compound_key(&[&t.user_id, &t.transaction_id]);
            let stored: Transaction = match txs.get(key.as_str()).map_err(unavailable)? {
                Some(v) => decode(v.value())?,
                None => {
                    return Err(StoreError::Conflict(Conflict::VersionMismatch(
                        "transaction",
                    )))
                }
            };
            if stored.version != *expected_version {
                return Err(StoreError::Conflict(Conflict::VersionMismatch(
                    "transaction",
                )));
            }
            txs.insert(key.as_str(), encode(&t)?.as_slice())
                .map_err(unavailable)?;
        }
        Write::CreateIdempotency(r) => {
            let key = compound_key(&[&r.user_id, &r.scope, &r.key]);
            insert_new(tx, IDEMPOTENCY, &key, &r, Conflict::IdempotencyKey)?;
        }
        Write::CreateWebhookReceipt(r) => {
            let key = compound_key(&[&r.provider, &r.webhook_id]);
            insert_new(tx, WEBHOOKS, &key, &r, Conflict::DuplicateWebhook)?;
        }
        Write::UpdateWebhookReceipt {
            receipt,
            expected_version,
        } => {
            let mut t = tx.open_table(WEBHOOKS).map_err(unavailable)?;
            let key = compound_key(&[&receipt.provider, &receipt.webhook_id]);
            let mismatch = || StoreError::Conflict(Conflict::VersionMismatch("webhook receipt"));
            let stored: WebhookReceipt = match t.get(key.as_str()).map_err(unavailable)? {
                Some(v) => decode(v.value())?,
                None => return Err(mismatch()),
            };
            if stored.version != *expected_version {
                return Err(mismatch());
            }
            t.insert(key.as_str(), encode(&receipt)?.as_slice())
                .map_err(unavailable)?;
        }
        Write::CreateChainCredit(c) => {
            let key = compound_key(&[&c.asset, &c.tx_hash, &c.output]);
            insert_new(tx, CHAIN_CREDITS, &key, &c, Conflict::DuplicateChainCredit)?;
        }
        Write::PutRefreshFamily {
            family,
            expected_version,
        } => {
            let mut t = tx.open_table(FAMILIES).map_err(unavailable)?;
            let stored: Option<RefreshFamily> = t
                .get(family.family_id.as_str())
                .map_err(unavailable)?
                .map(|v| decode(v.value()))
                .transpose()?;
            match (stored, expected_version) {
                (Some(_), None) => {
                    return Err(StoreError::Conflict(Conflict::AlreadyExists(
                        "refresh family",
                    )))
                }
                (None, Some(_)) => {
                    return Err(StoreError::Conflict(Conflict::VersionMismatch(
                        "refresh family",
                    )))
                }
                (Some(s), Some(v)) if s.version != *v => {
                    return Err(StoreError::Conflict(Conflict::VersionMismatch(
                        "refresh family",
                    )))
                }
                _ => {}
            }
            t.insert(family.family_id.as_str(), encode(&family)?.as_slice())
                .map_err(unavailable)?;
        }
        Write::CreateCheckpoint(c) => {
            let key = compound_key(&[&c.service_name, &c.sync_type]);
            insert_new(
                tx,
                CHECKPOINTS,
                &key,
                &c,
                Conflict::AlreadyExists("checkpoint"),
            )?;
        }
        Write::PutCheckpoint(c) => {
            let mut t = tx.open_table(CHECKPOINTS).map_err(unavailable)?;
            let key = compound_key(&[&c.service_name, &c.sync_type]);
            t.insert(key.as_str(), encode(&c)?.as_slice())
                .map_err(unavailable)?;
        }
        Write::ReplaceCheckpoint {
            checkpoint: c,
            expected_value,
        } => {
            let mut t = tx.open_table(CHECKPOINTS).map_err(unavailable)?;
            let key = compound_key(&[&c.service_name, &c.sync_type]);
            let stored: Option<SyncCheckpoint> = t
                .get(key.as_str())
                .map_err(unavailable)?
                .map(|v| decode(v.value()))
                .transpose()?;
            if stored.map(|s| s.value).as_ref() != Some(expected_value) {
                return Err(StoreError::Conflict(Conflict::VersionMismatch(
                    "checkpoint",
                )));
            }
            t.insert(key.as_str(), encode(&c)?.as_slice())
                .map_err(unavailable)?;
        }
        Write::Emit(event) => {
            let mut t = tx.open_table(OUTBOX).map_err(unavailable)?;
            if *next_outbox == 0 {
                *next_outbox = t
                    .last()
                    .map_err(unavailable)?
                    .map_or(1, |(k, _)| k.value() + 1);
            }
            t.insert(*next_outbox, encode(&event)?.as_slice())
                .map_err(unavailable)?;
            *next_outbox += 1;
        }
    }
    Ok(())
}

/// Inserts `record` under a `key` not yet in `table`; `conflict` if it is.
fn insert_new<T: serde::Serialize>(
    tx: &Tx<'_>,
    table: TableDefinition<'static, &'static str, &'static [u8]>,
    key: &str,
    record: &T,
    conflict: Conflict,
) -> Result<(), StoreError> {
    let mut t = tx.open_table(table).map_err(unavailable)?;
    if t.get(key).map_err(unavailable)?.is_some() {
        return Err(StoreError::Conflict(conflict));
    }
    t.insert(key, encode(record)?.as_slice())
        .map_err(unavailable)?;
    Ok(())
}
