//! [`EventLog`]: the embedded event publisher, an append-only NDJSON file
//! (`events.ndjson` in the data directory). A batch is written and
//! `fsync`ed before `publish` returns, so an acknowledged batch survives a
//! crash; a crash before the acknowledgement makes the relay send the batch
//! again (duplicates carry the same event id). What a batch appended is
//! then handed to this process's readers of the log through its [`Tail`].

use super::{Event, EventPublisher, PublishError};
use async_trait::async_trait;
use inbound::JsonBounds;
use std::io::{BufRead, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
pub use tail::{Appended, Line, Tail};

mod tail;

/// Bounds of one line of the log, checked before it is parsed (see
/// docs/SECURITY.md, "Input bounds"): an event is a few hundred bytes of
/// shallow JSON; a line over these is skipped like a torn one, and is
/// never read whole.
pub const LINE_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 1024 * 1024,
    max_depth: 16,
    max_elements: 65_536,
};

/// Append-only NDJSON event log.
pub struct EventLog {
    path: PathBuf,
    file: Arc<parking_lot::Mutex<std::fs::File>>,
    tail: Arc<Tail>,
}

impl EventLog {
    /// File name inside the data directory.
    pub const FILE: &'static str = "events.ndjson";

    /// Opens (creating) `dir/events.ndjson` for appending; the directory
    /// ends at mode 0700 and the file at 0600 ([`crate::owner_only`]): the
    /// events carry emails.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        crate::owner_only::dir(dir)?;
        let path = dir.join(Self::FILE);
        let file =
            crate::owner_only::open(&path, std::fs::OpenOptions::new().create(true).append(true))?;
        Ok(EventLog {
            tail: Tail::of(&path),
            path,
            file: Arc::new(parking_lot::Mutex::new(file)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every event in a log file, in order (for tests and tools). Lines
    /// that do not read as an event are skipped: a crash can leave a torn
    /// last line, and a line over [`LINE_BOUNDS`] is not one this log
    /// wrote.
    pub fn read_all(path: &Path) -> std::io::Result<Vec<Event>> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        read_events(std::io::BufReader::new(file))
    }
}

/// The events of an NDJSON stream (see [`EventLog::read_all`]).
pub fn read_events(mut reader: impl BufRead) -> std::io::Result<Vec<Event>> {
    let mut events = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = LINE_BOUNDS.max_bytes as u64 + 1;
        if std::io::Read::take(&mut reader, limit).read_until(b'\n', &mut line)? == 0 {
            return Ok(events);
        }
        if line.last() != Some(&b'\n') && line.len() as u64 == limit {
            skip_line(&mut reader)?;
            continue;
        }
        if LINE_BOUNDS.check(&line).is_err() {
            continue;
        }
        if let Ok(event) = serde_json::from_slice(&line) {
            events.push(event);
        }
    }
}

/// Consumes the rest of the current line without keeping it.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

#[async_trait]
impl EventPublisher for EventLog {
    async fn publish(&self, events: &[Arc<Event>]) -> Result<(), PublishError> {
        let mut buf = Vec::with_capacity(events.len() * 256);
        // Each line's end in `buf`, and its event when readers take it.
        let mut lines = Vec::with_capacity(events.len());
        for e in events {
            let start = buf.len();
            serde_json::to_writer(&mut buf, &**e)
                .map_err(|e| PublishError::Unavailable(e.to_string()))?;
            let json = std::str::from_utf8(&buf[start..]).ok().map(Arc::from);
            buf.push(b'\n');
            let readable = LINE_BOUNDS.check(&buf[start..]).is_ok();
            let appended = json.filter(|_| readable).map(|json| Appended {
                event: e.clone(),
                json,
            });
            lines.push((buf.len() as u64, appended));
        }
        let file = self.file.clone();
        let tail = self.tail.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock();
            f.write_all(&buf)?;
            f.sync_data()?;
            // Opened for appending: the position is the end of this write.
            let start = f.stream_position()? - buf.len() as u64;
            let mut offset = start;
            let lines = lines
                .into_iter()
                .map(|(end, appended)| {
                    let line = Line {
                        start: offset,
                        end: start + end,
                        appended,
                    };
                    offset = line.end;
                    line
                })
                .collect();
            tail.appended(lines);
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(|e| PublishError::Unavailable(e.to_string()))?
        .map_err(|e| PublishError::Unavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","type":"t","version":1,"time":"2024-01-01T00:00:00Z","user_id":null,"correlation_id":"c","data":{{}}}}"#
        )
    }

    #[test]
    fn lines_over_the_bounds_are_skipped_and_never_read_whole() {
        let deep = format!(
            r#"{{"id":"d","type":"t","version":1,"time":"2024-01-01T00:00:00Z","user_id":null,"correlation_id":"c","data":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        let huge = format!("{{\"id\":\"{}\"}}", "x".repeat(3 * LINE_BOUNDS.max_bytes));
        let text = [line("a"), deep, huge, line("b"), "{\"torn".to_owned()].join("\n");
        let ids: Vec<String> = read_events(text.as_bytes())
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
