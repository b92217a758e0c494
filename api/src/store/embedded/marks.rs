//! [`Marks`]: how far the embedded store's commits have got (applied,
//! made durable), so that a read waits until what it saw is on disk
//! (the committer's side is in `group.rs`); and [`Tx`], which records the
//! tables a commit wrote, so that a point read waits only for the commits
//! that wrote to its table.

use super::{unavailable, StoreError};
use redb::{Key, Table, TableDefinition, TableError, Value, WriteTransaction};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How long a read waits for the sync of what it saw before it gives up
/// with [`StoreError::Unavailable`] (only when the disk stops answering).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The store's tables whose last writing commit [`Marks`] follows, by
/// name (`mod.rs` defines them; a test checks the two lists agree). A
/// read of any other table waits for every commit.
pub(super) const TABLES: [&str; 9] = [
    "users",
    "users_by_email",
    "transactions",
    "idempotency",
    "webhook_receipts",
    "chain_credits",
    "refresh_families",
    "sync_checkpoints",
    "outbox",
];

fn slot(table: &str) -> Option<usize> {
    TABLES.iter().position(|t| *t == table)
}

/// Counts of commits: `applied` is raised before each commit, `durable`
/// to it after each sync.
pub(super) struct Marks {
    pub(super) applied: AtomicU64,
    /// Per table of [`TABLES`]: the `applied` count of the last commit
    /// that wrote to it, set before that commit.
    pub(super) written: [AtomicU64; TABLES.len()],
    /// Whether point reads run on the calling task: the store's file was
    /// small enough after the last group (`mod.rs`, `INLINE_READS_UP_TO`).
    pub(super) inline_reads: AtomicBool,
    pub(super) durable: watch::Sender<u64>,
    /// Batches sent to the committer, and taken by it.
    pub(super) sent: AtomicU64,
    pub(super) taken: AtomicU64,
    /// Groups synced.
    pub(super) syncs: AtomicU64,
    /// Set after a storage error or when the committer has stopped: from
    /// then on reads and writes fail at once.
    pub(super) poisoned: AtomicBool,
}

impl Marks {
    pub(super) fn new() -> Self {
        Marks {
            applied: AtomicU64::new(0),
            written: std::array::from_fn(|_| AtomicU64::new(0)),
            durable: watch::Sender::new(0),
            sent: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            inline_reads: AtomicBool::new(false),
        }
    }

    /// Batches sent and not yet taken into a group.
    #[cfg(test)]
    pub(super) fn queued(&self) -> u64 {
        self.sent
            .load(Ordering::SeqCst)
            .saturating_sub(self.taken.load(Ordering::SeqCst))
    }

    pub(super) fn check(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(unavailable(
                "the embedded store stopped after a storage error or shutdown",
            ));
        }
        Ok(())
    }

    pub(super) fn poison(&self) {
        self.poisoned.store(true, Ordering::SeqCst);
        // Wakes the readers waiting in `settled`, which see the flag.
        self.durable.send_modify(|_| {});
    }

    /// Before a commit numbered `applied`: the tables it opened
    /// ([`Tx::opened`]) were last written by it.
    pub(super) fn wrote(&self, opened: u32, applied: u64) {
        for (i, written) in self.written.iter().enumerate() {
            if opened & (1 << i) != 0 {
                written.fetch_max(applied, Ordering::SeqCst);
            }
        }
    }

    /// Waits until every commit made before this call is durable. Called
    /// after a read transaction has returned, so whatever it saw is.
    pub(super) async fn settled(&self) -> Result<(), StoreError> {
        self.settled_past(self.applied.load(Ordering::SeqCst)).await
    }

    /// Waits until every commit that wrote to `table` before this call is
    /// durable (every commit, for a table not in [`TABLES`]). Called after
    /// a read of that table alone has returned: the commits it could have
    /// seen set the mark before they committed. Under load most commits
    /// write other tables (orders, the outbox), so a read of the users or
    /// the refresh families rarely waits for a sync.
    pub(super) async fn settled_table(&self, table: &str) -> Result<(), StoreError> {
        let seen = match slot(table) {
            Some(i) => self.written[i].load(Ordering::SeqCst),
            None => self.applied.load(Ordering::SeqCst),
        };
        self.settled_past(seen).await
    }

    async fn settled_past(&self, seen: u64) -> Result<(), StoreError> {
        self.check()?;
        if *self.durable.borrow() >= seen {
            return Ok(());
        }
        let mut durable = self.durable.subscribe();
        let poisoned = &self.poisoned;
        let settled = tokio::time::timeout(SETTLE_TIMEOUT, async {
            durable
                .wait_for(|d| *d >= seen || poisoned.load(Ordering::SeqCst))
                .await
                .is_ok()
        })
        .await;
        match settled {
            Ok(true) => self.check(),
            Ok(false) | Err(_) => Err(StoreError::Unavailable(
                "the store's last commits were not made durable".into(),
            )),
        }
    }
}

