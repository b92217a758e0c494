//! Group commit: every write of the embedded store goes through one
//! committer thread, which applies the batches that are waiting as
//! separate redb transactions and makes them durable with one `fsync`.
//!
//! - Each batch is its own transaction: its conditions are checked
//!   against everything committed before it (in the same group too), and a
//!   batch that fails is dropped alone, as with one commit per batch.
//! - The batches of a group commit with [`Durability::None`] and the last
//!   one with [`Durability::Immediate`], which makes the earlier ones
//!   durable with it (redb's documented rule; an empty durable commit
//!   closes a group whose last batch failed). Nobody hears about a batch,
//!   success or failure, before that sync: "acknowledged" still means
//!   "durable", and a refusal never rests on a write that could vanish.
//! - A reader could see a batch between its commit and the group's sync,
//!   so every read waits until everything committed before it returned is
//!   durable ([`Marks::settled`]): nothing is shown (and no event is
//!   published from the outbox) that a crash could take back.
//!
//! - A storage error (a commit or sync that failed, not a batch's own
//!   refusal) poisons the store: redb refuses writes after one, and what
//!   it committed without a sync may never reach the disk, so from then
//!   on reads and writes fail at once until the process restarts
//!   (docs/OPERATIONS.md, "Embedded store").
//!
//! A group is whatever queued while the previous group synced (at most
//! [`MAX_GROUP`]), so one writer alone pays one sync, as before, and load
//! shares syncs. Figures: docs/BENCHMARKS.md, "REST order flow".

use super::{unavailable, StoreError};
use redb::{Database, Durability, WriteTransaction};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Counter: batches committed.
pub const BATCHES_TOTAL: &str = "nax_store_batches_total";
/// Counter: durable syncs (one per group).
pub const SYNCS_TOTAL: &str = "nax_store_syncs_total";

/// Batches in one group at most (a bound on the latency a group adds).
const MAX_GROUP: usize = 256;

/// How long a read waits for the sync of what it saw before it gives up
/// with [`StoreError::Unavailable`] (only when the disk stops answering).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The work of one batch inside its write transaction.
pub(super) type Work = Box<dyn FnOnce(&WriteTransaction) -> Result<(), StoreError> + Send>;

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Counts of commits: `applied` is raised before each commit, `durable`
/// to it after each sync.
pub(super) struct Marks {
    applied: AtomicU64,
    durable: watch::Sender<u64>,
    /// Batches sent to the committer, and taken by it.
    sent: AtomicU64,
    taken: AtomicU64,
    /// Groups synced.
    syncs: AtomicU64,
    /// Set after a storage error or when the committer has stopped: from
    /// then on reads and writes fail at once.
    poisoned: AtomicBool,
}

impl Marks {
    /// Batches sent and not yet taken into a group.
    #[cfg(test)]
    fn queued(&self) -> u64 {
        self.sent
            .load(Ordering::SeqCst)
            .saturating_sub(self.taken.load(Ordering::SeqCst))
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(unavailable(
                "the embedded store stopped after a storage error or shutdown",
            ));
        }
        Ok(())
    }

    fn poison(&self) {
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

/// The committer thread's handle: send batches, and it stops (its last
/// group done) when dropped.
pub(super) struct Committer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub(super) marks: Arc<Marks>,
}

impl Committer {
    pub(super) fn start(db: Arc<Database>) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let marks = Arc::new(Marks {
            applied: AtomicU64::new(0),
            durable: watch::Sender::new(0),
            sent: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
        });
        let thread = std::thread::Builder::new()
            .name("nax-store-commit".into())
            .spawn({
                let marks = marks.clone();
                move || run(&db, &queue, &marks)
            })
            .map_err(unavailable)?;
        Ok(Committer {
            jobs: Some(jobs),
            thread: Some(thread),
            marks,
        })
    }

    /// Commits `work` as one transaction; returns once it is durable (or
    /// refused, which changed nothing).
    pub(super) async fn commit(&self, work: Work) -> Result<(), StoreError> {
        self.marks.check()?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or_else(|| unavailable("the store is closed"))?
            .send(Job { work, reply })
            .map_err(|_| unavailable("the store's committer has stopped"))?;
        self.marks.sent.fetch_add(1, Ordering::SeqCst);
        answer
            .await
            .map_err(|_| unavailable("the store's committer has stopped"))?
    }
}

