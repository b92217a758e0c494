//! The embedded store's write-ahead log: each group commit appends one
//! record of its writes to the current segment (`store-N.wal` in the data
//! directory) and syncs it (`fdatasync`) before any batch of the group is
//! acknowledged or shown to a reader. A checkpoint writes a segment's
//! writes into the redb file and then retires the segment
//! (`checkpoint.rs`; docs/ARCHITECTURE.md, "Embedded store").
//!
//! A retired segment's file is kept as the spare and reused, renamed, for
//! a later segment: writing over blocks the file already has lets
//! `fdatasync` skip the journal commit an appended size needs (a sync
//! took 0.6x the time: docs/BENCHMARKS.md, "A write-ahead log and an
//! overlay in front of redb"). So a segment's file may go on past its
//! records with those of its earlier use.
//!
//! A record is `[len: u32 LE][crc32 of the payload: u32 LE][payload]`,
//! the payload the segment's number (`u64 LE`) and a run of writes, each
//! `[table: u8][key len: u32 LE][key][1 + value len: u32 LE, 0 = removal][value]`.
//! Each record is written with an end mark after it (8 zero bytes, where
//! the next record's header goes), in the same write and sync, so a
//! segment ends cleanly at an end mark (or at the end of the file) and
//! its file's earlier use is never read.
//!
//! Reading the newest segment stops at the first record that does not
//! read whole, fails its CRC or names another segment: the write a crash
//! tore, never acknowledged. In an older segment (synced whole before the
//! next began) that, or a missing end mark, is corruption, and so is a
//! record whose CRC holds but whose writes do not parse: the store does
//! not open.

use super::layer::Layer;
use super::table::{Table, ALL};
use super::{unavailable, StoreError};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// Largest record written or read back (`group.rs` writes a group's
/// record once it passes a fraction of this, and refuses a batch over a
/// smaller bound; a longer header is a torn or foreign one).
pub(super) const MAX_RECORD: usize = 256 << 20;

/// What follows a segment's last record.
const END: [u8; 8] = [0; 8];

/// The current segment, open for appending.
pub(super) struct Wal {
    dir: PathBuf,
    file: File,
    segment: u64,
    /// Where the next record goes (over the last one's end mark).
    offset: u64,
    buf: Vec<u8>,
    /// A retired segment's file, to reuse for the next one.
    spare: Option<PathBuf>,
}

/// The file name of segment `n` (zero-padded, so names sort as numbers).
pub(super) fn name(n: u64) -> String {
    format!("store-{n:016}.wal")
}

/// The segments in `dir`, by number.
pub(super) fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(n) = file_name
            .to_str()
            .and_then(|s| s.strip_prefix("store-")?.strip_suffix(".wal"))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        found.push((n, entry.path()));
    }
    found.sort();
    Ok(found)
}

impl Wal {
    /// Creates segment `segment` in `dir` (mode 0600), its directory entry
    /// made durable before anything is written to it.
    pub(super) fn create(dir: &Path, segment: u64) -> Result<Wal, StoreError> {
        let path = dir.join(name(segment));
        let file = crate::owner_only::open(
            &path,
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true),
        )
        .map_err(unavailable)?;
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            file,
            segment,
            offset: 0,
            buf: Vec::new(),
            spare: None,
        })
    }

    pub(super) fn segment(&self) -> u64 {
        self.segment
    }

    /// Appends `group`'s writes as one record and syncs it.
    pub(super) fn append(&mut self, group: &Layer) -> Result<(), StoreError> {
        let record = encode(group, self.segment, &mut self.buf);
        if record - 8 > MAX_RECORD {
            return Err(unavailable(format!(
                "a write-ahead log record of {record} bytes is over the bound"
            )));
        }
        self.buf.extend_from_slice(&END);
        self.file
            .write_all_at(&self.buf, self.offset)
            .map_err(unavailable)?;
        self.file.sync_data().map_err(unavailable)?;
        self.offset += record as u64;
        Ok(())
    }

    /// Starts the next segment, in the spare file if there is one (renamed,
    /// written from its start); returns the number of the one closed.
    pub(super) fn rotate(&mut self) -> Result<u64, StoreError> {
        let closed = self.segment;
        let next = closed + 1;
        let Some(spare) = self.spare.take() else {
            *self = Wal::create(&self.dir, next)?;
            return Ok(closed);
        };
        let path = self.dir.join(name(next));
        std::fs::rename(&spare, &path).map_err(unavailable)?;
        let file = crate::owner_only::open(&path, std::fs::OpenOptions::new().write(true))
            .map_err(unavailable)?;
        // Ends the segment before its first record: its earlier use is not
        // read even before one is synced.
        file.write_all_at(&END, 0).map_err(unavailable)?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.segment = next;
        self.offset = 0;
        Ok(closed)
    }

    /// This segment with its file open read-only, so that every append
    /// fails (a disk that refuses writes).
    #[cfg(test)]
    pub(super) fn read_only(mut self) -> Self {
        self.file = File::open(self.dir.join(name(self.segment))).unwrap();
        self
    }

    /// At a clean stop, once everything is checkpointed: deletes the
    /// current segment and the spare.
    pub(super) fn discard(&mut self) -> std::io::Result<()> {
        let current = self.dir.join(name(self.segment));
        for path in [Some(current), self.spare.take()].into_iter().flatten() {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// A checkpointed segment: its file becomes the spare, or is deleted
    /// when there is one already.
    pub(super) fn retire(&mut self, segment: u64) -> std::io::Result<()> {
        let path = self.dir.join(name(segment));
        if self.spare.is_none() {
            self.spare = Some(path);
            return Ok(());
        }
        std::fs::remove_file(path)
    }
}

/// Makes `dir`'s entries durable (a new or renamed segment).
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(unavailable)
}

