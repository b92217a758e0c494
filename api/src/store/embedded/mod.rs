//! [`EmbeddedStore`]: the default [`Store`], one [redb] file
//! (`store.redb`) in the data directory.
//!
//! redb commits are ACID; batches are made durable by group commit
//! (`group.rs`: one committer thread, one `fsync` for the batches that
//! queued meanwhile) before [`Store::commit`] returns: an acknowledged
//! batch survives `kill -9` and power loss; a batch interrupted by a crash
//! is absent as a whole. One writer at a time, so a batch's conditions are
//! checked and its writes applied without interleaving. Reads return only
//! what is durable. Point reads (one key) run on the calling task while the
//! file fits redb's cache, so that only a page's first read since the
//! start can block on the disk ([`INLINE_READS_UP_TO`]); scans, and point
//! reads of a larger file, run on the blocking pool.
//!
//! Records are JSON values in key-ordered tables; composite keys join
//! their parts with `\0` (callers keep `\0` out of ids and keys).

mod apply;
mod group;
mod marks;

use super::*;
use apply::apply;
use group::Committer;
pub use group::{BATCHES_TOTAL, SYNCS_TOTAL};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;

const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const EMAILS: TableDefinition<&str, &str> = TableDefinition::new("users_by_email");
const TXS: TableDefinition<&str, &[u8]> = TableDefinition::new("transactions");
const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
const WEBHOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhook_receipts");
const CHAIN_CREDITS: TableDefinition<&str, &[u8]> = TableDefinition::new("chain_credits");
const FAMILIES: TableDefinition<&str, &[u8]> = TableDefinition::new("refresh_families");
const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("sync_checkpoints");
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// The embedded, crash-safe store.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    committer: Arc<Committer>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The key of a record keyed by several ids (user and transaction id;
/// user, scope and idempotency key; ...): the ids joined by `\0`, so one
/// user's records are one key range.
fn compound_key<S: AsRef<str>>(parts: &[S]) -> String {
    let parts: Vec<&str> = parts.iter().map(AsRef::as_ref).collect();
    parts.join("\0")
}

/// redb's page cache per file (its default, set here so that
/// [`INLINE_READS_UP_TO`] rests on it): 90 % for pages read or written
/// since the file was opened, 10 % for writes not yet flushed.
const CACHE_BYTES: usize = 1 << 30;

/// Point reads run on the calling task while the store's file is at most
/// this size, and on the blocking pool past it. Below it every page
/// written since the start is in redb's read cache (a commit's pages go
/// there) and any other is read from the disk once, then kept: a read
/// blocks its worker on the disk at most on the first touch of a page.
/// Half the cache, so that the bound holds whatever redb's split.
const INLINE_READS_UP_TO: u64 = CACHE_BYTES as u64 / 2;

