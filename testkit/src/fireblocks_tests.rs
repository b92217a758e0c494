//! Tests of the Fireblocks-shaped server (`fireblocks.rs`): requests are
//! signed here with the `rsa` crate and test key 2; webhooks are verified
//! here with the key set the server publishes, not with its signer.
use super::*;
use axum::body::Bytes;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{BigUint, RsaPublicKey};
use sha2::{Digest, Sha512};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static SEQ: AtomicU64 = AtomicU64::new(0);
const TX_PATH: &str = "/v1/transactions";

type Headers = Vec<(&'static str, String)>;
type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

fn api_key() -> String {
    FireblocksConfig::default().api_key
}

async fn start() -> FireblocksServer {
    FireblocksServer::start(FireblocksConfig::default()).await
}

/// Test key `no` (1 or 2), parsed once.
fn private(no: usize) -> &'static RsaPrivateKey {
    static KEYS: OnceLock<Vec<RsaPrivateKey>> = OnceLock::new();
    let parse = |pem| RsaPrivateKey::from_pkcs8_pem(pem).unwrap();
    &KEYS.get_or_init(|| [TEST_KEY_1_PEM, TEST_KEY_2_PEM].map(parse).into())[no - 1]
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a request for `uri` with `body`: a fresh nonce, 55 s.
fn claims(uri: &str, body: &str) -> Value {
    let nonce = format!("{}-{}", now(), SEQ.fetch_add(1, Ordering::Relaxed));
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    json!({ "uri": uri, "nonce": nonce, "iat": now(), "exp": now() + 55, "sub": api_key(),
            "bodyHash": hash })
}

/// An RS256 JWT of `claims` (header `alg`) signed with test key `key_no`.
fn jwt_as(alg: &str, claims: &Value, key_no: usize) -> String {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let head = json!({ "alg": alg, "typ": "JWT" }).to_string();
    let input = format!(
        "{}.{}",
        b64(head.as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = SigningKey::<Sha256>::new(private(key_no).clone()).sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

/// `X-API-Key` and the bearer JWT of `claims` signed with key `key_no`.
fn auth_headers(claims: &Value, key_no: usize) -> Headers {
    let bearer = format!("Bearer {}", jwt_as("RS256", claims, key_no));
    vec![("x-api-key", api_key()), ("authorization", bearer)]
}

/// Sends `method path` with `body` and `headers`: the status and JSON.
async fn call(
    server: &FireblocksServer,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let url = format!("{}{path}", server.url());
    let mut request = reqwest::Client::new().request(method, url);
    if !body.is_empty() {
        request = request.body(body.to_owned());
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A correctly signed request, with `extra` headers.
async fn signed(
    server: &FireblocksServer,
    method: &str,
    path: &str,
    body: &str,
    extra: &[(&'static str, String)],
) -> (u16, Value) {
    let mut headers = auth_headers(&claims(path, body), 2);
    headers.extend_from_slice(extra);
    call(server, method, path, body, &headers).await
}

fn tx_body(external_tx_id: &str) -> String {
    json!({ "assetId": "USDC_ETH_TEST5_0GER", "amount": "12.5",
            "source": { "type": "VAULT_ACCOUNT", "id": "0" },
            "destination": { "type": "ONE_TIME_ADDRESS", "oneTimeAddress": { "address": "0xabc" } },
            "externalTxId": external_tx_id, "note": "withdrawal w", "customerRefId": "user-1" })
    .to_string()
}

/// A signed GET.
async fn get(server: &FireblocksServer, path: &str) -> (u16, Value) {
    signed(server, "GET", path, "", &[]).await
}

/// A signed `POST /v1/transactions`, with `Idempotency-Key: key`.
async fn post(server: &FireblocksServer, body: &str, key: Option<&str>) -> (u16, Value) {
    let key = key.map(|k| ("idempotency-key", k.to_owned()));
    signed(server, "POST", TX_PATH, body, &Vec::from_iter(key)).await
}

fn message(answer: &Value) -> &str {
    answer["message"].as_str().unwrap_or_default()
}

fn code(answer: &Value) -> i64 {
    answer["code"].as_i64().unwrap_or_default()
}

/// Asserts that `value` has every field of `expected`.
fn has(value: &Value, expected: Value) {
    for (name, want) in expected.as_object().unwrap() {
        assert_eq!(&value[name], want, "{name} of {value}");
    }
}

#[tokio::test]
async fn authentication_checks_key_signature_and_claims() {
    let server = start().await;
    let path = "/v1/vault/accounts/7/BTC_TEST/addresses";
    let body = r#"{"description":"user 1","customerRefId":"user-1"}"#;
    let (status, answer) = signed(&server, "POST", path, body, &[]).await;
    assert_eq!(status, 200, "{answer}");
    let address = answer["address"].as_str().unwrap();
    assert!(address.starts_with("tb1q") && address.len() == 42);
    let expected = json!({ "legacyAddress": "", "enterpriseAddress": "", "tag": "",
                           "bip44AddressIndex": 0 });
    has(&answer, expected);
    // A bodyless GET signs the empty string's hash; authenticated, then 404.
    assert_eq!(get(&server, "/v1/transactions/x?a=1").await.0, 404);
    let reused = auth_headers(&claims(path, body), 2);
    assert_eq!(call(&server, "POST", path, body, &reused).await.0, 200);
    let with = |name: &str, value: Value| {
        let mut claims = claims(path, body);
        claims[name] = value;
        auth_headers(&claims, 2)
    };
    let no_api_key = auth_headers(&claims(path, body), 2)[1..].to_vec();
    let hs256 = format!("Bearer {}", jwt_as("HS256", &claims(path, body), 2));
    let hs256 = vec![("x-api-key", api_key()), ("authorization", hs256)];
    let cases: Vec<(&str, Headers, &str, i64)> = vec![
        ("wrong key", auth_headers(&claims(path, body), 1), body, -1),
        (
            "tampered body",
            auth_headers(&claims(path, body), 2),
            "{}",
            -1,
        ),
        ("wrong uri", with("uri", json!(TX_PATH)), body, -4),
        ("reused nonce", reused, body, -7),
        ("expired", with("exp", json!(now() - 1)), body, -10),
        ("future iat", with("iat", json!(now() + 120)), body, -12),
        ("too long", with("exp", json!(now() + 56)), body, -7),
        ("other user", with("sub", json!("other")), body, -6),
        ("no sub", with("sub", Value::Null), body, -2),
        ("no nonce", with("nonce", Value::Null), body, -5),
        ("no X-API-Key", no_api_key, body, -7),
        ("no JWT", vec![("x-api-key", api_key())], body, -3),
        ("HS256", hs256, body, -5),
    ];
    for (case, headers, sent, want) in cases {
        let (status, answer) = call(&server, "POST", path, sent, &headers).await;
        assert_eq!((status, code(&answer)), (401, want), "{case}: {answer}");
        assert!(!message(&answer).is_empty(), "{case}");
    }
    let wrong_key = auth_headers(&claims(path, body), 1);
    let (_, answer) = call(&server, "POST", path, body, &wrong_key).await;
    assert_eq!(
        answer,
        json!({ "message": "invalid signature", "code": -1 })
    );
    assert_eq!(server.addresses().len(), 2, "refusals change nothing");
    let log = server.requests();
    assert_eq!(log.len(), 17);
    assert_eq!(log[1].path, "/v1/transactions/x?a=1");
    assert!(log[3..].iter().all(|r| r.status == 401 && r.why.is_some()));
    let why = "the RS256 signature does not verify with the API user's key";
    assert_eq!(log[3].why.as_deref(), Some(why));
}

#[tokio::test]
async fn transactions_create_read_duplicate_and_idempotent_replay() {
    let server = start().await;
    let (status, created) = post(&server, &tx_body("w-1"), None).await;
    assert_eq!((status, message(&created)), (200, ""));
    assert_eq!(created["status"], "SUBMITTED");
    let id = created["id"].as_str().unwrap();
    let groups: Vec<_> = id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12]);
    let (status, tx) = get(&server, &format!("{TX_PATH}/{id}")).await;
    assert_eq!(status, 200);
    let expected = json!({ "id": id, "externalTxId": "w-1", "status": "SUBMITTED",
        "subStatus": "", "txHash": "", "assetId": "USDC_ETH_TEST5_0GER", "amount": 12.5,
        "amountInfo": { "amount": "12.5", "requestedAmount": "12.5", "netAmount": "12.5" },
        "source": { "type": "VAULT_ACCOUNT", "id": "0" },
        "destination": { "type": "ONE_TIME_ADDRESS" }, "destinationAddress": "0xabc",
        "customerRefId": "user-1", "note": "withdrawal w" });
    has(&tx, expected);
    assert!(tx["createdAt"].as_i64().unwrap() > 1_000_000_000_000, "ms");
    let by_external = get(&server, &format!("{TX_PATH}/external_tx_id/w-1")).await;
    assert_eq!(by_external, (200, tx.clone()));
    let (status, answer) = post(&server, &tx_body("w-1"), None).await;
    assert_eq!((status, code(&answer)), (400, 1438), "{answer}");
    let mut invalid: Value = serde_json::from_str(&tx_body("w-9")).unwrap();
    invalid["amount"] = json!(12.5);
    let (status, answer) = post(&server, &invalid.to_string(), None).await;
    assert_eq!(
        (status, message(&answer)),
        (400, "amount must be a numeric string")
    );
    invalid["amount"] = json!("12.5");
    invalid.as_object_mut().unwrap().remove("source");
    let (status, answer) = post(&server, &invalid.to_string(), None).await;
    assert_eq!(
        (status, message(&answer)),
        (400, "source must be an object")
    );
    let (status, answer) = get(&server, &format!("{TX_PATH}/nope")).await;
    assert_eq!((status, code(&answer)), (404, 1404));
    // The same key replays the first answer, even where a new request
    // would be refused (the externalTxId is taken by then).
    let first = post(&server, &tx_body("w-2"), Some("k-1")).await;
    assert_eq!(first.0, 200);
    assert_eq!(post(&server, &tx_body("w-2"), Some("k-1")).await, first);
    assert_eq!(server.transactions().len(), 2);
    // A fault saves nothing under its key.
    server.fail_next(1, 429);
    let (status, answer) = post(&server, &tx_body("w-3"), Some("k-3")).await;
    assert_eq!((status, message(&answer)), (429, "Too many requests"));
    assert_eq!(post(&server, &tx_body("w-3"), Some("k-3")).await.0, 200);
    let long = "k".repeat(41);
    assert_eq!(post(&server, &tx_body("w-4"), Some(&long)).await.0, 400);
    // A day later the key is forgotten: the request runs again.
    server.age_idempotency_keys(IDEMPOTENCY_TTL);
    let (status, answer) = post(&server, &tx_body("w-2"), Some("k-1")).await;
    assert_eq!((status, code(&answer)), (400, 1438));
    assert_eq!(server.transactions().len(), 3);
    let log = server.requests();
    let replay = |r: &&LoggedRequest| r.why.as_deref().is_some_and(|w| w.contains("replay"));
    assert_eq!(log.iter().filter(replay).count(), 1);
    assert_eq!(log.last().unwrap().idempotency_key.as_deref(), Some("k-1"));
}

/// The RSA key of JWK `jwk`.
fn jwk_key(jwk: &Value) -> RsaPublicKey {
    let number = |name: &str| {
        let bytes = URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
        BigUint::from_bytes_be(&bytes)
    };
    RsaPublicKey::new(number("n"), number("e")).unwrap()
}

/// The key set over HTTP: its `Cache-Control` and body.
async fn fetch_jwks(server: &FireblocksServer) -> (String, Value) {
    let response = reqwest::get(server.jwks_url()).await.unwrap();
    assert_eq!(response.status(), 200);
    let cache = response.headers()[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .to_owned();
    (
        cache,
        serde_json::from_str(&response.text().await.unwrap()).unwrap(),
    )
}

fn kids(set: &Value) -> Vec<&str> {
    let keys = set["keys"].as_array().unwrap();
    keys.iter().map(|k| k["kid"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn jwks_serves_key_1_then_both_then_key_2() {
    let server = start().await;
    let public = |pem| RsaPublicKey::from_public_key_pem(pem).unwrap();
    let (cache, set) = fetch_jwks(&server).await;
    assert_eq!(cache, "public, max-age=3600, s-maxage=3600");
    assert_eq!(kids(&set), ["test-key-1"]);
    has(
        &set["keys"][0],
        json!({ "kty": "RSA", "use": "sig", "alg": "RS512", "e": "AQAB" }),
    );
    assert_eq!(jwk_key(&set["keys"][0]), public(TEST_KEY_1_PUBLIC_PEM));
    server.rotate_webhook_key();
    assert_eq!(server.current_kid(), "test-key-2");
    let (_, set) = fetch_jwks(&server).await;
    assert_eq!(kids(&set), ["test-key-1", "test-key-2"]);
    assert_eq!(jwk_key(&set["keys"][1]), public(TEST_KEY_2_PUBLIC_PEM));
    server.retire_old_key();
    let (_, set) = fetch_jwks(&server).await;
    assert_eq!(kids(&set), ["test-key-2"]);
    server.fail_jwks_next(1, 503);
    assert_eq!(reqwest::get(server.jwks_url()).await.unwrap().status(), 503);
    assert_eq!(server.jwks_fetches(), 4);
}

/// A webhook receiver: its URL and what it got (headers, raw body).
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let store = seen.clone();
    let hook = move |headers: HeaderMap, body: Bytes| async move {
        store.lock().push((headers, body));
        axum::Json(json!({ "ok": true }))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/fireblocks", listener.local_addr().unwrap());
    let app = Router::new().route("/hooks/fireblocks", axum::routing::post(hook));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Verifies the v2 signature of a delivery as a receiver would: the
/// detached JWS's header names `kid`, whose key comes from the published
/// set; RS512 over `header.b64url(body)`. Its `kid`.
async fn verify_v2(server: &FireblocksServer, headers: &HeaderMap, body: &[u8]) -> String {
    let value = headers[V2_SIGNATURE_HEADER].to_str().unwrap();
    let [head, "", signature] = value.split('.').collect::<Vec<_>>()[..] else {
        panic!("not a detached JWS: {value}");
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS512");
    let kid = header["kid"].as_str().unwrap().to_owned();
    let (_, set) = fetch_jwks(server).await;
    let keys = set["keys"].as_array().unwrap();
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published");
    let key = rsa::pkcs1v15::VerifyingKey::<Sha512>::new(jwk_key(jwk));
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let input = format!("{head}.{}", URL_SAFE_NO_PAD.encode(body));
    let signature = Signature::try_from(&signature[..]).unwrap();
    key.verify(input.as_bytes(), &signature)
        .expect("v2 signature");
    kid
}

#[tokio::test]
async fn webhooks_verify_against_the_published_keys() {
    let (url, seen) = receiver().await;
    let server = start().await;
    server.set_webhook_url(&url);
    let (_, created) = signed(&server, "POST", TX_PATH, &tx_body("w-1"), &[]).await;
    let id = created["id"].as_str().unwrap();
    let answer = server.set_status(id, "COMPLETED", Some("0xfeed")).await;
    assert_eq!(answer, Some((200, json!({ "ok": true }))));
    let (headers, body) = seen.lock()[0].clone();
    assert_eq!(verify_v2(&server, &headers, &body).await, "test-key-1");
    assert!(!headers.contains_key(V1_SIGNATURE_HEADER));
    let event: Value = serde_json::from_slice(&body).unwrap();
    has(
        &event,
        json!({ "eventType": "transaction.status.updated", "eventVersion": 1,
        "resourceId": id, "workspaceId": FireblocksConfig::default().workspace_id }),
    );
    assert!(
        event["createdAt"].as_i64().unwrap() > 1_000_000_000_000,
        "ms"
    );
    has(
        &event["data"],
        json!({ "id": id, "status": "COMPLETED", "subStatus": "CONFIRMED",
        "txHash": "0xfeed", "externalTxId": "w-1" }),
    );
    assert_eq!(server.transactions()[0], event["data"]);
    // Rotated, with the legacy signature too (key 1, over the raw body).
    server.rotate_webhook_key();
    server.set_legacy_signature(true);
    let (deposit, answer) = server
        .incoming_deposit("3", "BTC_TEST", "0.01", "tb1qxyz", Some("user-1"), "ab12")
        .await;
    assert_eq!(answer.unwrap().0, 200);
    let (headers, body) = seen.lock()[1].clone();
    assert_eq!(verify_v2(&server, &headers, &body).await, "test-key-2");
    let v1 = STANDARD
        .decode(headers[V1_SIGNATURE_HEADER].as_bytes())
        .unwrap();
    let v1_key = RsaPublicKey::from_public_key_pem(TEST_KEY_1_PUBLIC_PEM).unwrap();
    let v1_key = rsa::pkcs1v15::VerifyingKey::<Sha512>::new(v1_key);
    v1_key
        .verify(&body, &Signature::try_from(&v1[..]).unwrap())
        .expect("v1 signature");
    let event: Value = serde_json::from_slice(&body).unwrap();
    has(
        &event["data"],
        json!({ "id": deposit, "status": "COMPLETED", "externalTxId": null,
        "source": { "type": "UNKNOWN", "id": "" }, "txHash": "ab12", "assetId": "BTC_TEST",
        "destination": { "type": "VAULT_ACCOUNT", "id": "3" }, "destinationAddress": "tb1qxyz",
        "customerRefId": "user-1", "amountInfo": { "amount": "0.01",
        "requestedAmount": "0.01", "netAmount": "0.01" } }),
    );
    // A redelivery is the same bytes; a forged kid is sent as given.
    assert_eq!(server.resend_last().await.unwrap().0, 200);
    assert_eq!(seen.lock()[2].1, body);
    let forged = server.sign_v2_with("unknown-kid", 2, b"{}");
    let headers = [(V2_SIGNATURE_HEADER, forged.as_str())];
    assert_eq!(server.send_raw(b"{}", &headers).await.unwrap().0, 200);
    let (headers, body) = seen.lock()[3].clone();
    assert_eq!(
        (headers[V2_SIGNATURE_HEADER].to_str().unwrap(), &body[..]),
        (&forged[..], &b"{}"[..])
    );
    assert_eq!(server.events().len(), 2);
}

#[tokio::test]
async fn limits_faults_routes_and_addresses() {
    let server = start().await;
    let big = "x".repeat(MAX_BODY + 1);
    assert_eq!(call(&server, "POST", TX_PATH, &big, &[]).await.0, 413);
    server.fail_next(1, 503);
    let (status, answer) = call(&server, "GET", TX_PATH, "", &[]).await;
    assert_eq!((status, code(&answer)), (503, 503), "before authentication");
    assert_eq!(call(&server, "GET", "/other", "", &[]).await.0, 404);
    assert_eq!(get(&server, "/v1/vault/accounts").await.0, 404);
    let delete = signed(&server, "DELETE", &format!("{TX_PATH}/x"), "", &[]).await;
    assert_eq!(delete.0, 404);
    let path = |vault: &str, asset: &str| format!("/v1/vault/accounts/{vault}/{asset}/addresses");
    let (status, answer) = signed(&server, "POST", &path("abc", "ETH"), "", &[]).await;
    assert_eq!((status, code(&answer)), (404, 1004));
    let (status, answer) = signed(&server, "POST", &path("1", "eth"), "", &[]).await;
    assert_eq!((status, code(&answer)), (404, 1006));
    let (_, first) = signed(&server, "POST", &path("1", "ETH"), "{}", &[]).await;
    let (_, second) = signed(&server, "POST", &path("1", "ETH"), "", &[]).await;
    let (_, other) = signed(&server, "POST", &path("1", "USDC"), "", &[]).await;
    let address = first["address"].as_str().unwrap();
    assert!(
        address.len() == 42 && address.starts_with("0x"),
        "{address}"
    );
    assert_eq!(second["bip44AddressIndex"], 1);
    assert!(first["address"] != second["address"] && first["address"] != other["address"]);
    assert_eq!(server.addresses().len(), 3);
    assert_eq!(server.addresses()[0]["vaultAccountId"], "1");
    // Listed a page at a time, oldest first.
    let list = format!("{}_paginated?limit=1", path("1", "ETH"));
    let (status, page) = get(&server, &list).await;
    assert_eq!(
        (status, &page["addresses"][0]["address"]),
        (200, &first["address"])
    );
    assert_eq!(page["addresses"][0]["assetId"], "ETH");
    let after = page["paging"]["after"].as_str().unwrap();
    let (_, page) = get(&server, &format!("{list}&after={after}")).await;
    assert_eq!(page["addresses"][0]["address"], second["address"]);
    assert_eq!(page["paging"], json!({}));
}
