//! The overlay's layers, the outbox's acknowledged entries, and the merge
//! of the overlay over a scan of the file.

use super::*;

fn one(t: Table, key: &[u8], value: Option<&[u8]>) -> Layer {
    let mut layer = Layer::default();
    layer.put(t, key, value.map(Into::into));
    layer
}

#[test]
fn an_acknowledged_outbox_entry_inserted_since_the_freeze_leaves_the_overlay() {
    let overlay = Overlay::default();
    let key = 7u64.to_be_bytes();
    overlay.publish(one(Table::Outbox, &key, Some(b"event")));
    assert!(matches!(overlay.get(Table::Outbox, &key), Some(Some(_))));
    overlay.publish(one(Table::Outbox, &key, None));
    assert_eq!(overlay.get(Table::Outbox, &key), None);
    assert!(overlay.active_is_empty());
}

/// A removal stays a removal where it hides something: another table's
/// key (the file may hold an older value), and an outbox entry of the
/// frozen layer (its checkpoint may be writing it into the file).
#[test]
fn other_removals_stay_removals() {
    let overlay = Overlay::default();
    overlay.publish(one(Table::Users, b"u", Some(b"1")));
    overlay.publish(one(Table::Users, b"u", None));
    assert_eq!(overlay.get(Table::Users, b"u"), Some(None));
    let key = 8u64.to_be_bytes();
    overlay.publish(one(Table::Outbox, &key, Some(b"event")));
    overlay.freeze().unwrap();
    overlay.publish(one(Table::Outbox, &key, None));
    assert_eq!(overlay.get(Table::Outbox, &key), Some(None));
    // An outbox removal of a key the overlay does not hold (in the file).
    let old = 2u64.to_be_bytes();
    overlay.publish(one(Table::Outbox, &old, None));
    assert_eq!(overlay.get(Table::Outbox, &old), Some(None));
}

/// The merged view: the overlay's values win, its removals hide the
/// file's, both directions, and a stop is a stop.
#[test]
fn a_merge_puts_the_overlay_over_the_file_both_ways() {
    let file: Vec<(&[u8], &[u8])> = vec![(b"a", b"file"), (b"c", b"file"), (b"e", b"file")];
    let overlay = || -> Vec<(Box<[u8]>, Option<Bytes>)> {
        vec![
            (Box::from(&b"b"[..]), Some(Bytes::from(&b"new"[..]))),
            (Box::from(&b"c"[..]), None),
            (Box::from(&b"e"[..]), Some(Bytes::from(&b"new"[..]))),
            (Box::from(&b"f"[..]), Some(Bytes::from(&b"new"[..]))),
        ]
    };
    let run = |rev: bool, stop_after: usize| -> Vec<String> {
        let mut seen = Vec::new();
        let scan = |each: &mut Visit<'_, ()>| -> Result<(), ()> {
            let mut rows = file.clone();
            if rev {
                rows.reverse();
            }
            for (k, v) in rows {
                if !each(k, v)? {
                    break;
                }
            }
            Ok(())
        };
        merge(overlay(), rev, scan, &mut |k, v| {
            seen.push(format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            ));
            Ok(seen.len() < stop_after)
        })
        .unwrap();
        seen
    };
    assert_eq!(run(false, 99), ["a=file", "b=new", "e=new", "f=new"]);
    assert_eq!(run(true, 99), ["f=new", "e=new", "b=new", "a=file"]);
    assert_eq!(run(false, 2), ["a=file", "b=new"]);
    assert_eq!(run(true, 1), ["f=new"]);
}
