//! The archive's format: the chain formula, one NDJSON line per event,
//! object keys, and gzip objects read back within bounds
//! (docs/AUDIT.md, "Format").

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// `prev` of the first record of a stream.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every key starts with this.
pub const KEY_PREFIX: &str = "audit/";

/// Largest object read back (compressed), bytes.
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// Largest object once decompressed, bytes (a gzip bomb is corrupt).
pub const MAX_DECOMPRESSED_BYTES: u64 = 256 * 1024 * 1024;

/// Bounds of one line: an event of the event log's bounds
/// (`api::events::log::LINE_BOUNDS`) plus the record around it.
pub const LINE_BOUNDS: inbound::JsonBounds = inbound::JsonBounds {
    max_bytes: api::events::log::LINE_BOUNDS.max_bytes + 1024,
    max_depth: api::events::log::LINE_BOUNDS.max_depth + 1,
    max_elements: api::events::log::LINE_BOUNDS.max_elements + 8,
};

/// The stream of an event: its acting user, or `system`.
pub fn stream_of(user_id: Option<&str>) -> &str {
    user_id.unwrap_or("system")
}

/// The chain formula: SHA-256, lowercase hex, over
/// `prev || "\n" || stream || "\n" || seq (decimal) || "\n" || event`,
/// where `event` is the exact bytes of the event JSON in the line.
pub fn chain_hash(prev: &str, stream: &str, seq: u64, event_json: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(stream.as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(event_json);
    hex::encode(h.finalize())
}

/// Writes one record line (no trailing newline): the fields in this
/// order, the event's JSON verbatim.
pub fn write_line(stream: &str, seq: u64, prev: &str, hash: &str, event_json: &str) -> String {
    let stream = serde_json::to_string(stream).expect("invariant: a string serializes");
    format!(
        r#"{{"stream":{stream},"seq":{seq},"prev":"{prev}","hash":"{hash}","event":{event_json}}}"#
    )
}

/// One line as read back.
#[derive(Debug, Deserialize)]
struct RawLine<'a> {
    stream: String,
    seq: u64,
    prev: String,
    hash: String,
    #[serde(borrow)]
    event: &'a RawValue,
}

/// The fields of the event a reader checks.
#[derive(Debug, Deserialize)]
struct EventHead {
    id: String,
    user_id: Option<String>,
    time: DateTime<Utc>,
}

/// A record read back from an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub stream: String,
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    /// The event's id, user and time (parsed from `event_json`).
    pub event_id: String,
    pub user_id: Option<String>,
    pub event_time: DateTime<Utc>,
    /// The event JSON exactly as in the line.
    pub event_json: String,
    /// The whole line, exactly as stored (no newline).
    pub line: String,
}

impl Record {
    /// Whether `hash` is the chain formula over the record's fields.
    pub fn hash_holds(&self) -> bool {
        chain_hash(
            &self.prev,
            &self.stream,
            self.seq,
            self.event_json.as_bytes(),
        ) == self.hash
    }
}

/// Parses one line (checked against [`LINE_BOUNDS`] first).
pub fn parse_line(line: &[u8]) -> Result<Record, String> {
    LINE_BOUNDS.check(line).map_err(|e| e.to_string())?;
    let raw: RawLine<'_> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let head: EventHead = serde_json::from_str(raw.event.get()).map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(line).map_err(|e| e.to_string())?;
    Ok(Record {
        stream: raw.stream,
        seq: raw.seq,
        prev: raw.prev,
        hash: raw.hash,
        event_id: head.id,
        user_id: head.user_id,
        event_time: head.time,
        event_json: raw.event.get().to_owned(),
        line: text.to_owned(),
    })
}

/// Gzips NDJSON lines (each followed by `\n`) at gzip's fastest level:
/// at level 6 the compression was 3 % of the hub's CPU at 1,500
/// orders/s (docs/BENCHMARKS.md, "Orders: fewer commits").
pub fn encode_object(lines: &[String]) -> Vec<u8> {
    encode_object_at(lines, flate2::Compression::fast())
}

/// The objects written before the fastest level, at gzip's default (6).
const EARLIER_LEVEL: flate2::Compression = flate2::Compression::new(6);

fn encode_object_at(lines: &[String], level: flate2::Compression) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), level);
    for line in lines {
        gz.write_all(line.as_bytes())
            .and_then(|()| gz.write_all(b"\n"))
            .expect("invariant: writing to a Vec does not fail");
    }
    gz.finish()
        .expect("invariant: writing to a Vec does not fail")
}

