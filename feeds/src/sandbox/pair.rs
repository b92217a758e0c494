//! One pair of the sandbox: its matching engine, its sequence numbers and
//! its market-data subscribers.
//!
//! Everything here runs under the pair's mutex, so a subscriber's snapshot
//! is taken atomically with the stream: it sees every change after the
//! snapshot's `seq` and none before. A subscriber whose channel is full is
//! never blocked on: it is marked lagging and, as soon as its channel has
//! room, gets a `Resync` snapshot instead of the events it missed. Every
//! snapshot is followed by the pair's trading status (open or halted), so
//! a subscriber that missed a halt or a resume while lagging learns it.

use super::ledger::AssetConversion;
use crate::event::{MarketEvent, Micros, PublicTrade, SnapshotReason, TradingStatus};
use orderbook::engine::{CancelError, EngineEvents, MatchingEngine, NewOrder, OrderId};
use orderbook::MarketSpec;
use std::sync::Arc;
use tokio::sync::mpsc::{self, error::TrySendError};

struct Subscriber {
    tx: mpsc::Sender<MarketEvent>,
    lagging: bool,
}

pub(crate) struct PairState {
    pub name: Arc<str>,
    pub spec: MarketSpec,
    pub conversion: AssetConversion,
    pub engine: MatchingEngine,
    /// Seq of the last book change (0 before any).
    pub seq: u64,
    /// Seq of the last trade batch (0 before any).
    pub trade_seq: u64,
    /// What the last `submit`/`cancel` caused; reused to avoid allocation.
    pub events: EngineEvents,
    /// Whether an operator halted the pair (`SandboxVenue::halt`).
    pub status: TradingStatus,
    subscribers: Vec<Subscriber>,
}

impl PairState {
    pub fn new(spec: MarketSpec, conversion: AssetConversion) -> Self {
        PairState {
            name: Arc::from(spec.symbol.as_str()),
            spec,
            conversion,
            engine: MatchingEngine::new(),
            seq: 0,
            trade_seq: 0,
            events: EngineEvents::default(),
            status: TradingStatus::Open,
            subscribers: Vec::new(),
        }
    }

    /// The pair's trading status as an event.
    fn status_event(&self, now: Micros) -> MarketEvent {
        MarketEvent::Status {
            pair: self.name.clone(),
            venue_ts: now,
            status: self.status.clone(),
        }
    }

    /// Sets the trading status and tells every subscriber (unchanged: a
    /// no-op).
    pub fn set_status(&mut self, status: TradingStatus, now: Micros) {
        if self.status == status {
            return;
        }
        self.status = status;
        let out = [self.status_event(now)];
        let mut subscribers = std::mem::take(&mut self.subscribers);
        subscribers.retain_mut(|sub| self.deliver(sub, &out, now));
        self.subscribers = subscribers;
    }

    /// The whole book now, best first, stamped with `seq`.
    pub fn snapshot(&self, reason: SnapshotReason, now: Micros) -> MarketEvent {
        let (bids, asks) = self.engine.book().levels();
        MarketEvent::Snapshot {
            pair: self.name.clone(),
            reason,
            seq: self.seq,
            trade_seq: self.trade_seq,
            venue_ts: now,
            bids,
            asks,
        }
    }

    /// Registers a subscriber and queues its `Subscribe` snapshot and the
    /// trading status.
    pub fn subscribe(&mut self, tx: mpsc::Sender<MarketEvent>, now: Micros) {
        let lagging = tx
            .try_send(self.snapshot(SnapshotReason::Subscribe, now))
            .is_err()
            || tx.try_send(self.status_event(now)).is_err();
        self.subscribers.push(Subscriber { tx, lagging });
    }

    /// Drops every subscriber (their streams end once drained).
    pub fn close_subscribers(&mut self) {
        self.subscribers.clear();
    }

    /// Submits an order, publishes what it caused; the caller reads
    /// `self.events` for settlement.
    pub fn submit(&mut self, order: NewOrder, now: Micros) {
        self.events.clear();
        self.engine.submit(order, &mut self.events);
        self.publish(now);
    }

    /// Cancels an order, publishes the book change.
    pub fn cancel(&mut self, id: OrderId, now: Micros) -> Result<(), CancelError> {
        self.events.clear();
        self.engine.cancel(id, &mut self.events)?;
        self.publish(now);
        Ok(())
    }

    fn publish(&mut self, now: Micros) {
        let mut out: Vec<MarketEvent> = Vec::with_capacity(2);
        if !self.events.trades.is_empty() {
            self.trade_seq += 1;
            out.push(MarketEvent::Trades {
                pair: self.name.clone(),
                seq: self.trade_seq,
                venue_ts: now,
                trades: self
                    .events
                    .trades
                    .iter()
                    .map(|t| PublicTrade {
                        trade_id: t.trade_id,
                        price: t.price,
                        qty: t.qty,
                        side: t.taker_side,
                        venue_ts: now,
                    })
                    .collect(),
            });
        }
        if !self.events.deltas.is_empty() {
            self.seq += 1;
            out.push(MarketEvent::Delta {
                pair: self.name.clone(),
                seq: self.seq,
                venue_ts: now,
                deltas: self.events.deltas.clone(),
            });
        }
        if out.is_empty() || self.subscribers.is_empty() {
            return;
        }
        let mut subscribers = std::mem::take(&mut self.subscribers);
        subscribers.retain_mut(|sub| self.deliver(sub, &out, now));
        self.subscribers = subscribers;
    }

    /// Sends `events` (or a resync snapshot) to one subscriber; false once
    /// its receiver is gone.
    fn deliver(&self, sub: &mut Subscriber, events: &[MarketEvent], now: Micros) -> bool {
        if sub.lagging {
            let resync = [
                self.snapshot(SnapshotReason::Resync, now),
                self.status_event(now),
            ];
            for event in resync {
                match sub.tx.try_send(event) {
                    Ok(()) => {}
                    // Still lagging: the next try sends both again.
                    Err(TrySendError::Full(_)) => return true,
                    Err(TrySendError::Closed(_)) => return false,
                }
            }
            sub.lagging = false;
            return true;
        }
        for event in events {
            match sub.tx.try_send(event.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    sub.lagging = true;
                    return true;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        true
    }
}
