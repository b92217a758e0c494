//! The market-data stream: one `graphql-transport-ws` connection carrying
//! `orderBookUpdates(pair)`, `trades(pair)` and `marketStatus(pair)` for
//! every pair, turned into one [`MarketStream`]'s events.
//!
//! A gap in a pair's sequences completes that pair's two subscriptions and
//! subscribes them again; a lost connection is reopened with jittered
//! exponential backoff and every pair subscribed again. Either way the
//! pair's next snapshot reaches the hub as `Resync`. A hub too slow to
//! take events is never waited on: the pair's events are dropped and,
//! once there is room, replaced by one `Resync` snapshot of the adapter's
//! own copy of the book. If the venue's epoch is not the stream's, the
//! stream ends so that the hub subscribes again under the new epoch.
//!
//! When a pair loses its sequence (gap, unreadable event, lost
//! connection) the hub is told at once with a `Resyncing` event, so that
//! it can flag the pair until the snapshot arrives. `marketStatus` is
//! optional: a venue that refuses it leaves the pair's trading open, and
//! the pair's book and trades flow as before. The last status is sent
//! again after every resync snapshot of the adapter's own.

use super::backoff::Backoff;
use super::convert::{self, Catalog, DecodeError};
use super::sequence::{PairSequence, Step};
use super::stats::StreamCounters;
use super::wire::{self, WireBookEvent, WireError, WireMarketStatus, WireTradeBatch};
use super::ws::{GraphqlWs, ServerMessage, WsError, WsSettings};
use crate::event::{now_micros, MarketEvent, MarketStream, TradingStatus};
use crate::venue::VenueError;
use orderbook::MarketSpec;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;

mod events;

/// How often lagging pairs retry their resync snapshot.
const LAGGING_RETRY: Duration = Duration::from_millis(20);
/// How often the loop wakes when idle (to notice a dropped receiver).
const IDLE_WAKE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    Book,
    Trades,
    Status,
}

struct Slot {
    spec: MarketSpec,
    sequence: PairSequence,
    generation: u64,
    /// The hub's receiver was full: events are dropped until a resync
    /// snapshot gets through.
    lagging: bool,
    /// A `Resyncing` the hub has not been given yet (its receiver was
    /// full): it goes before anything else of the pair.
    untold_resync: Option<String>,
    /// The venue's last `marketStatus` of the pair, if any.
    status: Option<TradingStatus>,
}

enum Flow {
    Continue,
    /// The stream must end (the reason is logged).
    End(String),
    /// A subscription was refused for good (the reason is logged).
    Refused(String),
}

/// The task behind one [`MarketStream`].
pub struct MarketSession {
    settings: WsSettings,
    counters: Arc<StreamCounters>,
    tx: mpsc::Sender<MarketEvent>,
    slots: Vec<Slot>,
    routes: HashMap<String, (usize, Topic)>,
    epoch: Option<String>,
    ws: Option<GraphqlWs>,
    backoff: Backoff,
}

fn unavailable(e: WsError) -> VenueError {
    VenueError::Unavailable(e.to_string())
}

impl MarketSession {
    /// Connects, subscribes every pair of `catalog` and reads until the
    /// first snapshot names the venue's epoch (within the connect
    /// timeout); then [`MarketSession::run`] carries on in a task.
    pub async fn open(
        settings: WsSettings,
        catalog: &Catalog,
        counters: Arc<StreamCounters>,
        capacity: usize,
    ) -> Result<(MarketSession, MarketStream), VenueError> {
        let (tx, rx) = mpsc::channel(capacity.max(16));
        let mut session = MarketSession {
            backoff: Backoff::new(settings.backoff_min, settings.backoff_max),
            settings,
            counters,
            tx,
            slots: catalog
                .markets
                .iter()
                .map(|spec| Slot {
                    spec: spec.clone(),
                    sequence: PairSequence::new(Arc::from(spec.symbol.as_str())),
                    generation: 0,
                    lagging: false,
                    untold_resync: None,
                    status: None,
                })
                .collect(),
            routes: HashMap::new(),
            epoch: None,
            ws: None,
        };
        session.ws = Some(
            GraphqlWs::connect(&session.settings)
                .await
                .map_err(unavailable)?,
        );
        session.subscribe_all().await.map_err(unavailable)?;
        let deadline = Instant::now() + session.settings.connect_timeout;
        while session.epoch.is_none() {
            let ws = session
                .ws
                .as_mut()
                .expect("invariant: connected while opening");
            let message = ws.recv_until(deadline).await.map_err(unavailable)?;
            let Some(message) = message else {
                return Err(VenueError::Unavailable(format!(
                    "Shift sent no snapshot within {} ms",
                    session.settings.connect_timeout.as_millis()
                )));
            };
            match session.handle(message).await.map_err(unavailable)? {
                Flow::Continue => {}
                Flow::End(why) | Flow::Refused(why) => return Err(VenueError::Unavailable(why)),
            }
        }
        let stream = MarketStream {
            epoch: session
                .epoch
                .clone()
                .expect("invariant: loop ends once known"),
            events: rx,
        };
        Ok((session, stream))
    }

