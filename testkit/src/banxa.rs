//! [`BanxaServer`]: a Banxa-shaped payment server of a test's own on
//! 127.0.0.1, from Banxa's documented legacy (v1.3) merchant API: `POST
//! /api/orders` (a buy order), `GET /api/orders/{id}`, HMAC authentication
//! of every request (`Authorization: Bearer {key}:{signature}:{nonce}`, hex
//! HMAC-SHA256 over `"GET\n{path?query}\n{nonce}"` or
//! `"POST\n{path}\n{nonce}\n{body}"`; nonce in s, ms or µs, within
//! [`NONCE_TOLERANCE_SECS`] of now, used once) and signed webhooks v2
//! ([`BanxaServer::set_status`]). Every request is logged
//! ([`BanxaServer::requests`]); a refused one changes nothing.
//!
//! Errors take Banxa's documented shape (docs.banxa.com, "Errors"): an
//! *array* of string-valued objects, `{"errors":[{"status":"401",
//! "code":"40103","title":"…","description":"…"}]}`: `status` is the HTTP
//! status, as its field table says (its example swaps `status` and
//! `code`); `code` is Banxa's internal status (40001 bad nonce, 40002
//! stale, 40003 reused, 40100 unknown key, 40101 malformed digest, 40103
//! bad signature, 1 no such order, 4002 invalid field, 999 system error),
//! left out where Banxa documents none.

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{request::Parts, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// The orders collection: create is a `POST` on it, one order a `GET /{id}`.
pub const ORDERS_PATH: &str = "/api/orders";
/// Largest request body accepted (larger: 413).
pub const MAX_BODY: usize = 64 * 1024;
/// Largest distance between a nonce and now.
pub const NONCE_TOLERANCE_SECS: i64 = 300;
/// Banxa's order statuses, space-separated (`coinTransferred`: the older
/// name of `cryptoTransferred`).
pub const STATUSES: &str = "pendingPayment waitingPayment paymentReceived inProgress \
    coinTransferred cryptoTransferred complete cancelled declined expired refunded \
    extraVerification";
const REQUIRED: &str = "account_reference source target source_amount wallet_address \
    return_url_on_success";
const OPTIONAL: &str = "return_url_on_failure return_url_on_cancelled meta_data blockchain \
    wallet_address_tag";

/// Whom the server lets in, and where its webhooks go.
#[derive(Debug, Clone)]
pub struct BanxaConfig {
    pub api_key: String,
    /// Keys the HMAC of requests and of webhooks.
    pub secret: String,
    /// Where [`BanxaServer::set_status`] POSTs webhooks (plain http).
    pub webhook_url: Option<String>,
}

impl Default for BanxaConfig {
    fn default() -> Self {
        BanxaConfig {
            api_key: "test-key".to_owned(),
            secret: "test-secret".to_owned(),
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
}

#[derive(Default)]
struct Inner {
    orders: Vec<Value>,
    nonces: HashSet<String>,
    faults: VecDeque<u16>,
    log: Vec<LoggedRequest>,
    /// The last webhook nonce (ms): no two are equal.
    last_nonce: i64,
    /// Set after the start ([`BanxaServer::set_webhook_url`]); wins over
    /// the configuration's.
    webhook_url: Option<String>,
}

struct Shared {
    config: BanxaConfig,
    url: String,
    inner: Mutex<Inner>,
}

/// A running Banxa-shaped server; stops when dropped.
pub struct BanxaServer {
    shared: Arc<Shared>,
    _task: crate::served::Task,
}

impl BanxaServer {
    /// Starts on a free port of 127.0.0.1 (needs a tokio runtime).
    pub async fn start(config: BanxaConfig) -> BanxaServer {
        let (listener, url) = crate::served::bind().await;
        let inner = Mutex::new(Inner::default());
        let shared = Arc::new(Shared { config, url, inner });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let _task = crate::served::serve(listener, app, "banxa");
        BanxaServer { shared, _task }
    }

    /// `http://127.0.0.1:<port>`, the base URL a client takes.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// Every order, as `GET /api/orders/{id}` answers it, oldest first.
    pub fn orders(&self) -> Vec<Value> {
        self.shared.inner.lock().orders.clone()
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.inner.lock().log.clone()
    }

    /// Answers the next `count` authenticated API requests with `status`
    /// and the error body (code 999, "System error", for a 5xx).
    pub fn fail_next(&self, count: usize, status: u16) {
        let mut inner = self.shared.inner.lock();
        inner.faults.extend(std::iter::repeat_n(status, count));
    }

    /// Where the webhooks go from now on (a service started after this
    /// server, whose address was not known at the start).
    pub fn set_webhook_url(&self, url: &str) {
        self.shared.inner.lock().webhook_url = Some(url.to_owned());
    }

    /// Moves order `order_id` to `status` (one of [`STATUSES`]) and, when
    /// `webhook_url` is set, POSTs the signed webhook v2 (nonce in ms) and
    /// returns the status and JSON answer it got (`None`: no webhook
    /// configured). Panics on
    /// an unknown order or status, or when the webhook cannot be sent.
    pub async fn set_status(&self, order_id: &str, status: &str) -> Option<(u16, Value)> {
        let known = STATUSES.split_whitespace().any(|s| s == status);
        assert!(known, "`{status}` is not a Banxa order status ({STATUSES})");
        let (body, nonce) = {
            let mut inner = self.shared.inner.lock();
            let nonce = chrono::Utc::now().timestamp_millis();
            inner.last_nonce = nonce.max(inner.last_nonce + 1);
            let nonce = inner.last_nonce;
            let order = inner.orders.iter_mut().find(|o| o["id"] == order_id);
            let no_order = || panic!("the Banxa test server has no order {order_id}");
            let o = order.unwrap_or_else(no_order);
            o["status"] = json!(status);
            // The status is all that changes: its date is the update's.
            let now = timestamp();
            let body = json!({
                "order_id": order_id, "status": status, "status_date": now,
                "created_at": o["created_at"], "updated_at": now,
                "external_id": null, "order_type": "BUY",
                "crypto_coin": o["coin_code"], "crypto_blockchain": o["blockchain"]["code"],
                "crypto_amount": o["coin_amount"], "fiat_currency": o["fiat_code"],
                "fiat_amount": o["fiat_amount"], "metadata": [],
            });
            (body.to_string(), nonce)
        };
        let config = &self.shared.config;
        let set = self.shared.inner.lock().webhook_url.clone();
        let url = set.or_else(|| config.webhook_url.clone())?;
        let url = url.as_str();
        let parsed = reqwest::Url::parse(url);
        let path = parsed.unwrap_or_else(|e| panic!("webhook_url {url}: {e}"));
        let head = format!("POST\n{}\n{nonce}", path.path());
        let signature = sign(&config.secret, &head, Some(body.as_bytes()));
        let auth = format!("Bearer {}:{signature}:{nonce}", config.api_key);
        let headers = [
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        let body = body.into_bytes();
        Some(crate::served::post_webhook("Banxa", url, body, &headers).await)
    }
}

/// Lowercase hex HMAC-SHA256 with `secret` over `head`, then `"\n"` and
/// `body` when there is one.
fn sign(secret: &str, head: &str, body: Option<&[u8]>) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(head.as_bytes());
    if let Some(body) = body {
        mac.update(b"\n");
        mac.update(body);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// 32 lowercase hex digits derived from `seed`.
fn hex32(seed: &str) -> String {
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

/// An error answer in Banxa's documented shape (module doc); `code` is
/// Banxa's internal status, `""` for none.
fn error(status: u16, code: &str, description: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let title = match code {
        "1" => "Order not found",
        "999" => "System error",
        "4002" => "Validation error",
        "40001" => "Hmac Error - Nonce must be a valid unix timestamp",
        "40002" => "Hmac Error - Nonce time is too different from our system",
        "40003" => "Hmac Error - Nonce has been used before",
        "40100" => "Hmac Error - Merchant not found",
        "40101" => "Hmac Error - Auth digest is malformed",
        "40103" => "You are not authorized to access this resource.",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let status_text = status.as_u16().to_string();
    let mut one = json!({ "status": status_text, "title": title, "description": description });
    if !code.is_empty() {
        one["code"] = json!(code);
    }
    (status, Json(json!({ "errors": [one] }))).into_response()
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query();
    let target = path_and_query.map_or(parts.uri.path(), |pq| pq.as_str());
    let response = match to_bytes(body, MAX_BODY).await {
        Ok(body) => answer(&shared, &parts, target, &body),
        Err(_) => error(413, "", &format!("the body is over {MAX_BODY} bytes")),
    };
    let (method, path) = (parts.method.to_string(), target.to_owned());
    let status = response.status().as_u16();
    let logged = LoggedRequest {
        method,
        path,
        status,
    };
    shared.inner.lock().log.push(logged);
    response
}

/// Routes, authenticates, injects faults, handles.
fn answer(shared: &Shared, parts: &Parts, target: &str, body: &[u8]) -> Response {
    let (method, path) = (&parts.method, parts.uri.path());
    let id = path.strip_prefix("/api/orders/");
    let id = id.filter(|id| !id.is_empty() && !id.contains('/'));
    let creating = method == Method::POST && path == ORDERS_PATH;
    let reading = method == Method::GET && id.is_some();
    if !(creating || reading) {
        return error(404, "", &format!("no {method} {path}"));
    }
    // A POST signs its path and body, a GET its path with the query.
    let signed = if creating { path } else { target };
    if let Err((code, why)) = authenticate(shared, parts, signed, body) {
        return error(401, code, why);
    }
    let fault = shared.inner.lock().faults.pop_front();
    if let Some(status) = fault {
        let code = if status >= 500 { "999" } else { "" };
        return error(status, code, "injected fault");
    }
    let Some(id) = id.filter(|_| !creating) else {
        return create(shared, body);
    };
    let inner = shared.inner.lock();
    match inner.orders.iter().find(|o| o["id"] == id) {
        Some(order) => Json(json!({ "data": { "order": order } })).into_response(),
        None => error(404, "1", &format!("no order {id}")),
    }
}

/// Banxa's code and why, for a refused `Authorization`.
type Refusal = (&'static str, &'static str);

/// Checks the `Authorization` of a request that signs `signed`.
fn authenticate(shared: &Shared, parts: &Parts, signed: &str, body: &[u8]) -> Result<(), Refusal> {
    let header = parts.headers.get("authorization");
    let Some(header) = header.and_then(|v| v.to_str().ok()) else {
        return Err(("40101", "no Authorization header"));
    };
    let Some(digest) = header.strip_prefix("Bearer ") else {
        return Err(("40101", "the scheme is not Bearer"));
    };
    let [key, signature, nonce] = digest.split(':').collect::<Vec<_>>()[..] else {
        return Err(("40101", "the digest is not key:signature:nonce"));
    };
    if key != shared.config.api_key {
        return Err(("40100", "unknown API key"));
    }
    let digits = nonce.len();
    if !matches!(digits, 10 | 13 | 16) || !nonce.bytes().all(|b| b.is_ascii_digit()) {
        return Err(("40001", "the nonce is not 10, 13 or 16 digits"));
    }
    let seconds = nonce.parse::<i64>().unwrap_or(0) / 10_i64.pow(digits as u32 - 10);
    if (seconds - chrono::Utc::now().timestamp()).abs() > NONCE_TOLERANCE_SECS {
        return Err(("40002", "the nonce is too far from now"));
    }
    let head = format!("{}\n{signed}\n{nonce}", parts.method);
    let post = parts.method == Method::POST;
    if signature != sign(&shared.config.secret, &head, post.then_some(body)) {
        return Err(("40103", "the signature does not match"));
    }
    if !shared.inner.lock().nonces.insert(nonce.to_owned()) {
        return Err(("40003", "nonce reused"));
    }
    Ok(())
}

fn create(shared: &Shared, body: &[u8]) -> Response {
    let fields = match validate(body) {
        Ok(fields) => fields,
        Err(why) => return error(422, "4002", &why),
    };
    let field = |name: &str| fields.get(name).cloned().unwrap_or(Value::Null);
    let reference = fields["account_reference"].as_str().unwrap_or_default();
    let chain = fields.get("blockchain").and_then(Value::as_str);
    let chain = chain.unwrap_or("ETH");
    let now = timestamp();
    let mut inner = shared.inner.lock();
    let id = hex32(&format!("{}:{}:{now}", shared.url, inner.orders.len()));
    let order = json!({
        "id": id, "account_id": hex32(&format!("account:{reference}")),
        "account_reference": reference, "order_type": "CRYPTO-BUY",
        "fiat_code": field("source"), "fiat_amount": field("source_amount"),
        "coin_code": field("target"), "coin_amount": "0",
        "wallet_address": field("wallet_address"),
        "wallet_address_tag": field("wallet_address_tag"),
        "blockchain": { "code": chain, "description": chain }, "status": "pendingPayment",
        "checkout_url": format!("{}/checkout/{id}", shared.url),
        "meta_data": field("meta_data"), "created_at": now,
    });
    inner.orders.push(order.clone());
    Json(json!({ "data": { "order": order } })).into_response()
}

/// The create-order body's fields, or why it is refused (naming the field).
fn validate(body: &[u8]) -> Result<Map<String, Value>, String> {
    let value = serde_json::from_slice(body);
    let Ok(Value::Object(fields)) = value else {
        return Err("the body is not a JSON object".to_owned());
    };
    for name in REQUIRED.split_whitespace() {
        let want = match fields.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => wanted(name, s),
            Some(_) => Some("a non-empty string"),
            None => return Err(format!("{name} is required")),
        };
        if let Some(want) = want {
            return Err(format!("{name} must be {want}"));
        }
    }
    let text = |v: Option<&Value>| matches!(v, None | Some(Value::Null | Value::String(_)));
    if let Some(name) = OPTIONAL.split_whitespace().find(|n| !text(fields.get(*n))) {
        return Err(format!("{name} must be a string"));
    }
    let method = fields.get("payment_method_id").filter(|v| !v.is_null());
    let int32 = |v: &Value| v.as_i64().is_some_and(|n| n > 0 && n <= i32::MAX.into());
    if !method.is_none_or(int32) {
        return Err("payment_method_id must be a positive int32".to_owned());
    }
    Ok(fields)
}

/// What the required field `name` must be, when `s` is not that.
fn wanted(name: &str, s: &str) -> Option<&'static str> {
    let upper = s
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let code = |len: std::ops::RangeInclusive<usize>| upper && len.contains(&s.len());
    let url = s.starts_with("http://") || s.starts_with("https://");
    let (ok, want) = match name {
        "source" => (code(3..=3), "a fiat currency code such as USD"),
        "target" => (code(2..=10), "a coin code such as USDC"),
        "source_amount" => (is_amount(s), "a positive decimal string"),
        "return_url_on_success" => (url, "an http(s) URL"),
        _ => (true, ""),
    };
    (!ok).then_some(want)
}

fn is_amount(s: &str) -> bool {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction) && s.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

#[cfg(test)]
#[path = "banxa_tests.rs"]
mod tests;
