use super::*;
use crate::events::EventType;
use serde_json::json;

/// Lines of `lengths` bytes back to back from `start`, each with an event.
fn lines(start: u64, lengths: &[u64]) -> Vec<Line> {
    let mut offset = start;
    lengths
        .iter()
        .map(|&n| {
            let line = Line {
                start: offset,
                end: offset + n,
                appended: Some(Appended {
                    event: Arc::new(Event::new(
                        EventType::OrderAccepted,
                        Some("u"),
                        json!({ "at": offset }),
                    )),
                    json: Arc::from("{}"),
                }),
            };
            offset += n;
            line
        })
        .collect()
}

fn starts(got: Option<Vec<Line>>) -> Option<Vec<u64>> {
    got.map(|lines| lines.iter().map(|l| l.start).collect())
}

#[test]
fn answers_only_where_it_knows_the_file() {
    let tail = Tail::default();
    assert!(
        tail.from(0, 10).is_none(),
        "nothing appended: read the file"
    );
    tail.appended(lines(100, &[10, 15, 5]));
    assert_eq!(starts(tail.from(100, 10)), Some(vec![100, 110, 125]));
    assert_eq!(starts(tail.from(110, 1)), Some(vec![110]), "at most max");
    assert_eq!(
        starts(tail.from(130, 10)),
        Some(vec![]),
        "at the end: nothing new"
    );
    assert!(tail.from(0, 10).is_none(), "before this writer: the file");
    assert!(tail.from(105, 10).is_none(), "inside a line: the file");
    assert!(tail.from(131, 10).is_none(), "past the end: the file");
    tail.appended(lines(130, &[20]));
    assert_eq!(starts(tail.from(125, 10)), Some(vec![125, 130]));
}

#[test]
fn an_append_that_does_not_follow_the_last_starts_the_tail_again() {
    let tail = Tail::default();
    tail.appended(lines(0, &[10]));
    // Another writer's 30 bytes came between.
    tail.appended(lines(40, &[10]));
    assert!(
        tail.from(10, 10).is_none(),
        "the other writer's lines are read from the file"
    );
    assert!(tail.from(0, 10).is_none());
    assert_eq!(starts(tail.from(40, 10)), Some(vec![40]));
}

#[test]
fn lets_go_of_the_oldest_lines_past_its_bounds() {
    let tail = Tail::default();
    tail.appended(lines(0, &vec![1; MAX_LINES + 5]));
    assert!(tail.from(4, 1).is_none(), "let go of: read from the file");
    assert_eq!(starts(tail.from(5, 1)), Some(vec![5]));
    assert_eq!(tail.from(5, usize::MAX).unwrap().len(), MAX_LINES);

    let big = Tail::default();
    big.appended(lines(0, &[MAX_BYTES / 2, MAX_BYTES / 2, 1]));
    assert!(big.from(0, 10).is_none(), "over the bytes bound");
    assert_eq!(starts(big.from(MAX_BYTES / 2, 10)).unwrap().len(), 2);
}

#[test]
fn one_tail_per_file_while_anyone_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let a = Tail::of(&path);
    let same = Tail::of(&dir.path().join(".").join("events.ndjson"));
    assert!(Arc::ptr_eq(&a, &same), "the same file by another path");
    let other = Tail::of(&dir.path().join("other.ndjson"));
    assert!(!Arc::ptr_eq(&a, &other));
    a.appended(lines(0, &[10]));
    drop((a, same));
    let again = Tail::of(&path);
    assert!(
        again.from(0, 10).is_none(),
        "a tail nobody held is gone with what it knew"
    );
}