/// The committer's write transaction as a batch sees it: opening a table
/// records it, for [`Marks::wrote`].
pub(super) struct Tx<'a> {
    inner: &'a WriteTransaction,
    opened: Cell<u32>,
}

impl<'a> Tx<'a> {
    pub(super) fn new(inner: &'a WriteTransaction) -> Self {
        Tx {
            inner,
            opened: Cell::new(0),
        }
    }

    /// [`WriteTransaction::open_table`], recorded.
    pub(super) fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        table: TableDefinition<K, V>,
    ) -> Result<Table<'a, K, V>, TableError> {
        if let Some(i) = slot(redb::TableHandle::name(&table)) {
            self.opened.set(self.opened.get() | 1 << i);
        }
        self.inner.open_table(table)
    }

    /// The [`TABLES`] opened so far, one bit each.
    pub(super) fn opened(&self) -> u32 {
        self.opened.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    /// Whether `read` finishes within a moment (it does not wait for a
    /// sync).
    async fn finishes(read: impl Future<Output = Result<(), StoreError>>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), read)
            .await
            .is_ok_and(|r| r.is_ok())
    }

    #[test]
    fn every_table_of_the_store_is_followed() {
        use redb::TableHandle as _;
        let names = [
            super::super::USERS.name(),
            super::super::EMAILS.name(),
            super::super::TXS.name(),
            super::super::IDEMPOTENCY.name(),
            super::super::WEBHOOKS.name(),
            super::super::CHAIN_CREDITS.name(),
            super::super::FAMILIES.name(),
            super::super::CHECKPOINTS.name(),
            super::super::OUTBOX.name(),
        ];
        for name in names {
            assert!(slot(name).is_some(), "{name} is not in TABLES");
        }
    }

    /// A commit of `users` applied and not yet synced holds back a read of
    /// `users` until the sync, and not a read of another table.
    #[tokio::test]
    async fn a_read_waits_only_for_commits_to_its_table() {
        let marks = Marks::new();
        let users = 1 << slot("users").unwrap();
        let applied = marks.applied.fetch_add(1, Ordering::SeqCst) + 1;
        marks.wrote(users, applied);
        assert!(finishes(marks.settled_table("refresh_families")).await);
        assert!(!finishes(marks.settled_table("users")).await);
        assert!(!finishes(marks.settled()).await);
        // A table nobody listed waits for every commit.
        assert!(!finishes(marks.settled_table("elsewhere")).await);
        marks.durable.send_replace(applied);
        assert!(finishes(marks.settled_table("users")).await);
        assert!(finishes(marks.settled()).await);
    }

    /// A poisoned store refuses a read at once, whatever its table.
    #[tokio::test]
    async fn a_poisoned_store_refuses_every_read() {
        let marks = Marks::new();
        marks.poison();
        assert!(matches!(
            marks.settled_table("refresh_families").await,
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn opening_a_table_records_it_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        let write = db.begin_write().unwrap();
        let tx = Tx::new(&write);
        assert_eq!(tx.opened(), 0);
        tx.open_table(super::super::FAMILIES).unwrap();
        tx.open_table(TableDefinition::<&str, u64>::new("elsewhere"))
            .unwrap();
        assert_eq!(tx.opened(), 1 << slot("refresh_families").unwrap());
    }
}
