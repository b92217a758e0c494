//! A `graphql-transport-ws` client connection: the WebSocket handshake
//! with the `graphql-transport-ws` subprotocol, `connection_init` carrying
//! the bearer token, `connection_ack`, `subscribe` / `complete`, answering
//! the server's `ping`, and a keepalive of our own that declares a silent
//! connection lost. One connection per stream (market data, user events);
//! reconnecting is the caller's job.

use super::config::ShiftToken;
use super::wire::{WireError, WireResponse};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Close codes of the protocol that mean "your credentials are refused".
const CLOSE_UNAUTHORIZED: u16 = 4401;
const CLOSE_FORBIDDEN: u16 = 4403;

/// Why a subscription connection could not be opened or was lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("Shift refused the adapter's token on the subscription connection ({0})")]
    Refused(String),
    #[error("cannot open the Shift subscription connection: {0}")]
    Connect(String),
    #[error("Shift subscription connection lost: {0}")]
    Lost(String),
}

/// A subscription message from the server.
#[derive(Debug, Clone)]
pub enum ServerMessage {
    /// One result of subscription `id`.
    Next { id: String, payload: WireResponse },
    /// Subscription `id` failed and is over.
    Error { id: String, errors: Vec<WireError> },
    /// The server ended subscription `id`.
    Complete { id: String },
}

/// Where and how to open subscription connections.
#[derive(Debug, Clone)]
pub struct WsSettings {
    pub url: String,
    pub token: ShiftToken,
    /// For the TCP/WebSocket handshake plus `connection_ack`.
    pub connect_timeout: Duration,
    pub keepalive: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

/// One open, acknowledged `graphql-transport-ws` connection.
pub struct GraphqlWs {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    keepalive: Duration,
    last_heard: Instant,
    pinged: bool,
}

impl GraphqlWs {
    /// Connects, sends `connection_init` with the token and waits for
    /// `connection_ack`, all within `settings.connect_timeout`.
    pub async fn connect(settings: &WsSettings) -> Result<GraphqlWs, WsError> {
        let timeout = settings.connect_timeout;
        tokio::time::timeout(timeout, Self::handshake(settings))
            .await
            .map_err(|_| {
                WsError::Connect(format!(
                    "{} did not acknowledge within {} ms",
                    settings.url,
                    timeout.as_millis()
                ))
            })?
    }

