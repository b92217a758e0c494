//! [`verify`] and [`export`]: reading the archive back over a range of
//! hours and checking every chain in it (docs/AUDIT.md, "Verifying").
//!
//! Objects are read in key order (hour, then batch number: the key's hour
//! never goes back, so this is archive order). Each object is read within
//! [`MAX_OBJECT_BYTES`]; an object that does not decompress or parse, or
//! with a line over [`LINE_BOUNDS`](super::record::LINE_BOUNDS), is
//! unreadable and its records are skipped (their successors then show a
//! gap). A record's `hash` must be the chain formula over its fields, its
//! `prev` the hash of its stream's previous record, its seq the previous
//! plus one; an event id and a (stream, seq) appear once. A stream whose
//! first record in the range is past seq 1 is a note when the range
//! starts after the archive's first hour, a gap otherwise. Truncation
//! (the newest objects removed) is not visible from the objects alone:
//! compare with the head checkpoint, or rely on Object Lock.

use super::record::{self, hour_of, hour_prefix, Record, KEY_PREFIX, MAX_OBJECT_BYTES};
use super::sink::Sink;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Write;

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The object could not be read, decompressed or parsed.
    Unreadable { key: String, why: String },
    /// A record whose hash or prev does not hold.
    BrokenLink {
        key: String,
        stream: String,
        seq: u64,
        why: String,
    },
    /// Records missing from a stream: `expected` came as `found`.
    Gap {
        key: String,
        stream: String,
        expected: u64,
        found: u64,
    },
    /// An event id or (stream, seq) seen twice, or a batch number reused.
    Duplicate { key: String, what: String },
    /// Batch numbers missing before `key`.
    MissingObjects { key: String, first: u64, last: u64 },
    /// A record filed under a stream that is not its event's.
    WrongStream {
        key: String,
        stream: String,
        seq: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable { key, why } => write!(f, "{key}: unreadable: {why}"),
            Problem::BrokenLink {
                key,
                stream,
                seq,
                why,
            } => {
                write!(f, "{key}: broken link: stream {stream:?} seq {seq}: {why}")
            }
            Problem::Gap {
                key,
                stream,
                expected,
                found,
            } => {
                write!(
                    f,
                    "{key}: gap: stream {stream:?} expected seq {expected}, found {found}"
                )
            }
            Problem::Duplicate { key, what } => write!(f, "{key}: duplicate: {what}"),
            Problem::MissingObjects { key, first, last } => {
                write!(
                    f,
                    "{key}: objects of batches {first}..={last} missing before it"
                )
            }
            Problem::WrongStream { key, stream, seq } => {
                write!(
                    f,
                    "{key}: stream {stream:?} seq {seq} holds another user's event"
                )
            }
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub objects: usize,
    pub records: usize,
    pub streams: usize,
    pub problems: Vec<Problem>,
    /// Information, not errors (a stream starting past seq 1 in a range
    /// that starts after the archive's beginning).
    pub notes: Vec<String>,
}

impl Report {
    /// No problem found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} objects, {} records, {} streams, {} problems",
            if self.ok() { "OK" } else { "FAILED" },
            self.objects,
            self.records,
            self.streams,
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// The chains seen so far in a range.
struct Chains {
    may_start_late: bool,
    last: HashMap<String, (u64, String)>,
    ids: HashSet<String>,
    seqs: HashSet<(String, u64)>,
    last_batch: Option<u64>,
}

impl Chains {
    fn new(may_start_late: bool) -> Self {
        Chains {
            may_start_late,
            last: HashMap::new(),
            ids: HashSet::new(),
            seqs: HashSet::new(),
            last_batch: None,
        }
    }

    /// Checks an object's batch number follows the previous one's.
    fn object(&mut self, key: &str, problems: &mut Vec<Problem>) {
        let Some((_, batch)) = record::parse_key(key) else {
            return;
        };
        let expected = match self.last_batch {
            Some(last) => last + 1,
            None if self.may_start_late => batch,
            None => 1,
        };
        if batch < expected {
            problems.push(Problem::Duplicate {
                key: key.to_owned(),
                what: format!("batch number {batch} again"),
            });
        } else if batch > expected {
            problems.push(Problem::MissingObjects {
                key: key.to_owned(),
                first: expected,
                last: batch - 1,
            });
        }
        self.last_batch = Some(self.last_batch.map_or(batch, |l| l.max(batch)));
    }

