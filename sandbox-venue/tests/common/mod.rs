//! Test harness: a venue server on 127.0.0.1:0 in process, a GraphQL
//! client over HTTP (reqwest), and a `graphql-transport-ws` client
//! (tokio-tungstenite).

#![allow(dead_code)]

use feeds::SandboxConfig;
use futures_util::{SinkExt, StreamExt};
use sandbox_venue::{BearerToken, RunningVenueServer, ServerLimits, VenueServerConfig};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TOKEN: &str = "test-venue-token";

/// How long a test waits for any one message.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestVenue {
    pub server: RunningVenueServer,
    pub http: reqwest::Client,
    /// `http://ADDR`
    pub base: String,
}

/// A server with no simulated activity (books are seeded, nothing moves
/// unless a test trades).
pub async fn start() -> TestVenue {
    start_with(0, ServerLimits::default()).await
}

/// A server whose simulated market makes `events_per_sec` changes.
pub async fn start_with(events_per_sec: u32, limits: ServerLimits) -> TestVenue {
    let sandbox = SandboxConfig {
        events_per_sec,
        seed: 42,
        ..SandboxConfig::default()
    };
    start_sandbox(sandbox, limits).await
}

/// A server over `sandbox`.
pub async fn start_sandbox(sandbox: SandboxConfig, limits: ServerLimits) -> TestVenue {
    let mut config = VenueServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        BearerToken::new(TOKEN).unwrap(),
    );
    config.sandbox = sandbox;
    config.limits = limits;
    let server = sandbox_venue::serve(config).await.expect("server starts");
    let base = format!("http://{}", server.addr());
    TestVenue {
        server,
        http: reqwest::Client::new(),
        base,
    }
}

impl TestVenue {
    /// POSTs `body` to `path` with `token` (if any): (status, JSON body).
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body read");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// Runs an operation with the right token; asserts HTTP 200.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .post(
                "/graphql",
                Some(TOKEN),
                &json!({"query": query, "variables": variables}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Runs an operation that must succeed; its `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Runs an operation that must fail; the first error's code.
    pub async fn error_code(&self, query: &str, variables: Value) -> String {
        let body = self.gql(query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected a coded error: {body}"))
            .to_string()
    }

    /// An admin call with the right token; its status.
    pub async fn admin(&self, path: &str, body: Value) -> u16 {
        self.post(path, Some(TOKEN), &body).await.0
    }

    pub async fn credit(&self, user: &str, asset: &str, amount: &str) -> Value {
        self.data(
            "mutation($u: ID!, $a: String!, $n: Decimal!) {
                creditBalance(userId: $u, asset: $a, amount: $n) { available locked total }
            }",
            json!({"u": user, "a": asset, "n": amount}),
        )
        .await["creditBalance"]
            .clone()
    }

    /// Places a GTC limit order that must be accepted; the order.
    pub async fn limit(&self, user: &str, side: &str, price: &str, qty: &str) -> Value {
        self.data(
            CREATE_ORDER,
            json!({"input": {
                "userId": user, "pair": "BTC-USD", "side": side, "type": "LIMIT",
                "price": price, "qty": qty,
            }}),
        )
        .await["createOrder"]
            .clone()
    }

    /// The best bid and ask prices of BTC-USD (as raw cents).
    pub async fn btc_top(&self) -> (u64, u64) {
        let book = self
            .data(
                "{ orderBook(pair: \"BTC-USD\", depth: 1) { bids { price } asks { price } } }",
                json!({}),
            )
            .await;
        let cents = |v: &Value| -> u64 {
            let s = v.as_str().unwrap().replace('.', "");
            s.parse().unwrap()
        };
        (
            cents(&book["orderBook"]["bids"][0]["price"]),
            cents(&book["orderBook"]["asks"][0]["price"]),
        )
    }

    pub async fn ws(&self) -> WsClient {
        let mut client = WsClient::connect(&self.base).await;
        client
            .init(json!({"authorization": format!("Bearer {TOKEN}")}))
            .await;
        client.expect_type("connection_ack").await;
        client
    }

    pub async fn stop(self) {
        self.server.stop().await.expect("server stops cleanly");
    }
}

/// Every field of an order, as the tests read it.
pub const ORDER_FIELDS: &str = "id clientId userId pair side type price qty filledQty \
    filledNotional status reason timeInForce postOnly createdTs updatedTs";

pub const CREATE_ORDER: &str = "mutation($input: CreateOrderInput!) {
    createOrder(input: $input) {
        id clientId userId pair side type price qty filledQty filledNotional status reason
        timeInForce postOnly createdTs updatedTs
    }
}";

/// `cents` (raw at scale 2) as a BTC-USD price string.
pub fn price(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A `graphql-transport-ws` client.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Opens the socket with the `graphql-transport-ws` subprotocol.
    pub async fn connect(base: &str) -> WsClient {
        let url = format!("{}/graphql", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket upgrade");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        WsClient { socket }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn init(&mut self, payload: Value) {
        self.send(json!({"type": "connection_init", "payload": payload}))
            .await;
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "type": "subscribe", "id": id,
            "payload": {"query": query, "variables": variables},
        }))
        .await;
    }

    pub async fn complete(&mut self, id: &str) {
        self.send(json!({"type": "complete", "id": id})).await;
    }

    /// The next protocol message (JSON), or the close frame as
    /// `{"close": code, "reason": text}`; panics after [`WAIT`].
    pub async fn recv(&mut self) -> Value {
        self.recv_within(WAIT)
            .await
            .expect("a message within the wait")
    }

    /// Like [`WsClient::recv`], `None` if nothing came within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(wait, self.socket.next()).await.ok()?;
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(text.as_str()).expect("JSON message"));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Some(json!({"close": code, "reason": reason}));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(json!({"close": 1006, "reason": e.to_string()})),
                None => return Some(json!({"close": 1006, "reason": "ended"})),
            }
        }
    }

    pub async fn expect_type(&mut self, kind: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["type"], kind, "{message}");
        message
    }

    /// The close code the server ends the connection with.
    pub async fn expect_close(&mut self) -> u16 {
        let message = self.recv().await;
        message["close"]
            .as_u64()
            .unwrap_or_else(|| panic!("expected a close, got {message}")) as u16
    }

    /// The `data` of the next `next` message, which must be for `id`.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let message = self.expect_type("next").await;
        assert_eq!(message["id"], id, "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        message["payload"]["data"].clone()
    }
}

/// The `extensions.code` of an `error` message's first error.
pub fn error_message_code(message: &Value) -> &str {
    assert_eq!(message["type"], "error", "{message}");
    message["payload"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("coded error expected: {message}"))
}
