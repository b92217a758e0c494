//! The bearer-token gate (HTTP and WebSocket) and the limits on what a
//! client may ask: body size, operation depth and complexity, WebSocket
//! handshake rules and subscriptions per connection.

use crate::common;

use common::{error_message_code, start, start_with, WsClient, TOKEN};
use sandbox_venue::ServerLimits;
use serde_json::{json, Value};
use std::time::Duration;

const MARKETS: &str = "{ markets { pair } }";

#[tokio::test]
async fn http_requests_without_the_right_token_are_401_unauthenticated() {
    let t = start().await;
    let body = json!({"query": MARKETS});
    for token in [None, Some("wrong-token"), Some("")] {
        let (status, reply) = t.post("/graphql", token, &body).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(reply["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    let basic = t
        .http
        .post(format!("{}/graphql", t.base))
        .basic_auth("user", Some(TOKEN))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    assert_eq!(basic.headers()["www-authenticate"], "Bearer");
    // Admin routes sit behind the same gate, and a refused call does nothing.
    let (status, _) = t.post("/admin/latency", None, &json!({"ms": 5000})).await;
    assert_eq!(status, 401);
    let started = std::time::Instant::now();
    t.credit("dave", "USD", "1").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no latency was injected"
    );
    let plain_get = t
        .http
        .get(format!("{}/graphql", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(plain_get.status(), 401);

    let (status, reply) = t.post("/graphql", Some(TOKEN), &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["data"]["markets"][0]["pair"], "BTC-USD");
    let with_nulls = json!({"query": MARKETS, "variables": null, "operationName": null});
    let (status, reply) = t.post("/graphql", Some(TOKEN), &with_nulls).await;
    assert_eq!(status, 200, "{reply}");
    let plain_get = t
        .http
        .get(format!("{}/graphql", t.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(plain_get.status(), 405, "operations are POSTed");
    t.stop().await;
}

#[tokio::test]
async fn oversized_malformed_deep_and_complex_requests_are_refused() {
    let t = start().await;
    let padding = "x".repeat(70 * 1024);
    let (status, _) = t
        .post(
            "/graphql",
            Some(TOKEN),
            &json!({"query": MARKETS, "padding": padding}),
        )
        .await;
    assert_eq!(status, 413);
    let (status, reply) = t
        .post("/graphql", Some(TOKEN), &json!(["not", "a", "request"]))
        .await;
    assert_eq!(status, 400, "{reply}");

    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }";
    let reply = t.gql(deep, json!({})).await;
    let message = reply["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("nested too deep"), "{reply}");

    let aliases: String = (0..300)
        .map(|i| format!("m{i}: markets {{ pair }} "))
        .collect();
    let reply = t.gql(&format!("{{ {aliases} }}"), json!({})).await;
    let message = reply["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("too complex"), "{reply}");
    assert!(reply["data"].is_null());
    t.stop().await;
}

/// POSTs `body` as is to `/graphql` with the right token: (status, the
/// first error's message).
async fn post_raw(t: &common::TestVenue, body: String) -> (u16, String) {
    let reply = t
        .http
        .post(format!("{}/graphql", t.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let reply: Value = reply.json().await.unwrap();
    let message = reply["errors"][0]["message"].as_str().unwrap_or_default();
    (status, message.to_string())
}

#[tokio::test]
async fn json_nested_too_deep_or_too_long_is_refused_before_parsing() {
    let t = start().await;
    // 100 levels: within serde_json's own recursion limit (128), so only
    // the bounds refuse it.
    let nested = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let body = format!(r#"{{"query":"{MARKETS}","variables":{{"x":{nested}}}}}"#);
    assert_eq!(
        post_raw(&t, body).await,
        (
            400,
            "the body was refused before parsing: input nests deeper than 8 levels".into()
        )
    );
    let many = format!("[{}0]", "0,".repeat(2000));
    let body = format!(r#"{{"query":"{MARKETS}","variables":{{"x":{many}}}}}"#);
    let (status, message) = post_raw(&t, body).await;
    assert_eq!(status, 400);
    assert!(message.contains("more than 1024 elements"), "{message}");

    // A selection set 20,000 deep: the GraphQL parser refuses it (no stack
    // overflow) and the server carries on.
    let deep_query = format!("{{{}{}}}", "a{".repeat(20_000), "}".repeat(20_000));
    let reply = t.gql(&deep_query, json!({})).await;
    assert!(reply["data"].is_null(), "{reply}");
    assert!(reply["errors"][0]["message"].is_string(), "{reply}");

    // The same bounds on WebSocket messages, before and after the ack:
    // closed 4400.
    let nested: Value = serde_json::from_str(&nested).unwrap();
    let mut ws = WsClient::connect(&t.base).await;
    ws.init(json!({"authorization": format!("Bearer {TOKEN}"), "x": nested}))
        .await;
    assert_eq!(ws.expect_close().await, 4400);
    let mut ws = t.ws().await;
    ws.subscribe(
        "1",
        "subscription { userEvents { __typename } }",
        json!({"x": nested}),
    )
    .await;
    assert_eq!(ws.expect_close().await, 4400);

    let (status, reply) = t
        .post("/graphql", Some(TOKEN), &json!({"query": MARKETS}))
        .await;
    assert_eq!(status, 200, "{reply}");
    t.stop().await;
}

#[tokio::test]
async fn websocket_handshake_needs_the_token_in_connection_init() {
    let limits = ServerLimits {
        connection_init_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let t = start_with(0, limits).await;
    let subscribe = json!({"type": "subscribe", "id": "1",
        "payload": {"query": "subscription { userEvents { __typename } }"}});

    for payload in [
        json!({"authorization": "Bearer wrong"}),
        json!({"authorization": TOKEN}),
        json!({}),
        json!(null),
    ] {
        let mut ws = WsClient::connect(&t.base).await;
        ws.init(payload.clone()).await;
        assert_eq!(ws.expect_close().await, 4403, "{payload}");
    }

    let mut ws = WsClient::connect(&t.base).await;
    ws.send(subscribe.clone()).await;
    assert_eq!(ws.expect_close().await, 4401, "subscribe before the ack");

    let mut ws = WsClient::connect(&t.base).await;
    assert_eq!(ws.expect_close().await, 4408, "no connection_init in time");

    let mut ws = WsClient::connect(&t.base).await;
    ws.send(json!({"type": "ping"})).await;
    ws.expect_type("pong").await;
    ws.init(json!({"Authorization": format!("bearer {TOKEN}")}))
        .await;
    ws.expect_type("connection_ack").await;
    ws.send(json!({"type": "ping"})).await;
    ws.expect_type("pong").await;
    ws.init(json!({"authorization": format!("Bearer {TOKEN}")}))
        .await;
    assert_eq!(ws.expect_close().await, 4429);

    let mut ws = t.ws().await;
    ws.send(json!({"type": "nonsense"})).await;
    assert_eq!(ws.expect_close().await, 4400);

    let mut ws = t.ws().await;
    ws.send(subscribe.clone()).await;
    ws.send(subscribe).await;
    assert_eq!(ws.expect_close().await, 4409, "duplicate subscription id");

    // Without the subprotocol the upgrade itself is refused.
    let url = format!("{}/graphql", t.base.replacen("http", "ws", 1));
    let refused = tokio_tungstenite::connect_async(url).await;
    assert!(refused.is_err());
    t.stop().await;
}

#[tokio::test]
async fn subscriptions_beyond_the_per_connection_limit_are_refused_alone() {
    let limits = ServerLimits {
        max_subscriptions_per_connection: 2,
        ..ServerLimits::default()
    };
    let t = start_with(0, limits).await;
    let mut ws = t.ws().await;
    let book = "subscription($p: String!) { orderBookUpdates(pair: $p) { kind seq } }";
    ws.subscribe("a", book, json!({"p": "BTC-USD"})).await;
    assert_eq!(
        ws.next_data("a").await["orderBookUpdates"]["kind"],
        "SNAPSHOT"
    );
    ws.subscribe("b", book, json!({"p": "ETH-USD"})).await;
    assert_eq!(
        ws.next_data("b").await["orderBookUpdates"]["kind"],
        "SNAPSHOT"
    );
    ws.subscribe("c", book, json!({"p": "SOL-USD"})).await;
    let refused = ws.recv().await;
    assert_eq!(refused["id"], "c");
    assert_eq!(error_message_code(&refused), "TOO_MANY_SUBSCRIPTIONS");

    // Completing one frees a slot; the connection stayed usable.
    ws.complete("a").await;
    ws.subscribe("c", book, json!({"p": "SOL-USD"})).await;
    let data = ws.next_data("c").await;
    assert_eq!(data["orderBookUpdates"]["kind"], "SNAPSHOT");
    t.stop().await;
}
