//! [`StripeServer`]: a Stripe-shaped PaymentIntents server of a test's own on
//! 127.0.0.1, from Stripe's documented API v1: `POST /v1/payment_intents`
//! (form-encoded, bracket notation: `metadata[user_id]=u1`), `GET
//! /v1/payment_intents/{id}`, `Authorization: Bearer {secret key}`,
//! `Stripe-Version`, `Idempotency-Key`, and signed webhooks for the outcomes a
//! test drives ([`StripeServer::succeed`] and the like). Every request is
//! logged ([`StripeServer::requests`]); a refused one changes nothing. Not
//! modelled: other endpoints (404 `Unrecognized request URL`, as Stripe
//! answers unknown paths), parameters other than `amount`, `currency`,
//! `metadata[…]`, `description`, `automatic_payment_methods[enabled]` and
//! `payment_method_types[]` (400 `parameter_unknown`), per-currency minimum
//! and maximum amounts, Stripe's currency list (any three letters pass, and
//! are lowercased as Stripe does), the Charge of a declined attempt.
//!
//! Errors take Stripe's shape (docs.stripe.com/api/errors): `{"error":{"type",
//! "code"?, "param"?, "message", "doc_url"?}}`. A missing or wrong key is 401
//! `invalid_request_error` ("Invalid API Key provided: sk_test_****Aso0",
//! never the whole key); a rate-limited request 429 `invalid_request_error`
//! code `rate_limit` (as observed answers show, although the 2015-09-08
//! changelog says the code went); a 5xx `api_error`.
//!
//! Idempotency (docs.stripe.com/api/idempotent_requests): keys up to 255
//! characters, on POSTs; the status and body of the first request *whose
//! endpoint began executing* are saved and replayed (`Idempotent-Replayed:
//! true`) for the same key and parameters; other parameters are 400
//! `idempotency_error`. Nothing is saved for a request refused by
//! authentication, validation or a rate limit, nor for an injected fault
//! ([`StripeServer::fail_next`]): a failure before the endpoint ran (a 5xx
//! *during* execution, which Stripe saves and replays, is not modelled).
//!
//! `Stripe-Version`: the configured version, or any well-formed one
//! (`YYYY-MM-DD[.name]`, a real date not after today: Stripe accepts any
//! released version), is accepted and logged; others, or several values, are
//! 400 `Invalid Stripe API version: …`. Objects have one shape whatever the
//! version.

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

mod wire;
use wire::{bad, error, header_text, mask, parse_form, reply, valid_version, validate};

/// The collection: create is a `POST` on it, one intent a `GET /{id}`.
pub const PAYMENT_INTENTS_PATH: &str = "/v1/payment_intents";
/// Largest request body accepted (larger: 413).
pub const MAX_BODY: usize = 64 * 1024;
/// Most form fields in one body (more: 400); 50 metadata keys fit.
pub const MAX_FIELDS: usize = 100;
/// Longest `Idempotency-Key` (longer: 400).
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Stripe's metadata limits: keys, key length, value length (characters).
pub const METADATA_LIMITS: (usize, usize, usize) = (50, 40, 500);
const INVALID: &str = "invalid_request_error";
const NO_KEY: &str = "You did not provide an API key. You need to provide your API key in the \
    Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See \
    https://stripe.com/docs/api#authentication for details, or we can help at \
    https://support.stripe.com/.";
const NOT_FORM: &str = "Invalid request (check that your POST content type is \
    application/x-www-form-urlencoded). If you have any questions, we can help at \
    https://support.stripe.com/.";
const UNKNOWN: &str = "An unknown error occurred";
const RATE_LIMITED: &str = "Testmode request rate limit exceeded, the rate limits in testmode \
    are lower than livemode. You can learn more about rate limits here \
    https://stripe.com/docs/rate-limits.";