impl Drop for Committer {
    /// Closes the queue and waits for the thread, so that the file is
    /// released when the store is (a reopen in the same process works).
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(db: &Database, queue: &mpsc::Receiver<Job>, marks: &Marks) {
    // However the thread ends, readers waiting on it are told.
    let _poison_on_exit = PoisonOnExit(marks);
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut results = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = queue.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        marks.taken.fetch_add(group.len() as u64, Ordering::SeqCst);
        let last = group.len() - 1;
        // Whether a commit without a sync is waiting for one, and whether
        // any fsync happened.
        let (mut unsynced, mut synced_once) = (false, false);
        // The first storage error (begin or commit failed, not a batch's
        // own refusal) poisons the store: redb refuses writes after one,
        // and what it committed without a sync may never reach the disk.
        let mut storage: Result<(), StoreError> = marks.check();
        for (i, job) in group.iter_mut().enumerate() {
            let work = std::mem::replace(&mut job.work, Box::new(|_| Ok(())));
            if storage.is_err() {
                results.push(Ok(()));
                continue;
            }
            let durable = i == last;
            let durability = if durable {
                Durability::Immediate
            } else {
                Durability::None
            };
            match commit_one(db, work, durability, marks) {
                Ok(result) => {
                    if result.is_ok() {
                        unsynced = !durable;
                        synced_once |= durable;
                    }
                    results.push(result);
                }
                Err(e) => {
                    storage = Err(e);
                    results.push(Ok(()));
                }
            }
        }
        if storage.is_ok() && unsynced {
            storage = sync(db, marks);
            synced_once |= storage.is_ok();
        }
        match &storage {
            // Everything committed so far is on disk.
            Ok(()) => {
                marks
                    .durable
                    .send_replace(marks.applied.load(Ordering::SeqCst));
            }
            Err(e) => {
                tracing::error!(error = %e, "the embedded store failed to commit; it refuses reads and writes until restarted");
                marks.poison();
            }
        }
        metrics::counter!(BATCHES_TOTAL).increment(group.len() as u64);
        if synced_once {
            metrics::counter!(SYNCS_TOTAL).increment(1);
            marks.syncs.fetch_add(1, Ordering::SeqCst);
        }
        for (job, result) in group.drain(..).zip(results.drain(..)) {
            let answer = match &storage {
                Ok(()) => result,
                Err(e) => Err(unavailable(e)),
            };
            let _ = job.reply.send(answer);
        }
    }
}

/// Poisons the marks when the committer thread ends (the store dropped,
/// or a panic outside a batch), so that no reader waits for a sync that
/// will not come.
struct PoisonOnExit<'a>(&'a Marks);

impl Drop for PoisonOnExit<'_> {
    fn drop(&mut self) {
        self.0.poison();
    }
}

/// Commits one batch: `Err` for a storage failure, `Ok(Err)` for the
/// batch's own refusal (its transaction dropped: nothing of it lands).
fn commit_one(
    db: &Database,
    work: Work,
    durability: Durability,
    marks: &Marks,
) -> Result<Result<(), StoreError>, StoreError> {
    let mut tx = db.begin_write().map_err(unavailable)?;
    tx.set_durability(durability);
    // A panic is that batch's error, not the end of the committer.
    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&tx)))
        .unwrap_or_else(|_| Err(unavailable("a batch panicked while it was applied")));
    if let Err(refused) = applied {
        return Ok(Err(refused));
    }
    marks.applied.fetch_add(1, Ordering::SeqCst);
    tx.commit().map_err(unavailable)?;
    Ok(Ok(()))
}

