//! [`EventLog`]: the embedded event publisher, an append-only NDJSON file
//! (`events.ndjson` in the data directory). A batch is written and
//! `fsync`ed before `publish` returns, so an acknowledged batch survives a
//! crash; a crash before the acknowledgement makes the relay send the batch
//! again (duplicates carry the same event id).

use super::{Event, EventPublisher, PublishError};
use async_trait::async_trait;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Append-only NDJSON event log.
pub struct EventLog {
    path: PathBuf,
    file: Arc<parking_lot::Mutex<std::fs::File>>,
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
            path,
            file: Arc::new(parking_lot::Mutex::new(file)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every event in a log file, in order (for tests and tools).
    pub fn read_all(path: &Path) -> std::io::Result<Vec<Event>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        // A crash can leave a torn last line; everything before it counts.
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }
}

#[async_trait]
impl EventPublisher for EventLog {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        let mut buf = Vec::with_capacity(events.len() * 256);
        for e in events {
            serde_json::to_writer(&mut buf, e)
                .map_err(|e| PublishError::Unavailable(e.to_string()))?;
            buf.push(b'\n');
        }
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock();
            f.write_all(&buf)?;
            f.sync_data()
        })
        .await
        .map_err(|e| PublishError::Unavailable(e.to_string()))?
        .map_err(|e| PublishError::Unavailable(e.to_string()))
    }
}