/// Whom the server lets in, what it signs webhooks with, and where they go.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// The key let in at start (`sk_test_…`; see
    /// [`StripeServer::set_secret_key`]).
    pub secret_key: String,
    /// The endpoint's signing secret (`whsec_…`), used whole as HMAC key.
    pub webhook_secret: String,
    /// The account's version: events' `api_version`.
    pub api_version: String,
    /// Where events are POSTed (plain http).
    pub webhook_url: Option<String>,
}

impl Default for StripeConfig {
    fn default() -> Self {
        StripeConfig {
            secret_key: "sk_test_testkit0000000000000000000000".to_owned(),
            webhook_secret: "whsec_testkit00000000000000000000".to_owned(),
            api_version: "2024-06-20".to_owned(),
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
    /// Its `Stripe-Version` (`None`: not sent, the account default applies).
    pub api_version: Option<String>,
    pub idempotency_key: Option<String>,
    /// Answered with a saved response (`Idempotent-Replayed: true`).
    pub replayed: bool,
}

/// Sorted form parameters.
type Params = Vec<(String, String)>;
/// A refusal: its status and Stripe-shaped error body.
type Refusal = (u16, String);
/// An answer, or a refusal.
type Answer = Result<Response, Refusal>;

#[derive(Default)]
struct Inner {
    intents: Vec<Value>,
    charges: Vec<Value>,
    /// Every event body, as sent (or as it would have been).
    events: Vec<String>,
    /// The parameters and answer saved under each idempotency key.
    saved: HashMap<String, (Params, String)>,
    faults: VecDeque<u16>,
    log: Vec<LoggedRequest>,
    /// What ids hash, with the time: the server's URL and a counter.
    salt: (String, u64),
    webhook_url: Option<String>,
    /// The key let in now (the configuration's until
    /// [`StripeServer::set_secret_key`]).
    secret_key: String,
}

impl Inner {
    /// `prefix` and `len` (≤ 32) alphanumerics, never the same twice.
    fn new_id(&mut self, prefix: &str, len: usize) -> String {
        const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        self.salt.1 += 1;
        let seed = format!("{:?}{:?}", self.salt, SystemTime::now());
        let digest = Sha256::digest(seed.as_bytes());
        let tail = digest.iter().take(len);
        prefix
            .chars()
            .chain(tail.map(|b| ALNUM[*b as usize % 62] as char))
            .collect()
    }
}

struct Shared {
    config: StripeConfig,
    url: String,
    inner: Mutex<Inner>,
}

/// A running Stripe-shaped server; stops when dropped.
pub struct StripeServer {
    shared: Arc<Shared>,
    _task: crate::served::Task,
}

impl StripeServer {
    /// Starts on a free port of 127.0.0.1 (needs a tokio runtime).
    pub async fn start(config: StripeConfig) -> StripeServer {
        let (listener, url) = crate::served::bind().await;
        let mut inner = Inner::default();
        inner.salt.0.clone_from(&url);
        inner.secret_key.clone_from(&config.secret_key);
        let inner = Mutex::new(inner);
        let shared = Arc::new(Shared { config, url, inner });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let _task = crate::served::serve(listener, app, "stripe");
        StripeServer { shared, _task }
    }

    /// `http://127.0.0.1:<port>`, the base URL a client takes (for `/v1/…`).
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// Every PaymentIntent, as `GET` answers it, oldest first.
    pub fn intents(&self) -> Vec<Value> {
        self.shared.inner.lock().intents.clone()
    }

    /// Every Event, oldest first, whether sent or not (no webhook URL).
    pub fn events(&self) -> Vec<Value> {
        let inner = self.shared.inner.lock();
        let parse = |e: &String| serde_json::from_str(e).unwrap_or(Value::Null);
        inner.events.iter().map(parse).collect()
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.inner.lock().log.clone()
    }

    /// Answers the next `count` authenticated API requests with `status`
    /// (429: Stripe's rate-limit error; 5xx: `api_error`), before any
    /// replay or change, saving nothing under their idempotency keys.
    pub fn fail_next(&self, count: usize, status: u16) {
        let mut inner = self.shared.inner.lock();
        inner.faults.extend(std::iter::repeat_n(status, count));
    }

    /// Lets in `key` from now on instead of the one before (a key rolled
    /// in Stripe's dashboard: the old one is refused at once).
    pub fn set_secret_key(&self, key: &str) {
        self.shared.inner.lock().secret_key = key.to_owned();
    }

    /// Where the webhooks go from now on (wins over the configuration's).
    pub fn set_webhook_url(&self, url: &str) {
        self.shared.inner.lock().webhook_url = Some(url.to_owned());
    }

    /// The payment succeeds: `succeeded`, `amount_received` = `amount`, a
    /// Charge `ch_…` (`latest_charge`) carrying the intent's metadata (Stripe
    /// copies it when the intent is confirmed: support.stripe.com, "How
    /// metadata works with related objects"); event
    /// `payment_intent.succeeded`. Like every outcome: panics on an unknown
    /// intent or one that cannot move so; returns the webhook's answer
    /// (status, JSON), `None` when there is no webhook URL.
    pub async fn succeed(&self, pi_id: &str) -> Option<(u16, Value)> {
        self.outcome(pi_id, "payment_intent.succeeded", |inner, intent| {
            let (charge, amount) = (inner.new_id("ch_", 24), intent["amount"].clone());
            inner.charges.push(json!({
                "id": charge, "object": "charge", "amount": amount, "amount_captured": amount,
                "amount_refunded": 0, "captured": true, "created": now(),
                "currency": intent["currency"], "description": intent["description"],
                "livemode": false, "metadata": intent["metadata"], "paid": true,
                "payment_intent": intent["id"], "refunded": false, "status": "succeeded",
            }));
            let paid = json!({ "status": "succeeded", "amount_received": amount,
                "latest_charge": charge, "last_payment_error": null });
            set(intent, paid);
            None
        })
        .await
    }

    /// An attempt is declined with `decline_code` (`insufficient_funds`…):
    /// back to `requires_payment_method`, `last_payment_error` a `card_error`
    /// `card_declined`; event `payment_intent.payment_failed`.
    pub async fn fail_payment(&self, pi_id: &str, decline_code: &str) -> Option<(u16, Value)> {
        self.outcome(pi_id, "payment_intent.payment_failed", |_, intent| {
            let message = match decline_code {
                "insufficient_funds" => "Your card has insufficient funds.",
                _ => "Your card was declined.",
            };
            set(intent, json!({ "status": "requires_payment_method", "last_payment_error": {
                "type": "card_error", "code": "card_declined", "decline_code": decline_code,
                "message": message, "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            }}));
            None
        })
        .await
    }

    /// The intent is canceled (`canceled_at`, `cancellation_reason`
    /// `requested_by_customer`); event `payment_intent.canceled`.
    pub async fn cancel(&self, pi_id: &str) -> Option<(u16, Value)> {
        self.outcome(pi_id, "payment_intent.canceled", |_, intent| {
            let canceled = json!({ "status": "canceled", "canceled_at": now(),
                "cancellation_reason": "requested_by_customer" });
            set(intent, canceled);
            None
        })
        .await
    }

    /// Refunds `amount` (`None`: all that is left) of a succeeded intent's
    /// Charge: `amount_refunded` adds up, `refunded` once it is the whole
    /// amount; event `charge.refunded` (sent on partial refunds too) about
    /// the Charge. Panics when less than `amount`, or nothing, is left.
    pub async fn refund(&self, pi_id: &str, amount: Option<u64>) -> Option<(u16, Value)> {
        self.outcome(pi_id, "charge.refunded", |inner, intent| {
            let charges = inner.charges.iter_mut();
            let mut found = charges.filter(|c| c["id"] == intent["latest_charge"]);
            let charge = found.next().expect("refunds need a succeeded intent");
            let total = charge["amount"].as_u64().unwrap_or(0);
            let left = total - charge["amount_refunded"].as_u64().unwrap_or(0);
            let amount = amount.unwrap_or(left);
            assert!(amount > 0 && amount <= left, "refund {amount}: {left} left");
            let refunded = total - left + amount;
            let fields = json!({ "amount_refunded": refunded, "refunded": refunded == total });
            set(charge, fields);
            Some(charge.clone())
        })
        .await
    }

    /// POSTs the last event again, byte for byte (same `id`), freshly signed:
    /// a duplicate delivery. Panics when there was none.
    pub async fn resend_last(&self) -> Option<(u16, Value)> {
        let last = self.shared.inner.lock().events.last().cloned();
        self.deliver(&last.expect("no event to resend")).await
    }

    /// Applies `change` to intent `pi_id` (not yet succeeded or canceled,
    /// but for a refund) and delivers event `kind` about what it returns
    /// (`None`: the intent).
    async fn outcome<F>(&self, pi_id: &str, kind: &str, change: F) -> Option<(u16, Value)>
    where
        F: FnOnce(&mut Inner, &mut Value) -> Option<Value>,
    {
        let body = {
            let mut inner = self.shared.inner.lock();
            let at = inner.intents.iter().position(|i| i["id"] == pi_id);
            let at = at.unwrap_or_else(|| panic!("the Stripe test server has no {pi_id}"));
            let mut intent = inner.intents[at].clone();
            let status = intent["status"].as_str().unwrap_or_default().to_owned();
            let done = ["succeeded", "canceled"].contains(&status.as_str());
            let ok = done == (kind == "charge.refunded");
            assert!(ok, "no {kind}: {pi_id} is {status}");
            let object = change(&mut inner, &mut intent).unwrap_or_else(|| intent.clone());
            inner.intents[at] = intent;
            let id = inner.new_id("evt_", 24);
            let event = json!({
                "id": id, "object": "event", "api_version": self.shared.config.api_version,
                "created": now(), "data": { "object": object }, "livemode": false,
                "pending_webhooks": 1, "request": { "id": null, "idempotency_key": null },
                "type": kind,
            });
            inner.events.push(event.to_string());
            event.to_string()
        };
        self.deliver(&body).await
    }

    /// POSTs `body` with `Stripe-Signature: t={now},v1={hex HMAC-SHA256 of
    /// "{t}.{body}"}` (docs.stripe.com/webhooks/signatures); the answer, or
    /// `None` without a webhook URL. Panics when it cannot be sent.
    async fn deliver(&self, body: &str) -> Option<(u16, Value)> {
        let config = &self.shared.config;
        let set = self.shared.inner.lock().webhook_url.clone();
        let url = set.or_else(|| config.webhook_url.clone())?;
        let t = now();
        let mac = Hmac::<Sha256>::new_from_slice(config.webhook_secret.as_bytes());
        let mut mac = mac.expect("any key length");
        mac.update(format!("{t}.{body}").as_bytes());
        let signature = format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()));
        let headers = [
            ("content-type", "application/json; charset=utf-8"),
            (
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            ),
            ("stripe-signature", signature.as_str()),
        ];
        let body = body.as_bytes().to_vec();
        Some(crate::served::post_webhook("Stripe", &url, body, &headers).await)
    }
}

/// Sets the fields of object `fields` on `object`.
fn set(object: &mut Value, fields: Value) {
    for (name, value) in fields.as_object().into_iter().flatten() {
        object[name] = value.clone();
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|pq| pq.as_str());
    let path = path.unwrap_or(parts.uri.path()).to_owned();
    let api_version = header_text(&parts.headers, "stripe-version");
    let idempotency_key = header_text(&parts.headers, "idempotency-key");
    let headers = (&api_version, &idempotency_key);
    let answered = match to_bytes(body, MAX_BODY).await {
        Ok(body) => answer(&shared, &parts, &body, headers),
        Err(_) => Err(error(
            413,
            INVALID,
            "",
            "",
            "The request body is over 64 KiB.",
        )),
    };
    let response = answered.unwrap_or_else(|(status, body)| reply(status, body));
    let logged = LoggedRequest {
        method: parts.method.to_string(),
        path,
        status: response.status().as_u16(),
        api_version,
        idempotency_key,
        replayed: response.headers().contains_key("idempotent-replayed"),
    };
    shared.inner.lock().log.push(logged);
    response
}

/// Routes, authenticates, checks the version and key, injects faults, handles.
fn answer(
    shared: &Shared,
    parts: &Parts,
    body: &[u8],
    (version, key): (&Option<String>, &Option<String>),
) -> Answer {
    let (method, path) = (&parts.method, parts.uri.path());
    let id = path.strip_prefix("/v1/payment_intents/");
    let id = id.filter(|id| !id.is_empty() && !id.contains('/'));
    let creating = method == Method::POST && path == PAYMENT_INTENTS_PATH;
    if !(creating || method == Method::GET && id.is_some()) {
        let message = format!(
            "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs \
             or we can help at https://support.stripe.com/."
        );
        return Err(error(404, INVALID, "", "", &message));
    }
    let auth = parts.headers.get(header::AUTHORIZATION);
    let given = auth.and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let given = given.unwrap_or_default();
    match String::from_utf8_lossy(given).trim() {
        "" => return Err(error(401, INVALID, "", "", NO_KEY)),
        given if given != shared.inner.lock().secret_key => {
            let message = format!("Invalid API Key provided: {}", mask(given));
            return Err(error(401, INVALID, "", "", &message));
        }
        _ => {}
    }
    let known = |v: &&String| **v == shared.config.api_version || valid_version(v);
    if let Some(version) = version.as_ref().filter(|v| !known(v)) {
        bad("", "", &format!("Invalid Stripe API version: {version}"))?;
    }
    let key = key.as_deref().filter(|_| creating);
    if key.is_some_and(|k| k.chars().count() > MAX_IDEMPOTENCY_KEY) {
        let limit = format!("Idempotency keys can be at most {MAX_IDEMPOTENCY_KEY} characters.");
        bad("", "", &limit)?;
    }
    let mut inner = shared.inner.lock();
    match inner.faults.pop_front() {
        Some(429) => return Err(error(429, INVALID, "rate_limit", "", RATE_LIMITED)),
        Some(s) if s >= 500 => return Err(error(s, "api_error", "", "", UNKNOWN)),
        Some(status) => return Err(error(status, INVALID, "", "", "Injected fault.")),
        None => {}
    }
    let Some(id) = id else {
        return create(&mut inner, parts, body, key);
    };
    match inner.intents.iter().find(|i| i["id"] == id) {
        Some(intent) => Ok(reply(200, intent.to_string())),
        None => {
            let message = format!("No such payment_intent: '{id}'");
            Err(error(404, INVALID, "resource_missing", "intent", &message))
        }
    }
}

/// `POST /v1/payment_intents`: replays or refuses a reused key, else
/// validates and creates, saving the answer under the key.
fn create(inner: &mut Inner, parts: &Parts, body: &[u8], key: Option<&str>) -> Answer {
    let mut params = parse_form(parts, body)?;
    // Stable: the order of repeated fields (`payment_method_types[]`) counts.
    params.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some((saved, body)) = key.and_then(|k| inner.saved.get(k)) {
        if *saved != params {
            let message = format!(
                "Keys for idempotent requests can only be used with the same parameters they \
                 were first used with. Try using a key other than '{}' if you meant to execute \
                 a different request.",
                key.unwrap_or_default()
            );
            return Err(error(400, "idempotency_error", "", "", &message));
        }
        let replayed = [("idempotent-replayed", "true")];
        return Ok((replayed, reply(200, body.clone())).into_response());
    }
    let mut intent = validate(&params)?;
    let id = inner.new_id("pi_", 24);
    let secret = inner.new_id(&format!("{id}_secret_"), 25);
    let fields = json!({ "id": id, "client_secret": secret, "created": now() });
    set(&mut intent, fields);
    let body = intent.to_string();
    inner.intents.push(intent);
    if let Some(key) = key {
        inner.saved.insert(key.to_owned(), (params, body.clone()));
    }
    Ok(reply(200, body))
}

#[cfg(test)]
#[path = "stripe_tests.rs"]
mod tests;
