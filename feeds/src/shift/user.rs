//! The `userEvents` subscription (every user's orders, fills and balance
//! changes, in venue order) on its own `graphql-transport-ws` connection,
//! mapped to [`UserEvent`]s. A lost connection is reopened with jittered
//! exponential backoff and the subscription started again; the schema has
//! no cursor, so events the venue emitted during the outage are not
//! replayed (the API's reconciliation reads orders and balances instead).

use super::backoff::Backoff;
use super::convert::{Catalog, DecodeError};
use super::market_data::field;
use super::stats::StreamCounters;
use super::wire::{self, WireUserEvent};
use super::ws::{GraphqlWs, ServerMessage, WsError, WsSettings};
use crate::venue::{UserEvent, VenueError};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How often the loop wakes when idle (to notice a dropped receiver).
const IDLE_WAKE: Duration = Duration::from_millis(500);

/// The task behind one `user_events()` receiver.
pub struct UserSession {
    settings: WsSettings,
    catalog: Arc<Catalog>,
    counters: Arc<StreamCounters>,
    tx: mpsc::UnboundedSender<UserEvent>,
    ws: Option<GraphqlWs>,
    backoff: Backoff,
    generation: u64,
}

impl UserSession {
    /// Connects and starts the subscription; events flow once
    /// [`UserSession::run`] runs.
    pub async fn open(
        settings: WsSettings,
        catalog: Arc<Catalog>,
        counters: Arc<StreamCounters>,
    ) -> Result<(UserSession, mpsc::UnboundedReceiver<UserEvent>), VenueError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut session = UserSession {
            backoff: Backoff::new(settings.backoff_min, settings.backoff_max),
            settings,
            catalog,
            counters,
            tx,
            ws: None,
            generation: 0,
        };
        let ws = GraphqlWs::connect(&session.settings)
            .await
            .map_err(|e| VenueError::Unavailable(e.to_string()))?;
        session.ws = Some(ws);
        session
            .subscribe()
            .await
            .map_err(|e| VenueError::Unavailable(e.to_string()))?;
        Ok((session, rx))
    }

    fn current_id(&self) -> String {
        format!("user-events:{}", self.generation)
    }

    async fn subscribe(&mut self) -> Result<(), WsError> {
        self.generation += 1;
        let id = self.current_id();
        let ws = self
            .ws
            .as_mut()
            .ok_or_else(|| WsError::Lost("not connected".into()))?;
        ws.subscribe(&id, &wire::user_events(), json!({})).await
    }

    /// Forwards events until the receiver is dropped.
    pub async fn run(mut self) {
        while !self.tx.is_closed() {
            let Some(ws) = self.ws.as_mut() else {
                self.reconnect().await;
                continue;
            };
            let result = match ws.recv_until(Instant::now() + IDLE_WAKE).await {
                Ok(Some(message)) => self.handle(message).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "Shift user-event connection lost; reconnecting (events meanwhile are not replayed)");
                self.ws = None;
            }
        }
        if let Some(ws) = self.ws.take() {
            ws.close().await;
        }
    }

    async fn reconnect(&mut self) {
        let wait = self.backoff.next_wait();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.tx.closed() => return,
        }
        match GraphqlWs::connect(&self.settings).await {
            Ok(ws) => {
                self.ws = Some(ws);
                match self.subscribe().await {
                    Ok(()) => {
                        self.backoff.reset();
                        self.counters.reconnect();
                        tracing::info!("Shift user-event connection re-established");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Shift user-event resubscribe failed");
                        self.ws = None;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "Shift user-event reconnect failed"),
        }
    }

    async fn handle(&mut self, message: ServerMessage) -> Result<(), WsError> {
        let current = self.current_id();
        match message {
            ServerMessage::Next { id, payload } if id == current => {
                if let Some(e) = payload.errors.first() {
                    tracing::error!(code = e.code(), message = %e.message, "Shift user-event error");
                    return Ok(());
                }
                match field::<WireUserEvent>(payload.data, "userEvents")
                    .and_then(|w| self.user_event(&w))
                {
                    Ok(event) => {
                        let _ = self.tx.send(event);
                    }
                    Err(e) => tracing::error!(error = %e, "Shift user event dropped: unreadable"),
                }
                Ok(())
            }
            ServerMessage::Error { id, errors } if id == current => {
                let e = errors.first().cloned().unwrap_or_default();
                // Start over on a new connection after the backoff wait.
                Err(WsError::Lost(format!(
                    "userEvents refused ({}: {})",
                    e.code().unwrap_or("no code"),
                    e.message
                )))
            }
            ServerMessage::Complete { id } if id == current => {
                tracing::warn!("Shift completed the user-event subscription; subscribing again");
                self.subscribe().await
            }
            _ => Ok(()),
        }
    }

    fn user_event(&self, w: &WireUserEvent) -> Result<UserEvent, DecodeError> {
        user_event(&self.catalog, w)
    }
}

/// One `userEvents` item as a feeds [`UserEvent`].
pub fn user_event(catalog: &Catalog, w: &WireUserEvent) -> Result<UserEvent, DecodeError> {
    Ok(match w {
        WireUserEvent::Order(o) => UserEvent::Order(catalog.order_report(o)?),
        WireUserEvent::Fill(f) => UserEvent::Fill(catalog.fill(f)?),
        WireUserEvent::Balance(b) => UserEvent::Balance {
            user: b.user_id.clone(),
            asset: b.asset.clone(),
            balance: catalog.balance(b)?,
            venue_ts: b.venue_ts,
        },
    })
}
