//! `ticker.PAIR`: best bid/ask, last price and the rolling 24 h figures as
//! a `ticker` message whenever one of them changes. Numbered by the sum of
//! the book and trade seqs (it moves with both).

use super::{Change, Cx, Kind, Numbering, PairView, Pending};
use bytes::Bytes;

pub struct TickerKind;

/// The message; `reason` only on a replacement (not on `subscribe`).
fn message(cx: Cx, reason: Option<&str>) -> Bytes {
    cx.enc.ticker(cx.pair.spec, cx.h, cx.pair.ticker, reason)
}

impl Kind for TickerKind {
    fn name(&self) -> &'static str {
        "ticker"
    }

    fn numbering(&self) -> Numbering {
        Numbering::BookAndTrades
    }

    fn publish(&self, cx: Cx, change: &Change) -> Option<Bytes> {
        matches!(change, Change::Ticker).then(|| message(cx, None))
    }

    fn note(&self, _: &PairView, change: &Change, pending: &mut Pending) {
        pending.dirty |= matches!(change, Change::Ticker);
    }

    fn flush(&self, cx: Cx, pending: &Pending) -> Option<Bytes> {
        pending.dirty.then(|| message(cx, None))
    }

    fn state(&self, cx: Cx, reason: &str) -> Option<Bytes> {
        Some(message(cx, Some(reason).filter(|r| *r != "subscribe")))
    }
}
