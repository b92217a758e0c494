//! Request ids, error bodies, body limits and the OpenAPI document, over a
//! real socket; a failed start that lets go of the store.

use crate::common;

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

/// Bodies built to exhaust a parser (issue 11): refused with the bad-JSON
/// error shape naming the limit, and the server keeps answering.
#[tokio::test]
async fn hostile_bodies_are_4xx_naming_the_limit() {
    let t = common::start().await;
    let post = |body: String| {
        t.http
            .post(t.url("/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // 100,000 deep is over the byte limit.
    let resp = post(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let refused = [
        (
            format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)),
            "body refused: input nests deeper than 8 levels",
        ),
        (
            format!("[{}0]", "0,".repeat(32_000)),
            "body refused: input holds more than 1024 elements",
        ),
    ];
    for (body, message) in refused {
        let resp = post(body).await.unwrap();
        assert_eq!(resp.status(), 400);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
        assert_eq!(body["error"]["message"], message);
    }
    let resp = t.http.get(t.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// The fuzzed table of request bodies (`fuzz/`, target `rest_bodies`)
/// names every body a route of the OpenAPI document takes.
#[tokio::test]
async fn every_request_body_is_in_the_fuzzed_table() {
    let t = common::start().await;
    let doc: serde_json::Value = t
        .http
        .get(t.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut bodies: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(schema) =
                op["requestBody"]["content"]["application/json"]["schema"].as_object()
            else {
                continue;
            };
            match schema.get("$ref").and_then(|r| r.as_str()) {
                Some(r) => bodies.push(r.trim_start_matches("#/components/schemas/").to_owned()),
                // Webhooks take the provider's raw body (fuzzed as `webhooks`).
                None => assert!(
                    path.starts_with("/webhooks/"),
                    "{method} {path}: {schema:?}"
                ),
            }
        }
    }
    bodies.sort();
    bodies.dedup();
    let mut table: Vec<String> = api::http::json::REQUEST_BODIES
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    table.sort();
    assert_eq!(bodies, table);
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

/// A start that fails after its loops began (here the webhook queue's
/// cursor cannot be read) stops them before it returns: nothing is left
/// holding the store, so it opens again in the same directory.
#[tokio::test]
async fn a_failed_start_lets_go_of_the_store() {
    use api::events::log::EventLog;
    use api::store::embedded::EmbeddedStore;
    use api::{Api, ApiParts};
    use feeds::{SandboxConfig, SandboxVenue, Venue};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let queues = dir.path().join("queues");
    api::owner_only::dir(&queues).unwrap();
    std::fs::write(
        queues.join("webhook-processing-queue.cursor"),
        "not a number",
    )
    .unwrap();
    let venue = SandboxVenue::start(SandboxConfig::default()).unwrap();
    let started = Api::start(ApiParts {
        config: common::test_config(),
        data_dir: dir.path().to_path_buf(),
        store: Arc::new(EmbeddedStore::open(dir.path()).unwrap()),
        publisher: Arc::new(EventLog::open(dir.path()).unwrap()),
        venue: Arc::new(venue.clone()) as Arc<dyn Venue>,
        self_url: "http://127.0.0.1:9".into(),
    })
    .await;
    let err = started.err().expect("the start fails on the cursor");
    assert!(format!("{err:#}").contains("webhook queue"), "{err:#}");
    EmbeddedStore::open(dir.path()).expect("nothing holds the store after the failed start");
    venue.stop().await;
}
