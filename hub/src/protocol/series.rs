//! A pair's candle series (docs/PROTOCOL.md, "Candles"): for every
//! interval of [`Interval::ALL`], the closed candles kept in memory and
//! the open one, built from the pair's trades in venue time; and the
//! rolling 24 h statistics of `ticker.PAIR`, read off the 1 m series.
//! Pure state (no I/O): the pair task (`market/pair/candles.rs`) feeds it,
//! the `candlesN` and `ticker` kinds read it through `PairView`.
//!
//! Rules (the documented ones):
//! - A trade goes into the candle of its `venue_ts`; a trade at or after
//!   the open candle's end closes it first. A trade older than the open
//!   candle (it arrived after its own candle closed) goes into the open
//!   candle.
//! - A candle also closes when the pair's estimate of venue time (the last
//!   `venue_ts` seen plus the hub's monotonic time since it was seen, never
//!   the hub's wall clock) passes its end plus [`GRACE_US`].
//! - No holes: after a close the next candle is open at once, flat at the
//!   previous close with zero volume, until its first trade. A gap longer
//!   than what is kept emits only [`keep`] candles: the one before the gap,
//!   then the last `keep - 1` flat ones (the starts jump once there).

use orderbook::candle::{Candle, Interval};
use orderbook::{Price, Qty};
use std::collections::VecDeque;
use std::time::Instant;

/// How far past a candle's end the venue-time estimate must be before the
/// hub closes it without a trade (1 s).
pub const GRACE_US: u64 = 1_000_000;

/// Candles in a `candles` state message: the last 299 closed and the open
/// one.
pub const SNAPSHOT_CANDLES: usize = 300;

/// Minutes in the 24 h window of the ticker.
pub const DAY_MINUTES: u64 = 24 * 60;

/// Closed candles kept in memory per interval: 1,000, and 1,440 for 1 m
/// (the 24 h window). Also the most closed candles one gap may emit.
pub fn keep(interval: Interval) -> usize {
    match interval {
        Interval::M1 => DAY_MINUTES as usize,
        _ => 1000,
    }
}

/// One interval's candles.
#[derive(Debug, Clone)]
pub struct Series {
    interval: Interval,
    closed: VecDeque<Candle>,
    /// `None` until the first trade (or restored candle).
    open: Option<Candle>,
}

impl Series {
    pub fn new(interval: Interval) -> Series {
        Series {
            interval,
            closed: VecDeque::new(),
            open: None,
        }
    }

    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// The closed candles in memory, oldest first, contiguous except
    /// after the first candle of a gap longer than [`keep`] (see
    /// [`Series::step`]).
    pub fn closed(&self) -> &VecDeque<Candle> {
        &self.closed
    }

    /// The open candle, once there has been a trade.
    pub fn open(&self) -> Option<&Candle> {
        self.open.as_ref()
    }

    /// The open candle's index (its start / the interval's length), 0
    /// before the first trade: with the trade seq, the channel's seq.
    pub fn open_index(&self) -> u64 {
        self.open.map_or(0, |c| c.start / self.interval.micros())
    }

    /// Restores closed candles (oldest first, e.g. from the archive); the
    /// open candle becomes the flat successor of the last one.
    pub fn restore(&mut self, closed: impl IntoIterator<Item = Candle>) {
        for c in closed {
            if self.closed.back().is_some_and(|b| b.start >= c.start) {
                continue;
            }
            self.push_closed(c);
        }
        if let Some(last) = self.closed.back() {
            self.open = Some(Candle::flat(
                last.start + self.interval.micros(),
                last.close,
            ));
        }
    }

    /// Closes the open candle if it starts before `target` (a candle
    /// start): returns it, and opens its flat successor, skipping ahead so
    /// that at most [`keep`] candles close before `target` opens.
    pub fn step(&mut self, target: u64) -> Option<Candle> {
        let open = self.open?;
        if open.start >= target {
            return None;
        }
        let len = self.interval.micros();
        let mut next = open.start + len;
        let flats = (target - next) / len;
        let max_flats = keep(self.interval) as u64 - 1;
        if flats > max_flats {
            next = target - max_flats * len;
        }
        self.open = Some(Candle::flat(next, open.close));
        self.push_closed(open);
        Some(open)
    }

    /// How many candles [`Series::step`] closes up to `target`.
    pub fn closes_until(&self, target: u64) -> usize {
        match self.open {
            Some(o) if o.start < target => {
                let n = (target - o.start) / self.interval.micros();
                usize::try_from(n)
                    .unwrap_or(usize::MAX)
                    .min(keep(self.interval))
            }
            _ => 0,
        }
    }

