//! The subscriptions' event sources: one venue market stream per book or
//! trade subscription, filtered to its pair and passed through the fault
//! switches, and one venue user-event stream per user subscription.
//!
//! Each book subscription opens its own `SandboxVenue::subscribe()`, so its
//! first message is a snapshot taken atomically with the stream (every
//! later DELTA is exactly seq + 1), and a subscriber that falls behind gets
//! the venue's own `Resync` snapshot.

use super::catalog::Catalog;
use super::enums::BookEventKind;
use super::objects::{BookEvent, Level, MarketStatus, Trade, TradeBatch, UserEvent};
use super::scalars::{Decimal, UInt64};
use crate::faults::{FaultControls, FaultCursor};
use feeds::event::MarketEvent;
use feeds::{venue, MarketStream, SnapshotReason, TradingStatus};
use futures_util::stream::{self, Stream};
use orderbook::{MarketSpec, Side};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One subscription's view of the venue's market stream for one pair.
pub struct PairFeed {
    stream: MarketStream,
    spec: MarketSpec,
    faults: Arc<FaultControls>,
    cursor: FaultCursor,
}

impl PairFeed {
    pub fn new(stream: MarketStream, spec: MarketSpec, faults: Arc<FaultControls>) -> Self {
        let cursor = faults.cursor(&spec.symbol);
        PairFeed {
            stream,
            spec,
            faults,
            cursor,
        }
    }

    /// The pair's next market event (faults applied); `None` once the
    /// venue stops.
    async fn next_event(&mut self) -> Option<MarketEvent> {
        loop {
            let event = self.stream.events.recv().await?;
            if **event.pair() != *self.spec.symbol {
                continue;
            }
            if matches!(event, MarketEvent::Delta { .. })
                && self.faults.take_drop(&self.spec.symbol, &mut self.cursor)
            {
                continue;
            }
            self.cursor.wait_while_paused().await;
            return Some(event);
        }
    }

    /// The book events of the pair: a SNAPSHOT first, then DELTAs (and a
    /// SNAPSHOT with reason `resync` after the subscriber fell behind).
    pub fn book_events(self) -> impl Stream<Item = BookEvent> + Send {
        stream::unfold(self, |mut feed| async move {
            loop {
                let event = feed.next_event().await?;
                if let Some(book) = feed.book_event(event) {
                    return Some((book, feed));
                }
            }
        })
    }

    /// The trade batches of the pair, from now on, in seq order.
    pub fn trade_batches(self) -> impl Stream<Item = TradeBatch> + Send {
        stream::unfold(self, |mut feed| async move {
            loop {
                if let MarketEvent::Trades {
                    seq,
                    venue_ts,
                    trades,
                    ..
                } = feed.next_event().await?
                {
                    let spec = &feed.spec;
                    let batch = TradeBatch {
                        pair: spec.symbol.clone(),
                        epoch: feed.stream.epoch.clone(),
                        seq: UInt64(seq),
                        venue_ts: UInt64(venue_ts),
                        trades: trades
                            .iter()
                            .map(|t| Trade {
                                id: UInt64(t.trade_id),
                                price: Decimal(spec.format_price(t.price)),
                                qty: Decimal(spec.format_qty(t.qty)),
                                side: t.side.into(),
                                venue_ts: UInt64(t.venue_ts),
                            })
                            .collect(),
                    };
                    return Some((batch, feed));
                }
            }
        })
    }

    /// The pair's trading status: the venue's current one first (it
    /// follows the stream's first snapshot), then every change.
    pub fn status_events(self) -> impl Stream<Item = MarketStatus> + Send {
        stream::unfold(self, |mut feed| async move {
            loop {
                if let MarketEvent::Status {
                    venue_ts, status, ..
                } = feed.next_event().await?
                {
                    let (halted, reason) = match status {
                        TradingStatus::Open => (false, None),
                        TradingStatus::Halted { reason } => (true, Some(reason)),
                    };
                    let item = MarketStatus {
                        pair: feed.spec.symbol.clone(),
                        halted,
                        reason,
                        venue_ts: UInt64(venue_ts),
                    };
                    return Some((item, feed));
                }
            }
        })
    }

    fn book_event(&self, event: MarketEvent) -> Option<BookEvent> {
        let spec = &self.spec;
        let epoch = self.stream.epoch.clone();
        match event {
            MarketEvent::Snapshot {
                reason,
                seq,
                trade_seq,
                venue_ts,
                bids,
                asks,
                ..
            } => Some(BookEvent {
                pair: spec.symbol.clone(),
                epoch,
                kind: BookEventKind::Snapshot,
                seq: UInt64(seq),
                trade_seq: UInt64(trade_seq),
                reason: Some(snapshot_reason(reason).to_string()),
                venue_ts: UInt64(venue_ts),
                bids: Level::list(spec, &bids),
                asks: Level::list(spec, &asks),
            }),
            MarketEvent::Delta {
                seq,
                venue_ts,
                deltas,
                ..
            } => {
                let side = |side: Side| {
                    deltas
                        .iter()
                        .filter(|d| d.side == side)
                        .map(|d| Level::new(spec, d.price, d.qty))
                        .collect()
                };
                Some(BookEvent {
                    pair: spec.symbol.clone(),
                    epoch,
                    kind: BookEventKind::Delta,
                    seq: UInt64(seq),
                    // "SNAPSHOT only": a DELTA carries 0.
                    trade_seq: UInt64(0),
                    reason: None,
                    venue_ts: UInt64(venue_ts),
                    bids: side(Side::Buy),
                    asks: side(Side::Sell),
                })
            }
            MarketEvent::Trades { .. }
            | MarketEvent::Status { .. }
            | MarketEvent::Resyncing { .. } => None,
        }
    }
}

/// The contract's spelling of a snapshot's reason.
pub fn snapshot_reason(reason: SnapshotReason) -> &'static str {
    match reason {
        SnapshotReason::Subscribe => "subscribe",
        SnapshotReason::Resync => "resync",
    }
}

/// The venue's user events in contract form, in venue order, keeping those
/// `keep` accepts.
pub fn user_events<F>(
    events: mpsc::UnboundedReceiver<venue::UserEvent>,
    catalog: Arc<Catalog>,
    keep: F,
) -> impl Stream<Item = UserEvent> + Send
where
    F: Fn(&venue::UserEvent) -> bool + Send + 'static,
{
    stream::unfold(
        (events, catalog, keep),
        |(mut events, catalog, keep)| async move {
            loop {
                let event = events.recv().await?;
                if !keep(&event) {
                    continue;
                }
                if let Some(converted) = UserEvent::from_venue(&event, &catalog) {
                    return Some((converted, (events, catalog, keep)));
                }
            }
        },
    )
}
