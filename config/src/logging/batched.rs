//! Standard output written from a thread of its own, in batches: the code
//! that logs appends its line to a shared buffer and goes on; the first
//! line into an empty buffer wakes the thread, which lets the lines of
//! the next [`FLUSH_EVERY`] gather and writes them all in one `write`. A
//! busy process pays one wake-up and one `write` per interval instead of
//! one per line (docs/BENCHMARKS.md, "Log lines in batches"); a quiet one
//! none.
//!
//! The buffer holds at most [`BUFFERED_BYTES`] waiting (beside the batch
//! being written); a line that does not fit is dropped and counted
//! ([`Batched::dropped_lines`]), so a stalled reader of the output never
//! holds the process. Lines a failed write loses are counted too.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long the thread lets lines gather before it writes them.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// Bytes of lines waiting for the output at most (beside the batch being
/// written); past it, lines are dropped (and counted) rather than making
/// the process wait.
pub const BUFFERED_BYTES: usize = 4 << 20;

/// The writer ([`tracing_subscriber::fmt::MakeWriter`]) of a batching
/// thread; cheap to clone.
#[derive(Clone)]
pub struct Batched {
    shared: Arc<Shared>,
}

struct Shared {
    /// The lines not yet taken by the thread.
    waiting: Mutex<Vec<u8>>,
    /// Signalled when `waiting` stops being empty, and at the stop.
    arrived: Condvar,
    /// Set (under `waiting`'s lock) when the thread should write what it
    /// holds and end.
    stop: AtomicBool,
    dropped: AtomicU64,
}

/// Stops the thread when dropped, once it has written what it holds
/// (as far as the output takes it: a stalled reader can hold this).
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A batch's buffer larger than this after a burst is given back rather
/// than kept for the next batch.
const KEEP_CAPACITY: usize = 256 << 10;

impl Batched {
    /// Starts the thread `name`, writing to `out`.
    pub fn start<W: Write + Send + 'static>(out: W, name: &str) -> std::io::Result<(Self, Guard)> {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || shared.run(out))?
        };
        Ok((
            Batched {
                shared: shared.clone(),
            },
            Guard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Lines dropped so far: the buffer was full, or the output failed.
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The thread: sleeps until a line arrives (no wake-ups while the
    /// process is quiet), lets the lines of the next [`FLUSH_EVERY`]
    /// gather, then writes them all.
    fn run<W: Write>(&self, mut out: W) {
        let mut taken = Vec::new();
        loop {
            let done = {
                let waiting = self.lock();
                let waiting = self
                    .arrived
                    .wait_while(waiting, |w| {
                        w.is_empty() && !self.stop.load(Ordering::Relaxed)
                    })
                    .unwrap_or_else(|e| e.into_inner());
                // Only a stop ends the wait with nothing waiting.
                waiting.is_empty()
            };
            if done {
                return;
            }
            if !self.stop.load(Ordering::Relaxed) {
                std::thread::sleep(FLUSH_EVERY);
            }
            // Swapped, so the lock is held only for the swap, never for
            // the write.
            std::mem::swap(&mut taken, &mut self.lock());
            if let Err(_closed) = out.write_all(&taken).and_then(|()| out.flush()) {
                // There is nowhere to report it; the lines count as
                // dropped.
                let lines = taken.iter().filter(|&&b| b == b'\n').count();
                self.dropped.fetch_add(lines as u64, Ordering::Relaxed);
            }
            taken.clear();
            if taken.capacity() > KEEP_CAPACITY {
                taken = Vec::new();
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        {
            // Under the lock, so the thread cannot miss it between its
            // check and its wait.
            let _waiting = self.shared.lock();
            self.shared.stop.store(true, Ordering::Relaxed);
        }
        self.shared.arrived.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One line's writer: the formatters write a whole line with one
/// `write_all`, which appends it whole (or drops it whole).
pub struct Line<'a>(&'a Shared);

impl Write for Line<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut waiting = self.0.lock();
        if waiting.len() + line.len() > BUFFERED_BYTES {
            drop(waiting);
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            let first = waiting.is_empty();
            waiting.extend_from_slice(line);
            drop(waiting);
            if first {
                self.0.arrived.notify_one();
            }
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Batched {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.shared)
    }
}

#[cfg(test)]
mod tests;
