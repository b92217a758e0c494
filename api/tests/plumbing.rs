//! Request ids, error bodies, body limits and the OpenAPI document, over a
//! real socket.

mod common;

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let t = common::start().await;
    let resp = t
        .http
        .get(t.url("/openapi.json"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    let resp = t
        .http
        .get(t.url("/openapi.json"))
        .header("x-correlation-id", "corr-9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "corr-9");
    let resp = t.http.get(t.url("/openapi.json")).send().await.unwrap();
    assert!(!resp.headers()["x-request-id"].is_empty());
}

#[tokio::test]
async fn error_body_carries_the_request_id() {
    let t = common::start().await;
    let resp = t
        .http
        .get(t.url("/users/profile"))
        .header("x-request-id", "rid-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(body["error"]["request_id"], "rid-1");
}

#[tokio::test]
async fn body_over_64_kib_is_413() {
    let t = common::start().await;
    let big = format!(
        "{{\"email\":\"{}\",\"password\":\"x\"}}",
        "a".repeat(70 * 1024)
    );
    let resp = t
        .http
        .post(t.url("/auth/register"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn openapi_document_lists_the_routes() {
    let t = common::start().await;
    let (s, doc, _) = t.get("/openapi.json", None).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/auth/register",
        "/auth/login",
        "/users/profile",
        "/orders",
        "/orders/{id}",
        "/wallets/balances",
        "/fiat/deposit",
        "/webhooks/{provider}",
    ] {
        assert!(
            paths.contains_key(p),
            "missing {p} in {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
}

/// `api.redis_url` set: two nodes share one budget through the real Redis
/// on 127.0.0.1:6379 (scripts/test.sh starts it; this fails without it).
#[tokio::test]
async fn two_nodes_with_redis_url_share_one_rate_limit() {
    let config = || api::ApiConfig {
        redis_url: Some(api::secret::Secret::new("redis://127.0.0.1:6379")),
        // One request per 10 s after a burst of 3: the 4 requests below
        // cannot earn a new one, however slow the machine.
        requests_per_minute: 6,
        request_burst: 3,
        ..common::test_config()
    };
    let (a, b) = (
        common::start_with(config()).await,
        common::start_with(config()).await,
    );
    // Anonymous requests count against the client address: a random
    // loopback address of this run's own, so reruns do not share a budget.
    let octets: [u8; 3] = rand::random();
    let ip = std::net::Ipv4Addr::new(127, octets[0], octets[1], octets[2].max(2));
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::V4(ip))
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for node in [&a, &b, &a, &b] {
        let resp = client.get(node.url("/users/profile")).send().await.unwrap();
        assert!(
            resp.headers().contains_key("ratelimit-limit"),
            "limited route"
        );
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429],
        "the 4th request across both nodes is over the shared burst of 3"
    );
}
