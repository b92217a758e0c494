//! `trades.PAIR`: one `trades` message per batch of executions
//! (conflated: every batch of the interval in one). No state message: a
//! subscriber's first message carries `prev_seq` 0, and an overflow
//! closes the connection (trades cannot be netted).

use super::{Change, Cx, Kind, Numbering, PairView, Pending};
use crate::fanout::OnOverflow;
use bytes::Bytes;

pub struct Trades;

impl Kind for Trades {
    fn name(&self) -> &'static str {
        "trades"
    }

    fn on_overflow(&self) -> OnOverflow {
        OnOverflow::Close
    }

    fn numbering(&self) -> Numbering {
        Numbering::Trades
    }

    fn has_state(&self) -> bool {
        false
    }

    fn publish(&self, cx: Cx, change: &Change) -> Option<Bytes> {
        let Change::Trades(trades) = change else {
            return None;
        };
        Some(cx.enc.trades(cx.pair.spec, cx.h, trades))
    }

    fn note(&self, _: &PairView, change: &Change, pending: &mut Pending) {
        if let Change::Trades(trades) = change {
            pending.trades.extend_from_slice(trades);
        }
    }

    fn flush(&self, cx: Cx, pending: &Pending) -> Option<Bytes> {
        let trades = &pending.trades;
        (!trades.is_empty()).then(|| cx.enc.trades(cx.pair.spec, cx.h, trades))
    }

    fn state(&self, _: Cx, _: &str) -> Option<Bytes> {
        None
    }
}