/// Opens (creating) the redb file `dir/name`, the directory at mode 0700
/// and the file at 0600 ([`crate::owner_only`]). After a crash, redb
/// repairs the file on open. Shared by the store and the market archive.
pub(crate) fn open_owner_only(dir: &Path, name: &str) -> Result<Database, StoreError> {
    crate::owner_only::dir(dir).map_err(unavailable)?;
    let file = crate::owner_only::open(
        &dir.join(name),
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
    .map_err(unavailable)?;
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create_file(file)
        .map_err(unavailable)
}

impl EmbeddedStore {
    /// File name inside the data directory.
    pub const FILE: &'static str = "store.redb";

    /// Opens (creating) `dir/store.redb`; the directory ends at mode 0700
    /// and the file at 0600 ([`crate::owner_only`]). After a crash, redb
    /// repairs the file on open (it may take a moment on a large file).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, INLINE_READS_UP_TO)
    }

    /// [`EmbeddedStore::open`] with point reads inline up to a file of
    /// `inline_up_to` bytes.
    fn open_with(dir: &Path, inline_up_to: u64) -> Result<Self, StoreError> {
        let db = open_owner_only(dir, Self::FILE)?;
        // Create every table so reads never meet a missing one.
        let tx = db.begin_write().map_err(unavailable)?;
        {
            tx.open_table(USERS).map_err(unavailable)?;
            tx.open_table(EMAILS).map_err(unavailable)?;
            tx.open_table(TXS).map_err(unavailable)?;
            tx.open_table(IDEMPOTENCY).map_err(unavailable)?;
            tx.open_table(WEBHOOKS).map_err(unavailable)?;
            tx.open_table(CHAIN_CREDITS).map_err(unavailable)?;
            tx.open_table(FAMILIES).map_err(unavailable)?;
            tx.open_table(CHECKPOINTS).map_err(unavailable)?;
            tx.open_table(OUTBOX).map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        let db = Arc::new(db);
        // A second handle on the file, for its size (redb owns the first).
        let file = std::fs::File::open(dir.join(Self::FILE)).map_err(unavailable)?;
        let committer = Arc::new(Committer::start(db.clone(), file, inline_up_to)?);
        Ok(EmbeddedStore { db, committer })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        let value = tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(unavailable)??;
        self.committer.marks.settled().await?;
        Ok(value)
    }

    /// The stored bytes under `key` in `table`.
    async fn read(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        key: String,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let get = move |db: &Database| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(table).map_err(unavailable)?;
            let value = t.get(key.as_str()).map_err(unavailable)?;
            Ok(value.map(|v| v.value().to_vec()))
        };
        let marks = &self.committer.marks;
        // On the calling task while the file fits redb's cache (two
        // thread hand-offs fewer per read; docs/BENCHMARKS.md, "Orders:
        // reads without hand-offs"), else on the blocking pool.
        let value = if marks
            .inline_reads
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            get(&self.db)?
        } else {
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || get(&db))
                .await
                .map_err(unavailable)??
        };
        marks.settled_table(redb::TableHandle::name(&table)).await?;
        Ok(value)
    }
}

