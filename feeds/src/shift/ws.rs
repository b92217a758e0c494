//! A `graphql-transport-ws` client connection: the WebSocket handshake
//! with the `graphql-transport-ws` subprotocol, `connection_init` carrying
//! the bearer token, `connection_ack`, `subscribe` / `complete`, answering
//! the server's `ping`, and a keepalive of our own that declares a silent
//! connection lost. One connection per stream (market data, user events);
//! reconnecting is the caller's job.
//!
//! Every text frame goes through [`parse_frame`], which checks
//! [`UPSTREAM_BOUNDS`] before any JSON parser sees it; the WebSocket layer
//! refuses a message over `max_bytes` before it is buffered whole. A frame
//! refused either way loses the connection like any unreadable message, and
//! the caller reconnects and resyncs (docs/DESIGN-NOTES.md, "The upstream
//! over GraphQL").

use super::config::ShiftToken;
use super::wire::{WireError, WireResponse, UPSTREAM_BOUNDS};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
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

/// One `graphql-transport-ws` message from the server, as [`parse_frame`]
/// reads it.
#[derive(Debug, Clone)]
pub enum Frame {
    ConnectionAck,
    Ping,
    Pong,
    /// `next`, `error` or `complete` of a subscription.
    Subscription(ServerMessage),
    /// A message type this client does not know (ignored).
    Unknown(String),
}

/// Why a frame from Shift is unreadable: over [`UPSTREAM_BOUNDS`], not a
/// JSON object whose `type` and `id` (when present) are strings, or a
/// `next` payload that is not a GraphQL response. The message
/// names the bound or the parser's position, never the frame's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable message from Shift: {0}")]
pub struct FrameError(pub String);

/// A frame's envelope, read in one pass: `type` and `id` borrowed, the
/// payload left as its (validated) JSON text until `type` says what it is.
/// Measured against reading a `serde_json::Value` of the whole frame first:
/// docs/BENCHMARKS.md, "Ingest".
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

/// A parser's error, terse: what is wrong and where, never the value it
/// met (serde's own message quotes it, and this reaches the log).
fn unreadable(e: &serde_json::Error, shape: &str) -> FrameError {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Data => shape,
        Category::Eof => "JSON ends early",
        Category::Syntax | Category::Io => "not JSON",
    };
    FrameError(format!("{what} (line {}, column {})", e.line(), e.column()))
}

