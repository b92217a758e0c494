//! [`FireblocksServer`]: a Fireblocks-shaped custody API and webhook sender
//! of a test's own on 127.0.0.1, from Fireblocks' documentation and SDKs
//! (ts-sdk `network/bearerTokenProvider.ts`, py-sdk, legacy JS SDK):
//!
//! - **Requests** carry `X-API-Key` and `Authorization: Bearer {jwt}`, an
//!   RS256 JWT signed with the API user's key, claims `uri` (path and query,
//!   `/v1/…`), `nonce` (used once), `iat`, `exp`, `sub` (the API key) and
//!   `bodyHash` (hex SHA-256 of the exact body; of `""` without one, as the
//!   current SDKs send: the legacy SDKs' hash of the JSON `""` is refused), as
//!   developers.fireblocks.com/reference/signing-a-request-jwt-structure and
//!   the ts/py SDKs do. The docs say `exp` < `iat` + 30 s but every SDK
//!   adds 55 s: up to [`MAX_TOKEN_LIFETIME_SECS`] is accepted. A refusal is 401
//!   `{"message","code"}` with Fireblocks' codes (see `fireblocks_auth.rs`:
//!   -1 … -7 from the api-responses table, -10/-12 from support articles)
//!   and changes nothing.
//! - **Endpoints** (under `/v1`, JSON, bodies up to [`MAX_BODY`]): `POST
//!   /vault/accounts/{vaultAccountId}/{assetId}/addresses` and `GET
//!   …/{assetId}/addresses_paginated?limit&after`, `POST
//!   /transactions` (a `TRANSFER` from a `VAULT_ACCOUNT` to a
//!   `ONE_TIME_ADDRESS`), `GET /transactions/{txId}` and `GET
//!   /transactions/external_tx_id/{externalTxId}` (`fireblocks_api.rs`).
//! - **`Idempotency-Key`** (developers.fireblocks.com/reference/api-idempotency):
//!   POSTs only, at most [`MAX_IDEMPOTENCY_KEY`] characters; the first answer
//!   an endpoint gives under a key (a 400 or 404 too; not a refusal by
//!   authentication nor an injected fault) is replayed for
//!   [`IDEMPOTENCY_TTL`] of server time
//!   ([`FireblocksServer::age_idempotency_keys`] moves it on).
//! - **Webhooks v2** ([`FireblocksServer::set_status`]): the body
//!   `{id, eventType, eventVersion, resourceId, workspaceId, createdAt (ms),
//!   data}` signed `Fireblocks-Webhook-Signature: {b64url(header)}..{sig}`
//!   (detached JWS, RS512, `kid` naming a key of the JWKS served at
//!   [`JWKS_PATH`] with `Cache-Control: public, max-age=3600, s-maxage=3600`
//!   as documented); optionally also the legacy v1 `Fireblocks-Signature`.
//!   Keys rotate on demand ([`FireblocksServer::rotate_webhook_key`]).
//!
//! Every request is logged ([`FireblocksServer::requests`]). Not modelled:
//! other endpoints (404), vault accounts and balances (any numeric vault id
//! exists, any asset id of [`ASSET_ID_CHARS`] is known, including account
//! based ones Fireblocks refuses on the addresses endpoint), fees, policies,
//! a transaction's own progress (tests drive it), rate limits other than
//! injected ones, the `X-End-User-Wallet-Id` header.

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use parking_lot::Mutex;
use rsa::pkcs1v15::VerifyingKey;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

#[path = "fireblocks_api.rs"]
mod api;
#[path = "fireblocks_auth.rs"]
mod auth;
#[path = "fireblocks_webhooks.rs"]
mod webhooks;

/// Test key 1 (2,048-bit RSA, PKCS#8 PEM): the first webhook key, and the
/// v1 (legacy) webhook key.
pub const TEST_KEY_1_PEM: &str = include_str!("../fixtures/fireblocks_test_key_1.pem");
/// Test key 1's public half (SPKI PEM).
pub const TEST_KEY_1_PUBLIC_PEM: &str = include_str!("../fixtures/fireblocks_test_key_1.pub.pem");
/// Test key 2: the webhook key after a rotation, and by default the API
/// user's key (the client signs its JWTs with it).
pub const TEST_KEY_2_PEM: &str = include_str!("../fixtures/fireblocks_test_key_2.pem");
/// Test key 2's public half (SPKI PEM).
pub const TEST_KEY_2_PUBLIC_PEM: &str = include_str!("../fixtures/fireblocks_test_key_2.pub.pem");
/// The `kid`s of the two webhook keys.
pub const KIDS: [&str; 2] = ["test-key-1", "test-key-2"];
/// Where the key set is served (no authentication).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// The header of v2 (JWKS) webhook signatures.
pub const V2_SIGNATURE_HEADER: &str = "fireblocks-webhook-signature";
/// The header of v1 (legacy) webhook signatures.
pub const V1_SIGNATURE_HEADER: &str = "fireblocks-signature";
/// Largest request body accepted (larger: 413).
pub const MAX_BODY: usize = 64 * 1024;
/// Longest `Idempotency-Key` (longer: 400).
pub const MAX_IDEMPOTENCY_KEY: usize = 40;
/// How long an answer is replayed for its idempotency key.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest `exp - iat` of a request JWT (the SDKs' 55 s).
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 55;
/// Largest distance between a JWT's `iat` and now.
pub const IAT_TOLERANCE_SECS: i64 = 60;
/// The characters of a known asset id, 2 to 32 of them (`BTC`, `ETH_TEST5`,
/// `USDC_ETH_TEST5_0GER`).
pub const ASSET_ID_CHARS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
/// Transaction statuses (ts-sdk `TransactionStatus`, then the legacy JS
/// enum's PENDING, CONFIRMED, PARTIALLY_COMPLETED and TIMEOUT).
pub const STATUSES: &str = "SUBMITTED PENDING_AML_SCREENING PENDING_ENRICHMENT \
    PENDING_AUTHORIZATION QUEUED PENDING_SIGNATURE PENDING_3RD_PARTY_MANUAL_APPROVAL \
    PENDING_3RD_PARTY BROADCASTING CONFIRMING COMPLETED CANCELLING CANCELLED BLOCKED \
    REJECTED FAILED PENDING CONFIRMED PARTIALLY_COMPLETED TIMEOUT";