/// An empty durable commit: makes the group's earlier commits durable.
fn sync(db: &Database, marks: &Marks) -> Result<(), StoreError> {
    let mut tx = db.begin_write().map_err(unavailable)?;
    tx.set_durability(Durability::Immediate);
    marks.applied.fetch_add(1, Ordering::SeqCst);
    tx.commit().map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableTable, TableDefinition};

    const T: TableDefinition<&str, u64> = TableDefinition::new("t");

    fn committer() -> (tempfile::TempDir, Arc<Database>, Committer) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        let committer = Committer::start(db.clone()).unwrap();
        (dir, db, committer)
    }

    /// Inserts `key` unless it is there (a batch with a condition).
    fn insert_new(key: &'static str, value: u64) -> Work {
        Box::new(move |tx| {
            let mut t = tx.open_table(T).map_err(unavailable)?;
            if t.get(key).map_err(unavailable)?.is_some() {
                return Err(StoreError::Conflict(super::super::Conflict::AlreadyExists(
                    "key",
                )));
            }
            t.insert(key, value).map_err(unavailable)?;
            Ok(())
        })
    }

    fn read(db: &Database, key: &str) -> Option<u64> {
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(T).ok()?;
        t.get(key).unwrap().map(|v| v.value())
    }

    /// The first batch holds the committer until the others are queued, so
    /// they make one group, checked by the count of syncs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_queued_during_a_commit_share_one_sync() {
        let (_dir, db, committer) = committer();
        let committer = Arc::new(committer);
        let keys = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        let works = (0..).zip(keys).map(|(i, key)| insert_new(key, i)).collect();
        for answer in one_group(&committer, works).await {
            answer.unwrap();
        }
        assert_eq!(committer.marks.syncs.load(Ordering::SeqCst), 2);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(read(&db, key), Some(i as u64));
        }
    }

    /// In one group, a batch sees the batches before it, and a refused
    /// batch is dropped alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_batch_in_a_group_leaves_the_others() {
        let (_dir, db, committer) = committer();
        let committer = Arc::new(committer);
        let works = [("x", 1), ("x", 2), ("y", 3)].map(|(k, v)| insert_new(k, v));
        let answers = one_group(&committer, works.into()).await;
        assert!(answers[0].is_ok());
        assert!(matches!(answers[1], Err(StoreError::Conflict(_))));
        assert!(answers[2].is_ok());
        assert_eq!(committer.marks.syncs.load(Ordering::SeqCst), 2);
        assert_eq!((read(&db, "x"), read(&db, "y")), (Some(1), Some(3)));
    }

    /// A group whose last batch is refused still syncs the ones before it
    /// (an empty durable commit), and a panicking batch is refused alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_ending_in_a_refusal_or_a_panic_still_syncs() {
        let (dir, db, committer) = committer();
        let committer = Arc::new(committer);
        let works: Vec<Work> = vec![
            insert_new("p", 1),
            Box::new(|_| panic!("a bug in a batch")),
            insert_new("p", 2),
        ];
        let answers = one_group(&committer, works).await;
        assert!(answers[0].is_ok());
        assert!(matches!(answers[1], Err(StoreError::Unavailable(_))));
        assert!(matches!(answers[2], Err(StoreError::Conflict(_))));
        // The committer is alive, and what it acknowledged is on disk.
        committer.commit(insert_new("q", 9)).await.unwrap();
        drop(committer);
        drop(db);
        let reopened = Database::create(dir.path().join("t.redb")).unwrap();
        assert_eq!(
            (read(&reopened, "p"), read(&reopened, "q")),
            (Some(1), Some(9))
        );
    }

    /// A reader that saw a commit not yet synced fails as soon as the
    /// store is poisoned (a storage error, or the committer gone), instead
    /// of waiting out the timeout; writes fail at once too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poisoned_store_fails_waiting_readers_and_writes_at_once() {
        let (_dir, _db, committer) = committer();
        let committer = Arc::new(committer);
        // A commit applied and not yet synced, as between a batch's
        // commit and its group's fsync.
        committer.marks.applied.fetch_add(1, Ordering::SeqCst);
        let reader = {
            let committer = committer.clone();
            tokio::spawn(async move { committer.marks.settled().await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!reader.is_finished(), "the reader waits for the sync");
        let started = std::time::Instant::now();
        committer.marks.poison();
        let answer = reader.await.unwrap();
        assert!(matches!(answer, Err(StoreError::Unavailable(_))));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(matches!(
            committer.commit(insert_new("z", 1)).await,
            Err(StoreError::Unavailable(_))
        ));
    }

    /// Holds the committer in a first batch until `works` are queued, in
    /// order, behind it, so that they make one group; returns their
    /// answers.
    async fn one_group(
        committer: &Arc<Committer>,
        works: Vec<Work>,
    ) -> Vec<Result<(), StoreError>> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let committer = committer.clone();
            tokio::spawn(async move {
                committer
                    .commit(Box::new(move |_| {
                        held.recv().unwrap();
                        Ok(())
                    }))
                    .await
            })
        };
        taken(committer, 1).await;
        let mut answers = Vec::new();
        for work in works {
            let c = committer.clone();
            answers.push(tokio::spawn(async move { c.commit(work).await }));
            while committer.marks.queued() < answers.len() as u64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        futures_results(answers).await
    }

    /// Waits until the committer has taken `n` batches.
    async fn taken(committer: &Committer, n: u64) {
        while committer.marks.taken.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn futures_results(
        handles: Vec<tokio::task::JoinHandle<Result<(), StoreError>>>,
    ) -> Vec<Result<(), StoreError>> {
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