    /// Checks one record.
    fn record(
        &mut self,
        key: &str,
        r: &Record,
        problems: &mut Vec<Problem>,
        notes: &mut Vec<String>,
    ) {
        let k = || key.to_owned();
        if record::stream_of(r.user_id.as_deref()) != r.stream {
            problems.push(Problem::WrongStream {
                key: k(),
                stream: r.stream.clone(),
                seq: r.seq,
            });
        }
        if !self.ids.insert(r.event_id.clone()) {
            problems.push(Problem::Duplicate {
                key: k(),
                what: format!("event {} again", r.event_id),
            });
        }
        if !self.seqs.insert((r.stream.clone(), r.seq)) {
            problems.push(Problem::Duplicate {
                key: k(),
                what: format!("stream {:?} seq {} again", r.stream, r.seq),
            });
        }
        if !r.hash_holds() {
            problems.push(Problem::BrokenLink {
                key: k(),
                stream: r.stream.clone(),
                seq: r.seq,
                why: "hash is not the chain formula over the record".to_owned(),
            });
        }
        match self.last.get(&r.stream) {
            Some((seq, hash)) if r.seq == seq + 1 => {
                if r.prev != *hash {
                    problems.push(Problem::BrokenLink {
                        key: k(),
                        stream: r.stream.clone(),
                        seq: r.seq,
                        why: format!("prev is not the hash of seq {seq}"),
                    });
                }
            }
            Some((seq, _)) if r.seq > seq + 1 => problems.push(Problem::Gap {
                key: k(),
                stream: r.stream.clone(),
                expected: seq + 1,
                found: r.seq,
            }),
            // An earlier seq again: reported as a duplicate above (or
            // out of order); the chain goes on from the newest.
            Some(_) => {}
            None if r.seq == 1 => {
                if r.prev != record::GENESIS {
                    problems.push(Problem::BrokenLink {
                        key: k(),
                        stream: r.stream.clone(),
                        seq: 1,
                        why: "prev of seq 1 is not 64 zeros".to_owned(),
                    });
                }
            }
            None if self.may_start_late => notes.push(format!(
                "stream {:?} starts at seq {} ({key})",
                r.stream, r.seq
            )),
            None => problems.push(Problem::Gap {
                key: k(),
                stream: r.stream.clone(),
                expected: 1,
                found: r.seq,
            }),
        }
        let newest = self.last.get(&r.stream).map_or(0, |(s, _)| *s);
        if r.seq >= newest {
            self.last.insert(r.stream.clone(), (r.seq, r.hash.clone()));
        }
    }
}

/// The keys of the objects whose hour is in [`from`, `to`] (hours of
/// UTC), in key order, and whether the range starts after the
/// archive's first hour.
async fn range(
    sink: &dyn Sink,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<(Vec<String>, bool)> {
    let first = sink.list(KEY_PREFIX, &format!("{KEY_PREFIX}~"), 1).await?;
    let starts_late = match first.first().and_then(|k| record::parse_key(k)) {
        Some((start, _)) => hour_of(from) > start,
        None => false,
    };
    let before = hour_prefix(hour_of(to) + TimeDelta::hours(1));
    let keys = sink
        .list(&hour_prefix(hour_of(from)), &before, usize::MAX)
        .await?;
    Ok((keys, starts_late))
}

/// Reads one object; `Err` is the reason it is unreadable.
async fn read(sink: &dyn Sink, key: &str) -> anyhow::Result<Result<Vec<Record>, String>> {
    Ok(match sink.get(key, MAX_OBJECT_BYTES).await {
        Ok(Some(body)) => record::decode_exact(&body),
        Ok(None) => Err("listed but gone".to_owned()),
        Err(super::sink::SinkError::TooLarge { max, .. }) => {
            Err(format!("larger than {max} bytes"))
        }
        Err(e) => return Err(e.into()),
    })
}

/// Checks every object whose hour is in [`from`, `to`] (see the module
/// doc). `Err` only when the sink cannot be read; what is wrong with the
/// archive is in the [`Report`].
pub async fn verify(
    sink: &dyn Sink,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Report> {
    let (keys, starts_late) = range(sink, from, to).await?;
    let mut chains = Chains::new(starts_late);
    let mut report = Report::default();
    for key in &keys {
        report.objects += 1;
        chains.object(key, &mut report.problems);
        match read(sink, key).await? {
            Ok(records) => {
                for r in &records {
                    report.records += 1;
                    chains.record(key, r, &mut report.problems, &mut report.notes);
                }
            }
            Err(why) => report.problems.push(Problem::Unreadable {
                key: key.clone(),
                why,
            }),
        }
    }
    report.streams = chains.last.len();
    Ok(report)
}

/// What [`export`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Objects read.
    pub objects: usize,
    /// Records of the user written.
    pub records: usize,
    /// Problems of the user's chain (and unreadable objects) met on the way.
    pub problems: Vec<Problem>,
    pub notes: Vec<String>,
}

impl ExportSummary {
    /// The user's chain held in the whole range.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Writes the records of `user_id`'s stream whose object hour is in
/// [`from`, `to`] to `out` as NDJSON (each line exactly as archived),
/// checking their chain as it goes.
pub async fn export<W: Write + Send>(
    sink: &dyn Sink,
    user_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mut out: W,
) -> anyhow::Result<ExportSummary> {
    let (keys, starts_late) = range(sink, from, to).await?;
    let mut chains = Chains::new(starts_late);
    let mut summary = ExportSummary::default();
    for key in &keys {
        summary.objects += 1;
        match read(sink, key).await? {
            Ok(records) => {
                for r in records.iter().filter(|r| r.stream == user_id) {
                    chains.record(key, r, &mut summary.problems, &mut summary.notes);
                    // One write per record: standard output may be
                    // shared, and a line written in two parts could be
                    // split by another writer's.
                    let mut line = Vec::with_capacity(r.line.len() + 1);
                    line.extend_from_slice(r.line.as_bytes());
                    line.push(b'\n');
                    out.write_all(&line)?;
                    summary.records += 1;
                }
            }
            Err(why) => summary.problems.push(Problem::Unreadable {
                key: key.clone(),
                why,
            }),
        }
    }
    out.flush()?;
    Ok(summary)
}
