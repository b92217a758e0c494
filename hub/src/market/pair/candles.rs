//! The pair task's candles (docs/PROTOCOL.md, "Candles"): trades into
//! every interval's series, closes (by a later trade or by the venue-time
//! estimate) published at once on `candlesN.PAIR`, the recent-trade ring,
//! the hand-off to the archive writer, the rebuild from the archive at
//! start, and the REST reads.

use super::{PairTask, RECENT_TRADES};
use crate::market::ticker::TickerState;
use crate::metrics as m;
use crate::protocol::kinds::Change;
use crate::protocol::series::{keep, Candles, SNAPSHOT_CANDLES};
use api::market_archive::{ArchivedTrade, MarketArchive, TradeKey};
use feeds::event::now_micros;
use feeds::PublicTrade;
use orderbook::candle::{Candle, Interval};
use std::time::{Duration, Instant};

/// How far ahead of the venue-time estimate (and of the hub's clock) a
/// trade's `venue_ts` may be and still count in the candles: one minute.
pub(super) const MAX_AHEAD_US: u64 = 60_000_000;
/// Trades read from the archive per page when rebuilding.
const RESTORE_PAGE: usize = 1000;
/// How long the rebuild from the archive may take before the pair starts
/// without history (docs/ARCHITECTURE.md, "Market archive").
pub(super) const RESTORE_TIMEOUT: Duration = Duration::from_secs(30);

/// What `GET /markets/{pair}/candles` gets from the pair task.
#[derive(Debug, Clone)]
pub struct CandlesView {
    pub spec: orderbook::MarketSpec,
    /// Oldest first; the open candle last when in range.
    pub candles: Vec<Candle>,
    /// Start of the open candle.
    pub open_start: Option<u64>,
    /// Start of the oldest closed candle in memory: older ones are in the
    /// archive only.
    pub oldest_in_memory: Option<u64>,
}

impl PairTask {
    /// Applies a batch of trades (upstream seq `seq`) to the candles, the
    /// ring and the archive; closes are published as they happen, numbered
    /// with the trade seq before this batch.
    ///
    /// Skipped here (they still go out on `trades.PAIR`):
    /// - trades at or below the last one the rebuild read from the archive
    ///   ([`PairTask::restored_upto`]): the stream was subscribed before
    ///   the rebuild, so a shared archive already holds them;
    /// - trades more than [`MAX_AHEAD_US`] ahead of both the venue-time
    ///   estimate and the hub's clock (a bad `venue_ts` would close
    ///   thousands of candles and move the open ones into the future).
    pub(super) fn candle_trades(&mut self, seq: u64, trades: &[PublicTrade]) {
        let now = Instant::now();
        let mut kept = Vec::with_capacity(trades.len());
        for t in trades {
            if self.restored_upto.is_some_and(|upto| key_of(t) <= upto) {
                metrics::counter!(m::TRADES_ALREADY_RESTORED_TOTAL).increment(1);
                continue;
            }
            if let Some(venue) = self.state.candles.venue_now(now) {
                let bound = venue.max(now_micros()).saturating_add(MAX_AHEAD_US);
                if t.venue_ts > bound {
                    metrics::counter!(m::TRADES_FUTURE_TOTAL).increment(1);
                    tracing::warn!(pair = %self.pair, trade_id = t.trade_id, venue_ts = t.venue_ts, venue_now = venue, "trade too far in the future: kept out of the candles");
                    continue;
                }
            }
            for interval in Interval::ALL {
                self.close_candles(interval, interval.start_of(t.venue_ts));
                self.state
                    .candles
                    .series_mut(interval)
                    .add(t.price, t.qty, t.venue_ts);
            }
            self.state.candles.saw(t.venue_ts, now);
            kept.push(*t);
        }
        if kept.is_empty() {
            return;
        }
        self.state.candles.update_stats();
        for t in &kept {
            self.remember(ArchivedTrade {
                epoch: self.state.epoch.clone(),
                seq,
                trade: *t,
            });
        }
        if let Some(w) = &self.archive {
            w.trades(&self.pair, &self.state.epoch, seq, &kept);
        }
    }

    /// Closes every candle whose end the venue-time estimate passed (plus
    /// the grace).
    pub(super) fn close_candles_by_time(&mut self, now: Instant) {
        for interval in Interval::ALL {
            if let Some(target) = self.state.candles.close_target(interval, now) {
                self.close_candles(interval, target);
            }
        }
    }

    /// Closes `interval`'s candles up to `target` (a candle start), each
    /// published at once and handed to the archive; when more close than a
    /// state message holds, subscribers get the state again instead of
    /// their closed messages.
    fn close_candles(&mut self, interval: Interval, target: u64) {
        let many = self.state.candles.series(interval).closes_until(target) > SNAPSHOT_CANDLES;
        while let Some(c) = self.state.candles.series_mut(interval).step(target) {
            if !many {
                self.changed(Change::CandleClosed(interval, &c));
            }
            if let Some(w) = &self.archive {
                w.candle(&self.pair, interval, c);
            }
        }
        if many {
            self.changed(Change::CandlesReplaced(interval));
        }
    }

