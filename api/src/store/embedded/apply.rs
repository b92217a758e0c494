//! One [`Write`] of a batch applied to the batch's [`Tx`], its condition
//! checked first (the embedded store's half of [`Store::commit`]).

use super::table::Table;
use super::tx::Tx;
use super::*;

/// Applies one write to `tx`, checking its condition first.
pub(super) fn apply(tx: &Tx<'_>, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::CreateUser(user) => {
            let email = normalize_email(&user.email);
            if tx.get(Table::Emails, email.as_bytes())?.is_some() {
                return Err(StoreError::Conflict(Conflict::EmailTaken));
            }
            let id = user.user_id.as_bytes();
            if tx.get(Table::Users, id)?.is_some() {
                return Err(StoreError::Conflict(Conflict::AlreadyExists("user")));
            }
            tx.insert(Table::Emails, email.as_bytes(), id);
            tx.insert(Table::Users, id, &encode(&user)?);
        }
        Write::UpdateUser {
            user,
            expected_version,
        } => {
            let id = user.user_id.as_bytes();
            let mismatch = || StoreError::Conflict(Conflict::VersionMismatch("user"));
            let stored: User = decode(&tx.get(Table::Users, id)?.ok_or_else(mismatch)?)?;
            if stored.version != *expected_version {
                return Err(mismatch());
            }
            if normalize_email(&stored.email) != normalize_email(&user.email) {
                // Emails are immutable here (no route changes them); a
                // change would need the index updated in the same batch.
                return Err(StoreError::Corrupt("user email cannot change".into()));
            }
            tx.insert(Table::Users, id, &encode(&user)?);
        }
        Write::CreateTransaction(t) => {
            let key = compound_key(&[&t.user_id, &t.transaction_id]);
            insert_new(
                tx,
                Table::Transactions,
                &key,
                &t,
                Conflict::AlreadyExists("transaction"),
            )?;
        }
        Write::UpdateTransaction {
            tx: t,
            expected_version,
        } => {
            let key = compound_key(&[&t.user_id, &t.transaction_id]);
            let mismatch = || StoreError::Conflict(Conflict::VersionMismatch("transaction"));
            let stored = tx.get(Table::Transactions, key.as_bytes())?;
            let stored: Transaction = decode(&stored.ok_or_else(mismatch)?)?;
            if stored.version != *expected_version {
                return Err(mismatch());
            }
            tx.insert(Table::Transactions, key.as_bytes(), &encode(&t)?);
        }
        Write::CreateIdempotency(r) => {
            let key = compound_key(&[&r.user_id, &r.scope, &r.key]);
            insert_new(tx, Table::Idempotency, &key, &r, Conflict::IdempotencyKey)?;
        }
        Write::CreateWebhookReceipt(r) => {
            let key = compound_key(&[&r.provider, &r.webhook_id]);
            insert_new(
                tx,
                Table::WebhookReceipts,
                &key,
                &r,
                Conflict::DuplicateWebhook,
            )?;
        }
        Write::UpdateWebhookReceipt {
            receipt,
            expected_version,
        } => {
            let key = compound_key(&[&receipt.provider, &receipt.webhook_id]);
            let mismatch = || StoreError::Conflict(Conflict::VersionMismatch("webhook receipt"));
            let stored = tx.get(Table::WebhookReceipts, key.as_bytes())?;
            let stored: WebhookReceipt = decode(&stored.ok_or_else(mismatch)?)?;
            if stored.version != *expected_version {
                return Err(mismatch());
            }
            tx.insert(Table::WebhookReceipts, key.as_bytes(), &encode(&receipt)?);
        }
        Write::CreateChainCredit(c) => {
            let key = compound_key(&[&c.asset, &c.tx_hash, &c.output]);
            insert_new(
                tx,
                Table::ChainCredits,
                &key,
                &c,
                Conflict::DuplicateChainCredit,
            )?;
        }
        Write::PutRefreshFamily {
            family,
            expected_version,
        } => {
            let id = family.family_id.as_bytes();
            let stored: Option<RefreshFamily> = tx
                .get(Table::RefreshFamilies, id)?
                .map(|v| decode(&v))
                .transpose()?;
            let conflict = match (stored, expected_version) {
                (Some(_), None) => Some(Conflict::AlreadyExists("refresh family")),
                (None, Some(_)) => Some(Conflict::VersionMismatch("refresh family")),
                (Some(s), Some(v)) if s.version != *v => {
                    Some(Conflict::VersionMismatch("refresh family"))
                }
                _ => None,
            };
            if let Some(conflict) = conflict {
                return Err(StoreError::Conflict(conflict));
            }
            tx.insert(Table::RefreshFamilies, id, &encode(&family)?);
        }
        Write::CreateCheckpoint(c) => {
            let key = compound_key(&[&c.service_name, &c.sync_type]);
            let conflict = Conflict::AlreadyExists("checkpoint");
            insert_new(tx, Table::SyncCheckpoints, &key, &c, conflict)?;
        }
        Write::PutCheckpoint(c) => {
            let key = compound_key(&[&c.service_name, &c.sync_type]);
            tx.insert(Table::SyncCheckpoints, key.as_bytes(), &encode(&c)?);
        }
        Write::ReplaceCheckpoint {
            checkpoint: c,
            expected_value,
        } => {
            let key = compound_key(&[&c.service_name, &c.sync_type]);
            let stored: Option<SyncCheckpoint> = tx
                .get(Table::SyncCheckpoints, key.as_bytes())?
                .map(|v| decode(&v))
                .transpose()?;
            if stored.map(|s| s.value).as_ref() != Some(expected_value) {
                return Err(StoreError::Conflict(Conflict::VersionMismatch(
                    "checkpoint",
                )));
            }
            tx.insert(Table::SyncCheckpoints, key.as_bytes(), &encode(&c)?);
        }
        // `EmbeddedStore::commit` hands a batch's events to `Tx::emit`
        // itself, shared, and never passes one here; this arm keeps
        // `apply` whole over `Write`, through the same door.
        Write::Emit(event) => tx.emit(&std::sync::Arc::new(event.clone()))?,
    }
    Ok(())
}

/// Inserts `record` under a `key` not yet in `t`; `conflict` if it is.
fn insert_new<T: serde::Serialize>(
    tx: &Tx<'_>,
    t: Table,
    key: &str,
    record: &T,
    conflict: Conflict,
) -> Result<(), StoreError> {
    if tx.get(t, key.as_bytes())?.is_some() {
        return Err(StoreError::Conflict(conflict));
    }
    tx.insert(t, key.as_bytes(), &encode(record)?);
    Ok(())
}