    /// Forwards events until the hub drops the stream or the venue's epoch
    /// changes; reconnects whenever the connection is lost.
    pub async fn run(mut self) {
        loop {
            if self.tx.is_closed() {
                break;
            }
            let Some(ws) = self.ws.as_mut() else {
                if !self.tell_untold().await || !self.reconnect().await {
                    break;
                }
                continue;
            };
            let tick = if self
                .slots
                .iter()
                .any(|s| s.lagging || s.untold_resync.is_some())
            {
                LAGGING_RETRY
            } else {
                IDLE_WAKE
            };
            let result = match ws.recv_until(Instant::now() + tick).await {
                Ok(Some(message)) => self.handle(message).await,
                Ok(None) => Ok(Flow::Continue),
                Err(e) => Err(e),
            };
            match result {
                Ok(Flow::Continue) => {}
                Ok(Flow::Refused(_)) if self.routes.is_empty() => {
                    tracing::error!("Shift refused every market subscription; the stream ends");
                    break;
                }
                Ok(Flow::Refused(_)) => {}
                Ok(Flow::End(why)) => {
                    tracing::info!(reason = %why, "Shift market stream ends");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Shift market connection lost; reconnecting");
                    self.lost();
                }
            }
            if !self.retry_lagging() {
                break;
            }
        }
        if let Some(ws) = self.ws.take() {
            ws.close().await;
        }
    }

    fn lost(&mut self) {
        self.counters.set_market_down(true);
        self.ws = None;
        self.routes.clear();
        for i in 0..self.slots.len() {
            self.resyncing(i, "upstream connection lost");
            self.slots[i].sequence.restart();
        }
    }

    /// Tells the hub that pair `i`'s book is not trustworthy until its
    /// next snapshot. Not before the pair's first snapshot: a stream
    /// starts with a snapshot. The local book is not trusted either, so a
    /// pair that was lagging gets no resync snapshot from it; and when
    /// the hub's receiver is full the event waits and goes first once
    /// there is room ([`Self::tell_resync`]), rather than being lost with
    /// the pair shown live on a book that no longer follows the venue.
    fn resyncing(&mut self, i: usize, reason: &str) {
        if !self.slots[i].sequence.is_live() {
            return;
        }
        self.slots[i].lagging = false;
        self.slots[i].untold_resync = Some(reason.to_string());
        self.tell_resync(i);
    }

