//! Group commit: every write of the embedded store goes through one
//! committer thread, which applies the batches that are waiting, appends
//! their writes to the write-ahead log as one record and syncs it once
//! (`wal.rs`), and only then shows them to readers (the overlay,
//! `layer.rs`) and answers each batch.
//!
//! - Each batch is all or nothing: its conditions are checked against
//!   everything before it (in the same group too), its writes kept apart
//!   until it succeeds, and a batch that refuses (or panics) is dropped
//!   alone.
//! - Nobody hears about a batch, success or refusal, before the sync of
//!   its group: "acknowledged" means "durable", and a refusal never rests
//!   on a write that could vanish. Readers only ever see synced writes.
//! - Every [`CHECKPOINT_EVERY`] (or once the overlay holds
//!   [`CHECKPOINT_BYTES`]) the committer starts a new log segment and
//!   hands the overlay's writes of the closed one to the checkpoint
//!   thread, which writes them into the redb file in one durable
//!   transaction (`checkpoint.rs`): the B-tree and its copy-on-write pages
//!   are paid once per checkpoint, not once per group.
//! - A storage error (a log write or sync, or a checkpoint, that failed;
//!   not a batch's own refusal) poisons the store: from then on reads and
//!   writes fail at once until the process restarts, which replays the
//!   log (docs/OPERATIONS.md, "Embedded store").
//!
//! A group is whatever queued while the previous group synced (at most
//! [`MAX_GROUP`]), so one writer alone pays one sync, and load shares
//! syncs; under load (the last group held [`gather::SIBLINGS`] batches
//! or more) a group also lingers up to [`gather::LINGER`] from its first
//! batch, so that one sync carries every batch of that time. Figures:
//! docs/BENCHMARKS.md, "REST order flow".

use super::checkpoint;
use super::emitted::Emitted;
use super::layer::{Layer, Overlay};
use super::tx::Tx;
use super::wal::Wal;
use super::{unavailable, StoreError};
use redb::Database;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Counter: batches committed.
pub const BATCHES_TOTAL: &str = "nax_store_batches_total";
/// Counter: durable syncs of the write-ahead log (one per group, one per
/// record of a group past [`RECORD_BYTES`]).
pub const SYNCS_TOTAL: &str = "nax_store_syncs_total";

/// Batches in one group at most (a bound on the latency a group adds).
const MAX_GROUP: usize = 256;

/// Largest batch, by [`Layer::bytes`] (which counts more than its log
/// record takes): DynamoDB's bound on one transaction, so a batch the
/// embedded store takes is one DynamoDB takes too. Over it, the batch is
/// refused. No route writes near it.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// A group's writes go to the log as a record once they reach this, so
/// a record stays under [`super::wal::MAX_RECORD`] whatever the group
/// holds.
const RECORD_BYTES: usize = 32 << 20;

/// How often the overlay is checkpointed into the redb file, at most
/// (the store's default for [`Start::checkpoint_every`]).
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// The overlay size that starts a checkpoint before [`CHECKPOINT_EVERY`].
const CHECKPOINT_BYTES: usize = 32 << 20;
/// The overlay size at which new groups wait for a running checkpoint
/// (when the disk is slower than the writes), bounding its memory.
const MAX_OVERLAY_BYTES: usize = 128 << 20;

/// The work of one batch, applied to its view of the store.
pub(super) type Work = Box<dyn Fn(&Tx<'_>) -> Result<(), StoreError> + Send>;

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// What the committer shares with the store's readers.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) overlay: Overlay,
    /// The decoded events of the outbox entries this process committed.
    pub(super) emitted: Emitted,
    /// Whether point reads of the file run on the calling task: the file
    /// was small enough after the last checkpoint (`mod.rs`,
    /// `INLINE_READS_UP_TO`).
    pub(super) inline_reads: AtomicBool,
    /// Set after a storage error or when the committer has stopped: from
    /// then on reads and writes fail at once.
    poisoned: AtomicBool,
    /// Batches sent to the committer, and taken by it; groups synced;
    /// checkpoints committed.
    pub(super) sent: AtomicU64,
    pub(super) taken: AtomicU64,
    pub(super) syncs: AtomicU64,
    pub(super) checkpoints: AtomicU64,
}

impl Shared {
    pub(super) fn check(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(unavailable(
                "the embedded store stopped after a storage error or shutdown",
            ));
        }
        Ok(())
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::SeqCst);
    }

    /// Batches sent and not yet taken into a group.
    #[cfg(test)]
    pub(super) fn queued(&self) -> u64 {
        self.sent
            .load(Ordering::SeqCst)
            .saturating_sub(self.taken.load(Ordering::SeqCst))
    }
}

/// The committer thread's handle: send batches, and it stops (its last
/// group done, the overlay checkpointed) when dropped.
pub(super) struct Committer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub(super) shared: Arc<Shared>,
}

