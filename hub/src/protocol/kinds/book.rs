//! `book.PAIR`: the whole book as a `snapshot`, then an `update` with the
//! changed levels of every change (conflated: the net of the interval).

use super::{Change, Cx, Kind, PairView, Pending};
use bytes::Bytes;
use orderbook::BookDelta;

pub struct Book;

fn snapshot(cx: Cx, reason: &str) -> Bytes {
    cx.enc
        .book_snapshot(cx.pair.spec, cx.h, reason, cx.pair.book, usize::MAX)
}

impl Kind for Book {
    fn name(&self) -> &'static str {
        "book"
    }

    fn publish(&self, cx: Cx, change: &Change) -> Option<Bytes> {
        match change {
            Change::Book => Some(snapshot(cx, "resync")),
            Change::Levels(deltas) => {
                let checksum = cx.pair.book.checksum();
                Some(cx.enc.book_update(cx.pair.spec, cx.h, deltas, checksum))
            }
            Change::Trades(_)
            | Change::Ticker
            | Change::CandleClosed(..)
            | Change::CandlesReplaced(_) => None,
        }
    }

    fn note(&self, _: &PairView, change: &Change, pending: &mut Pending) {
        match change {
            Change::Book => pending.resync = true,
            Change::Levels(deltas) => pending
                .changed
                .extend(deltas.iter().map(|d| (d.side, d.price))),
            Change::Trades(_)
            | Change::Ticker
            | Change::CandleClosed(..)
            | Change::CandlesReplaced(_) => {}
        }
    }

    fn flush(&self, cx: Cx, pending: &Pending) -> Option<Bytes> {
        if pending.resync {
            return Some(snapshot(cx, "resync"));
        }
        if pending.changed.is_empty() {
            return None;
        }
        let book = cx.pair.book;
        let deltas: Vec<BookDelta> = pending
            .changed
            .iter()
            .map(|&(side, price)| BookDelta {
                side,
                price,
                qty: book.qty_at(side, price),
            })
            .collect();
        Some(
            cx.enc
                .book_update(cx.pair.spec, cx.h, &deltas, book.checksum()),
        )
    }

    fn state(&self, cx: Cx, reason: &str) -> Option<Bytes> {
        Some(snapshot(cx, reason))
    }
}