/// Decompresses (at most [`MAX_DECOMPRESSED_BYTES`]) and parses every
/// line of an object; any error makes the whole object corrupt.
pub fn decode_object(body: &[u8]) -> Result<Vec<Record>, String> {
    let mut text = Vec::new();
    GzDecoder::new(body)
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("gzip: {e}"))?;
    if text.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(format!(
            "decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"
        ));
    }
    if !text.is_empty() && !text.ends_with(b"\n") {
        return Err("truncated: the last line has no newline".to_owned());
    }
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| parse_line(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// [`decode_object`], and the bytes must be exactly what
/// [`encode_object`] makes of the records, at its level now or at the one
/// it used before (its output is deterministic: no time or name in the
/// gzip header): a change anywhere in the object, the gzip header
/// included, is caught, not only one the records' hashes or gzip's CRC
/// see.
pub fn decode_exact(body: &[u8]) -> Result<Vec<Record>, String> {
    let records = decode_object(body)?;
    let lines: Vec<String> = records.iter().map(|r| r.line.clone()).collect();
    if encode_object(&lines) != body && encode_object_at(&lines, EARLIER_LEVEL) != body {
        return Err("not byte for byte what the archiver writes: changed after writing".to_owned());
    }
    Ok(records)
}

/// The key of batch `batch` whose first record is `first_event_id`, in
/// the hour `hour` (UTC).
pub fn object_key(hour: DateTime<Utc>, batch: u64, first_event_id: &str) -> String {
    format!(
        "{}{batch:012}-{first_event_id}.ndjson.gz",
        hour_prefix(hour)
    )
}

/// `audit/YYYY/MM/DD/HH/` of `t`.
pub fn hour_prefix(t: DateTime<Utc>) -> String {
    format!(
        "{KEY_PREFIX}{:04}/{:02}/{:02}/{:02}/",
        t.year(),
        t.month(),
        t.day(),
        t.hour()
    )
}

/// `t` truncated to its hour.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), t.hour(), 0, 0)
        .single()
        .unwrap_or(t)
}

/// The hour and batch number a key names; `None` for a key not of the
/// archive's form.
pub fn parse_key(key: &str) -> Option<(DateTime<Utc>, u64)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let mut parts = rest.splitn(5, '/');
    let mut num = |len: usize| -> Option<u32> {
        let p = parts.next()?;
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse().ok())?
    };
    let (y, m, d, h) = (num(4)?, num(2)?, num(2)?, num(2)?);
    let name = parts.next()?;
    let batch = name.get(..12)?;
    if !batch.bytes().all(|b| b.is_ascii_digit()) || !name.ends_with(".ndjson.gz") {
        return None;
    }
    let hour = Utc.with_ymd_and_hms(y as i32, m, d, h, 0, 0).single()?;
    Some((hour, batch.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_hour_then_batch() {
        let t = Utc.with_ymd_and_hms(2026, 12, 3, 7, 41, 9).unwrap();
        let key = object_key(hour_of(t), 42, "e1");
        assert_eq!(key, "audit/2026/12/03/07/000000000042-e1.ndjson.gz");
        assert_eq!(parse_key(&key), Some((hour_of(t), 42)));
        assert!(object_key(hour_of(t), 9, "z") < object_key(hour_of(t), 10, "a"));
        assert_eq!(parse_key("audit/2026/12/03/07/x.ndjson.gz"), None);
        assert_eq!(
            parse_key("other/2026/12/03/07/000000000042-e1.ndjson.gz"),
            None
        );
    }

    #[test]
    fn a_line_round_trips_and_its_hash_holds() {
        let event = r#"{"id":"e1","type":"t","version":1,"time":"2026-12-03T07:41:09Z","user_id":"u\"1","correlation_id":"c","data":{"b":1,"a":[1,2]}}"#;
        let hash = chain_hash(GENESIS, "u\"1", 1, event.as_bytes());
        let line = write_line("u\"1", 1, GENESIS, &hash, event);
        let record = parse_line(line.as_bytes()).unwrap();
        assert_eq!(record.event_json, event);
        assert_eq!(record.stream, "u\"1");
        assert!(record.hash_holds());
        let object = encode_object(&[line.clone(), line.clone()]);
        assert_eq!(decode_object(&object).unwrap().len(), 2);
        assert_eq!(decode_exact(&object).unwrap().len(), 2);
        // An object of the level before still verifies exactly.
        let earlier = encode_object_at(&[line.clone(), line], EARLIER_LEVEL);
        assert_ne!(earlier, object);
        assert_eq!(decode_exact(&earlier).unwrap().len(), 2);
        let mut bad = object.clone();
        let at = bad.len() / 2;
        bad[at] ^= 1;
        assert!(decode_object(&bad).is_err());
    }
}
