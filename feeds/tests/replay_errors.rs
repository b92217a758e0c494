//! A recording is input like any other: every bad number or line in it is
//! refused with a typed error naming the line, never rounded or skipped.

use feeds::replay::{RecordingReader, ReplayError};
use orderbook::DecimalError;
use std::io::Cursor;

const HEADER: &str = r#"{"type":"header","version":1,"epoch":"e1","markets":[{"symbol":"BTC-USD","price_scale":2,"qty_scale":6,"min_qty":"0.000010"}]}"#;

fn read_second_line(line: &str) -> Result<(), ReplayError> {
    let text = format!("{HEADER}\n{line}\n");
    let mut reader = RecordingReader::new(Cursor::new(text))?;
    reader.next_event().map(|_| ())
}

fn delta_with(price: &str, qty: &str) -> String {
    format!(
        r#"{{"type":"delta","pair":"BTC-USD","seq":1,"venue_ts":1,"bids":[["{price}","{qty}"]],"asks":[]}}"#
    )
}

#[test]
fn good_lines_parse() {
    read_second_line(&delta_with("64000.10", "0.500000")).unwrap();
    read_second_line(r#"{"type":"trades","pair":"BTC-USD","seq":1,"venue_ts":1,"trades":[{"id":1,"price":"1.00","qty":"1","side":"buy"}]}"#).unwrap();
}

#[test]
fn every_bad_number_is_a_typed_error_with_its_line() {
    let cases = [
        (delta_with("6.4e4", "1"), DecimalError::Exponent),
        (
            delta_with("64000.101", "1"),
            DecimalError::TooManyDecimals { scale: 2 },
        ),
        (delta_with("-1.00", "1"), DecimalError::Negative),
        (delta_with("NaN", "1"), DecimalError::NotANumber),
        (delta_with("0.00", "1"), DecimalError::Zero),
        (
            delta_with("1.00", "99999999999999999999"),
            DecimalError::Overflow,
        ),
        (
            delta_with("1.00", "0.0000001"),
            DecimalError::TooManyDecimals { scale: 6 },
        ),
    ];
    for (line, want) in cases {
        match read_second_line(&line) {
            Err(ReplayError::BadNumber { line: 2, source }) => assert_eq!(source, want, "{line}"),
            other => panic!("{line}: expected BadNumber({want:?}) on line 2, got {other:?}"),
        }
    }
    let trade = r#"{"type":"trades","pair":"BTC-USD","seq":1,"venue_ts":1,"trades":[{"id":1,"price":"1e2","qty":"1","side":"buy"}]}"#;
    assert!(matches!(
        read_second_line(trade),
        Err(ReplayError::BadNumber {
            line: 2,
            source: DecimalError::Exponent
        })
    ));
}

#[test]
fn bad_lines_are_refused() {
    assert!(matches!(
        read_second_line("{not json"),
        Err(ReplayError::Malformed { line: 2, .. })
    ));
    assert!(matches!(
        read_second_line(&delta_with("1.00", "1").replace("BTC-USD", "FOO-BAR")),
        Err(ReplayError::UnknownPair { line: 2, .. })
    ));
    assert!(matches!(
        read_second_line(
            r#"{"type":"delta","pair":"BTC-USD","seq":1,"venue_ts":1,"bids":[],"asks":[],"extra":1}"#
        ),
        Err(ReplayError::Malformed { .. })
    ));
    assert!(matches!(
        read_second_line(HEADER),
        Err(ReplayError::Malformed { line: 2, .. })
    ));
    assert!(matches!(
        RecordingReader::new(Cursor::new("")),
        Err(ReplayError::NoHeader)
    ));
    let v2 = HEADER.replace(r#""version":1"#, r#""version":2"#);
    assert!(matches!(
        RecordingReader::new(Cursor::new(v2)),
        Err(ReplayError::Version(2))
    ));
    let bad_min = HEADER.replace("0.000010", "0.0000101");
    assert!(matches!(
        RecordingReader::new(Cursor::new(bad_min)),
        Err(ReplayError::BadNumber { line: 1, .. })
    ));
}

/// A hostile file: nesting and length are refused before the line is parsed
/// (serde_json alone would stop at depth 128; a line with no end would be
/// read whole into memory).
#[test]
fn oversized_lines_are_refused_before_parsing() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    match read_second_line(&deep) {
        Err(ReplayError::Malformed { line: 2, message }) => {
            assert!(message.contains("deep"), "{message}")
        }
        other => panic!("deep line: {other:?}"),
    }
    let limit = feeds::replay::LINE_BOUNDS.max_bytes;
    let endless = format!("{HEADER}\n\"{}", "a".repeat(limit + 10));
    let mut reader = RecordingReader::new(Cursor::new(endless)).unwrap();
    match reader.next_event() {
        Err(ReplayError::Malformed { line: 2, message }) => {
            assert!(message.contains("bytes"), "{message}")
        }
        other => panic!("long line: {other:?}"),
    }
}

/// `status` and `resyncing` lines (optional in a recording) read back as
/// their events; a halt must carry its reason and an open pair none.
#[test]
fn status_and_resyncing_lines_parse_and_are_checked() {
    use feeds::{MarketEvent, TradingStatus};
    let read = |line: &str| -> Result<MarketEvent, ReplayError> {
        let text = format!("{HEADER}\n{line}\n");
        let mut reader = RecordingReader::new(Cursor::new(text))?;
        Ok(reader.next_event()?.expect("one event"))
    };
    let halted = read(r#"{"type":"status","pair":"BTC-USD","venue_ts":5,"halted":true,"reason":"circuit breaker"}"#).unwrap();
    assert!(
        matches!(
            halted,
            MarketEvent::Status { venue_ts: 5, status: TradingStatus::Halted { ref reason }, .. } if reason == "circuit breaker"
        ),
        "{halted:?}"
    );
    let open = read(r#"{"type":"status","pair":"BTC-USD","venue_ts":6,"halted":false}"#).unwrap();
    assert!(
        matches!(
            open,
            MarketEvent::Status {
                status: TradingStatus::Open,
                ..
            }
        ),
        "{open:?}"
    );
    let resyncing =
        read(r#"{"type":"resyncing","pair":"BTC-USD","venue_ts":7,"reason":"upstream seq gap"}"#)
            .unwrap();
    assert!(
        matches!(
            resyncing,
            MarketEvent::Resyncing { ref reason, .. } if reason == "upstream seq gap"
        ),
        "{resyncing:?}"
    );
    for bad in [
        r#"{"type":"status","pair":"BTC-USD","venue_ts":5,"halted":true}"#,
        r#"{"type":"status","pair":"BTC-USD","venue_ts":5,"halted":false,"reason":"x"}"#,
    ] {
        assert!(
            matches!(read(bad), Err(ReplayError::Malformed { line: 2, .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        read(r#"{"type":"status","pair":"FOO-BAR","venue_ts":5,"halted":false}"#),
        Err(ReplayError::UnknownPair { line: 2, .. })
    ));
}