/// Outbox positions are zero-padded so they sort as strings too.
fn position(seq: u64) -> String {
    format!("{seq:020}")
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.committer
            .commit(Box::new(move |tx| {
                let mut next_outbox = 0;
                writes
                    .iter()
                    .try_for_each(|w| apply(tx, w, &mut next_outbox))
            }))
            .await
    }

    async fn get(&self, key: RecordKey<'_>) -> StoreResult<Option<Record>> {
        let (table, id) = match key {
            RecordKey::User { user_id } => (USERS, user_id.to_owned()),
            RecordKey::Transaction {
                user_id,
                transaction_id,
            } => (TXS, compound_key(&[user_id, transaction_id])),
            RecordKey::Idempotency {
                user_id,
                scope,
                key,
            } => (IDEMPOTENCY, compound_key(&[user_id, scope, key])),
            RecordKey::WebhookReceipt {
                provider,
                webhook_id,
            } => (WEBHOOKS, compound_key(&[provider, webhook_id])),
            RecordKey::RefreshFamily { family_id } => (FAMILIES, family_id.to_owned()),
            RecordKey::Checkpoint {
                service_name,
                sync_type,
            } => (CHECKPOINTS, compound_key(&[service_name, sync_type])),
        };
        let bytes = self.read(table, id).await?;
        bytes.map(|b| key.decode(&b)).transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = normalize_email(email);
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let emails = tx.open_table(EMAILS).map_err(unavailable)?;
            let Some(id) = emails.get(email.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let users = tx.open_table(USERS).map_err(unavailable)?;
            let user = users.get(id.value()).map_err(unavailable)?;
            user.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    async fn in_status(&self, query: &StatusQuery<'_>) -> StoreResult<Vec<Transaction>> {
        let (status, until, limit) = (query.status.to_owned(), query.until, query.limit);
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(TXS).map_err(unavailable)?;
            let mut found = Vec::new();
            for entry in t.iter().map_err(unavailable)? {
                let (_, v) = entry.map_err(unavailable)?;
                let record: Transaction = decode(v.value())?;
                if record.status == status && record.created_at <= until {
                    found.push(record);
                }
            }
            found.sort_by(|a, b| {
                (a.created_at, &a.transaction_id).cmp(&(b.created_at, &b.transaction_id))
            });
            found.truncate(limit);
            Ok(found)
        })
        .await
    }

    async fn transactions(&self, user_id: &str, query: &TxQuery) -> StoreResult<Page<Transaction>> {
        let user_id = user_id.to_owned();
        let query = query.clone();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(TXS).map_err(unavailable)?;
            let start = format!("{user_id}\0");
            let end = match &query.after {
                Some(after) => compound_key(&[&user_id, after]),
                None => format!("{user_id}\u{1}"),
            };
            let limit = query.limit.max(1);
            let mut items = Vec::with_capacity(limit.min(128));
            let mut more = false;
            for entry in t
                .range(start.as_str()..end.as_str())
                .map_err(unavailable)?
                .rev()
            {
                let (_, v) = entry.map_err(unavailable)?;
                let record: Transaction = decode(v.value())?;
                let wanted = (query.kinds.is_empty() || query.kinds.contains(&record.kind))
                    && query.status.as_ref().is_none_or(|s| &record.status == s)
                    && query
                        .pair
                        .as_ref()
                        .is_none_or(|p| record.pair.as_ref() == Some(p));
                if !wanted {
                    continue;
                }
                if items.len() == limit {
                    more = true;
                    break;
                }
                items.push(record);
            }
            let next = if more {
                items.last().map(|t: &Transaction| t.transaction_id.clone())
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let t = tx.open_table(OUTBOX).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(unavailable)?.take(limit) {
                let (k, v) = entry.map_err(unavailable)?;
                out.push(OutboxEntry {
                    position: position(k.value()),
                    event: decode(v.value())?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn outbox_ack(&self, positions: &[String]) -> Result<(), StoreError> {
        let seqs: Vec<u64> = positions.iter().filter_map(|p| p.parse().ok()).collect();
        self.committer
            .commit(Box::new(move |tx| {
                let mut t = tx.open_table(OUTBOX).map_err(unavailable)?;
                for &s in &seqs {
                    t.remove(s).map_err(unavailable)?;
                }
                Ok(())
            }))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|db| {
            let tx = db.begin_read().map_err(unavailable)?;
            tx.open_table(OUTBOX)
                .map_err(unavailable)?
                .len()
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::now;
    use crate::secret::Secret;
    use std::sync::atomic::Ordering;

    fn user(id: &str, padding: usize) -> User {
        User {
            user_id: id.to_owned(),
            email: format!("{id}@example.com"),
            password_hash: Secret::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            first_name: Some("x".repeat(padding)),
            last_name: None,
            phone: None,
            country: None,
            kyc_status: KycStatus::None,
            kyc_updated_at: now(),
            mfa_secret: None,
            mfa_enabled: false,
            created_at: now(),
            updated_at: now(),
            version: 1,
        }
    }

    /// Point reads run on the calling task while the file is within the
    /// bound and go to the blocking pool once a commit takes it past, with
    /// the same answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn point_reads_leave_the_task_once_the_file_outgrows_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let bound = 8 << 20;
        let store = EmbeddedStore::open_with(dir.path(), bound).unwrap();
        let inline = || store.committer.marks.inline_reads.load(Ordering::Relaxed);
        let size = || {
            std::fs::metadata(dir.path().join(EmbeddedStore::FILE))
                .unwrap()
                .len()
        };
        assert!(inline(), "a fresh store of {} bytes reads inline", size());
        store
            .commit(vec![Write::CreateUser(user("small", 10))])
            .await
            .unwrap();
        assert!(inline());
        assert!(store.user("small").await.unwrap().is_some());
        // Users of 32 KiB until the file is past the bound.
        let mut commits = 0;
        while size() <= bound {
            assert!(inline(), "{} bytes, within the bound", size());
            assert!(commits < 200, "the file stays at {} bytes", size());
            let users = (0..4)
                .map(|j| Write::CreateUser(user(&format!("big-{commits}-{j}"), 32 << 10)))
                .collect();
            store.commit(users).await.unwrap();
            commits += 1;
        }
        assert!(!inline(), "{} bytes, past the bound", size());
        assert_eq!(
            store.user("small").await.unwrap().unwrap().first_name,
            Some("x".repeat(10))
        );
        assert!(store
            .user(&format!("big-{}-3", commits - 1))
            .await
            .unwrap()
            .is_some());
        assert!(store.user("nobody").await.unwrap().is_none());
    }
}
