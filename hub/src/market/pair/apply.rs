//! Upstream events applied to the pair: the book, the counters and the
//! ticker change, then every active topic is told what changed
//! ([`Change`]): raw topics publish what their kind makes of it, conflated
//! ones note it for their tick. Also the pair's staleness and a new
//! upstream epoch, and what the pair's market status hears of each
//! (`market/status.rs`: halt, resync, stale).

use super::{def, header, netted, PairTask};
use crate::metrics as m;
use crate::protocol::encode::Ticker;
use crate::protocol::kinds::{Change, Cx};
use feeds::event::now_micros;
use feeds::{MarketEvent, PublicTrade, SnapshotReason, TradingStatus};
use orderbook::{BookDelta, Price, Qty};
use std::sync::atomic::Ordering;
use std::time::Instant;

impl PairTask {
    /// Marks the pair stale after `stale_after` without upstream messages.
    pub(super) fn check_stale(&mut self, now: Instant) {
        let Some(after) = self.stale_after else {
            return;
        };
        let silent = now.duration_since(self.last_event) > after;
        if silent && !self.stale.swap(true, Ordering::Relaxed) {
            let pair = &self.state.spec.symbol;
            tracing::warn!(pair = %pair, silent_ms = after.as_millis() as u64, "upstream feed stale");
            metrics::counter!(m::STALE_FEEDS_TOTAL, "pair" => pair.clone()).increment(1);
            let why = format!("no upstream data for {} ms", after.as_millis());
            self.status.stale(Some(why));
        }
    }

    /// The upstream's numbering restarted: every channel starts over in
    /// `epoch`. Subscribers keep their subscriptions; each channel's next
    /// message is their first in the new epoch (`prev_seq` 0), and book
    /// channels get the new book as a `resync` snapshot when it arrives.
    pub(super) fn new_epoch(&mut self, epoch: &str) {
        let s = &mut self.state;
        tracing::warn!(pair = %s.spec.symbol, old = %s.epoch, new = %epoch, "upstream epoch changed");
        s.epoch = epoch.to_owned();
        s.seq = 0;
        s.trade_seq = 0;
        s.last_ticker = Ticker::default();
        // A new stream: nothing in it was read by the rebuild.
        self.restored_upto = None;
        self.warm.store(false, Ordering::Relaxed);
        self.status.resyncing(Some("new upstream epoch"));
        for (topic, c) in self.topics.iter_mut().zip(&mut self.conflation) {
            topic.restart_numbering(&self.pool, &self.resync_tx);
            c.pending.changed.clear();
            c.pending.trades.clear();
            c.pending.resync = true;
            c.pending.dirty = true;
        }
    }

    pub(super) fn event(&mut self, ev: MarketEvent) {
        self.state.ts = now_micros();
        self.last_event = Instant::now();
        let pair = &self.state.spec.symbol;
        if self.stale.swap(false, Ordering::Relaxed) {
            tracing::info!(pair = %pair, "upstream feed live again");
            self.status.stale(None);
        }
        metrics::counter!(m::UPSTREAM_EVENTS_TOTAL, "pair" => pair.clone()).increment(1);
        match ev {
            MarketEvent::Snapshot {
                reason,
                seq,
                trade_seq,
                bids,
                asks,
                ..
            } => self.snapshot(reason, seq, trade_seq, &bids, &asks),
            MarketEvent::Delta { seq, deltas, .. } => self.delta(seq, &deltas),
            MarketEvent::Trades { seq, trades, .. } => self.trades(seq, &trades),
            MarketEvent::Status { status, .. } => self.status.halted(match status {
                TradingStatus::Open => None,
                TradingStatus::Halted { reason } => Some(reason),
            }),
            MarketEvent::Resyncing { reason, .. } => {
                tracing::warn!(pair = %self.state.spec.symbol, %reason, "upstream resyncing the pair");
                self.status.resyncing(Some(&reason));
            }
        }
    }

    fn snapshot(
        &mut self,
        reason: SnapshotReason,
        seq: u64,
        trade_seq: u64,
        bids: &[(Price, Qty)],
        asks: &[(Price, Qty)],
    ) {
        let s = &mut self.state;
        if let Err(e) = s.book.apply_snapshot(bids, asks) {
            tracing::error!(pair = %s.spec.symbol, error = %e, "upstream snapshot refused");
            return;
        }
        let was_warm = self.warm.swap(true, Ordering::Relaxed);
        self.status.resyncing(None);
        s.seq = seq;
        s.trade_seq = s.trade_seq.max(trade_seq);
        if was_warm || reason == SnapshotReason::Resync {
            metrics::counter!(m::RESYNCS_TOTAL, "pair" => s.spec.symbol.clone(), "reason" => "upstream").increment(1);
        }
        // Clients that subscribed before the first snapshot (or hold a book
        // the upstream just replaced) get the new book as a `resync`.
        self.changed(Change::Book);
        self.update_ticker();
    }

    fn delta(&mut self, seq: u64, deltas: &[BookDelta]) {
        let s = &mut self.state;
        if seq != s.seq + 1 {
            // The feed resyncs us with a snapshot; until then changes are
            // not applied (the book would be wrong).
            tracing::warn!(pair = %s.spec.symbol, expected = s.seq + 1, got = seq, "upstream seq gap");
            self.status.resyncing(Some("upstream seq gap"));
            return;
        }
        s.seq = seq;
        for d in deltas {
            s.book.apply_delta(*d);
        }
        if let Err(e) = s.book.check_not_crossed() {
            tracing::error!(pair = %s.spec.symbol, seq, error = %e, "upstream book crossed");
        }
        self.changed(Change::Levels(deltas));
        self.update_ticker();
    }

    fn trades(&mut self, seq: u64, trades: &[PublicTrade]) {
        // Candles first: the closes this batch causes are numbered with
        // the trade seq before it.
        self.candle_trades(seq, trades);
        self.state.trade_seq = seq;
        self.state.ticker.record(trades);
        self.changed(Change::Trades(trades));
        self.update_ticker();
    }

    fn update_ticker(&mut self) {
        let day = self.state.candles.stats();
        let ticker = self.state.ticker.ticker(&self.state.book, &day);
        if ticker == self.state.last_ticker {
            return;
        }
        self.state.last_ticker = ticker;
        self.changed(Change::Ticker);
    }

    /// Tells every active topic, in order, about `change`: a raw topic
    /// publishes the message its kind makes of it, a netted one (conflated,
    /// or raw with a floor) publishes what goes out at once and notes the
    /// rest.
    pub(super) fn changed(&mut self, change: Change) {
        for i in 0..self.topics.len() {
            if !self.topics[i].is_active() {
                continue;
            }
            let kind = def(i).kind.kind();
            let view = self.state.view();
            if netted(i) {
                let seq = kind.numbering().seq(&view);
                let h = header(&self.topics[i], &self.state, seq, self.topics[i].last_seq);
                let cx = Cx::new(&mut self.encoder, &view, &h);
                if let Some(bytes) = kind.publish_now(cx, &change) {
                    self.publish(i, seq, bytes);
                }
                let view = self.state.view();
                kind.note(&view, &change, &mut self.conflation[i].pending);
                continue;
            }
            let seq = kind.numbering().seq(&view);
            let h = header(&self.topics[i], &self.state, seq, self.topics[i].last_seq);
            let cx = Cx::new(&mut self.encoder, &view, &h);
            if let Some(bytes) = kind.publish(cx, &change) {
                self.publish(i, seq, bytes);
            }
        }
    }
}
