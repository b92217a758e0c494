//! [`LogSource`]: one queue over the embedded event log
//! (`events.ndjson`, [`crate::events::log::EventLog`]), so the consumers run
//! in process with no AWS and see what SQS would have given them
//! (docs/ARCHITECTURE.md, "After the queues").
//!
//! The queue's messages are the log's events that [`Queue::routes`] sends
//! to it, in log order. Like SQS: a received message is invisible for the
//! visibility timeout, then comes back unless deleted; a message received
//! more than the queue's maximum receives is moved to the dead-letter
//! file (`queues/<queue>.dlq.ndjson`) instead of being delivered; on the
//! FIFO audit queue a message is not handed out while an earlier one of
//! its group (the acting user) is in flight.
//!
//! Where this process appended the lines (the hub with its consumers in
//! process), they are taken from the log's [`Tail`] as the publisher had
//! them, parsed never; the file is read for the rest (what was there
//! before the process started, or what the tail has let go of).
//!
//! What is deleted is remembered as a cursor (`queues/<queue>.cursor`, a
//! byte offset: everything before it was deleted), written atomically and
//! `fsync`ed after each delete that moves it. A crash redelivers whatever
//! was after the cursor (at least once). Receive counts live in memory: a
//! restart starts them again. Memory is bounded: at most [`WINDOW`]
//! messages past the cursor are held.
//!
//! Reading the log, the cursor's `fsync`s and the dead-letter appends run
//! on tokio's blocking pool ([`LogSource::on_files`]), never on a runtime
//! worker: in the hub the consumers share the workers with the order path,
//! and a cursor write (write, `fsync`, rename, directory `fsync`) took
//! 0.3–2 ms.

use super::{Delivery, Depth, Source, SourceError};
use crate::events::log::{EventLog, Tail, LINE_BOUNDS};
use crate::events::sqs::Queue;
use crate::events::{Event, Timestamp};
use async_trait::async_trait;
use files::Files;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Messages held past the cursor at most (later ones are read once
/// earlier ones are deleted).
pub const WINDOW: usize = 10_000;
/// Bytes of the log read per refill at most.
const READ_CHUNK: u64 = 1 << 20;
/// Messages of one FIFO group one receive hands out at most, as SQS
/// FIFO does (ten per receive, the group then held until they are
/// settled). The audit archive's dedupe after a crash relies on it: a
/// redelivered message is among its stream's last ids (docs/AUDIT.md,
/// "Why this is enough").
const GROUP_MAX: usize = 10;

/// Settings of a [`LogSource`].
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    /// How long a received message stays invisible.
    pub visibility: Duration,
    /// How often the log is read again while nothing is visible.
    pub poll: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            visibility: Duration::from_secs(30),
            poll: Duration::from_millis(100),
        }
    }
}

/// One queue over the embedded event log (see the module doc).
pub struct LogSource {
    files: Arc<Files>,
    state: Arc<tokio::sync::Mutex<State>>,
}

struct State {
    /// Everything before this offset was deleted (the persisted cursor).
    cursor: u64,
    /// Bytes of the log looked at so far.
    read_to: u64,
    /// This queue's messages between the cursor and `read_to`.
    entries: VecDeque<Entry>,
    dead_letters: u64,
}

struct Entry {
    /// Offsets of its line in the log; the handle is `end`.
    start: u64,
    end: u64,
    event: Arc<Event>,
    /// The event's JSON as in its line (no newline).
    json: Arc<str>,
    receives: u32,
    invisible_until: Option<Instant>,
    deleted: bool,
}

impl Entry {
    fn group(&self) -> &str {
        self.event.user_id.as_deref().unwrap_or("system")
    }

    fn in_flight(&self, now: Instant) -> bool {
        self.invisible_until.is_some_and(|t| t > now)
    }
}

