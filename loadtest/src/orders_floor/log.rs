//! The floor's durable log, `orders.ndjson`: the group commit of the
//! hub's store reduced to one `write` and one `fdatasync` per group.

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Most records in one group commit.
const MAX_GROUP: usize = 256;

/// The durable log: one writer thread, one `write` and one `fdatasync`
/// per group of records; after the first failed write or sync it
/// refuses every record (as the hub's store does).
pub(super) struct Log {
    jobs: mpsc::Sender<(Vec<u8>, oneshot::Sender<std::io::Result<()>>)>,
    pub(super) records: Arc<AtomicU64>,
    pub(super) syncs: Arc<AtomicU64>,
}

impl Log {
    pub(super) fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("orders.ndjson"))?;
        // The file's directory entry is durable before any record is.
        std::fs::File::open(dir)?.sync_all()?;
        let (jobs, queue) = mpsc::channel::<(Vec<u8>, oneshot::Sender<std::io::Result<()>>)>();
        let (records, syncs) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let counts = (records.clone(), syncs.clone());
        std::thread::Builder::new()
            .name("orders-floor-log".into())
            .spawn(move || {
                let mut group = Vec::with_capacity(MAX_GROUP);
                let mut bytes = Vec::new();
                // After a failed write or sync nothing more is written: a
                // partial line or a lost page could sit under the next one.
                let mut failed: Option<String> = None;
                while let Ok(first) = queue.recv() {
                    group.push(first);
                    while group.len() < MAX_GROUP {
                        match queue.try_recv() {
                            Ok(job) => group.push(job),
                            Err(_) => break,
                        }
                    }
                    bytes.clear();
                    for (line, _) in &group {
                        bytes.extend_from_slice(line);
                    }
                    if failed.is_none() {
                        match file.write_all(&bytes).and_then(|()| file.sync_data()) {
                            Ok(()) => {
                                counts.0.fetch_add(group.len() as u64, Ordering::Relaxed);
                                counts.1.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => failed = Some(format!("the log failed: {e}")),
                        }
                    }
                    for (_, reply) in group.drain(..) {
                        let answer = match &failed {
                            None => Ok(()),
                            Some(e) => Err(std::io::Error::other(e.clone())),
                        };
                        let _ = reply.send(answer);
                    }
                }
            })?;
        Ok(Log {
            jobs,
            records,
            syncs,
        })
    }

    /// Appends `record` as one line; returns once it is on disk.
    pub(super) async fn append(&self, record: &Value) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((line, reply))
            .map_err(|_| std::io::Error::other("the log writer stopped"))?;
        answer
            .await
            .map_err(|_| std::io::Error::other("the log writer stopped"))?
    }
}