    /// Adds a trade to the open candle, or opens the first one. Call
    /// [`Series::step`] up to the trade's candle first.
    pub fn add(&mut self, price: Price, qty: Qty, venue_ts: u64) {
        match &mut self.open {
            Some(c) => c.add(price, qty),
            None => self.open = Some(Candle::opened(self.interval.start_of(venue_ts), price, qty)),
        }
    }

    fn push_closed(&mut self, c: Candle) {
        if self.closed.len() == keep(self.interval) {
            self.closed.pop_front();
        }
        self.closed.push_back(c);
    }

    /// The last `n` candles, oldest first, the open one last.
    pub fn last(&self, n: usize) -> impl Iterator<Item = &Candle> {
        let open = usize::from(self.open.is_some());
        let skip = (self.closed.len() + open).saturating_sub(n);
        self.closed.iter().chain(self.open.iter()).skip(skip)
    }

    /// Candles with `from <= start < to`, oldest first, the open one
    /// included; the newest `limit` when more match.
    pub fn range(&self, from: u64, to: u64, limit: usize) -> Vec<Candle> {
        let all: Vec<Candle> = self
            .closed
            .iter()
            .chain(self.open.iter())
            .filter(|c| c.start >= from && c.start < to)
            .copied()
            .collect();
        let skip = all.len().saturating_sub(limit);
        all[skip..].to_vec()
    }

    /// Start of the oldest closed candle in memory.
    pub fn first_closed_start(&self) -> Option<u64> {
        self.closed.front().map(|c| c.start)
    }
}

/// The rolling 24 h figures (only candles with trades count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats24h {
    pub open: Option<Price>,
    pub high: Option<Price>,
    pub low: Option<Price>,
    pub volume: Qty,
    /// In units of `10^-(price_scale + qty_scale)`.
    pub quote_volume: u128,
}

impl Stats24h {
    /// Adds one later candle (with trades) to the figures.
    fn add(&mut self, c: &Candle) {
        self.open = self.open.or(Some(c.open));
        self.high = Some(self.high.map_or(c.high, |h| h.max(c.high)));
        self.low = Some(self.low.map_or(c.low, |l| l.min(c.low)));
        self.volume = Qty(self.volume.0.saturating_add(c.volume.0));
        self.quote_volume = self.quote_volume.saturating_add(c.quote_volume);
    }
}

/// Every interval's series of one pair, and the venue-time clock.
#[derive(Debug, Clone)]
pub struct Candles {
    series: [Series; 6],
    /// The last trade's `venue_ts` and when the pair task saw it.
    seen: Option<(u64, Instant)>,
    stats: Stats24h,
    /// The closed 1 m candles' part of `stats` and what it was computed
    /// for: the window's first minute and the newest closed candle's
    /// start (it changes only when a minute closes or the window moves).
    closed_stats: (Stats24h, Option<(u64, Option<u64>)>),
}

impl Default for Candles {
    fn default() -> Self {
        Candles {
            series: Interval::ALL.map(Series::new),
            seen: None,
            stats: Stats24h::default(),
            closed_stats: (Stats24h::default(), None),
        }
    }
}

/// Position of `interval` in [`Interval::ALL`].
pub fn slot(interval: Interval) -> usize {
    Interval::ALL
        .iter()
        .position(|i| *i == interval)
        .expect("Interval::ALL lists every interval")
}

impl Candles {
    pub fn series(&self, interval: Interval) -> &Series {
        &self.series[slot(interval)]
    }

    pub fn series_mut(&mut self, interval: Interval) -> &mut Series {
        &mut self.series[slot(interval)]
    }

    /// Notes that a trade at `venue_ts` was seen now.
    pub fn saw(&mut self, venue_ts: u64, now: Instant) {
        if self.seen.is_none_or(|(ts, _)| venue_ts >= ts) {
            self.seen = Some((venue_ts, now));
        }
    }