/// What the committer starts from: the file, the log's first segment, the
/// next outbox position, and how to tell whether the file is small
/// enough for inline reads.
pub(super) struct Start {
    pub(super) db: Arc<Database>,
    pub(super) wal: Wal,
    pub(super) next_position: u64,
    pub(super) fits: Box<dyn Fn() -> bool + Send>,
    /// [`CHECKPOINT_EVERY`], longer in tests that want none.
    pub(super) checkpoint_every: Duration,
    /// [`gather::LINGER`]; longer in a test that makes it visible.
    pub(super) linger: Duration,
}

impl Committer {
    pub(super) fn start(start: Start) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        shared.inline_reads.store((start.fits)(), Ordering::Relaxed);
        let thread = std::thread::Builder::new()
            .name("nax-store-commit".into())
            .spawn({
                let shared = shared.clone();
                move || run(start, &queue, &shared)
            })
            .map_err(unavailable)?;
        Ok(Committer {
            jobs: Some(jobs),
            thread: Some(thread),
            shared,
        })
    }

    /// Commits `work` as one batch; returns once it is durable (or
    /// refused, which changed nothing).
    pub(super) async fn commit(&self, work: Work) -> Result<(), StoreError> {
        self.shared.check()?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or_else(|| unavailable("the store is closed"))?
            .send(Job { work, reply })
            .map_err(|_| unavailable("the store's committer has stopped"))?;
        self.shared.sent.fetch_add(1, Ordering::SeqCst);
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

/// The checkpoint thread's answer: the segment, and how its write went.
type Done = (u64, Result<(), StoreError>);

/// The committer's state between groups.
struct Committing<'a> {
    start: Start,
    shared: &'a Shared,
    /// Segment handed to the checkpoint thread and not yet answered.
    running: Option<u64>,
    last_checkpoint: Instant,
    to_checkpoint: Option<mpsc::Sender<(u64, Arc<Layer>)>>,
    done: mpsc::Receiver<Done>,
}