    fn remember(&mut self, t: ArchivedTrade) {
        if self.state.recent.len() == RECENT_TRADES {
            self.state.recent.pop_front();
        }
        self.state.recent.push_back(t);
    }

    /// Rebuilds the candles, the 24 h figures and the recent-trade ring
    /// from the archive: each interval's closed candles (the last
    /// [`keep`]), then the trades since the oldest open candle started (at
    /// most a day before the last trade). A trade of a candle the archive
    /// already holds closed is not counted again.
    ///
    /// All or nothing: when a read fails or the rebuild takes longer than
    /// [`RESTORE_TIMEOUT`], the pair starts with no history (no candles,
    /// no 24 h figures, no recent trades), as if the archive were empty.
    pub(super) async fn restore(&mut self, archive: &dyn MarketArchive) {
        let pair = self.pair.clone();
        let error =
            match tokio::time::timeout(RESTORE_TIMEOUT, self.try_restore(archive, &pair)).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("timed out after {} s", RESTORE_TIMEOUT.as_secs()),
            };
        tracing::error!(pair = %pair, error = %error, "candles not restored from the market archive: starting without history");
        self.forget_history();
    }

    /// Back to no history (a failed rebuild).
    pub(super) fn forget_history(&mut self) {
        self.state.candles = Candles::default();
        self.state.recent.clear();
        self.state.ticker = TickerState::default();
        self.restored_upto = None;
    }

    async fn try_restore(
        &mut self,
        archive: &dyn MarketArchive,
        pair: &str,
    ) -> api::store::StoreResult<()> {
        for interval in Interval::ALL {
            let closed = archive
                .candles(pair, interval, 0, u64::MAX, keep(interval))
                .await?;
            self.state.candles.series_mut(interval).restore(closed);
        }
        let Some(last) = archive.trades_before(pair, None, 1).await?.pop() else {
            return Ok(());
        };
        let last_ts = last.trade.venue_ts;
        // Each interval's open candle: restored, or the one of the last
        // trade; trades from the oldest of them, at most a day back.
        let day = Interval::D1.micros();
        let from = Interval::ALL
            .iter()
            .map(|i| {
                let s = self.state.candles.series(*i);
                s.open().map_or(i.start_of(last_ts), |c| c.start)
            })
            .min()
            .unwrap_or(last_ts)
            .max(last_ts.saturating_sub(day));
        let mut after = TradeKey {
            venue_ts: from.saturating_sub(1),
            trade_id: u64::MAX,
        };
        let now = Instant::now();
        let mut restored = 0usize;
        loop {
            let page = archive.trades_after(pair, after, RESTORE_PAGE).await?;
            for t in &page {
                self.restore_trade(&t.trade);
                self.state.candles.saw(t.trade.venue_ts, now);
                self.state.ticker.record(std::slice::from_ref(&t.trade));
                self.remember(t.clone());
                self.restored_upto = self.restored_upto.max(Some(t.key()));
            }
            restored += page.len();
            match page.last() {
                Some(t) if page.len() == RESTORE_PAGE => after = t.key(),
                _ => break,
            }
        }
        self.state.candles.update_stats();
        tracing::info!(pair = %pair, trades = restored, "candles restored from the market archive");
        Ok(())
    }

    /// One archived trade into every series whose open candle it belongs
    /// to or follows (closes go to the archive again: idempotent).
    fn restore_trade(&mut self, t: &PublicTrade) {
        for interval in Interval::ALL {
            let bucket = interval.start_of(t.venue_ts);
            let series = self.state.candles.series_mut(interval);
            if series.open().is_some_and(|o| bucket < o.start) {
                continue;
            }
            while let Some(c) = series.step(bucket) {
                if let Some(w) = &self.archive {
                    w.candle(&self.pair, interval, c);
                }
            }
            series.add(t.price, t.qty, t.venue_ts);
        }
    }

    pub(super) fn candles_view(
        &self,
        interval: Interval,
        from: u64,
        to: u64,
        limit: usize,
    ) -> CandlesView {
        let series = self.state.candles.series(interval);
        CandlesView {
            spec: self.state.spec.clone(),
            candles: series.range(from, to, limit),
            open_start: series.open().map(|c| c.start),
            oldest_in_memory: series
                .first_closed_start()
                .or(series.open().map(|c| c.start)),
        }
    }

    pub(super) fn recent_trades(
        &self,
        before: Option<TradeKey>,
        limit: usize,
    ) -> Vec<ArchivedTrade> {
        // The ring is in arrival order; the cursor is in key order (a late
        // trade arrives after newer ones): sort before taking `limit`.
        let mut page: Vec<ArchivedTrade> = self
            .state
            .recent
            .iter()
            .filter(|t| before.is_none_or(|b| t.key() < b))
            .cloned()
            .collect();
        page.sort_by_key(|t| std::cmp::Reverse(t.key()));
        page.truncate(limit);
        page
    }
}

/// A trade's archive key.
fn key_of(t: &PublicTrade) -> TradeKey {
    TradeKey {
        venue_ts: t.venue_ts,
        trade_id: t.trade_id,
    }
}