    /// The estimate of venue time at `now`, once a trade was seen.
    pub fn venue_now(&self, now: Instant) -> Option<u64> {
        let (ts, at) = self.seen?;
        let elapsed = now.saturating_duration_since(at).as_micros();
        Some(ts.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX)))
    }

    /// The candle start `interval`'s series should be closed up to at
    /// `now` (venue time minus the grace), if known.
    pub fn close_target(&self, interval: Interval, now: Instant) -> Option<u64> {
        let venue = self.venue_now(now)?;
        Some(interval.start_of(venue.saturating_sub(GRACE_US)))
    }

    /// The 24 h figures as of the last [`Candles::update_stats`].
    pub fn stats(&self) -> Stats24h {
        self.stats
    }

    /// Recomputes the 24 h figures from the 1 m series: the 1,440
    /// one-minute candles ending at the last trade's minute. The closed
    /// minutes' aggregate is rescanned only when a minute closed or the
    /// window moved; per trade batch only the open candle is added.
    pub fn update_stats(&mut self) {
        let Some((last_ts, _)) = self.seen else {
            return;
        };
        let last_minute = Interval::M1.start_of(last_ts);
        let from = last_minute.saturating_sub((DAY_MINUTES - 1) * Interval::M1.micros());
        let in_window = |c: &&Candle| c.trades > 0 && c.start >= from && c.start <= last_minute;
        let m1 = &self.series[slot(Interval::M1)];
        let key = Some((from, m1.closed.back().map(|c| c.start)));
        if self.closed_stats.1 != key {
            let mut s = Stats24h::default();
            m1.closed.iter().filter(in_window).for_each(|c| s.add(c));
            self.closed_stats = (s, key);
        }
        let mut s = self.closed_stats.0;
        m1.open.iter().filter(in_window).for_each(|c| s.add(c));
        self.stats = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000_000;

    fn feed(s: &mut Series, ts: u64, price: u64) -> Vec<Candle> {
        let mut closed = Vec::new();
        while let Some(c) = s.step(s.interval().start_of(ts)) {
            closed.push(c);
        }
        s.add(Price(price), Qty(1), ts);
        closed
    }

    #[test]
    fn a_gap_is_filled_with_flat_candles() {
        let mut s = Series::new(Interval::M1);
        assert_eq!(s.closes_until(13 * MIN), 0, "no candle yet");
        assert!(feed(&mut s, 10 * MIN + 5, 100).is_empty());
        assert_eq!(s.closes_until(13 * MIN), 3);
        let closed = feed(&mut s, 13 * MIN, 90);
        assert_eq!(closed.len(), 3);
        assert_eq!((closed[0].start, closed[0].trades), (10 * MIN, 1));
        assert_eq!(closed[1], Candle::flat(11 * MIN, Price(100)));
        assert_eq!(closed[2], Candle::flat(12 * MIN, Price(100)));
        assert_eq!(
            s.open().map(|c| (c.start, c.open)),
            Some((13 * MIN, Price(90)))
        );
        assert_eq!(s.open_index(), 13);
        // a late trade goes into the open candle
        assert!(feed(&mut s, 11 * MIN, 95).is_empty());
        assert_eq!(s.open().map(|c| c.trades), Some(2));
    }

    #[test]
    fn a_long_gap_emits_at_most_what_is_kept() {
        let mut s = Series::new(Interval::H1);
        feed(&mut s, 0, 100);
        assert_eq!(s.closes_until(5000 * 60 * MIN), keep(Interval::H1));
        let closed = feed(&mut s, 5000 * 60 * MIN, 90);
        assert_eq!(closed.len(), keep(Interval::H1));
        assert_eq!(closed[0].start, 0);
        assert_eq!(closed[1].start, (5000 - 999) * 60 * MIN);
        assert_eq!(s.closed().len(), keep(Interval::H1));
        assert_eq!(s.last(300).count(), 300);
        assert_eq!(s.last(300).last().map(|c| c.start), Some(5000 * 60 * MIN));
    }

    #[test]
    fn stats_cover_the_last_1440_minutes_with_trades() {
        let mut c = Candles::default();
        let now = Instant::now();
        for (ts, price, qty) in [(0, 100, 2), (30 * MIN, 90, 3), (DAY_MINUTES * MIN, 95, 1)] {
            let s = c.series_mut(Interval::M1);
            while s.step(Interval::M1.start_of(ts)).is_some() {}
            s.add(Price(price), Qty(qty), ts);
            c.saw(ts, now);
            c.update_stats();
            if ts == 30 * MIN {
                let st = c.stats();
                assert_eq!(
                    (st.open, st.high, st.low, st.volume),
                    (Some(Price(100)), Some(Price(100)), Some(Price(90)), Qty(5))
                );
                assert_eq!(st.quote_volume, 470);
            }
        }
        let st = c.stats();
        assert_eq!(
            (st.open, st.high, st.low, st.volume),
            (Some(Price(90)), Some(Price(95)), Some(Price(90)), Qty(4))
        );
        // Another trade in the same minute: the closed minutes' aggregate
        // is reused, the open candle's new figures count.
        c.series_mut(Interval::M1)
            .add(Price(99), Qty(2), DAY_MINUTES * MIN + 5);
        c.saw(DAY_MINUTES * MIN + 5, now);
        c.update_stats();
        let st = c.stats();
        assert_eq!(
            (st.open, st.high, st.low, st.volume),
            (Some(Price(90)), Some(Price(99)), Some(Price(90)), Qty(6))
        );
        assert_eq!(st.quote_volume, 3 * 90 + 95 + 2 * 99);
    }
}