/// Reads one text frame from Shift. Pure (no I/O), so a fuzzer can call it.
pub fn parse_frame(bytes: &[u8]) -> Result<Frame, FrameError> {
    // The bounds check also checks the UTF-8 (`from_slice` would not check
    // the strings it skips, an unknown field's value), and every frame read
    // must be JSON.
    let text = UPSTREAM_BOUNDS
        .text(bytes)
        .map_err(|e| FrameError(e.to_string()))?;
    let frame: Envelope = serde_json::from_str(text)
        .map_err(|e| unreadable(&e, "not a graphql-transport-ws message"))?;
    let id = frame.id.map(Cow::into_owned).unwrap_or_default();
    let payload = frame.payload.map_or("null", RawValue::get);
    Ok(match frame.kind.as_deref().unwrap_or_default() {
        "next" => {
            let payload = serde_json::from_str(payload)
                .map_err(|e| unreadable(&e, "next payload is not a GraphQL response"))?;
            Frame::Subscription(ServerMessage::Next { id, payload })
        }
        "error" => {
            let errors = serde_json::from_str(payload).unwrap_or_else(|_| {
                vec![WireError {
                    message: "subscription refused".into(),
                    extensions: None,
                }]
            });
            Frame::Subscription(ServerMessage::Error { id, errors })
        }
        "complete" => Frame::Subscription(ServerMessage::Complete { id }),
        "connection_ack" => Frame::ConnectionAck,
        "ping" => Frame::Ping,
        "pong" => Frame::Pong,
        other => Frame::Unknown(other.to_string()),
    })
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
        let limits = WebSocketConfig::default()
            .max_message_size(Some(UPSTREAM_BOUNDS.max_bytes))
            .max_frame_size(Some(UPSTREAM_BOUNDS.max_bytes));
        let (socket, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(limits), false)
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
                Message::Text(text) => match parse_frame(text.as_bytes()) {
                    Ok(Frame::ConnectionAck) => return Ok(ws),
                    Ok(Frame::Ping) => ws.send(json!({"type": "pong"})).await?,
                    Ok(Frame::Unknown(t)) if t == "connection_error" => {
                        return Err(WsError::Refused(text.as_str().chars().take(200).collect()))
                    }
                    Err(e) => return Err(WsError::Connect(e.to_string())),
                    Ok(_) => {
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
        match parse_frame(text.as_bytes()).map_err(|e| WsError::Lost(e.to_string()))? {
            Frame::Subscription(message) => Ok(Some(message)),
            Frame::Ping => {
                self.send(json!({"type": "pong"})).await?;
                Ok(None)
            }
            Frame::Pong | Frame::ConnectionAck => Ok(None),
            Frame::Unknown(other) => {
                tracing::warn!(
                    message_type = %other,
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

    #[test]
    fn frames_are_read_by_type() {
        let next = br#"{"type":"next","id":"book:BTC-USD:1","payload":{"data":{"orderBookUpdates":{"bids":[{"price":"1","qty":"1"}]}}}}"#;
        assert!(matches!(
            parse_frame(next),
            Ok(Frame::Subscription(ServerMessage::Next { id, payload })) if id == "book:BTC-USD:1" && payload.data.is_some()
        ));
        assert!(matches!(
            parse_frame(br#"{"type":"error","id":"7","payload":[{"message":"no"}]}"#),
            Ok(Frame::Subscription(ServerMessage::Error { id, errors })) if id == "7" && errors[0].message == "no"
        ));
        assert!(matches!(
            parse_frame(br#"{"type":"ping"}"#),
            Ok(Frame::Ping)
        ));
        assert!(matches!(
            parse_frame(br#"{"type":"ka"}"#),
            Ok(Frame::Unknown(t)) if t == "ka"
        ));
        // Field order is free, escapes are read, the payload waits for `type`.
        assert!(matches!(
            parse_frame(br#"{"payload":{"data":{"x":1}},"id":"a\"b","type":"next"}"#),
            Ok(Frame::Subscription(ServerMessage::Next { id, payload })) if id == "a\"b" && payload.data.is_some()
        ));
        assert!(matches!(
            parse_frame(br#"{"id":"9","type":"complete","payload":null}"#),
            Ok(Frame::Subscription(ServerMessage::Complete { id })) if id == "9"
        ));
        // An error payload that is not a list of errors still ends the subscription.
        assert!(matches!(
            parse_frame(br#"{"type":"error","id":"7","payload":{"odd":true}}"#),
            Ok(Frame::Subscription(ServerMessage::Error { errors, .. })) if errors[0].message == "subscription refused"
        ));
        // A frame that is not an envelope (an object with a string `type`) is unreadable.
        assert!(parse_frame(b"5").is_err());
        assert!(parse_frame(br#"{"type":5}"#).is_err());
        assert!(parse_frame(br#"{"type":"ping","type":"pong"}"#).is_err());
        assert!(parse_frame(br#"{"type":"ping"} x"#).is_err());
        // A refusal names what is wrong and where, not the value (found by the fuzzer).
        let long = format!(r#""{}""#, "#".repeat(100));
        let refused = parse_frame(long.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            refused,
            "unreadable message from Shift: not a graphql-transport-ws message (line 1, column 102)"
        );
        let payload = format!(r#"{{"type":"next","payload":{long}}}"#);
        let refused = parse_frame(payload.as_bytes()).unwrap_err().to_string();
        assert!(
            refused.contains("next payload is not a GraphQL response"),
            "{refused}"
        );
        assert!(!refused.contains("###"), "{refused}");
        // Bad UTF-8 in a field nobody reads is still not JSON (found by the fuzzer).
        assert!(parse_frame(b"{\"type\":\"pong\",\"x\":\"\x89\"}").is_err());
        assert!(parse_frame(br#"{"type":"next","id":"1","payload":"x"}"#).is_err());
        assert!(parse_frame(b"not json").is_err());
        assert!(parse_frame(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn frames_over_the_bounds_are_refused_before_parsing() {
        let refused = |frame: &[u8]| parse_frame(frame).unwrap_err().to_string();
        let attack = "[".repeat(100_000);
        assert_eq!(
            refused(attack.as_bytes()),
            "unreadable message from Shift: input nests deeper than 16 levels"
        );
        // Deeper than the bound but well within serde_json's own recursion
        // limit (128), in a field the adapter would otherwise ignore.
        let junk = format!("{}{}", "[".repeat(17), "]".repeat(17));
        let frame = format!(r#"{{"type":"next","id":"1","payload":{{"data":{{"x":{junk}}}}}}}"#);
        assert!(refused(frame.as_bytes()).contains("deeper than 16"));
        let many = format!(
            r#"{{"type":"pong","payload":[{}0]}}"#,
            "0,".repeat(UPSTREAM_BOUNDS.max_elements)
        );
        assert!(refused(many.as_bytes()).contains("more than 2200000 elements"));
        let large = format!(
            r#"{{"type":"pong","payload":"{}"}}"#,
            "x".repeat(UPSTREAM_BOUNDS.max_bytes)
        );
        assert!(refused(large.as_bytes()).contains("larger than 16777216 bytes"));
        // The deepest legitimate frame, a book level, is well within.
        let level = br#"{"type":"next","id":"1","payload":{"data":{"orderBookUpdates":{"bids":[{"price":"1","qty":"1"}]}}}}"#;
        assert!(parse_frame(level).is_ok());
    }
}
