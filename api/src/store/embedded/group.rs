//! Group commit: every write of the embedded store goes through one
//! committer thread, which applies the batches that are waiting in one
//! redb transaction and makes them durable with one `fsync`.
//!
//! - Each batch is all or nothing: its conditions are checked against
//!   everything before it (in the same group too), and a batch that fails
//!   is dropped alone, as with one commit per batch. A refusal splits the
//!   group's transaction ([`commit_group`]).
//! - Transactions that end before the group does commit with
//!   [`Durability::None`] and the last one with [`Durability::Immediate`],
//!   which makes the earlier ones durable with it (redb's documented rule;
//!   an empty durable commit closes a group whose last batch failed).
//!   Nobody hears about a batch, success or failure, before that sync:
//!   "acknowledged" still means "durable", and a refusal never rests on a
//!   write that could vanish.
//! - A reader could see a batch between its commit and the group's sync,
//!   so every read waits until everything committed before it returned is
//!   durable ([`Marks::settled`]); a point read, only what was committed
//!   to its table ([`Marks::settled_table`]: each commit marks the tables
//!   it opened before it commits). Nothing is shown (and no event is
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

use super::marks::{Marks, Tx};
use super::{unavailable, StoreError};
use redb::{Database, Durability};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Counter: batches committed.
pub const BATCHES_TOTAL: &str = "nax_store_batches_total";
/// Counter: durable syncs (one per group).
pub const SYNCS_TOTAL: &str = "nax_store_syncs_total";

/// Batches in one group at most (a bound on the latency a group adds).
const MAX_GROUP: usize = 256;

/// The work of one batch inside its write transaction.
pub(super) type Work = Box<dyn Fn(&Tx<'_>) -> Result<(), StoreError> + Send>;

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The committer thread's handle: send batches, and it stops (its last
/// group done) when dropped.
pub(super) struct Committer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub(super) marks: Arc<Marks>,
}

