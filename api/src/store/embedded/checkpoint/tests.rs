//! Recovery at open: segments replayed in order into the file, and the
//! logs that do not add up refused.

use super::super::wal::Wal;
use super::*;

fn fresh() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("t.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    table::create_all(&tx).unwrap();
    tx.commit().unwrap();
    (dir, db)
}

fn user(key: &str, value: Option<&str>) -> Layer {
    let mut layer = Layer::default();
    layer.put(
        Table::Users,
        key.as_bytes(),
        value.map(|v| v.as_bytes().into()),
    );
    layer
}

fn get(db: &Database, key: &str) -> Option<Vec<u8>> {
    table::get(&db.begin_read().unwrap(), Table::Users, key.as_bytes())
        .unwrap()
        .map(|v| v.to_vec())
}

/// Segments 1 and 2 (a crash while 1 was being checkpointed) replay in
/// order: the later write wins, a removal removes, the file records 2 as
/// checkpointed, the segments go, and the next segment is 3.
#[test]
fn pending_segments_replay_in_order_into_the_file() {
    let (dir, db) = fresh();
    let mut wal = Wal::create(dir.path(), 1).unwrap();
    wal.append(&user("a", Some("1"))).unwrap();
    wal.append(&user("b", Some("1"))).unwrap();
    wal.rotate().unwrap();
    wal.append(&user("a", Some("2"))).unwrap();
    wal.append(&user("b", None)).unwrap();
    drop(wal);
    assert_eq!(recover(&db, dir.path()).unwrap(), 3);
    assert_eq!((get(&db, "a"), get(&db, "b")), (Some(b"2".to_vec()), None));
    assert_eq!(checkpointed(&db).unwrap(), 2);
    assert!(wal::segments(dir.path()).unwrap().is_empty());
    // Opened again, nothing is replayed twice.
    assert_eq!(recover(&db, dir.path()).unwrap(), 3);
}

/// A segment missing between the checkpointed one and the newest (lost,
/// or deleted by hand) refuses the open: its writes would be skipped.
#[test]
fn a_gap_in_the_segments_refuses_the_open() {
    let (dir, db) = fresh();
    Wal::create(dir.path(), 1)
        .unwrap()
        .append(&user("a", Some("1")))
        .unwrap();
    Wal::create(dir.path(), 3)
        .unwrap()
        .append(&user("a", Some("3")))
        .unwrap();
    let e = recover(&db, dir.path()).unwrap_err();
    assert!(
        matches!(&e, StoreError::Corrupt(m) if m.contains("segment 3")),
        "{e}"
    );
    assert_eq!(get(&db, "a"), None, "nothing applied");
}

/// An older segment that does not end cleanly (a damaged record) refuses
/// the open, even though a newer one reads.
#[test]
fn an_older_segment_that_does_not_end_cleanly_refuses_the_open() {
    let (dir, db) = fresh();
    let mut wal = Wal::create(dir.path(), 1).unwrap();
    wal.append(&user("a", Some("1"))).unwrap();
    wal.append(&user("b", Some("1"))).unwrap();
    wal.rotate().unwrap();
    wal.append(&user("c", Some("1"))).unwrap();
    drop(wal);
    let first = dir.path().join(wal::name(1));
    let mut bytes = std::fs::read(&first).unwrap();
    let at = bytes.len() - 12;
    bytes[at] ^= 0xFF;
    std::fs::write(&first, bytes).unwrap();
    let e = recover(&db, dir.path()).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
    assert_eq!(get(&db, "c"), None, "nothing applied");
}
