//! [`EmbeddedStore`]: the default [`Store`], a write-ahead log and an
//! overlay in memory in front of one [redb] file (`store.redb`) in the
//! data directory (docs/ARCHITECTURE.md, "Embedded store").
//!
//! - A batch is made durable by group commit (`group.rs`: one committer
//!   thread appends the writes of the batches that queued meanwhile to
//!   the log, `wal.rs`, as one record with one `fdatasync`) before
//!   [`Store::commit`] returns: an acknowledged batch survives `kill -9`
//!   and power loss; a batch interrupted by a crash is absent as a whole.
//!   One writer at a time, so a batch's conditions are checked and its
//!   writes applied without interleaving.
//! - Synced writes join the overlay (`layer.rs`), which every read looks
//!   at first, and a checkpoint thread writes them into the redb file a
//!   few times a second, in one durable transaction each
//!   (`checkpoint.rs`); at open, log segments not yet checkpointed are
//!   replayed into the file. Reads return only what is durable, and never
//!   wait for a sync.
//! - Point reads of the file run on the calling task while the file fits
//!   redb's cache, so that only a page's first read since the start can
//!   block on the disk ([`INLINE_READS_UP_TO`]); scans, and point reads of
//!   a larger file, run on the blocking pool.
//!
//! Records are JSON values in key-ordered tables; composite keys join
//! their parts with `\0` (callers keep `\0` out of ids and keys).

mod apply;
mod checkpoint;
mod emitted;
mod group;
mod layer;
mod table;
mod tx;
mod wal;

use super::*;
use apply::apply;
use group::{Committer, Shared, Start};
pub use group::{BATCHES_TOTAL, SYNCS_TOTAL};
use layer::Bytes;
use redb::Database;
use serde::de::DeserializeOwned;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use table::Table;

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

/// Point reads of the file run on the calling task while it is at most
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
    /// File name inside the data directory (the log's segments are
    /// `store-N.wal` beside it).
    pub const FILE: &'static str = "store.redb";

    /// Opens (creating) `dir/store.redb` and replays the write-ahead log
    /// segments not yet in it; the directory ends at mode 0700 and the
    /// files at 0600 ([`crate::owner_only`]). After a crash, redb repairs
    /// the file on open (it may take a moment on a large file).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, INLINE_READS_UP_TO, group::CHECKPOINT_EVERY)
    }

    /// [`EmbeddedStore::open`] with point reads inline up to a file of
    /// `inline_up_to` bytes, and checkpoints every `checkpoint_every`.
    fn open_with(
        dir: &Path,
        inline_up_to: u64,
        checkpoint_every: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let db = open_owner_only(dir, Self::FILE)?;
        // Create every table so reads never meet a missing one.
        let tx = db.begin_write().map_err(unavailable)?;
        table::create_all(&tx)?;
        tx.commit().map_err(unavailable)?;
        let segment = checkpoint::recover(&db, dir)?;
        let last = table::last_position(&db.begin_read().map_err(unavailable)?)?;
        let db = Arc::new(db);
        // A second handle on the file, for its size (redb owns the first).
        let file = std::fs::File::open(dir.join(Self::FILE)).map_err(unavailable)?;
        let committer = Committer::start(Start {
            db: db.clone(),
            wal: wal::Wal::create(dir, segment)?,
            next_position: last.map_or(1, |p| p + 1),
            fits: Box::new(move || file.metadata().is_ok_and(|m| m.len() <= inline_up_to)),
            checkpoint_every,
            linger: group::LINGER,
        })?;
        Ok(EmbeddedStore {
            db,
            committer: Arc::new(committer),
        })
    }

    fn shared(&self) -> &Shared {
        &self.committer.shared
    }

    /// Runs `f` on the blocking pool with the file and the overlay.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database, &Shared) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.shared().check()?;
        let (db, committer) = (self.db.clone(), self.committer.clone());
        tokio::task::spawn_blocking(move || f(&db, &committer.shared))
            .await
            .map_err(unavailable)?
    }

    /// The stored bytes under `key` in `t`: the overlay's, else the
    /// file's.
    async fn read(&self, t: Table, key: String) -> Result<Option<Bytes>, StoreError> {
        self.shared().check()?;
        if let Some(value) = self.shared().overlay.get(t, key.as_bytes()) {
            return Ok(value);
        }
        // The overlay is looked at first: a layer leaves it only once its
        // checkpoint is in the file, so a read transaction begun after
        // the miss sees what the overlay held.
        let get = move |db: &Database| {
            let tx = db.begin_read().map_err(unavailable)?;
            table::get(&tx, t, key.as_bytes())
        };
        // On the calling task while the file fits redb's cache (two
        // thread hand-offs fewer per read; docs/BENCHMARKS.md, "Orders:
        // reads without hand-offs"), else on the blocking pool.
        if self.shared().inline_reads.load(Ordering::Relaxed) {
            get(&self.db)
        } else {
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || get(&db))
                .await
                .map_err(unavailable)?
        }
    }
}

/// Calls `each` with the merged view (overlay over file) of table `t`
/// within `bounds`, in key order (`rev`: the reverse), until it answers
/// `false`. The file's transaction begins while the overlay's part is
/// copied ([`layer::Overlay::range`]).
fn scan(
    db: &Database,
    shared: &Shared,
    t: Table,
    bounds: (Bound<&[u8]>, Bound<&[u8]>),
    rev: bool,
    each: &mut table::Visit<'_>,
) -> Result<(), StoreError> {
    let (overlay, tx) = shared
        .overlay
        .range(t, bounds, || db.begin_read().map_err(unavailable))?;
    layer::merge(
        overlay,
        rev,
        |file| table::scan(&tx, t, bounds, rev, file),
        each,
    )
}