    async fn handshake(settings: &WsSettings) -> Result<GraphqlWs, WsError> {
        let mut request = settings
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| WsError::Connect(format!("{}: {e}", settings.url)))?;
        request.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| handshake_error(&settings.url, e))?;
        let mut ws = GraphqlWs {
            socket,
            keepalive: settings.keepalive,
            last_heard: Instant::now(),
            pinged: false,
        };
        ws.send(json!({
            "type": "connection_init",
            "payload": { "authorization": settings.token.bearer() }
        }))
        .await?;
        loop {
            let message = match ws.socket.next().await {
                None => return Err(WsError::Lost("closed before connection_ack".into())),
                Some(Err(e)) => return Err(WsError::Lost(e.to_string())),
                Some(Ok(m)) => m,
            };
            match message {
                Message::Text(text) => match message_type(&text).as_deref() {
                    Some("connection_ack") => return Ok(ws),
                    Some("ping") => ws.send(json!({"type": "pong"})).await?,
                    Some("connection_error") => {
                        return Err(WsError::Refused(text.as_str().chars().take(200).collect()))
                    }
                    _ => {
                        return Err(WsError::Connect(format!(
                            "expected connection_ack, got {}",
                            text.as_str().chars().take(200).collect::<String>()
                        )))
                    }
                },
                Message::Close(frame) => return Err(close_error(frame.as_ref())),
                _ => {}
            }
        }
    }

    /// Starts subscription `id`.
    pub async fn subscribe(
        &mut self,
        id: &str,
        query: &str,
        variables: Value,
    ) -> Result<(), WsError> {
        self.send(json!({
            "id": id,
            "type": "subscribe",
            "payload": { "query": query, "variables": variables }
        }))
        .await
    }

    /// Ends subscription `id` (the server may still send a few of its
    /// messages; callers ignore ids they no longer track).
    pub async fn complete(&mut self, id: &str) -> Result<(), WsError> {
        self.send(json!({"id": id, "type": "complete"})).await
    }

    /// The next subscription message, or `Ok(None)` once `deadline`
    /// passes. Answers pings meanwhile; sends a ping after `keepalive` of
    /// silence and gives up (`Lost`) after twice that. Cancel-safe reads.
    pub async fn recv_until(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<ServerMessage>, WsError> {
        loop {
            let silent = self.last_heard.elapsed();
            if silent >= self.keepalive * 2 {
                return Err(WsError::Lost(format!(
                    "no message for {} ms",
                    silent.as_millis()
                )));
            }
            if silent >= self.keepalive && !self.pinged {
                self.pinged = true;
                self.send(json!({"type": "ping"})).await?;
            }
            let check = self.last_heard
                + if self.pinged {
                    self.keepalive * 2
                } else {
                    self.keepalive
                };
            match tokio::time::timeout_at(check.min(deadline), self.socket.next()).await {
                Err(_) if Instant::now() >= deadline => return Ok(None),
                Err(_) => continue,
                Ok(None) => return Err(WsError::Lost("connection closed".into())),
                Ok(Some(Err(e))) => return Err(WsError::Lost(e.to_string())),
                Ok(Some(Ok(message))) => {
                    self.last_heard = Instant::now();
                    self.pinged = false;
                    match message {
                        Message::Text(text) => {
                            if let Some(m) = self.handle_text(text.as_str()).await? {
                                return Ok(Some(m));
                            }
                        }
                        Message::Close(frame) => return Err(close_error(frame.as_ref())),
                        _ => {}
                    }
                }
            }
        }
    }

    /// Sends a close frame (best effort).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
    }

    async fn handle_text(&mut self, text: &str) -> Result<Option<ServerMessage>, WsError> {
        let mut v: Value = serde_json::from_str(text)
            .map_err(|e| WsError::Lost(format!("unreadable message from Shift: {e}")))?;
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let payload = v.get_mut("payload").map(Value::take).unwrap_or(Value::Null);
        match v.get("type").and_then(Value::as_str).unwrap_or_default() {
            "next" => {
                let payload = serde_json::from_value(payload).map_err(|e| {
                    WsError::Lost(format!("unreadable next payload from Shift: {e}"))
                })?;
                Ok(Some(ServerMessage::Next { id, payload }))
            }
            "error" => {
                let errors = serde_json::from_value(payload).unwrap_or_else(|_| {
                    vec![WireError {
                        message: "subscription refused".into(),
                        extensions: None,
                    }]
                });
                Ok(Some(ServerMessage::Error { id, errors }))
            }
            "complete" => Ok(Some(ServerMessage::Complete { id })),
            "ping" => {
                self.send(json!({"type": "pong"})).await?;
                Ok(None)
            }
            "pong" | "connection_ack" => Ok(None),
            other => {
                tracing::warn!(
                    message_type = other,
                    "ignoring unknown graphql-transport-ws message"
                );
                Ok(None)
            }
        }
    }

    async fn send(&mut self, message: Value) -> Result<(), WsError> {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .map_err(|e| WsError::Lost(e.to_string()))
    }
}

fn message_type(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    Some(v.get("type")?.as_str()?.to_string())
}

fn handshake_error(url: &str, e: tungstenite::Error) -> WsError {
    match e {
        tungstenite::Error::Http(response)
            if matches!(
                response.status(),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) =>
        {
            WsError::Refused(format!("HTTP {}", response.status()))
        }
        e => WsError::Connect(format!("{url}: {e}")),
    }
}

fn close_error(frame: Option<&CloseFrame>) -> WsError {
    match frame {
        Some(f) => {
            let code = u16::from(f.code);
            let reason = f.reason.as_str();
            if code == CLOSE_UNAUTHORIZED
                || code == CLOSE_FORBIDDEN
                || reason.contains("UNAUTHENTICATED")
            {
                WsError::Refused(format!("close {code} {reason}"))
            } else {
                WsError::Lost(format!("closed by Shift ({code} {reason})"))
            }
        }
        None => WsError::Lost("closed by Shift".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    #[test]
    fn auth_close_codes_mean_the_token_was_refused() {
        let frame = |code: u16, reason: &str| CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        assert!(matches!(
            close_error(Some(&frame(4403, "Forbidden"))),
            WsError::Refused(_)
        ));
        assert!(matches!(
            close_error(Some(&frame(4401, ""))),
            WsError::Refused(_)
        ));
        assert!(matches!(
            close_error(Some(&frame(4400, "UNAUTHENTICATED: bad token"))),
            WsError::Refused(_)
        ));
        assert!(matches!(
            close_error(Some(&frame(1001, "going away"))),
            WsError::Lost(_)
        ));
        assert!(matches!(close_error(None), WsError::Lost(_)));
    }
}
