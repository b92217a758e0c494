//! When a group closes: what queued behind its first batch, and under
//! load what arrives while it lingers (docs/ARCHITECTURE.md, "Embedded
//! store").

use super::{Job, MAX_GROUP};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a group under load waits for more batches before its sync
/// ([`linger_after`]), counted from when the committer took its first
/// batch: one sync then carries every batch of that millisecond (the
/// syncs, the kernel's work and the wake-ups per batch shrink several
/// times over). The cost is up to this much more latency for a write
/// under load. Figures: docs/BENCHMARKS.md, "A group commit that lingers
/// under load, and outbox events not parsed again".
pub(in super::super) const LINGER: Duration = Duration::from_millis(1);
/// The last group's batches at which the next one lingers.
pub(super) const SIBLINGS: usize = 4;

/// Completes the group that `group[0]` (taken at `first`) begins: takes
/// what queued, then, after a last group of [`SIBLINGS`] or more, sleeps
/// until `linger` after `first` and takes what queued meanwhile, counting
/// every batch in `taken`. Asleep, not waiting on the queue: batches
/// that arrive meanwhile wake nobody.
pub(super) fn rest(
    queue: &mpsc::Receiver<Job>,
    group: &mut Vec<Job>,
    last_group: usize,
    linger: Duration,
    first: Instant,
    taken: &AtomicU64,
) {
    drain(queue, group);
    taken.fetch_add(group.len() as u64, Ordering::SeqCst);
    let wait = linger_after(last_group, linger).saturating_sub(first.elapsed());
    if !wait.is_zero() && group.len() < MAX_GROUP {
        std::thread::sleep(wait);
        let before = group.len();
        drain(queue, group);
        taken.fetch_add((group.len() - before) as u64, Ordering::SeqCst);
    }
}

/// Takes what queued, up to [`MAX_GROUP`] in all.
fn drain(queue: &mpsc::Receiver<Job>, group: &mut Vec<Job>) {
    while group.len() < MAX_GROUP {
        match queue.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
}

/// How long the group that begins now waits for more batches before its
/// sync, given how many batches the last group held: `linger`
/// ([`LINGER`]) when that was at least [`SIBLINGS`] (the store is under
/// load, and lingering shares one sync among the batches that arrive
/// meanwhile), else not at all (a lone writer, or a light load, pays no
/// wait, but for the one group that follows a group of [`SIBLINGS`]).
/// Under a steady load the lingering groups keep filling to [`SIBLINGS`]
/// and so keep lingering; once the load falls below about [`SIBLINGS`]
/// batches per [`LINGER`], the groups shrink and stop lingering.
fn linger_after(last_group: usize, linger: Duration) -> Duration {
    if last_group >= SIBLINGS {
        linger
    } else {
        Duration::ZERO
    }
}