/// Whom the server lets in, its webhook keys, and where webhooks go.
#[derive(Debug, Clone)]
pub struct FireblocksConfig {
    /// The API user's key (`X-API-Key`, the JWT's `sub`).
    pub api_key: String,
    /// The public half (SPKI or PKCS#1 PEM) of the key the client signs
    /// its JWTs with.
    pub api_public_key_pem: String,
    /// The private PEMs of webhook keys 1 and 2 (kids [`KIDS`]): key 1
    /// signs v2 until [`FireblocksServer::rotate_webhook_key`], then key 2;
    /// key 1 always signs v1.
    pub webhook_key_pems: [String; 2],
    /// The webhooks' `workspaceId`.
    pub workspace_id: String,
    /// Where webhooks are POSTed (plain http).
    pub webhook_url: Option<String>,
}

impl Default for FireblocksConfig {
    fn default() -> Self {
        FireblocksConfig {
            api_key: "6c0d0d3e-5b3b-4a57-9a58-6f1f0f6a3c21".to_owned(),
            api_public_key_pem: TEST_KEY_2_PUBLIC_PEM.to_owned(),
            webhook_key_pems: [TEST_KEY_1_PEM.to_owned(), TEST_KEY_2_PEM.to_owned()],
            workspace_id: "0f6e4bd2-7f6a-4b7e-8d55-3a1c9e2b7d10".to_owned(),
            webhook_url: None,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The status it was answered with.
    pub status: u16,
    /// Its `Idempotency-Key`, whatever the method.
    pub idempotency_key: Option<String>,
    /// Why it was refused (401, 400, 404 …), in testkit's words: what the
    /// answer's documented message does not say.
    pub why: Option<String>,
}

/// An answer saved under an idempotency key.
struct Saved {
    /// Server time (ms) it was saved at.
    at: i64,
    status: u16,
    body: String,
}

#[derive(Default)]
struct Inner {
    transactions: Vec<Value>,
    addresses: Vec<Value>,
    nonces: HashSet<String>,
    saved: HashMap<String, Saved>,
    faults: VecDeque<u16>,
    jwks_faults: VecDeque<u16>,
    jwks_fetches: usize,
    log: Vec<LoggedRequest>,
    /// Every webhook body, sent or not (no URL).
    events: Vec<String>,
    /// The webhook key signing v2 now (0: key 1), and those published.
    signing: usize,
    published: Vec<usize>,
    legacy: bool,
    /// Makes every id unique.
    counter: u64,
    webhook_url: Option<String>,
}

struct Shared {
    config: FireblocksConfig,
    url: String,
    api_key: VerifyingKey<Sha256>,
    webhook_keys: [RsaPrivateKey; 2],
    inner: Mutex<Inner>,
}

/// A running Fireblocks-shaped server; stops when dropped.
pub struct FireblocksServer {
    shared: Arc<Shared>,
    _task: crate::served::Task,
}

impl FireblocksServer {
    /// Starts on a free port of 127.0.0.1 (needs a tokio runtime); panics
    /// on unreadable key PEMs.
    pub async fn start(config: FireblocksConfig) -> FireblocksServer {
        let api_key = VerifyingKey::new(auth::public_key(&config.api_public_key_pem));
        let [one, two] = &config.webhook_key_pems;
        let webhook_keys = [auth::private_key(one), auth::private_key(two)];
        let (listener, url) = crate::served::bind().await;
        let inner = Inner {
            published: vec![0],
            ..Inner::default()
        };
        let inner = Mutex::new(inner);
        let shared = Arc::new(Shared {
            config,
            url,
            api_key,
            webhook_keys,
            inner,
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let _task = crate::served::serve(listener, app, "fireblocks");
        FireblocksServer { shared, _task }
    }

    /// `http://127.0.0.1:<port>`, without `/v1` (the SDKs' base path adds it).
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// The key set's URL.
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.shared.url)
    }

    /// Every transaction, as `GET /v1/transactions/{id}` answers it, oldest first.
    pub fn transactions(&self) -> Vec<Value> {
        self.shared.inner.lock().transactions.clone()
    }

    /// Every deposit address made, oldest first: `{vaultAccountId, assetId,
    /// address, tag, description, customerRefId, bip44AddressIndex, …}`.
    pub fn addresses(&self) -> Vec<Value> {
        self.shared.inner.lock().addresses.clone()
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.inner.lock().log.clone()
    }

    /// Every webhook body, oldest first, sent or not (no URL).
    pub fn events(&self) -> Vec<Value> {
        let inner = self.shared.inner.lock();
        let parse = |e: &String| serde_json::from_str(e).unwrap_or(Value::Null);
        inner.events.iter().map(parse).collect()
    }

    /// How many times the key set was asked for.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.inner.lock().jwks_fetches
    }

    /// The `kid` v2 webhooks are signed under now.
    pub fn current_kid(&self) -> &'static str {
        KIDS[self.shared.inner.lock().signing]
    }

