//! The log's records read back: whole, torn at every byte, flipped, over
//! an earlier use of the file, and arbitrary bytes (the log is read at
//! every open after a crash).

use super::*;
use crate::store::embedded::table::COUNT;

fn group(entries: &[(Table, &str, Option<&str>)]) -> Layer {
    let mut layer = Layer::default();
    for (t, key, value) in entries {
        layer.put(*t, key.as_bytes(), value.map(|v| v.as_bytes().into()));
    }
    layer
}

type Seen = Vec<(Table, Vec<u8>, Option<Vec<u8>>)>;

fn read(bytes: &[u8], segment: u64, newest: bool) -> Result<Seen, StoreError> {
    let mut seen = Vec::new();
    replay(bytes, segment, newest, &mut |t, k, v| {
        seen.push((t, k.to_vec(), v.map(<[u8]>::to_vec)))
    })?;
    Ok(seen)
}

const OUTBOX_KEY: &str = "\0\0\0\0\0\0\0\x07";

/// Two records of segment `segment` as a segment holds them (the end
/// mark after the last); the length of the first.
fn two_records(segment: u64) -> (Vec<u8>, usize) {
    let mut log = Vec::new();
    let mut buf = Vec::new();
    let first = group(&[
        (Table::Users, "u1", Some("{\"a\":1}")),
        (Table::Outbox, OUTBOX_KEY, Some("e")),
    ]);
    encode(&first, segment, &mut buf);
    log.extend_from_slice(&buf);
    let first = log.len();
    encode(
        &group(&[(Table::Outbox, OUTBOX_KEY, None)]),
        segment,
        &mut buf,
    );
    log.extend_from_slice(&buf);
    log.extend_from_slice(&END);
    (log, first)
}

#[test]
fn records_read_back_in_order_with_removals() {
    let (log, _) = two_records(7);
    let outbox_key = OUTBOX_KEY.as_bytes().to_vec();
    let whole = vec![
        (Table::Users, b"u1".to_vec(), Some(b"{\"a\":1}".to_vec())),
        (Table::Outbox, outbox_key.clone(), Some(b"e".to_vec())),
        (Table::Outbox, outbox_key, None),
    ];
    assert_eq!(read(&log, 7, false).unwrap(), whole);
    assert_eq!(read(&log, 7, true).unwrap(), whole);
    // Past the end mark nothing is read, whatever is there.
    let mut more = log.clone();
    more.extend_from_slice(&[0xAB; 40]);
    assert_eq!(read(&more, 7, false).unwrap(), whole);
    // The same bytes are not another segment's.
    assert!(read(&log, 8, true).unwrap().is_empty());
    assert!(matches!(read(&log, 8, false), Err(StoreError::Corrupt(_))));
}

/// A crash can stop the last write anywhere: every cut of the last
/// record reads as the first record alone in the newest segment, and is
/// corruption in an older one (synced whole before the next began).
#[test]
fn a_torn_last_record_is_dropped_only_in_the_newest_segment() {
    let (log, first) = two_records(7);
    let whole_first = read(&log[..first], 7, false).unwrap();
    assert_eq!(whole_first.len(), 2);
    let end = log.len() - END.len();
    for cut in first + 1..end {
        assert_eq!(
            read(&log[..cut], 7, true).unwrap(),
            whole_first,
            "cut at {cut}"
        );
        assert!(
            matches!(read(&log[..cut], 7, false), Err(StoreError::Corrupt(_))),
            "cut at {cut}"
        );
    }
}

/// A flipped bit in a record fails its checksum (or its length): the
/// reading stops before it in the newest segment, and never applies part
/// of it; in an older one it is corruption.
#[test]
fn a_flipped_bit_stops_the_reading_before_its_record() {
    let (log, first) = two_records(7);
    let whole_first = read(&log[..first], 7, false).unwrap();
    for at in first..log.len() - END.len() {
        let mut bad = log.clone();
        bad[at] ^= 0x10;
        assert_eq!(read(&bad, 7, true).unwrap(), whole_first, "flip at {at}");
        assert!(read(&bad, 7, false).is_err(), "flip at {at}");
    }
}

/// A reused file holds its earlier segment's records past the new ones,
/// whole and well summed where a new record ends on an old one's
/// boundary: the end mark stops the reading first; and where a crash
/// left no end mark, the old record's segment number does.
#[test]
fn an_earlier_use_of_the_file_is_not_read_as_this_segment() {
    let (old, old_first) = two_records(3);
    let mut buf = Vec::new();
    // A record of segment 5 as long as the old first one, so the old
    // second record starts right after it.
    let padding = "x".repeat(old_first - 8 - 8 - (1 + 4 + 2 + 4));
    encode(&group(&[(Table::Users, "u5", Some(&padding))]), 5, &mut buf);
    assert_eq!(buf.len(), old_first);
    let mut unmarked = old.clone();
    unmarked[..buf.len()].copy_from_slice(&buf);
    let seen = read(&unmarked, 5, true).unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].1, b"u5".to_vec());
    let mut marked = old.clone();
    buf.extend_from_slice(&END);
    marked[..buf.len()].copy_from_slice(&buf);
    assert_eq!(read(&marked, 5, false).unwrap(), seen);
}

