//! [`Tail`]: the events this process appended to one event log, kept in
//! memory for the in-process readers of that log (the queues of
//! [`crate::queue::log::LogSource`]), so that a reader that keeps up takes
//! each event as the publisher had it instead of reading its line back
//! from the file and parsing it once per queue (docs/BENCHMARKS.md, "The
//! event log's readers take what the process appended").
//!
//! A tail answers for an offset only where it knows the file: from where
//! this process's [`EventLog`](super::EventLog) began appending, at a line
//! it appended, or at the end of its last append. Anywhere else (a reader
//! catching up from before this process started, or past lines the tail
//! has let go of, or another writer's lines) the reader reads the file, as
//! it always could. What a tail holds was `fsync`ed first.

use crate::events::Event;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};

/// Lines a tail holds at most.
pub const MAX_LINES: usize = 10_000;
/// Bytes of lines a tail stands for at most (the events in memory are
/// about as large as their lines).
pub const MAX_BYTES: u64 = 8 << 20;

/// One line this process appended: its offsets in the file and its event
/// (`None`: a line the readers skip, one over the log's line bounds).
#[derive(Clone)]
pub struct Line {
    pub start: u64,
    pub end: u64,
    pub appended: Option<Appended>,
}

/// An event as appended: the event, and its JSON exactly as in the line
/// (no newline), which a consumer that stores the JSON (the audit
/// archive) takes instead of serializing the event again.
#[derive(Clone)]
pub struct Appended {
    pub event: Arc<Event>,
    pub json: Arc<str>,
}

/// The events appended to one log file by this process (see the module
/// doc). Shared by the log's writer and its readers through [`Tail::of`].
#[derive(Default)]
pub struct Tail {
    state: parking_lot::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Where the writer's contiguous appends began; `None` before any.
    from: Option<u64>,
    /// The end of the last append.
    end: u64,
    lines: VecDeque<Line>,
    bytes: u64,
}

/// The tails of this process, by log file, while anyone holds them.
static TAILS: LazyLock<parking_lot::Mutex<HashMap<PathBuf, Weak<Tail>>>> =
    LazyLock::new(Default::default);

impl Tail {
    /// The tail of the log at `path` (the same one for every caller
    /// naming the same file while any of them holds it).
    pub fn of(path: &Path) -> Arc<Tail> {
        let key = path
            .parent()
            .and_then(|dir| dir.canonicalize().ok())
            .and_then(|dir| path.file_name().map(|name| dir.join(name)))
            .unwrap_or_else(|| path.to_owned());
        let mut tails = TAILS.lock();
        if let Some(tail) = tails.get(&key).and_then(Weak::upgrade) {
            return tail;
        }
        tails.retain(|_, tail| tail.strong_count() > 0);
        let tail = Arc::new(Tail::default());
        tails.insert(key, Arc::downgrade(&tail));
        tail
    }

    /// Records lines appended (and synced) back to back. If they do not
    /// start where the last append ended (another writer's lines between),
    /// the tail starts again from them.
    pub fn appended(&self, lines: Vec<Line>) {
        let Some(first) = lines.first() else {
            return;
        };
        let mut state = self.state.lock();
        if state.from.is_none() || state.end != first.start {
            state.lines.clear();
            state.bytes = 0;
            state.from = Some(first.start);
        }
        for line in lines {
            state.bytes += line.end - line.start;
            state.end = line.end;
            state.lines.push_back(line);
        }
        while state.lines.len() > MAX_LINES || state.bytes > MAX_BYTES {
            let Some(old) = state.lines.pop_front() else {
                break;
            };
            state.bytes -= old.end - old.start;
        }
    }

    /// The lines from `offset` on, up to `max` of them, when the tail
    /// knows the file there (empty at the end of the last append); `None`
    /// when the reader must read the file (see the module doc).
    pub fn from(&self, offset: u64, max: usize) -> Option<Vec<Line>> {
        let state = self.state.lock();
        let from = state.from?;
        if offset < from {
            return None;
        }
        if offset == state.end {
            return Some(Vec::new());
        }
        let i = state
            .lines
            .binary_search_by_key(&offset, |line| line.start)
            .ok()?;
        Some(state.lines.range(i..).take(max).cloned().collect())
    }
}

#[cfg(test)]
mod tests;
