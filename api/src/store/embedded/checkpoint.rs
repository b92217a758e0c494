//! Checkpoints: the writes of a write-ahead log segment written into the
//! redb file in one durable transaction, which also records the segment
//! as checkpointed; then the segment is retired (`wal.rs`). At open, the segments
//! not yet checkpointed (a crash, or a checkpoint cut short) are replayed
//! into the file the same way before anything else happens.

use super::layer::Layer;
use super::table::{self, Table, ALL, CHECKPOINTED, META};
use super::wal;
use super::{unavailable, StoreError};
use redb::{Database, Durability};
use std::path::Path;

/// Writes `layer` (the writes of segment `segment`) into the file, and
/// the segment as checkpointed, in one durable transaction.
pub(super) fn write(db: &Database, layer: &Layer, segment: u64) -> Result<(), StoreError> {
    let mut tx = db.begin_write().map_err(unavailable)?;
    tx.set_durability(Durability::Immediate);
    for t in ALL {
        table::write(&tx, t, layer.entries(t))?;
    }
    tx.open_table(META)
        .map_err(unavailable)?
        .insert(CHECKPOINTED, segment)
        .map_err(unavailable)?;
    tx.commit().map_err(unavailable)
}

/// The last segment checkpointed into the file (0: none yet).
fn checkpointed(db: &Database) -> Result<u64, StoreError> {
    let tx = db.begin_read().map_err(unavailable)?;
    let meta = tx.open_table(META).map_err(unavailable)?;
    let last = meta.get(CHECKPOINTED).map_err(unavailable)?;
    Ok(last.map_or(0, |v| v.value()))
}

/// Replays every segment of `dir` past the last checkpointed one into
/// the file, in order, in one durable transaction (written as read, so
/// the replay holds no copy of the log in memory), and deletes the
/// segments the file then holds; returns the number the next segment
/// takes. The segments to replay must follow the checkpointed one with
/// no gap (a gap is a lost segment: the store does not open).
pub(super) fn recover(db: &Database, dir: &Path) -> Result<u64, StoreError> {
    let done = checkpointed(db)?;
    let segments = wal::segments(dir).map_err(unavailable)?;
    let pending: Vec<_> = segments.iter().filter(|(n, _)| *n > done).collect();
    for (i, (n, _)) in (1u64..).zip(&pending) {
        if done.checked_add(i) != Some(*n) {
            return Err(StoreError::Corrupt(format!(
                "write-ahead log segment {n} does not follow the last checkpointed one, {done}, without a gap"
            )));
        }
    }
    let mut last = done;
    if let Some((newest, _)) = pending.last() {
        let mut tx = db.begin_write().map_err(unavailable)?;
        tx.set_durability(Durability::Immediate);
        let mut failed = None;
        for (n, path) in &pending {
            let file = std::fs::File::open(path).map_err(unavailable)?;
            let reader = std::io::BufReader::new(file);
            wal::replay(reader, *n, n == newest, &mut |t: Table, key, value| {
                if failed.is_none() {
                    failed = table::write(&tx, t, std::iter::once((key, value))).err();
                }
            })?;
        }
        if let Some(e) = failed {
            return Err(e);
        }
        tx.open_table(META)
            .map_err(unavailable)?
            .insert(CHECKPOINTED, *newest)
            .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        last = *newest;
        tracing::info!(
            segments = pending.len(),
            "the embedded store replayed its write-ahead log"
        );
    }
    for (n, path) in &segments {
        if *n <= last {
            std::fs::remove_file(path).map_err(unavailable)?;
        }
    }
    last.checked_add(1)
        .ok_or_else(|| StoreError::Corrupt("write-ahead log segment numbers are exhausted".into()))
}

#[cfg(test)]
mod tests;
