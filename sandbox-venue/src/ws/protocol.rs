//! The `graphql-transport-ws` messages (the protocol of the `graphql-ws`
//! library) this server reads and writes, and the close codes it uses.

use async_graphql::{ErrorExtensionValues, ServerError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The WebSocket subprotocol clients must offer.
pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    /// Answered with a `pong` (any payload is ignored).
    Ping,
    /// Ignored.
    Pong,
    Subscribe {
        id: String,
        payload: Box<async_graphql::Request>,
    },
    Complete {
        id: String,
    },
}

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    ConnectionAck,
    Pong,
    /// One execution result of subscription `id`.
    Next {
        id: &'a str,
        payload: &'a async_graphql::Response,
    },
    /// Subscription `id` failed and ended (no `complete` follows).
    Error {
        id: &'a str,
        payload: &'a [ServerError],
    },
    /// Subscription `id` ended on the server's side.
    Complete {
        id: &'a str,
    },
}

impl ServerMessage<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("invariant: server messages serialize to JSON")
    }
}

/// Why the server closes a connection, with the protocol's close codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    InvalidMessage(String),
    /// A `subscribe` before the connection was acknowledged.
    Unauthorized,
    /// `connection_init` without the right token.
    Forbidden,
    InitTimeout,
    DuplicateSubscription(String),
    TooManyInitRequests,
    ServerShutdown,
}

impl CloseReason {
    pub fn code(&self) -> u16 {
        match self {
            CloseReason::InvalidMessage(_) => 4400,
            CloseReason::Unauthorized => 4401,
            CloseReason::Forbidden => 4403,
            CloseReason::InitTimeout => 4408,
            CloseReason::DuplicateSubscription(_) => 4409,
            CloseReason::TooManyInitRequests => 4429,
            CloseReason::ServerShutdown => 1001,
        }
    }

    /// The close frame's reason text (at most 123 bytes, as WebSocket
    /// allows).
    pub fn text(&self) -> String {
        let mut text = match self {
            CloseReason::InvalidMessage(why) => format!("Invalid message: {why}"),
            CloseReason::Unauthorized => "Unauthorized".to_string(),
            CloseReason::Forbidden => "Forbidden".to_string(),
            CloseReason::InitTimeout => "Connection initialisation timeout".to_string(),
            CloseReason::DuplicateSubscription(id) => format!("Subscriber for {id} already exists"),
            CloseReason::TooManyInitRequests => "Too many initialisation requests".to_string(),
            CloseReason::ServerShutdown => "Server shutting down".to_string(),
        };
        if text.len() > 123 {
            let mut end = 123;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }
}

/// A GraphQL error with `extensions.code`, for an `error` message sent
/// before any execution.
pub fn coded_error(code: &str, message: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// The `authorization` entry of a `connection_init` payload (key matched
/// case-insensitively).
pub fn init_authorization(payload: Option<&Value>) -> Option<&str> {
    payload?
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_client_messages_of_the_protocol() {
        let init: ClientMessage = serde_json::from_value(json!({
            "type": "connection_init", "payload": {"authorization": "Bearer t"}
        }))
        .unwrap();
        let ClientMessage::ConnectionInit { payload } = init else {
            panic!("{init:?}");
        };
        assert_eq!(init_authorization(payload.as_ref()), Some("Bearer t"));
        let sub: ClientMessage = serde_json::from_value(json!({
            "type": "subscribe", "id": "1",
            "payload": {"query": "subscription { userEvents { __typename } }"}
        }))
        .unwrap();
        assert!(matches!(sub, ClientMessage::Subscribe { ref id, .. } if id == "1"));
        assert!(
            serde_json::from_value::<ClientMessage>(json!({"type": "start", "id": "1"})).is_err()
        );
        for ping in [
            json!({"type": "ping"}),
            json!({"type": "ping", "payload": {"t": 1}}),
        ] {
            assert!(matches!(
                serde_json::from_value(ping).unwrap(),
                ClientMessage::Ping
            ));
        }
    }

    #[test]
    fn server_messages_have_the_protocol_shape() {
        assert_eq!(
            ServerMessage::ConnectionAck.to_json(),
            r#"{"type":"connection_ack"}"#
        );
        assert_eq!(
            ServerMessage::Complete { id: "7" }.to_json(),
            r#"{"type":"complete","id":"7"}"#
        );
        let errors = [coded_error("TOO_MANY_SUBSCRIPTIONS", "too many")];
        let json: Value = serde_json::from_str(
            &ServerMessage::Error {
                id: "2",
                payload: &errors,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            json["payload"][0]["extensions"]["code"],
            "TOO_MANY_SUBSCRIPTIONS"
        );
        assert!(CloseReason::InvalidMessage("x".repeat(300)).text().len() <= 123);
    }
}