    /// Answers the next `count` API requests (`/v1/…`) with `status`, before
    /// authentication, changing and saving nothing: 429 `{"message":"Too
    /// many requests","code":429}`, a 5xx `{"message":"Internal server
    /// error","code":<status>}` (Fireblocks documents neither body: codes
    /// invented).
    pub fn fail_next(&self, count: usize, status: u16) {
        let mut inner = self.shared.inner.lock();
        inner.faults.extend(std::iter::repeat_n(status, count));
    }

    /// Answers the next `count` key set fetches with `status` (counted).
    pub fn fail_jwks_next(&self, count: usize, status: u16) {
        let mut inner = self.shared.inner.lock();
        inner.jwks_faults.extend(std::iter::repeat_n(status, count));
    }

    /// Moves every saved idempotency answer `by` into the past (a day:
    /// they are forgotten).
    pub fn age_idempotency_keys(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let mut inner = self.shared.inner.lock();
        let saved = inner.saved.values_mut();
        saved.for_each(|s| s.at = s.at.saturating_sub(by));
    }

    /// v2 webhooks are signed with key 2 (kid `test-key-2`) from now on;
    /// the key set publishes both keys.
    pub fn rotate_webhook_key(&self) {
        let mut inner = self.shared.inner.lock();
        (inner.signing, inner.published) = (1, vec![0, 1]);
    }

    /// The key set publishes only the key signing now.
    pub fn retire_old_key(&self) {
        let mut inner = self.shared.inner.lock();
        inner.published = vec![inner.signing];
    }

    /// Whether webhooks also carry the v1 `Fireblocks-Signature` (key 1),
    /// as during Fireblocks' migration ("both headers are sent").
    pub fn set_legacy_signature(&self, on: bool) {
        self.shared.inner.lock().legacy = on;
    }

    /// Where webhooks go from now on (wins over the configuration's).
    pub fn set_webhook_url(&self, url: &str) {
        self.shared.inner.lock().webhook_url = Some(url.to_owned());
    }
}

/// A JSON answer with `body` as is.
fn reply(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Fireblocks' error body `{"message", "code"?}` (`ErrorSchema`).
fn error_body(message: &str, code: Option<i64>) -> String {
    let mut body = json!({ "message": message });
    if let Some(code) = code {
        body["code"] = json!(code);
    }
    body.to_string()
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let target = parts.uri.path_and_query().map(|pq| pq.as_str());
    let target = target.unwrap_or(parts.uri.path()).to_owned();
    let key = header_text(&parts.headers, "idempotency-key");
    let path = parts.uri.path();
    let (response, why) = if parts.method == Method::GET && path == JWKS_PATH {
        (jwks(&shared), None)
    } else {
        match to_bytes(body, MAX_BODY).await {
            Ok(body) => api::answer(&shared, &parts, &target, &body, key.as_deref()),
            Err(_) => {
                let message = format!("The request body is over {MAX_BODY} bytes");
                (reply(413, error_body(&message, None)), Some(message))
            }
        }
    };
    let logged = LoggedRequest {
        method: parts.method.to_string(),
        path: target,
        status: response.status().as_u16(),
        idempotency_key: key,
        why,
    };
    shared.inner.lock().log.push(logged);
    response
}

/// `GET /.well-known/jwks.json`: the published keys, or an injected fault.
fn jwks(shared: &Shared) -> Response {
    let mut inner = shared.inner.lock();
    inner.jwks_fetches += 1;
    if let Some(status) = inner.jwks_faults.pop_front() {
        return reply(status, error_body("injected fault", None));
    }
    let keys = &shared.webhook_keys;
    let published = inner.published.iter().map(|&i| (KIDS[i], &keys[i]));
    let body = auth::jwks(&published.collect::<Vec<_>>()).to_string();
    let mut response = reply(200, body);
    let cache = HeaderValue::from_static("public, max-age=3600, s-maxage=3600");
    response.headers_mut().insert(header::CACHE_CONTROL, cache);
    response
}

/// The first value of header `name`, lossily as text.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
}

#[cfg(test)]
#[path = "fireblocks_tests.rs"]
mod tests;
