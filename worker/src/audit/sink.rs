//! [`Sink`]: where archive objects live. [`DirSink`] keeps them as files
//! under a directory (the default, `<data_dir>/audit/`); `S3Sink`
//! (`audit/s3.rs`) in an S3 bucket. Both write an object whole or not at
//! all and read it back within [`MAX_OBJECT_BYTES`](super::record::MAX_OBJECT_BYTES).

use async_trait::async_trait;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a sink call failed.
#[derive(Debug, Error)]
pub enum SinkError {
    /// The sink could not be reached or refused the call; retry later.
    #[error("audit sink unavailable: {0}")]
    Unavailable(String),
    /// The object is larger than the read allows.
    #[error("object {key} is larger than {max} bytes")]
    TooLarge { key: String, max: u64 },
}

/// Object storage of the archive, keyed by `audit/...` paths.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Stores `body` under `key` (replacing an object already there:
    /// a retried PUT writes the same bytes).
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SinkError>;

    /// The object under `key`, `None` when there is none; refuses one
    /// over `max` bytes.
    async fn get(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, SinkError>;

    /// The keys `k` with `start_after < k < before`, in key order, at
    /// most `limit`.
    async fn list(
        &self,
        start_after: &str,
        before: &str,
        limit: usize,
    ) -> Result<Vec<String>, SinkError>;
}

/// Objects as files: `<root>/<key>` (see the module doc).
#[derive(Debug, Clone)]
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// A sink under `root` (created on the first write). The default
    /// root is `<data_dir>/audit/` ([`DirSink::in_data_dir`]); keys
    /// start with `audit/`, so files are `<root>/audit/YYYY/...`.
    pub fn new(root: impl Into<PathBuf>) -> DirSink {
        DirSink { root: root.into() }
    }

    /// The default sink of a data directory: `<data_dir>/audit/`.
    pub fn in_data_dir(data_dir: &Path) -> DirSink {
        DirSink::new(data_dir.join("audit"))
    }

    /// Where `key`'s file is; refuses keys that could leave the root.
    fn path(&self, key: &str) -> Result<PathBuf, SinkError> {
        let fine = !key.is_empty()
            && key
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != ".." && !p.contains('\\'));
        if !fine {
            return Err(SinkError::Unavailable(format!("invalid key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

fn io(context: &str, e: std::io::Error) -> SinkError {
    SinkError::Unavailable(format!("{context}: {e}"))
}

/// Writes `body` to a temporary file beside `path`, fsyncs it, renames
/// it over `path` and fsyncs the directory.
fn write_atomically(path: &Path, body: &[u8]) -> Result<(), SinkError> {
    let dir = path
        .parent()
        .ok_or_else(|| SinkError::Unavailable("key without a directory".to_owned()))?;
    std::fs::create_dir_all(dir).map_err(|e| io("create directory", e))?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
        file.write_all(body).map_err(|e| io("write", e))?;
        file.sync_all().map_err(|e| io("fsync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("rename", e))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("fsync directory", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn read_bounded(path: &Path, key: &str, max: u64) -> Result<Option<Vec<u8>>, SinkError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open", e)),
    };
    let mut body = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut body)
        .map_err(|e| io("read", e))?;
    if body.len() as u64 > max {
        return Err(SinkError::TooLarge {
            key: key.to_owned(),
            max,
        });
    }
    Ok(Some(body))
}

/// Every key under `root` (files named `*.ndjson.gz`), unsorted.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), SinkError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("read directory", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io("read directory", e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io("file type", e))?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let key = rel.to_string_lossy().replace('\\', "/");
            if key.ends_with(".ndjson.gz") {
                out.push(key);
            }
        }
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SinkError::Unavailable(format!("file task: {e}")))?
}

#[async_trait]
impl Sink for DirSink {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SinkError> {
        let path = self.path(key)?;
        blocking(move || write_atomically(&path, &body)).await
    }

    async fn get(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, SinkError> {
        let path = self.path(key)?;
        let key = key.to_owned();
        blocking(move || read_bounded(&path, &key, max)).await
    }

    async fn list(
        &self,
        start_after: &str,
        before: &str,
        limit: usize,
    ) -> Result<Vec<String>, SinkError> {
        let root = self.root.clone();
        let (start_after, before) = (start_after.to_owned(), before.to_owned());
        blocking(move || {
            let mut keys = Vec::new();
            walk(&root, &root, &mut keys)?;
            keys.retain(|k| *k > start_after && *k < before);
            keys.sort();
            keys.truncate(limit);
            Ok(keys)
        })
        .await
    }
}