    /// One reconnect attempt after the backoff wait; false once the hub
    /// dropped the stream.
    async fn reconnect(&mut self) -> bool {
        let wait = self.backoff.next_wait();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.tx.closed() => return false,
        }
        match GraphqlWs::connect(&self.settings).await {
            Ok(ws) => {
                self.ws = Some(ws);
                match self.subscribe_all().await {
                    Ok(()) => {
                        self.backoff.reset();
                        self.counters.reconnect();
                        self.counters.set_market_down(false);
                        tracing::info!("Shift market connection re-established; resubscribed");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Shift market resubscribe failed");
                        self.lost();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "Shift market reconnect failed"),
        }
        true
    }

    async fn subscribe_all(&mut self) -> Result<(), WsError> {
        self.routes.clear();
        for i in 0..self.slots.len() {
            self.subscribe_pair(i).await?;
        }
        Ok(())
    }

    /// Subscribes pair `i`'s trades then book under fresh ids; the pair
    /// waits for its snapshot.
    async fn subscribe_pair(&mut self, i: usize) -> Result<(), WsError> {
        let ws = self
            .ws
            .as_mut()
            .ok_or_else(|| WsError::Lost("not connected".into()))?;
        let slot = &mut self.slots[i];
        slot.generation += 1;
        slot.sequence.restart();
        let pair = slot.spec.symbol.clone();
        let trades_id = format!("trades:{pair}:{}", slot.generation);
        let book_id = format!("book:{pair}:{}", slot.generation);
        let status_id = format!("status:{pair}:{}", slot.generation);
        self.routes.insert(trades_id.clone(), (i, Topic::Trades));
        self.routes.insert(book_id.clone(), (i, Topic::Book));
        self.routes.insert(status_id.clone(), (i, Topic::Status));
        ws.subscribe(&status_id, wire::MARKET_STATUS, json!({ "pair": pair }))
            .await?;
        ws.subscribe(&trades_id, wire::TRADES, json!({ "pair": pair }))
            .await?;
        ws.subscribe(&book_id, wire::BOOK_UPDATES, json!({ "pair": pair }))
            .await
    }

    /// Tells the hub that pair `i` is resyncing (`reason`), completes its
    /// subscriptions and subscribes it again: until the new snapshot the
    /// hub's book misses whatever the venue sent meanwhile.
    async fn resubscribe(&mut self, i: usize, reason: &str) -> Result<(), WsError> {
        self.resyncing(i, reason);
        self.counters.resubscription();
        let old = self.unroute(i);
        let ws = self
            .ws
            .as_mut()
            .ok_or_else(|| WsError::Lost("not connected".into()))?;
        for id in old {
            ws.complete(&id).await?;
        }
        self.subscribe_pair(i).await
    }

    fn unroute(&mut self, i: usize) -> Vec<String> {
        let old: Vec<String> = self
            .routes
            .iter()
            .filter(|(_, (pair, _))| *pair == i)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &old {
            self.routes.remove(id);
        }
        old
    }

    async fn handle(&mut self, message: ServerMessage) -> Result<Flow, WsError> {
        match message {
            ServerMessage::Next { id, payload } => {
                let Some(&(i, topic)) = self.routes.get(&id) else {
                    return Ok(Flow::Continue); // a completed subscription's tail
                };
                if let Some(error) = payload.errors.first() {
                    if topic == Topic::Status {
                        return Ok(self.status_refused(&id, error));
                    }
                    return self.subscription_failed(i, error).await;
                }
                self.on_data(i, topic, payload.data).await
            }
            ServerMessage::Error { id, errors } => match self.routes.get(&id) {
                Some(&(_, Topic::Status)) => {
                    let error = errors.into_iter().next().unwrap_or_default();
                    Ok(self.status_refused(&id, &error))
                }
                Some(&(i, _)) => {
                    let error = errors.into_iter().next().unwrap_or_default();
                    self.subscription_failed(i, &error).await
                }
                None => Ok(Flow::Continue),
            },
            ServerMessage::Complete { id } => match self.routes.get(&id) {
                Some(&(i, _)) => {
                    tracing::warn!(pair = %self.slots[i].spec.symbol, "Shift completed a market subscription; resubscribing");
                    self.resubscribe(i, "upstream subscription ended")
                        .await
                        .map(|()| Flow::Continue)
                }
                None => Ok(Flow::Continue),
            },
        }
    }

    /// The venue refused `marketStatus` (e.g. it does not offer it): the
    /// pair goes on without it, trading taken as open.
    fn status_refused(&mut self, id: &str, error: &WireError) -> Flow {
        if let Some((i, _)) = self.routes.remove(id) {
            tracing::warn!(pair = %self.slots[i].spec.symbol, code = error.code().unwrap_or("no code"),
                message = %error.message, "Shift refused marketStatus; the pair's trading is taken as open");
        }
        Flow::Continue
    }

    async fn subscription_failed(&mut self, i: usize, error: &WireError) -> Result<Flow, WsError> {
        let pair = self.slots[i].spec.symbol.clone();
        if error.code() == Some("UNAVAILABLE") {
            tracing::warn!(%pair, message = %error.message, "Shift market subscription unavailable; resubscribing");
            return self
                .resubscribe(i, "upstream subscription unavailable")
                .await
                .map(|()| Flow::Continue);
        }
        self.unroute(i);
        let why = format!(
            "Shift refused the market subscription of {pair} ({}: {})",
            error.code().unwrap_or("no code"),
            error.message
        );
        tracing::error!("{why}");
        Ok(Flow::Refused(why))
    }
}

enum Update {
    Book(convert::BookUpdate),
    Trades(convert::TradeUpdate),
}

/// `data[name]` as `T`.
pub fn field<T: DeserializeOwned>(data: Option<Value>, name: &str) -> Result<T, DecodeError> {
    let mut data = data.ok_or_else(|| DecodeError("a subscription result without data".into()))?;
    let value = data
        .get_mut(name)
        .map(Value::take)
        .ok_or_else(|| DecodeError(format!("a subscription result without {name:?}")))?;
    serde_json::from_value(value).map_err(|e| DecodeError(format!("{name}: {e}")))
}