impl Committer {
    /// `file` is the store's file, whose size after each group says
    /// whether point reads may run inline (`inline_up_to`, see
    /// [`Marks::inline_reads`]).
    pub(super) fn start(
        db: Arc<Database>,
        file: std::fs::File,
        inline_up_to: u64,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let marks = Arc::new(Marks::new());
        let fits = move || file.metadata().is_ok_and(|m| m.len() <= inline_up_to);
        marks.inline_reads.store(fits(), Ordering::Relaxed);
        let thread = std::thread::Builder::new()
            .name("nax-store-commit".into())
            .spawn({
                let marks = marks.clone();
                move || run(&db, &queue, &marks, &fits)
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

fn run(db: &Database, queue: &mpsc::Receiver<Job>, marks: &Marks, fits: &dyn Fn() -> bool) {
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
        // The first storage error (begin or commit failed, not a batch's
        // own refusal) poisons the store: redb refuses writes after one,
        // and what it committed without a sync may never reach the disk.
        let storage = marks
            .check()
            .and_then(|()| commit_group(db, &group, marks, &mut results));
        let synced = match &storage {
            // Everything committed so far is on disk.
            Ok(synced) => {
                marks
                    .durable
                    .send_replace(marks.applied.load(Ordering::SeqCst));
                *synced
            }
            Err(e) => {
                tracing::error!(error = %e, "the embedded store failed to commit; it refuses reads and writes until restarted");
                marks.poison();
                false
            }
        };
        marks.inline_reads.store(fits(), Ordering::Relaxed);
        metrics::counter!(BATCHES_TOTAL).increment(group.len() as u64);
        if synced {
            metrics::counter!(SYNCS_TOTAL).increment(1);
            marks.syncs.fetch_add(1, Ordering::SeqCst);
        }
        let mut results = results.drain(..);
        for job in group.drain(..) {
            let answer = match &storage {
                Ok(_) => results
                    .next()
                    .unwrap_or_else(|| Err(unavailable("the committer lost a batch's result"))),
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

/// Commits a group's batches in as few write transactions as it can, one
/// result per batch into `results`; `Ok(true)` when a sync made them
/// durable, `Err` for a storage failure.
///
/// While no batch refuses, the whole group is one transaction (one
/// commit: redb's commit and its copy-on-write of the pages a batch
/// touches were most of the committer's time; docs/BENCHMARKS.md, "Orders:
/// fewer commits"). A batch that refuses (or panics) may have written
/// part of itself into the open transaction, so that transaction is
/// dropped and the batches before it are applied again on their own,
/// against the same state, and committed; the refusing batch is then
/// tried first in the next transaction, where a refusal is its own and
/// changes nothing. Every round moves past at least one batch (committed
/// or refused) or shortens the run it tries, so the loop ends even if a
/// batch answers differently when tried again (a refusing batch is
/// applied twice, so a panicking one panics twice). The transaction that
/// ends the group commits with
/// [`Durability::Immediate`], the others with [`Durability::None`]; an
/// empty durable commit closes a group whose last batch refused.
fn commit_group(
    db: &Database,
    group: &[Job],
    marks: &Marks,
    results: &mut Vec<Result<(), StoreError>>,
) -> Result<bool, StoreError> {
    let (mut start, mut end) = (0, group.len());
    // Whether a commit without a sync is waiting for one.
    let mut unsynced = false;
    while start < group.len() {
        let mut tx = db.begin_write().map_err(unavailable)?;
        let written = Tx::new(&tx);
        let refused = group[start..end].iter().enumerate().find_map(|(i, job)| {
            apply_batch(&written, &job.work)
                .err()
                .map(|e| (start + i, e))
        });
        let opened = written.opened();
        match refused {
            Some((at, refusal)) if at == start => {
                drop(tx);
                results.push(Err(refusal));
                start += 1;
                end = group.len();
            }
            Some((at, _)) => {
                drop(tx);
                end = at;
            }
            None => {
                let last = end == group.len();
                tx.set_durability(if last {
                    Durability::Immediate
                } else {
                    Durability::None
                });
                let applied = marks.applied.fetch_add(1, Ordering::SeqCst) + 1;
                marks.wrote(opened, applied);
                tx.commit().map_err(unavailable)?;
                results.extend((start..end).map(|_| Ok(())));
                if last {
                    return Ok(true);
                }
                unsynced = true;
                (start, end) = (end, group.len());
            }
        }
    }
    if unsynced {
        sync(db, marks)?;
        return Ok(true);
    }
    Ok(false)
}

/// Applies one batch in `tx`: `Err` is its refusal (a panic counts as
/// one; a batch's panic is that batch's error, not the committer's end).
fn apply_batch(tx: &Tx<'_>, work: &Work) -> Result<(), StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(tx)))
        .unwrap_or_else(|_| Err(unavailable("a batch panicked while it was applied")))
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
    use std::time::Duration;

    const T: TableDefinition<&str, u64> = TableDefinition::new("t");

    fn committer() -> (tempfile::TempDir, Arc<Database>, Committer) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        let file = std::fs::File::open(dir.path().join("t.redb")).unwrap();
        let committer = Committer::start(db.clone(), file, u64::MAX).unwrap();
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
        // One transaction for the holding batch, one for the ten.
        assert_eq!(committer.marks.applied.load(Ordering::SeqCst), 2);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(read(&db, key), Some(i as u64));
        }
    }

    /// A batch that writes and then refuses leaves nothing of itself, in
    /// the middle of a group that shares one transaction, and the batches
    /// on both sides of it land.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_refused_after_writing_leaves_nothing() {
        let (_dir, db, committer) = committer();
        let committer = Arc::new(committer);
        let half_written: Work = Box::new(|tx| {
            let mut t = tx.open_table(T).map_err(unavailable)?;
            t.insert("half", 7).map_err(unavailable)?;
            Err(StoreError::Conflict(super::super::Conflict::AlreadyExists(
                "key",
            )))
        });
        let works = vec![
            insert_new("m", 1),
            insert_new("n", 2),
            half_written,
            insert_new("o", 3),
            insert_new("m", 4),
        ];
        let answers = one_group(&committer, works).await;
        assert!(answers[0].is_ok() && answers[1].is_ok() && answers[3].is_ok());
        assert!(matches!(answers[2], Err(StoreError::Conflict(_))));
        assert!(matches!(answers[4], Err(StoreError::Conflict(_))));
        assert_eq!(read(&db, "half"), None);
        assert_eq!(
            (read(&db, "m"), read(&db, "n"), read(&db, "o")),
            (Some(1), Some(2), Some(3))
        );
        assert_eq!(committer.marks.syncs.load(Ordering::SeqCst), 2);
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
