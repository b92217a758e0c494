//! [`Marks`]: how far the embedded store's commits have got (applied,
//! made durable), so that a read waits until what it saw is on disk
//! (the committer's side is in `group.rs`).

use super::{unavailable, StoreError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How long a read waits for the sync of what it saw before it gives up
/// with [`StoreError::Unavailable`] (only when the disk stops answering).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts of commits: `applied` is raised before each commit, `durable`
/// to it after each sync.
pub(super) struct Marks {
    pub(super) applied: AtomicU64,
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

    /// Waits until every commit made before this call is durable. Called
    /// after a read transaction has returned, so whatever it saw is.
    pub(super) async fn settled(&self) -> Result<(), StoreError> {
        let seen = self.applied.load(Ordering::SeqCst);
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
