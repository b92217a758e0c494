//! Recordings: `feeds::replay::RecordingReader` over a fixed header line
//! followed by the fuzzed lines.
//!
//! Invariants: reading ends (at most one event per line); every price and
//! quantity read is exact at its pair's scale (it formats and parses back
//! to itself).
#![no_main]

use feeds::replay::RecordingReader;
use feeds::MarketEvent;
use libfuzzer_sys::fuzz_target;
use orderbook::decimal::{format_scaled, parse_scaled};
use orderbook::MarketSpec;
use std::io::{Cursor, Read};

const HEADER: &str = concat!(
    r#"{"type":"header","version":1,"epoch":"e1","markets":["#,
    r#"{"symbol":"BTC-USD","price_scale":2,"qty_scale":6,"min_qty":"0.000010"},"#,
    r#"{"symbol":"ETH-USD","price_scale":2,"qty_scale":8,"min_qty":"0.00000001"}]}"#,
    "\n"
);

fn exact(raw: u64, scale: u8) {
    let text = format_scaled(raw, scale);
    assert_eq!(
        parse_scaled(&text, scale),
        Ok(raw),
        "{text} at scale {scale}"
    );
}

fn check(event: &MarketEvent, specs: &[MarketSpec]) {
    let spec = specs
        .iter()
        .find(|s| *s.symbol == **event.pair())
        .expect("an event of a pair of the header");
    match event {
        MarketEvent::Snapshot { bids, asks, .. } => {
            for (price, qty) in bids.iter().chain(asks) {
                exact(price.0, spec.price_scale);
                exact(qty.0, spec.qty_scale);
            }
        }
        MarketEvent::Delta { deltas, .. } => {
            for d in deltas {
                exact(d.price.0, spec.price_scale);
                exact(d.qty.0, spec.qty_scale);
            }
        }
        MarketEvent::Trades { trades, .. } => {
            for t in trades {
                exact(t.price.0, spec.price_scale);
                exact(t.qty.0, spec.qty_scale);
            }
        }
        MarketEvent::Status { .. } | MarketEvent::Resyncing { .. } => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    let reader = Cursor::new(HEADER.as_bytes()).chain(data);
    let mut reader =
        RecordingReader::new(std::io::BufReader::new(reader)).expect("the fixed header reads");
    let specs = reader.header.markets.clone();
    for _ in 0..lines {
        match reader.next_event() {
            Ok(Some(event)) => check(&event, &specs),
            Ok(None) | Err(_) => return,
        }
    }
    // One event per line at most: the reader is at the end now.
    assert!(matches!(reader.next_event(), Ok(None) | Err(_)));
});