impl LogSource {
    /// The queue `queue` over `data_dir/events.ndjson`; its cursor and
    /// dead letters live in `data_dir/queues/` (made mode 0700: the
    /// events carry emails).
    pub fn open(data_dir: &Path, queue: Queue, options: LogOptions) -> std::io::Result<LogSource> {
        let dir = data_dir.join("queues");
        crate::owner_only::dir(&dir)?;
        let name = queue.name().trim_end_matches(".fifo");
        let cursor_file = dir.join(format!("{name}.cursor"));
        let dead_letter_file = dir.join(format!("{name}.dlq.ndjson"));
        let cursor = match std::fs::read_to_string(&cursor_file) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", cursor_file.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let dead_letters = match std::fs::read(&dead_letter_file) {
            Ok(bytes) => bytes.iter().filter(|&&b| b == b'\n').count() as u64,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(LogSource {
            files: Arc::new(Files {
                queue,
                options,
                tail: Tail::of(&data_dir.join(EventLog::FILE)),
                log: data_dir.join(EventLog::FILE),
                cursor_file,
                dead_letter_file,
            }),
            state: Arc::new(tokio::sync::Mutex::new(State {
                cursor,
                read_to: cursor,
                entries: VecDeque::new(),
                dead_letters,
            })),
        })
    }

    /// Runs `work` on the state, under its lock, on the blocking pool
    /// (see the module doc). A panic in `work` is the caller's.
    async fn on_files<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Files, &mut State) -> Result<T, SourceError> + Send + 'static,
    ) -> Result<T, SourceError> {
        let mut state = self.state.clone().lock_owned().await;
        let files = self.files.clone();
        self.joined(tokio::task::spawn_blocking(move || work(&files, &mut state)).await)
    }

    /// What a blocking-pool task of this source gave: its result, its
    /// panic resumed here, or an error when the pool dropped it unrun.
    fn joined<T>(
        &self,
        joined: Result<Result<T, SourceError>, tokio::task::JoinError>,
    ) -> Result<T, SourceError> {
        match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(self.files.error(format!("blocking pool: {e}"))),
        }
    }

    /// Up to `max` messages, polling the log for up to `wait`; with
    /// `not_when_held`, empty at once when every waiting message is held
    /// back by its group.
    async fn receive_until(
        &self,
        max: usize,
        wait: Duration,
        not_when_held: bool,
    ) -> Result<Vec<Delivery>, SourceError> {
        let deadline = Instant::now() + wait;
        loop {
            let (got, held) = self.receive_once(max.max(1)).await?;
            if !got.is_empty() || (not_when_held && held) {
                return Ok(got);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            tokio::time::sleep(self.files.options.poll.min(deadline - now)).await;
        }
    }

    /// One refill and take on the blocking pool: up to `max` messages,
    /// and whether, with none, some wait but are held by their group.
    ///
    /// If the caller goes away before the messages reach it (a consumer
    /// stopped while it gathers, [`crate::queue::run`]), they are made
    /// visible again, as a consumer that stops releases what it received,
    /// instead of staying in flight until their visibility ends. Their
    /// receive counts stay one higher (in memory; a restart resets them).
    async fn receive_once(&self, max: usize) -> Result<(Vec<Delivery>, bool), SourceError> {
        type Taken = Result<(Vec<Delivery>, bool), SourceError>;
        struct GiveBack {
            state: Arc<tokio::sync::Mutex<State>>,
            pending: Option<tokio::task::JoinHandle<Taken>>,
        }
        impl Drop for GiveBack {
            fn drop(&mut self) {
                let Some(pending) = self.pending.take() else {
                    return;
                };
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                let state = self.state.clone();
                runtime.spawn(async move {
                    if let Ok(Ok((got, _))) = pending.await {
                        let handles: Vec<String> = got.into_iter().map(|d| d.handle).collect();
                        let mut state = state.lock().await;
                        for entry in Files::each(&mut state, &handles) {
                            entry.invisible_until = None;
                        }
                    }
                });
            }
        }

        let mut state = self.state.clone().lock_owned().await;
        let files = self.files.clone();
        let pending = tokio::task::spawn_blocking(move || {
            files.refill(&mut state)?;
            let got = files.take(&mut state, max)?;
            let now = Instant::now();
            let waiting = |e: &Entry| !e.deleted && !e.in_flight(now);
            let held = got.is_empty() && state.entries.iter().any(waiting);
            Ok((got, held))
        });
        let mut give_back = GiveBack {
            state: self.state.clone(),
            pending: Some(pending),
        };
        let joined = match give_back.pending.as_mut() {
            Some(pending) => pending.await,
            None => unreachable!("set just above"),
        };
        give_back.pending = None;
        self.joined(joined)
    }

    /// The dead-letter file (one event per line).
    pub fn dead_letter_file(&self) -> &Path {
        &self.files.dead_letter_file
    }
}