/// A header claiming more than the bound is the end of the newest
/// segment, before anything is read into memory for it.
#[test]
fn a_record_over_the_bound_is_refused() {
    let mut log = ((MAX_RECORD + 1) as u32).to_le_bytes().to_vec();
    log.extend_from_slice(&[1; 4]);
    log.extend_from_slice(&[0; 64]);
    assert!(read(&log, 0, true).unwrap().is_empty());
    assert!(matches!(read(&log, 0, false), Err(StoreError::Corrupt(_))));
}

/// A record whose checksum holds but whose writes do not parse (a bug,
/// not a crash) is corruption even in the newest segment.
#[test]
fn a_well_summed_record_that_does_not_parse_is_corruption() {
    let mut payload = 9u64.to_le_bytes().to_vec();
    payload.extend_from_slice(&[42u8, 0, 0, 0, 0, 0]);
    let mut log = (payload.len() as u32).to_le_bytes().to_vec();
    log.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    log.extend_from_slice(&payload);
    assert!(matches!(read(&log, 9, true), Err(StoreError::Corrupt(_))));
}

/// The spare file is reused for the next segment, written from its
/// start and ended at its last record; a clean stop deletes both.
#[test]
fn a_retired_segment_is_reused_for_a_later_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::create(dir.path(), 1).unwrap();
    let big = "y".repeat(4096);
    wal.append(&group(&[(Table::Users, "a", Some(&big))]))
        .unwrap();
    assert_eq!(wal.rotate().unwrap(), 1);
    wal.retire(1).unwrap();
    assert_eq!(wal.rotate().unwrap(), 2);
    let names =
        |dir: &Path| -> Vec<u64> { segments(dir).unwrap().into_iter().map(|(n, _)| n).collect() };
    // Segment 1's file is segment 3's now, its size kept.
    assert_eq!(names(dir.path()), [2, 3]);
    let three = dir.path().join(name(3));
    assert!(std::fs::metadata(&three).unwrap().len() > 4096);
    // Before its first record it reads as empty, even as an older one.
    assert!(read(&std::fs::read(&three).unwrap(), 3, false)
        .unwrap()
        .is_empty());
    wal.append(&group(&[(Table::Users, "b", Some("1"))]))
        .unwrap();
    wal.append(&group(&[(Table::Users, "c", None)])).unwrap();
    let seen = read(&std::fs::read(&three).unwrap(), 3, false).unwrap();
    assert_eq!(
        seen,
        vec![
            (Table::Users, b"b".to_vec(), Some(b"1".to_vec())),
            (Table::Users, b"c".to_vec(), None)
        ]
    );
    wal.retire(2).unwrap();
    wal.discard().unwrap();
    assert!(names(dir.path()).is_empty());
}

proptest::proptest! {
    /// Whatever a segment holds, reading it never panics: it is read, or
    /// refused as corrupt.
    #[test]
    fn any_segment_is_read_or_refused_without_a_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        segment in 0u64..4,
        newest in proptest::prelude::any::<bool>(),
    ) {
        let _ = read(&bytes, segment, newest);
    }

    /// Whatever a record with a good checksum holds (so its writes are
    /// parsed), reading it never panics.
    #[test]
    fn any_well_summed_record_is_read_or_refused_without_a_panic(
        writes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
    ) {
        let mut payload = 1u64.to_le_bytes().to_vec();
        payload.extend_from_slice(&writes);
        let mut log = (payload.len() as u32).to_le_bytes().to_vec();
        log.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        log.extend_from_slice(&payload);
        let _ = read(&log, 1, true);
    }

    /// Any group of writes reads back as written.
    #[test]
    fn any_group_reads_back_as_written(
        writes in proptest::collection::vec(
            (0..COUNT, "[a-z0-9\\x00]{0,12}", proptest::option::of("[ -~]{0,40}")),
            1..20,
        ),
    ) {
        let mut layer = Layer::default();
        let mut expected = std::collections::BTreeMap::new();
        for (t, key, value) in &writes {
            let t = ALL[*t];
            layer.put(t, key.as_bytes(), value.as_ref().map(|v| v.as_bytes().into()));
            expected.insert((t.index(), key.clone()), value.clone());
        }
        let mut buf = Vec::new();
        encode(&layer, 11, &mut buf);
        let mut seen = std::collections::BTreeMap::new();
        replay(&buf[..], 11, false, &mut |t, k, v| {
            let key = String::from_utf8(k.to_vec()).unwrap();
            let value = v.map(|v| String::from_utf8(v.to_vec()).unwrap());
            seen.insert((t.index(), key), value);
        })
        .unwrap();
        proptest::prop_assert_eq!(seen, expected);
    }
}
