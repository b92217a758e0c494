//! What a subscription's data becomes: book and trade events checked
//! against the pair's sequences, trading statuses, and their delivery to
//! the hub without ever waiting on it (a lagging pair is replaced by one
//! `Resync` snapshot once there is room).

use super::*;

impl MarketSession {
    pub(super) async fn on_data(
        &mut self,
        i: usize,
        topic: Topic,
        data: Option<Value>,
    ) -> Result<Flow, WsError> {
        let spec = &self.slots[i].spec;
        let decoded = match topic {
            Topic::Book => field::<WireBookEvent>(data, "orderBookUpdates")
                .and_then(|w| convert::book_update(spec, &w))
                .map(|u| (u.epoch.clone(), Update::Book(u))),
            Topic::Trades => field::<WireTradeBatch>(data, "trades")
                .and_then(|w| convert::trade_update(spec, &w))
                .map(|u| (u.epoch.clone(), Update::Trades(u))),
            // Not sequenced, no epoch: handled on its own.
            Topic::Status => return Ok(self.on_status(i, data)),
        };
        let (epoch, update) = match decoded {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(pair = %spec.symbol, error = %e, "resubscribing after an unreadable market event");
                return self
                    .resubscribe(i, "unreadable upstream event")
                    .await
                    .map(|()| Flow::Continue);
            }
        };
        match &self.epoch {
            None => self.epoch = Some(epoch),
            Some(current) if *current != epoch => {
                self.counters.epoch_change();
                return Ok(Flow::End(format!(
                    "the venue's epoch changed from {current} to {epoch}"
                )));
            }
            Some(_) => {}
        }
        let slot = &mut self.slots[i];
        let Step { mut events, gap } = match update {
            Update::Book(u) => slot.sequence.on_book(u),
            Update::Trades(u) => slot.sequence.on_trades(u),
        };
        // Every snapshot is followed by the trading status, if known.
        if let Some(status) = &slot.status {
            if events
                .iter()
                .any(|e| matches!(e, MarketEvent::Snapshot { .. }))
            {
                events.push(MarketEvent::Status {
                    pair: Arc::from(slot.spec.symbol.as_str()),
                    venue_ts: now_micros(),
                    status: status.clone(),
                });
            }
        }
        if !self.deliver(i, events) {
            return Ok(Flow::End("the hub dropped the market stream".into()));
        }
        if let Some(gap) = gap {
            self.counters.gap();
            tracing::warn!(
                pair = %self.slots[i].spec.symbol,
                stream = gap.stream,
                expected = gap.expected,
                got = gap.got,
                "Shift sequence gap; resubscribing the pair"
            );
            self.resubscribe(i, "upstream seq gap").await?;
        }
        Ok(Flow::Continue)
    }

    /// A `marketStatus` item of pair `i`: remembered (it follows every
    /// later snapshot) and forwarded, unless the pair waits for its first
    /// snapshot (then it follows that one). An unreadable item is ignored:
    /// the status is optional and the book is not at stake.
    fn on_status(&mut self, i: usize, data: Option<Value>) -> Flow {
        let spec = &self.slots[i].spec;
        let status = field::<WireMarketStatus>(data, "marketStatus")
            .and_then(|w| convert::market_status(spec, &w).map(|s| (s, w.venue_ts)));
        let (status, venue_ts) = match status {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(pair = %spec.symbol, error = %e, "unreadable marketStatus; ignored");
                return Flow::Continue;
            }
        };
        let event = MarketEvent::Status {
            pair: Arc::from(spec.symbol.as_str()),
            venue_ts,
            status: status.clone(),
        };
        self.slots[i].status = Some(status);
        if !self.slots[i].sequence.is_live() || self.deliver(i, vec![event]) {
            Flow::Continue
        } else {
            Flow::End("the hub dropped the market stream".into())
        }
    }

    /// Sends pair `i`'s waiting `Resyncing`, if any, without waiting.
    pub(super) fn tell_resync(&mut self, i: usize) -> Told {
        let slot = &mut self.slots[i];
        let Some(reason) = &slot.untold_resync else {
            return Told::Yes;
        };
        match self.tx.try_send(slot.resync_event(reason.clone())) {
            Ok(()) => {
                slot.untold_resync = None;
                Told::Yes
            }
            Err(TrySendError::Full(_)) => Told::NotYet,
            Err(TrySendError::Closed(_)) => Told::Gone,
        }
    }

    /// Sends every pair's waiting `Resyncing`, waiting for room: while
    /// the connection is down there is nothing to read, and a pair must
    /// not stay shown live until the venue is back. False once the hub
    /// dropped the stream.
    pub(super) async fn tell_untold(&mut self) -> bool {
        for slot in &mut self.slots {
            let Some(reason) = slot.untold_resync.take() else {
                continue;
            };
            if self.tx.send(slot.resync_event(reason)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Sends pair `i`'s events without waiting; false once the receiver is
    /// gone.
    pub(super) fn deliver(&mut self, i: usize, events: Vec<MarketEvent>) -> bool {
        if events.is_empty() {
            return true;
        }
        match self.tell_resync(i) {
            Told::Yes => {}
            // The events wait in the local book; a resync snapshot follows
            // the `Resyncing` once there is room.
            Told::NotYet => {
                self.slots[i].lagging = true;
                return true;
            }
            Told::Gone => return false,
        }
        if self.slots[i].lagging {
            // The local book already includes these events.
            return self.try_resync(i);
        }
        for event in events {
            match self.tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(pair = %self.slots[i].spec.symbol, "hub is behind; dropping until a resync snapshot fits");
                    self.slots[i].lagging = true;
                    return true;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        true
    }

    fn try_resync(&mut self, i: usize) -> bool {
        let slot = &mut self.slots[i];
        let Some(snapshot) = slot.sequence.resync_snapshot(now_micros()) else {
            return true;
        };
        let status = slot.status.clone().map(|status| MarketEvent::Status {
            pair: Arc::from(slot.spec.symbol.as_str()),
            venue_ts: now_micros(),
            status,
        });
        for event in std::iter::once(snapshot).chain(status) {
            match self.tx.try_send(event) {
                Ok(()) => {}
                // Still lagging: the next try sends both again.
                Err(TrySendError::Full(_)) => return true,
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        slot.lagging = false;
        self.counters.slow_receiver_resync();
        true
    }

    pub(super) fn retry_lagging(&mut self) -> bool {
        (0..self.slots.len()).all(|i| match self.tell_resync(i) {
            Told::Yes => !self.slots[i].lagging || self.try_resync(i),
            Told::NotYet => true,
            Told::Gone => false,
        })
    }
}

impl Slot {
    fn resync_event(&self, reason: String) -> MarketEvent {
        MarketEvent::Resyncing {
            pair: Arc::from(self.spec.symbol.as_str()),
            venue_ts: now_micros(),
            reason,
        }
    }
}

/// Whether a pair's waiting `Resyncing` reached the hub.
pub(super) enum Told {
    /// Sent, or none waiting.
    Yes,
    /// The hub's receiver is full: it waits.
    NotYet,
    /// The hub dropped the stream.
    Gone,
}