/// The event of one line of the log, if the line is one (bounded first)
/// and `queue` takes its type ([`Queue::routes`]). The type is read
/// first without building the rest: every queue reads the whole log, and
/// most lines are for the audit queue alone, so the others skip them
/// without parsing their bodies (docs/BENCHMARKS.md, "Reads that wait
/// for their key, and the sandbox's order map").
fn parse_for(queue: Queue, line: &[u8]) -> Option<Event> {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        event_type: std::borrow::Cow<'a, str>,
    }
    LINE_BOUNDS.check(line).ok()?;
    let kind: Kind<'_> = serde_json::from_slice(line).ok()?;
    if !Queue::routes(&kind.event_type).contains(&queue) {
        return None;
    }
    serde_json::from_slice(line).ok()
}

#[async_trait]
impl Source for LogSource {
    fn queue(&self) -> Queue {
        self.files.queue
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, SourceError> {
        self.receive_until(max, wait, false).await
    }

    /// [`WINDOW`]: every message held is one receive away (at most
    /// [`GROUP_MAX`] of a FIFO group).
    fn receive_limit(&self) -> usize {
        WINDOW
    }

    /// Answers empty at once when messages wait but none can be handed
    /// out (each one's group has a message in flight).
    async fn receive_more(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, SourceError> {
        self.receive_until(max, wait, true).await
    }

    async fn delete(&self, handles: &[String]) -> Result<(), SourceError> {
        let handles = handles.to_vec();
        self.on_files(move |files, state| {
            for entry in Files::each(state, &handles) {
                entry.deleted = true;
            }
            files.advance(state)
        })
        .await
    }

    async fn release(&self, handles: &[String]) -> Result<(), SourceError> {
        let mut state = self.state.lock().await;
        for entry in Files::each(&mut state, handles) {
            entry.invisible_until = None;
        }
        Ok(())
    }

    async fn extend(&self, handles: &[String], by: Duration) -> Result<(), SourceError> {
        let mut state = self.state.lock().await;
        let until = Instant::now() + by;
        for entry in Files::each(&mut state, handles) {
            if !entry.deleted {
                entry.invisible_until = Some(until);
            }
        }
        Ok(())
    }

    async fn depth(&self) -> Result<Depth, SourceError> {
        self.on_files(|files, state| {
            files.refill(state)?;
            let now = Instant::now();
            let live = state.entries.iter().filter(|e| !e.deleted);
            let in_flight = live.clone().filter(|e| e.in_flight(now)).count() as u64;
            let all = live.count() as u64;
            Ok(Depth {
                visible: all - in_flight,
                in_flight,
                dead_letters: state.dead_letters,
            })
        })
        .await
    }

    /// The oldest time of the entries read and not deleted (waiting or in
    /// flight; what lies past [`WINDOW`] is newer).
    async fn oldest(&self) -> Option<Timestamp> {
        let state = self.state.lock().await;
        let live = state.entries.iter().filter(|e| !e.deleted);
        live.map(|e| e.event.time).min()
    }

    fn visibility(&self) -> Duration {
        self.files.options.visibility
    }
}

mod files;

#[cfg(test)]
mod tests;
