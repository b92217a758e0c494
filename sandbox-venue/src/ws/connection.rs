//! One `graphql-transport-ws` connection: the handshake (an accepted
//! `connection_init` within the time limit), then subscribe / complete /
//! ping from the client and next / error / complete to it, until either
//! side closes or the server shuts down.
//!
//! Every subscription of the connection is polled by this one task; a slow
//! socket slows only this connection's subscriptions, whose venue streams
//! then fall behind and get a resync snapshot from the venue.

use super::protocol::{coded_error, init_authorization, ClientMessage, CloseReason, ServerMessage};
use crate::schema::ErrorCode;
use crate::server::App;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{self, BoxStream, StreamExt};
use std::future::ready;
use tokio_stream::StreamMap;

/// Longest subscription id accepted.
const MAX_ID_LEN: usize = 128;

/// Each item is a result of the subscription, `None` once it ended.
type Subscriptions = StreamMap<String, BoxStream<'static, Option<async_graphql::Response>>>;

/// Why the loop stopped.
enum Stop {
    /// Close the connection with this reason.
    Close(CloseReason),
    /// The client went away (or the socket failed): nothing to send.
    Gone,
}

/// Serves the connection until it ends.
pub async fn run(mut socket: WebSocket, app: App) {
    let stop = match handshake(&mut socket, &app).await {
        Ok(()) => serve(&mut socket, &app).await,
        Err(stop) => stop,
    };
    if let Stop::Close(reason) = stop {
        let frame = CloseFrame {
            code: reason.code(),
            reason: reason.text().into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
}

/// Waits for an accepted `connection_init` and acknowledges it.
async fn handshake(socket: &mut WebSocket, app: &App) -> Result<(), Stop> {
    let mut shutdown = app.shutdown.clone();
    let deadline = tokio::time::sleep(app.limits.connection_init_timeout);
    tokio::pin!(deadline);
    loop {
        let message = tokio::select! {
            _ = &mut deadline => return Err(Stop::Close(CloseReason::InitTimeout)),
            _ = stopping(&mut shutdown) => {
                return Err(Stop::Close(CloseReason::ServerShutdown));
            }
            message = socket.recv() => message,
        };
        match client_message(app, message)? {
            None => {}
            Some(ClientMessage::ConnectionInit { payload }) => {
                if !app.token.accepts(init_authorization(payload.as_ref())) {
                    return Err(Stop::Close(CloseReason::Forbidden));
                }
                return send(socket, &ServerMessage::ConnectionAck).await;
            }
            Some(ClientMessage::Ping) => send(socket, &ServerMessage::Pong).await?,
            Some(ClientMessage::Pong) | Some(ClientMessage::Complete { .. }) => {}
            Some(ClientMessage::Subscribe { .. }) => {
                return Err(Stop::Close(CloseReason::Unauthorized));
            }
        }
    }
}

/// Runs the acknowledged connection.
async fn serve(socket: &mut WebSocket, app: &App) -> Stop {
    let mut shutdown = app.shutdown.clone();
    let mut subscriptions = Subscriptions::new();
    loop {
        let result = tokio::select! {
            _ = stopping(&mut shutdown) => {
                return Stop::Close(CloseReason::ServerShutdown);
            }
            message = socket.recv() => match client_message(app, message) {
                Ok(Some(message)) => handle(socket, app, &mut subscriptions, message).await,
                Ok(None) => Ok(()),
                Err(stop) => Err(stop),
            },
            Some((id, item)) = subscriptions.next(), if !subscriptions.is_empty() => {
                deliver(socket, &mut subscriptions, &id, item).await
            }
        };
        if let Err(stop) = result {
            return stop;
        }
    }
}

/// Acts on one client message of an acknowledged connection.
async fn handle(
    socket: &mut WebSocket,
    app: &App,
    subscriptions: &mut Subscriptions,
    message: ClientMessage,
) -> Result<(), Stop> {
    match message {
        ClientMessage::ConnectionInit { .. } => Err(Stop::Close(CloseReason::TooManyInitRequests)),
        ClientMessage::Ping => send(socket, &ServerMessage::Pong).await,
        ClientMessage::Pong => Ok(()),
        ClientMessage::Complete { id } => {
            subscriptions.remove(&id);
            Ok(())
        }
        ClientMessage::Subscribe { id, payload } => {
            if id.is_empty() || id.len() > MAX_ID_LEN {
                return Err(Stop::Close(CloseReason::InvalidMessage(format!(
                    "subscription ids are 1 to {MAX_ID_LEN} bytes"
                ))));
            }
            if subscriptions.contains_key(&id) {
                return Err(Stop::Close(CloseReason::DuplicateSubscription(id)));
            }
            let limit = app.limits.max_subscriptions_per_connection;
            if subscriptions.len() >= limit {
                let error = coded_error(
                    ErrorCode::TooManySubscriptions.as_str(),
                    &format!("at most {limit} subscriptions per connection"),
                );
                return send(
                    socket,
                    &ServerMessage::Error {
                        id: &id,
                        payload: &[error],
                    },
                )
                .await;
            }
            let results = app
                .schema
                .execute_stream(*payload)
                .map(Some)
                .chain(stream::once(ready(None)))
                .boxed();
            subscriptions.insert(id, results);
            Ok(())
        }
    }
}

/// Sends one result of subscription `id`: `next`, or `error` (and the
/// subscription ends) when the operation failed as a whole, or `complete`
/// once it ended.
async fn deliver(
    socket: &mut WebSocket,
    subscriptions: &mut Subscriptions,
    id: &str,
    item: Option<async_graphql::Response>,
) -> Result<(), Stop> {
    let Some(response) = item else {
        subscriptions.remove(id);
        return send(socket, &ServerMessage::Complete { id }).await;
    };
    if response.is_err() && response.data == async_graphql::Value::Null {
        subscriptions.remove(id);
        return send(
            socket,
            &ServerMessage::Error {
                id,
                payload: &response.errors,
            },
        )
        .await;
    }
    send(
        socket,
        &ServerMessage::Next {
            id,
            payload: &response,
        },
    )
    .await
}

/// The next protocol message: `Ok(None)` for control frames, `Err` when the
/// connection must end. A text message is checked against
/// `ServerLimits::json_bounds` before it is parsed (its size was checked
/// by the WebSocket layer as it arrived).
fn client_message(
    app: &App,
    message: Option<Result<Message, axum::Error>>,
) -> Result<Option<ClientMessage>, Stop> {
    match message {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Err(Stop::Gone),
        Some(Ok(Message::Ping(_))) | Some(Ok(Message::Pong(_))) => Ok(None),
        Some(Ok(Message::Binary(_))) => Err(Stop::Close(CloseReason::InvalidMessage(
            "messages are JSON text".into(),
        ))),
        Some(Ok(Message::Text(text))) => {
            let invalid = |e: String| Stop::Close(CloseReason::InvalidMessage(e));
            app.limits
                .json_bounds(app.limits.max_ws_message_bytes)
                .check(text.as_bytes())
                .map_err(|e| invalid(e.to_string()))?;
            serde_json::from_str(text.as_str())
                .map(Some)
                .map_err(|e| invalid(e.to_string()))
        }
    }
}

/// Resolves once the server is stopping (or gone).
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn send(socket: &mut WebSocket, message: &ServerMessage<'_>) -> Result<(), Stop> {
    socket
        .send(Message::Text(message.to_json().into()))
        .await
        .map_err(|_| Stop::Gone)
}
