//! Tests of the Banxa-shaped server (`banxa.rs`).
use super::*;
use std::sync::atomic::{AtomicI64, Ordering};

static SEQ: AtomicI64 = AtomicI64::new(0);
const KEY: &str = "test-secret";

/// A fresh microsecond nonce.
fn nonce() -> String {
    let now = chrono::Utc::now().timestamp_micros();
    (now + SEQ.fetch_add(1, Ordering::Relaxed)).to_string()
}

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn order_body() -> Value {
    json!({"account_reference": "user-1", "source": "USD", "target": "USDC",
           "source_amount": "10.50", "wallet_address": "0xabc",
           "return_url_on_success": "https://ex.test/done", "meta_data": "tx-1"})
}

/// A GET (`body` `None`) or POST signed with `secret` (no
/// `Authorization` when `None`) and `nonce`: status and JSON answer.
async fn call(
    server: &BanxaServer,
    path: &str,
    body: Option<&str>,
    secret: Option<&str>,
    nonce: &str,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", server.url());
    let (mut request, mut message) = (http.get(&url), format!("GET\n{path}\n{nonce}"));
    if let Some(body) = body {
        request = http.post(&url).body(body.to_owned());
        message = format!("POST\n{path}\n{nonce}\n{body}");
    }
    if let Some(secret) = secret {
        let auth = format!("Bearer test-key:{}:{nonce}", hmac_hex(secret, &message));
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn create(server: &BanxaServer, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    call(server, ORDERS_PATH, Some(&body), Some(KEY), &nonce()).await
}

async fn get(server: &BanxaServer, path: &str) -> (u16, Value) {
    call(server, path, None, Some(KEY), &nonce()).await
}

fn code(answer: &Value) -> &str {
    answer["errors"][0]["code"].as_str().unwrap_or_default()
}

/// Asserts that `value` has every field of `expected`.
fn has(value: &Value, expected: Value) {
    for (name, want) in expected.as_object().unwrap() {
        assert_eq!(&value[name], want, "{name} of {value}");
    }
}

/// A webhook receiver at `/hooks/banxa`: its URL and what it got
/// (`Authorization`, body).
async fn receiver() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    let hook = move |headers: axum::http::HeaderMap, body: String| async move {
        let auth = headers["authorization"].to_str().unwrap().to_owned();
        store.lock().push((auth, body));
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/banxa", listener.local_addr().unwrap());
    let app = Router::new().route("/hooks/banxa", axum::routing::post(hook));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn round_trip_and_signed_webhook() {
    let (webhook_url, seen) = receiver().await;
    let webhook_url = Some(webhook_url);
    let config = BanxaConfig {
        webhook_url,
        ..BanxaConfig::default()
    };
    let server = BanxaServer::start(config).await;
    let (status, answer) = create(&server, &order_body()).await;
    assert_eq!(status, 200, "{answer}");
    let order = &answer["data"]["order"];
    let id = order["id"].as_str().unwrap();
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    assert!(id.len() == 32 && id.bytes().all(hex), "{id}");
    let checkout_url = format!("{}/checkout/{id}", server.url());
    let expected = json!({"status": "pendingPayment", "order_type": "CRYPTO-BUY",
        "fiat_code": "USD", "fiat_amount": "10.50", "coin_code": "USDC",
        "wallet_address": "0xabc", "checkout_url": checkout_url});
    has(order, expected);
    let got = get(&server, &format!("/api/orders/{id}")).await;
    assert_eq!(got, (200, answer.clone()));
    let (status, _) = server.set_status(id, "complete").await.unwrap();
    assert_eq!(status, 200);
    let with_query = format!("/api/orders/{id}?x=1");
    let (_, got) = get(&server, &with_query).await;
    assert_eq!(got["data"]["order"]["status"], "complete");
    assert_eq!(server.orders(), [got["data"]["order"].clone()]);
    let (status, got) = get(&server, "/api/orders/ffff").await;
    assert_eq!((status, code(&got)), (404, "1"));
    assert_eq!(call(&server, "/api/coins", None, None, "1").await.0, 404);
    let log = server.requests();
    let statuses: Vec<_> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 404, 404]);
    assert_eq!((log[2].method.as_str(), &log[2].path), ("GET", &with_query));
    // The webhook: signed like a request, nonce in milliseconds.
    let (auth, body) = seen.lock()[0].clone();
    let digest = auth.strip_prefix("Bearer test-key:").unwrap();
    let (signature, nonce) = digest.split_once(':').unwrap();
    let message = format!("POST\n/hooks/banxa\n{nonce}\n{body}");
    assert_eq!((signature, nonce.len()), (&hmac_hex(KEY, &message)[..], 13));
    let hook: Value = serde_json::from_str(&body).unwrap();
    let expected = json!({"order_id": id, "status": "complete", "order_type": "BUY",
        "fiat_currency": "USD", "fiat_amount": "10.50", "crypto_coin": "USDC"});
    has(&hook, expected);
}

#[tokio::test]
async fn bad_authentication_gets_401() {
    let server = BanxaServer::start(BanxaConfig::default()).await;
    let body = order_body().to_string();
    let post = |secret, nonce: String| {
        let (body, server) = (body.clone(), &server);
        async move { call(server, ORDERS_PATH, Some(&body), secret, &nonce).await }
    };
    let (status, answer) = post(Some("wrong-secret"), nonce()).await;
    assert_eq!((status, code(&answer)), (401, "40103"));
    let stale = (chrono::Utc::now().timestamp() - 600).to_string();
    let (status, answer) = post(Some(KEY), stale).await;
    assert_eq!((status, code(&answer)), (401, "40002"));
    let (status, answer) = post(None, nonce()).await;
    assert_eq!((status, code(&answer)), (401, "40101"));
    let reused = nonce();
    assert_eq!(post(Some(KEY), reused.clone()).await.0, 200);
    let (status, answer) = post(Some(KEY), reused).await;
    assert_eq!((status, code(&answer)), (401, "40003"));
    assert_eq!(answer["errors"][0]["status"], "401");
    assert_eq!(server.orders().len(), 1);
}

#[tokio::test]
async fn invalid_bodies_and_injected_faults() {
    let server = BanxaServer::start(BanxaConfig::default()).await;
    let mut body = order_body();
    body.as_object_mut().unwrap().remove("wallet_address");
    let (status, answer) = create(&server, &body).await;
    let description = answer["errors"][0]["description"].as_str().unwrap();
    assert_eq!((status, description), (422, "wallet_address is required"));
    let mut big = order_body();
    big["meta_data"] = json!("x".repeat(MAX_BODY));
    assert_eq!(create(&server, &big).await.0, 413);
    server.fail_next(1, 503);
    let (status, answer) = create(&server, &order_body()).await;
    assert_eq!((status, code(&answer)), (503, "999"));
    assert!(server.orders().is_empty());
    assert_eq!(create(&server, &order_body()).await.0, 200);
}
