//! Standard output written from a thread of its own, in batches: the code
//! that logs appends its line to a shared buffer and goes on; the thread
//! takes the whole buffer every [`FLUSH_EVERY`] and writes it in one
//! `write`. No line wakes the thread, so a busy process pays one wake-up
//! and one `write` per interval instead of one per line
//! (docs/BENCHMARKS.md, "Log lines in batches").
//!
//! The buffer holds at most [`BUFFERED_BYTES`]; a line that does not fit
//! is dropped and counted ([`Batched::dropped_lines`]), so a stalled
//! reader of the output never holds the process.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How often the thread writes what has arrived.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// Bytes of lines waiting for the output at most; past it, lines are
/// dropped (and counted) rather than making the process wait.
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
    dropped: AtomicU64,
    /// Set (and signalled) when the thread should write what it holds
    /// and end.
    stop: Mutex<bool>,
    stopping: Condvar,
}

/// Stops the thread when dropped, once it has written what it holds
/// (as far as the output takes it: a stalled reader can hold this).
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Batched {
    /// Starts the thread `name`, writing to `out`.
    pub fn start<W: Write + Send + 'static>(out: W, name: &str) -> std::io::Result<(Self, Guard)> {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            stop: Mutex::new(false),
            stopping: Condvar::new(),
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

    /// Lines dropped so far because the buffer was full.
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn run<W: Write>(&self, mut out: W) {
        let mut taken = Vec::new();
        loop {
            let stop = {
                let stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
                let (stop, _) = self
                    .stopping
                    .wait_timeout_while(stop, FLUSH_EVERY, |stop| !*stop)
                    .unwrap_or_else(|e| e.into_inner());
                *stop
            };
            // Swapped, so the lines' memory is reused and the lock is
            // held only for the swap, never for the write.
            std::mem::swap(
                &mut taken,
                &mut self.waiting.lock().unwrap_or_else(|e| e.into_inner()),
            );
            if !taken.is_empty() {
                // A failed write (a closed output) loses these lines;
                // there is nowhere to report it.
                let _ = out.write_all(&taken).and_then(|()| out.flush());
                taken.clear();
            }
            if stop {
                return;
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.stopping.notify_one();
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
        let mut waiting = self.0.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.len() + line.len() > BUFFERED_BYTES {
            drop(waiting);
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            waiting.extend_from_slice(line);
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