/// `group`'s writes, of segment `segment`, as one record into `buf`
/// (cleared first); returns its length.
pub(super) fn encode(group: &Layer, segment: u64, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    buf.extend_from_slice(&[0; 8]);
    buf.extend_from_slice(&segment.to_le_bytes());
    for t in ALL {
        for (key, value) in group.entries(t) {
            buf.push(t.index() as u8);
            buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
            buf.extend_from_slice(key);
            match value {
                Some(v) => {
                    buf.extend_from_slice(&(v.len() as u32 + 1).to_le_bytes());
                    buf.extend_from_slice(v);
                }
                None => buf.extend_from_slice(&0u32.to_le_bytes()),
            }
        }
    }
    let len = (buf.len() - 8) as u32;
    let crc = crc32fast::hash(&buf[8..]);
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    buf.len()
}

/// A visitor of a segment's writes: table, key, value (`None`: removal).
pub(super) type Replayed<'a> = dyn FnMut(Table, &[u8], Option<&[u8]>) + 'a;

/// Reads the records of segment `segment`, calling `each` with every
/// write in order, up to its end mark; `newest`: the segment a crash may
/// have torn (see the module's doc).
pub(super) fn replay(
    mut reader: impl Read,
    segment: u64,
    newest: bool,
    each: &mut Replayed<'_>,
) -> Result<(), StoreError> {
    let torn = |what: &str| {
        if newest {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!(
                "write-ahead log segment {segment}, not the newest, has {what}"
            )))
        }
    };
    let mut payload = Vec::new();
    loop {
        let mut header = Vec::with_capacity(8);
        (&mut reader)
            .take(8)
            .read_to_end(&mut header)
            .map_err(unavailable)?;
        match header.len() {
            0 => return Ok(()),
            8 if header == END => return Ok(()),
            8 => {}
            _ => return torn("a short record header"),
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if !(8..=MAX_RECORD).contains(&len) {
            return torn("a record length out of bounds");
        }
        // Grows with what is there, not with what the header claims.
        payload.clear();
        let read = (&mut reader)
            .take(len as u64)
            .read_to_end(&mut payload)
            .map_err(unavailable)?;
        if read < len {
            return torn("a short record");
        }
        if crc32fast::hash(&payload) != crc {
            return torn("a record with a wrong checksum");
        }
        let (number, writes) = payload.split_at(8);
        if u64::from_le_bytes(number.try_into().expect("8 bytes")) != segment {
            return torn("a record of another segment");
        }
        // A record whose checksum holds was written whole by this store:
        // a bad write inside it is corruption.
        decode(writes, each)
            .map_err(|what| StoreError::Corrupt(format!("a write-ahead log record {what}")))?;
    }
}

/// The writes of one record's payload.
fn decode(mut payload: &[u8], each: &mut Replayed<'_>) -> Result<(), &'static str> {
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
        if rest.len() < n {
            return Err("ends inside a write");
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head)
    }
    fn number(rest: &mut &[u8]) -> Result<usize, &'static str> {
        let bytes = take(rest, 4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")) as usize)
    }
    while !payload.is_empty() {
        let table = *ALL
            .get(take(&mut payload, 1)?[0] as usize)
            .ok_or("names no table")?;
        let key_len = number(&mut payload)?;
        let key = take(&mut payload, key_len)?;
        let value = match number(&mut payload)? {
            0 => None,
            n => Some(take(&mut payload, n - 1)?),
        };
        each(table, key, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
