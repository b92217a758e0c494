//! `candles1m.PAIR` … `candles1d.PAIR`: a pair's candles of one interval
//! (docs/PROTOCOL.md, "Candles"). State message `candles` (the last 300,
//! the open one last); then a `candle` message when the open candle
//! changes (at most one per 250 ms on the raw channel, netted) and one
//! with `"closed": true` at once when a candle closes; when more than 300
//! close at once (a long gap), the state again (`reason: "resync"`)
//! instead of their closed messages. Numbered by the open candle's index
//! plus the trade seq ([`Numbering::Candles`]).

use super::{Change, Cx, Kind, Numbering, PairView, Pending};
use crate::protocol::series::SNAPSHOT_CANDLES;
use bytes::Bytes;
use orderbook::candle::{Candle, Interval};

/// The `candlesN` kind of one interval.
pub struct Candles {
    name: &'static str,
    interval: Interval,
}

pub const CANDLES1M: Candles = Candles::new("candles1m", Interval::M1);
pub const CANDLES5M: Candles = Candles::new("candles5m", Interval::M5);
pub const CANDLES15M: Candles = Candles::new("candles15m", Interval::M15);
pub const CANDLES1H: Candles = Candles::new("candles1h", Interval::H1);
pub const CANDLES4H: Candles = Candles::new("candles4h", Interval::H4);
pub const CANDLES1D: Candles = Candles::new("candles1d", Interval::D1);

/// The raw channel's floor: at most one open-candle update per 250 ms.
const RAW_EVERY_MS: u64 = 250;

impl Candles {
    const fn new(name: &'static str, interval: Interval) -> Candles {
        Candles { name, interval }
    }

    /// A `candle` message: the open candle (`closed: false`).
    fn update(&self, cx: Cx) -> Option<Bytes> {
        let open = *cx.pair.candles.series(self.interval).open()?;
        Some(candle_message(cx, &open, false))
    }
}

/// A `candle` message carrying `c`.
fn candle_message(cx: Cx, c: &Candle, closed: bool) -> Bytes {
    cx.enc.candle_update(cx.pair.spec, cx.h, c, closed)
}

impl Kind for Candles {
    fn name(&self) -> &'static str {
        self.name
    }

    fn numbering(&self) -> Numbering {
        Numbering::Candles(self.interval)
    }

    fn raw_every_ms(&self) -> Option<u64> {
        Some(RAW_EVERY_MS)
    }

    fn needs_book(&self) -> bool {
        false
    }

    fn publish(&self, cx: Cx, change: &Change) -> Option<Bytes> {
        // Never raw: the raw channel is netted (`raw_every_ms`); a close
        // goes out through `publish_now`.
        let _ = (cx, change);
        None
    }

    fn publish_now(&self, cx: Cx, change: &Change) -> Option<Bytes> {
        match change {
            Change::CandleClosed(i, c) if *i == self.interval => Some(candle_message(cx, c, true)),
            // A gap longer than a state message: the state again.
            Change::CandlesReplaced(i) if *i == self.interval => self.state(cx, "resync"),
            _ => None,
        }
    }

    fn note(&self, _: &PairView, change: &Change, pending: &mut Pending) {
        match change {
            // The closed message superseded the pending update of the
            // candle it closed.
            Change::CandleClosed(i, _) | Change::CandlesReplaced(i) if *i == self.interval => {
                pending.dirty = false
            }
            Change::Trades(_) => pending.dirty = true,
            _ => {}
        }
    }

    fn flush(&self, cx: Cx, pending: &Pending) -> Option<Bytes> {
        if pending.dirty {
            self.update(cx)
        } else {
            None
        }
    }

    fn state(&self, cx: Cx, reason: &str) -> Option<Bytes> {
        let series = cx.pair.candles.series(self.interval);
        let open_start = series.open().map(|c| c.start);
        let last = series.last(SNAPSHOT_CANDLES);
        Some(cx.enc.candles(cx.pair.spec, cx.h, reason, last, open_start))
    }
}