fn run(start: Start, queue: &mpsc::Receiver<Job>, shared: &Shared) {
    // However the thread ends, readers and writers are told.
    let _poison_on_exit = PoisonOnExit(shared);
    let (to_checkpoint, work) = mpsc::channel::<(u64, Arc<Layer>)>();
    let (answer, done) = mpsc::channel();
    let checkpointer = std::thread::Builder::new()
        .name("nax-store-checkpoint".into())
        .spawn({
            let db = start.db.clone();
            move || {
                for (segment, layer) in work {
                    let written = checkpoint::write(&db, &layer, segment);
                    if answer.send((segment, written)).is_err() {
                        break;
                    }
                }
            }
        });
    let Ok(checkpointer) = checkpointer else {
        tracing::error!("the embedded store could not start its checkpoint thread");
        return;
    };
    let mut c = Committing {
        start,
        shared,
        running: None,
        last_checkpoint: Instant::now(),
        to_checkpoint: Some(to_checkpoint),
        done,
    };
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut last_group = 0;
    loop {
        c.between_groups();
        let wait = if c.running.is_some() {
            Duration::from_millis(5)
        } else {
            c.start.checkpoint_every
        };
        let took_first = match queue.recv_timeout(wait) {
            Ok(first) => {
                group.push(first);
                Instant::now()
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        gather::rest(
            queue,
            &mut group,
            last_group,
            c.start.linger,
            took_first,
            &shared.taken,
        );
        last_group = group.len();
        let answers = shared.check().and_then(|()| c.commit_group(&group));
        if let Err(e) = &answers {
            c.fail(e);
        }
        metrics::counter!(BATCHES_TOTAL).increment(group.len() as u64);
        let mut answers = answers.map(Vec::into_iter);
        for job in group.drain(..) {
            let answer = match &mut answers {
                Ok(each) => each
                    .next()
                    .unwrap_or_else(|| Err(unavailable("the committer lost a batch's result"))),
                Err(e) => Err(unavailable(e)),
            };
            let _ = job.reply.send(answer);
        }
    }
    c.close();
    drop(c.to_checkpoint.take());
    let _ = checkpointer.join();
}

impl Committing<'_> {
    /// A storage error: poisons the store.
    fn fail(&mut self, e: &StoreError) {
        tracing::error!(error = %e, "the embedded store failed to write; it refuses reads and writes until restarted");
        self.shared.poison();
    }

    /// Takes the checkpoint thread's answers, and starts a checkpoint when
    /// one is due; waits for the running one while the overlay is full.
    fn between_groups(&mut self) {
        loop {
            match self.done.try_recv() {
                Ok(done) => self.finished(done),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return self.checkpointer_gone(),
            }
        }
        if self.shared.check().is_err() {
            return;
        }
        let overlay = &self.shared.overlay;
        if self.running.is_some() && overlay.active_bytes() >= MAX_OVERLAY_BYTES {
            match self.done.recv() {
                Ok(done) => self.finished(done),
                Err(_) => return self.checkpointer_gone(),
            }
        }
        let due = self.last_checkpoint.elapsed() >= self.start.checkpoint_every
            || overlay.active_bytes() >= CHECKPOINT_BYTES;
        if self.running.is_some() || !due || overlay.active_is_empty() {
            return;
        }
        let started = self.start.wal.rotate().map(|segment| {
            let layer = overlay
                .freeze()
                .expect("no frozen layer without a checkpoint");
            (segment, layer)
        });
        match started {
            Ok((segment, layer)) => {
                let sent = self
                    .to_checkpoint
                    .as_ref()
                    .map(|t| t.send((segment, layer)));
                if !matches!(sent, Some(Ok(()))) {
                    self.fail(&unavailable("the checkpoint thread has stopped"));
                    return;
                }
                self.running = Some(segment);
                self.last_checkpoint = Instant::now();
            }
            Err(e) => self.fail(&e),
        }
    }

    /// The checkpoint thread ended (a panic in it): nothing would move
    /// the overlay into the file any more, so the store stops.
    fn checkpointer_gone(&mut self) {
        if self.shared.check().is_ok() {
            self.fail(&unavailable("the store's checkpoint thread has stopped"));
        }
    }

    /// A checkpoint's answer: on success the frozen layer goes (the file
    /// holds it now) and so does its segment.
    fn finished(&mut self, (segment, written): Done) {
        self.running = None;
        if let Err(e) = written {
            return self.fail(&e);
        }
        self.shared.overlay.drop_frozen();
        self.shared
            .inline_reads
            .store((self.start.fits)(), Ordering::Relaxed);
        self.shared.checkpoints.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.start.wal.retire(segment) {
            // Deleted at the next open (it is checkpointed); worth a look
            // meanwhile.
            tracing::warn!(error = %e, "a checkpointed write-ahead log segment was not deleted");
        }
    }

    /// Applies a group's batches, appends and syncs their writes, shows
    /// them to readers; one answer per batch, `Err` for a storage failure.
    fn commit_group(&mut self, group: &[Job]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let file = self.start.db.begin_read().map_err(unavailable)?;
        let next_position = Cell::new(self.start.next_position);
        let mut staged = Layer::default();
        let mut emitted = Vec::new();
        let mut answers = Vec::with_capacity(group.len());
        for job in group {
            let before = next_position.get();
            let tx = Tx {
                file: &file,
                overlay: &self.shared.overlay,
                group: &staged,
                batch: RefCell::new(Layer::default()),
                next_position: &next_position,
                emitted: RefCell::new(Vec::new()),
            };
            let mut applied = apply_batch(&tx, &job.work);
            let batch = tx.batch.into_inner();
            let events = tx.emitted.into_inner();
            if applied.is_ok() && batch.bytes() > MAX_BATCH_BYTES {
                applied = Err(StoreError::Corrupt(format!(
                    "a batch of about {} bytes is over the embedded store's bound of {MAX_BATCH_BYTES}",
                    batch.bytes()
                )));
            }
            match applied {
                Ok(()) => {
                    staged.extend(batch);
                    emitted.extend(events);
                }
                Err(_) => next_position.set(before),
            }
            answers.push(applied);
            // A large group goes to the log in more than one record (each
            // below the log's bound), before its answers as ever.
            if staged.bytes() >= RECORD_BYTES {
                self.write(std::mem::take(&mut staged))?;
            }
        }
        self.write(staged)?;
        self.start.next_position = next_position.get();
        self.shared.emitted.synced(emitted);
        Ok(answers)
    }

    /// Appends and syncs `staged` as one record, then shows it to readers.
    fn write(&mut self, staged: Layer) -> Result<(), StoreError> {
        if staged.is_empty() {
            return Ok(());
        }
        self.start.wal.append(&staged)?;
        metrics::counter!(SYNCS_TOTAL).increment(1);
        self.shared.syncs.fetch_add(1, Ordering::SeqCst);
        self.shared.overlay.publish(staged);
        Ok(())
    }

    /// At the end: waits for the running checkpoint, then checkpoints what
    /// is left, so the next open has no log to replay.
    fn close(&mut self) {
        if self.running.is_some() {
            match self.done.recv() {
                Ok(done) => self.finished(done),
                Err(_) => self.checkpointer_gone(),
            }
        }
        if self.shared.check().is_err() {
            return;
        }
        if !self.shared.overlay.active_is_empty() {
            let segment = self.start.wal.segment();
            let Some(layer) = self.shared.overlay.freeze() else {
                return;
            };
            let written = checkpoint::write(&self.start.db, &layer, segment);
            self.finished((segment, written));
        }
        // Everything is in the file: no segment is left to replay.
        if self.shared.check().is_ok() {
            if let Err(e) = self.start.wal.discard() {
                tracing::warn!(error = %e, "the write-ahead log was not deleted at the stop");
            }
        }
    }
}

/// Poisons the store when the committer thread ends (the store dropped,
/// or a panic outside a batch), so that nobody waits on it.
struct PoisonOnExit<'a>(&'a Shared);

impl Drop for PoisonOnExit<'_> {
    fn drop(&mut self) {
        self.0.poison();
    }
}

/// Applies one batch: `Err` is its refusal (a panic counts as one; a
/// batch's panic is that batch's error, not the committer's end).
fn apply_batch(tx: &Tx<'_>, work: &Work) -> Result<(), StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(tx)))
        .unwrap_or_else(|_| Err(unavailable("a batch panicked while it was applied")))
}

mod gather;
pub(super) use gather::LINGER;
#[cfg(test)]
mod tests;