/// Reads `bytes` as write-ahead log segment `segment` (`newest`: the one
/// a crash may have tore) and counts its writes, as the store's open does
/// before it replays them: for the `store_log` fuzz target, not for use.
#[doc(hidden)]
pub fn read_log_segment(bytes: &[u8], segment: u64, newest: bool) -> Result<usize, StoreError> {
    let mut writes = 0;
    wal::replay(bytes, segment, newest, &mut |_, _, _| writes += 1)?;
    Ok(writes)
}

/// Outbox positions are zero-padded so they sort as strings too.
fn position(seq: u64) -> String {
    format!("{seq:020}")
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        // The events go to the outbox after the other writes (which never
        // read it), in their order, and are kept decoded for the relay.
        let (mut others, mut events) = (Vec::with_capacity(writes.len()), Vec::new());
        for write in writes {
            match write {
                Write::Emit(event) => events.push(Arc::new(event)),
                other => others.push(other),
            }
        }
        self.committer
            .commit(Box::new(move |tx| {
                others.iter().try_for_each(|w| apply(tx, w))?;
                events.iter().try_for_each(|e| tx.emit(e))
            }))
            .await
    }

    async fn get(&self, key: RecordKey<'_>) -> StoreResult<Option<Record>> {
        let (table, id) = match key {
            RecordKey::User { user_id } => (Table::Users, user_id.to_owned()),
            RecordKey::Transaction {
                user_id,
                transaction_id,
            } => (
                Table::Transactions,
                compound_key(&[user_id, transaction_id]),
            ),
            RecordKey::Idempotency {
                user_id,
                scope,
                key,
            } => (Table::Idempotency, compound_key(&[user_id, scope, key])),
            RecordKey::WebhookReceipt {
                provider,
                webhook_id,
            } => (
                Table::WebhookReceipts,
                compound_key(&[provider, webhook_id]),
            ),
            RecordKey::RefreshFamily { family_id } => {
                (Table::RefreshFamilies, family_id.to_owned())
            }
            RecordKey::Checkpoint {
                service_name,
                sync_type,
            } => (
                Table::SyncCheckpoints,
                compound_key(&[service_name, sync_type]),
            ),
        };
        let bytes = self.read(table, id).await?;
        bytes.map(|b| key.decode(&b)).transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let Some(id) = self.read(Table::Emails, normalize_email(email)).await? else {
            return Ok(None);
        };
        let id = std::str::from_utf8(&id)
            .map_err(|_| StoreError::Corrupt("a user id is not UTF-8".into()))?;
        let user = self.read(Table::Users, id.to_owned()).await?;
        user.map(|v| decode(&v)).transpose()
    }

    async fn in_status(&self, query: &StatusQuery<'_>) -> StoreResult<Vec<Transaction>> {
        let (status, until, limit) = (query.status.to_owned(), query.until, query.limit);
        self.blocking(move |db, shared| {
            let mut found = Vec::new();
            let all = (Bound::Unbounded, Bound::Unbounded);
            scan(db, shared, Table::Transactions, all, false, &mut |_, v| {
                let record: Transaction = decode(v)?;
                if record.status == status && record.created_at <= until {
                    found.push(record);
                }
                Ok(true)
            })?;
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
        self.blocking(move |db, shared| {
            let start = format!("{user_id}\0");
            let end = match &query.after {
                Some(after) => compound_key(&[&user_id, after]),
                None => format!("{user_id}\u{1}"),
            };
            let limit = query.limit.max(1);
            let mut items = Vec::with_capacity(limit.min(128));
            let mut more = false;
            let bounds = (
                Bound::Included(start.as_bytes()),
                Bound::Excluded(end.as_bytes()),
            );
            scan(
                db,
                shared,
                Table::Transactions,
                bounds,
                true,
                &mut |_, v| {
                    let record: Transaction = decode(v)?;
                    let wanted = (query.kinds.is_empty() || query.kinds.contains(&record.kind))
                        && query.status.as_ref().is_none_or(|s| &record.status == s)
                        && query
                            .pair
                            .as_ref()
                            .is_none_or(|p| record.pair.as_ref() == Some(p));
                    if !wanted {
                        return Ok(true);
                    }
                    if items.len() == limit {
                        more = true;
                        return Ok(false);
                    }
                    items.push(record);
                    Ok(true)
                },
            )?;
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
        self.blocking(move |db, shared| {
            let mut out = Vec::new();
            if limit == 0 {
                return Ok(out);
            }
            let all = (Bound::Unbounded, Bound::Unbounded);
            scan(db, shared, Table::Outbox, all, false, &mut |k, v| {
                let seq = u64::from_be_bytes(
                    k.try_into()
                        .map_err(|_| StoreError::Corrupt("an outbox key is not 8 bytes".into()))?,
                );
                let event = match shared.emitted.get(seq) {
                    Some(event) => event,
                    None => Arc::new(decode(v)?),
                };
                out.push(OutboxEntry {
                    position: position(seq),
                    event,
                });
                Ok(out.len() < limit)
            })?;
            Ok(out)
        })
        .await
    }

    async fn outbox_ack(&self, positions: &[String]) -> Result<(), StoreError> {
        let seqs: Vec<u64> = positions.iter().filter_map(|p| p.parse().ok()).collect();
        let removed = seqs.clone();
        self.committer
            .commit(Box::new(move |tx| {
                for &s in &removed {
                    tx.remove(Table::Outbox, &s.to_be_bytes());
                }
                Ok(())
            }))
            .await?;
        self.shared().emitted.acknowledged(&seqs);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|db, _| {
            let tx = db.begin_read().map_err(unavailable)?;
            table::last_position(&tx)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
