//! Gap detection on scripted sequences of upstream events.

use super::*;
use crate::event::PublicTrade;
use orderbook::{BookDelta, Price, Qty, Side};

fn pair() -> PairSequence {
    PairSequence::new(Arc::from("BTC-USD"))
}

fn snapshot(seq: u64, trade_seq: u64, resync: bool) -> BookUpdate {
    BookUpdate {
        epoch: "e".into(),
        seq,
        venue_ts: seq,
        body: BookBody::Snapshot {
            trade_seq,
            resync,
            bids: vec![(Price(100), Qty(5))],
            asks: vec![(Price(101), Qty(5))],
        },
    }
}

fn delta(seq: u64, price: u64, qty: u64) -> BookUpdate {
    BookUpdate {
        epoch: "e".into(),
        seq,
        venue_ts: seq,
        body: BookBody::Delta(vec![BookDelta {
            side: Side::Buy,
            price: Price(price),
            qty: Qty(qty),
        }]),
    }
}

fn trades(seq: u64) -> TradeUpdate {
    TradeUpdate {
        epoch: "e".into(),
        seq,
        venue_ts: seq,
        trades: vec![PublicTrade {
            trade_id: seq,
            price: Price(100),
            qty: Qty(1),
            side: Side::Sell,
            venue_ts: seq,
        }],
    }
}

fn seqs(step: &Step) -> Vec<(&'static str, u64)> {
    step.events
        .iter()
        .map(|e| match e {
            MarketEvent::Snapshot { seq, .. } => ("snapshot", *seq),
            MarketEvent::Delta { seq, .. } => ("delta", *seq),
            MarketEvent::Trades { seq, .. } => ("trades", *seq),
            MarketEvent::Status { .. } => ("status", 0),
            MarketEvent::Resyncing { .. } => ("resyncing", 0),
        })
        .collect()
}

fn reason(step: &Step) -> SnapshotReason {
    match &step.events[0] {
        MarketEvent::Snapshot { reason, .. } => *reason,
        other => panic!("not a snapshot: {other:?}"),
    }
}

#[test]
fn contiguous_deltas_and_trades_are_forwarded() {
    let mut p = pair();
    let s = p.on_book(snapshot(10, 3, false));
    assert_eq!(seqs(&s), [("snapshot", 10)]);
    assert_eq!(reason(&s), SnapshotReason::Subscribe);
    assert_eq!(seqs(&p.on_book(delta(11, 99, 1))), [("delta", 11)]);
    assert_eq!(seqs(&p.on_trades(trades(4))), [("trades", 4)]);
    assert_eq!(seqs(&p.on_book(delta(12, 99, 0))), [("delta", 12)]);
    assert_eq!(seqs(&p.on_trades(trades(5))), [("trades", 5)]);
}

#[test]
fn a_skipped_delta_is_a_gap_and_the_next_snapshot_is_a_resync() {
    let mut p = pair();
    p.on_book(snapshot(10, 0, false));
    p.on_book(delta(11, 99, 1));
    let s = p.on_book(delta(13, 98, 1));
    assert!(s.events.is_empty(), "nothing after a gap is forwarded");
    assert_eq!(
        s.gap,
        Some(Gap {
            stream: "book",
            expected: 12,
            got: 13
        })
    );
    p.restart();
    assert!(!p.is_live());
    assert!(
        p.on_book(delta(14, 98, 1)).events.is_empty(),
        "deltas wait for the snapshot"
    );
    let s = p.on_book(snapshot(20, 0, false));
    assert_eq!(reason(&s), SnapshotReason::Resync);
    assert_eq!(seqs(&p.on_book(delta(21, 97, 1))), [("delta", 21)]);
}

#[test]
fn a_repeated_delta_is_a_gap_too() {
    let mut p = pair();
    p.on_book(snapshot(10, 0, false));
    p.on_book(delta(11, 99, 1));
    assert!(p.on_book(delta(11, 99, 1)).gap.is_some());
}

#[test]
fn a_skipped_trade_batch_is_a_gap() {
    let mut p = pair();
    p.on_book(snapshot(1, 7, false));
    p.on_trades(trades(8));
    let s = p.on_trades(trades(10));
    assert_eq!(
        s.gap,
        Some(Gap {
            stream: "trades",
            expected: 9,
            got: 10
        })
    );
}

#[test]
fn trades_before_the_snapshot_wait_and_those_it_covers_are_dropped() {
    let mut p = pair();
    assert!(p.on_trades(trades(4)).events.is_empty());
    assert!(p.on_trades(trades(5)).events.is_empty());
    assert!(p.on_trades(trades(6)).events.is_empty());
    // The snapshot follows batch 4: batches 5 and 6 are newer.
    let s = p.on_book(snapshot(30, 4, false));
    assert_eq!(seqs(&s), [("snapshot", 30), ("trades", 5), ("trades", 6)]);
    assert_eq!(s.gap, None);
    // A batch the snapshot already covers arrives late: dropped.
    assert!(p.on_trades(trades(6)).events.is_empty());
    assert_eq!(seqs(&p.on_trades(trades(7))), [("trades", 7)]);
}

#[test]
fn buffered_trades_that_skip_one_are_a_gap_after_the_snapshot() {
    let mut p = pair();
    p.on_trades(trades(9));
    let s = p.on_book(snapshot(30, 7, false));
    assert_eq!(seqs(&s), [("snapshot", 30)]);
    assert_eq!(s.gap.map(|g| (g.expected, g.got)), Some((8, 9)));
}

#[test]
fn a_snapshot_the_venue_marks_resync_is_forwarded_as_resync() {
    let mut p = pair();
    p.on_book(snapshot(10, 0, false));
    let s = p.on_book(snapshot(50, 0, true));
    assert_eq!(reason(&s), SnapshotReason::Resync);
    assert_eq!(seqs(&p.on_book(delta(51, 99, 1))), [("delta", 51)]);
}

#[test]
fn resync_snapshots_reflect_every_forwarded_delta() {
    let mut p = pair();
    assert_eq!(
        p.resync_snapshot(0),
        None,
        "nothing to resync before a snapshot"
    );
    p.on_book(snapshot(10, 2, false));
    p.on_book(delta(11, 99, 7));
    p.on_book(delta(12, 100, 0));
    p.on_trades(trades(3));
    let Some(MarketEvent::Snapshot {
        reason,
        seq,
        trade_seq,
        bids,
        asks,
        ..
    }) = p.resync_snapshot(5)
    else {
        panic!("no snapshot")
    };
    assert_eq!(reason, SnapshotReason::Resync);
    assert_eq!((seq, trade_seq), (12, 3));
    assert_eq!(bids, vec![(Price(99), Qty(7))]);
    assert_eq!(asks, vec![(Price(101), Qty(5))]);
}

#[test]
fn a_crossed_snapshot_is_refused_as_a_gap() {
    let mut p = pair();
    let crossed = BookUpdate {
        epoch: "e".into(),
        seq: 3,
        venue_ts: 0,
        body: BookBody::Snapshot {
            trade_seq: 0,
            resync: false,
            bids: vec![(Price(102), Qty(1))],
            asks: vec![(Price(101), Qty(1))],
        },
    };
    let s = p.on_book(crossed);
    assert!(s.events.is_empty());
    assert_eq!(s.gap.map(|g| g.stream), Some("snapshot"));
    assert!(!p.is_live());
}
