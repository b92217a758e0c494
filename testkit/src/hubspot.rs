//! [`HubspotServer`]: a HubSpot-shaped CRM server of a test's own on
//! 127.0.0.1, built from HubSpot's documented shapes (docs/HUBSPOT.md):
//! `POST /crm/v3/objects/contacts/batch/upsert` keyed by email, private
//! app tokens (`Authorization: Bearer`), the rolling per-window request
//! limit with its `429` body and `X-HubSpot-RateLimit-*` headers, the
//! error body (`status`, `message`, `category`, `correlationId`,
//! `errors[]`), and the forward-only lifecycle stage.
//!
//! Guarantees for assertions: every request is logged ([`requests`]);
//! every request that arrived while the window was already full is
//! counted ([`over_limit_count`]), answered `429` and changes nothing;
//! faults injected with [`fail_next`] answer the next requests (after the
//! limit check) without touching the contacts.
//!
//! [`requests`]: HubspotServer::requests
//! [`over_limit_count`]: HubspotServer::over_limit_count
//! [`fail_next`]: HubspotServer::fail_next

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The batch upsert path (CRM v3).
pub const UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";

/// Inputs a batch call takes at most.
pub const MAX_INPUTS: usize = 100;

/// The default lifecycle stages' internal values, in their order.
pub const LIFECYCLE_STAGES: [&str; 7] = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
];

/// The standard contact properties the server knows (besides the
/// `na_x_*` customs of docs/HUBSPOT.md).
const STANDARD_PROPERTIES: [&str; 7] = [
    "email",
    "firstname",
    "lastname",
    "phone",
    "country",
    "lifecyclestage",
    "hs_lead_status",
];

/// The custom properties the portal has (docs/HUBSPOT.md).
pub const CUSTOM_PROPERTIES: [&str; 8] = [
    "na_x_user_id",
    "na_x_kyc_status",
    "na_x_registered_at",
    "na_x_first_deposit_at",
    "na_x_first_trade_at",
    "na_x_last_event_at",
    "na_x_last_deposit_at",
    "na_x_last_withdrawal_at",
];

/// How the server limits and whom it lets in.
#[derive(Debug, Clone)]
pub struct HubspotConfig {
    /// The private app token `Authorization: Bearer` must carry.
    pub token: String,
    /// Requests allowed per rolling window.
    pub limit: usize,
    /// The window (10 s at HubSpot; tests shorten it).
    pub window: Duration,
}

impl Default for HubspotConfig {
    fn default() -> Self {
        HubspotConfig {
            token: "pat-na1-test-token".to_owned(),
            limit: 100,
            window: Duration::from_secs(10),
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// The status it was answered with.
    pub status: u16,
    /// The `id`s (emails) of its inputs, when its body parsed.
    pub emails: Vec<String>,
    /// When it arrived.
    pub at: Instant,
}

/// A fault to answer with instead of handling.
#[derive(Debug, Clone, Copy)]
struct Fault {
    status: u16,
    retry_after: Option<u64>,
}

#[derive(Default)]
struct Inner {
    arrivals: VecDeque<Instant>,
    over_limit: u64,
    faults: VecDeque<Fault>,
    contacts: BTreeMap<String, BTreeMap<String, String>>,
    log: Vec<LoggedRequest>,
}

struct Shared {
    config: HubspotConfig,
    inner: Mutex<Inner>,
    ids: AtomicU64,
}

/// A running HubSpot-shaped server; stops when dropped.
pub struct HubspotServer {
    url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HubspotServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HubspotServer {
    /// Starts on a free port of 127.0.0.1 (needs a tokio runtime).
    pub async fn start(config: HubspotConfig) -> HubspotServer {
        let shared = Arc::new(Shared {
            config,
            inner: Mutex::new(Inner::default()),
            ids: AtomicU64::new(1),
        });
        let app = Router::new()
            .route(UPSERT_PATH, post(upsert))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("hubspot server");
        });
        HubspotServer { url, shared, task }
    }

    /// `http://127.0.0.1:<port>`, the base URL a client takes.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The token the server accepts.
    pub fn token(&self) -> String {
        self.shared.config.token.clone()
    }

    /// Every contact: email → properties (lifecycle stage included).
    pub fn contacts(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.shared.inner.lock().contacts.clone()
    }

    /// Requests that arrived while the window was already full.
    pub fn over_limit_count(&self) -> u64 {
        self.shared.inner.lock().over_limit
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.inner.lock().log.clone()
    }

    /// Answers the next `n` requests (within the limit) with `status`
    /// (429 or 5xx), with HubSpot's body for it.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.push_faults(n, status, None);
    }

    /// [`fail_next`](Self::fail_next) with `Retry-After: <seconds>`.
    pub fn fail_next_with_retry_after(&self, n: usize, status: u16, seconds: u64) {
        self.push_faults(n, status, Some(seconds));
    }

    fn push_faults(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let mut inner = self.shared.inner.lock();
        for _ in 0..n {
            inner.faults.push_back(Fault {
                status,
                retry_after,
            });
        }
    }
}

impl Shared {
    fn correlation_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    /// An error body in HubSpot's shape.
    fn error(
        &self,
        status: StatusCode,
        category: &str,
        message: &str,
        errors: Vec<Value>,
    ) -> Response {
        let mut body = json!({
            "status": "error",
            "message": message,
            "correlationId": self.correlation_id(),
            "category": category,
        });
        if !errors.is_empty() {
            body["errors"] = Value::Array(errors);
        }
        (status, axum::Json(body)).into_response()
    }
}

/// The rate limit headers of every answer.
fn limit_headers(response: &mut Response, config: &HubspotConfig, remaining: usize) {
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("X-HubSpot-RateLimit-Max", config.limit.to_string());
    set("X-HubSpot-RateLimit-Remaining", remaining.to_string());
    set(
        "X-HubSpot-RateLimit-Interval-Milliseconds",
        config.window.as_millis().to_string(),
    );
}

async fn upsert(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = Instant::now();
    let config = &shared.config;
    let emails = input_emails(&body);
    // The rolling window: every arrival counts, answered or refused.
    let (over, remaining, fault) = {
        let mut inner = shared.inner.lock();
        while inner
            .arrivals
            .front()
            .is_some_and(|t| now.duration_since(*t) >= config.window)
        {
            inner.arrivals.pop_front();
        }
        let over = inner.arrivals.len() >= config.limit;
        inner.arrivals.push_back(now);
        if over {
            inner.over_limit += 1;
        }
        let remaining = config.limit.saturating_sub(inner.arrivals.len());
        let fault = if over { None } else { inner.faults.pop_front() };
        (over, remaining, fault)
    };
    let mut response = if over {
        let mut r = rate_limited(&shared);
        let wait = config.window.as_secs().max(1);
        r.headers_mut()
            .insert("Retry-After", HeaderValue::from(wait));
        r
    } else if let Some(fault) = fault {
        injected(&shared, fault)
    } else {
        handle(&shared, &headers, &body)
    };
    limit_headers(&mut response, config, remaining);
    shared.inner.lock().log.push(LoggedRequest {
        status: response.status().as_u16(),
        emails,
        at: now,
    });
    response
}

fn rate_limited(shared: &Shared) -> Response {
    let body = json!({
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": shared.correlation_id(),
        "policyName": "TEN_SECONDLY_ROLLING",
    });
    (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
}

fn injected(shared: &Shared, fault: Fault) -> Response {
    let mut response = if fault.status == 429 {
        rate_limited(shared)
    } else {
        let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_GATEWAY);
        shared.error(status, "INTERNAL_ERROR", "injected fault", Vec::new())
    };
    if let Some(seconds) = fault.retry_after {
        response
            .headers_mut()
            .insert("Retry-After", HeaderValue::from(seconds));
    }
    response
}

/// The `id`s of a body's inputs (for the log), best effort.
fn input_emails(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    value["inputs"]
        .as_array()
        .map(|inputs| {
            inputs
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Authenticates, validates, applies.
fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let expected = format!("Bearer {}", shared.config.token);
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized {
        return shared.error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            Vec::new(),
        );
    }
    let inputs = match validate(body) {
        Ok(inputs) => inputs,
        Err(errors) => {
            return shared.error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "Invalid input JSON on line 1",
                errors,
            )
        }
    };
    let mut inner = shared.inner.lock();
    let mut results = Vec::new();
    for (email, properties) in inputs {
        let fresh = !inner.contacts.contains_key(&email);
        let contact = inner.contacts.entry(email.clone()).or_default();
        contact.insert("email".to_owned(), email.clone());
        for (name, value) in properties {
            if name == "lifecyclestage" && !stage_may_move(contact.get(&name), &value) {
                // HubSpot keeps the later stage (docs/HUBSPOT.md).
                continue;
            }
            contact.insert(name, value);
        }
        results.push(json!({
            "id": email,
            "properties": contact,
            "archived": false,
            "new": fresh,
        }));
    }
    let body = json!({ "status": "COMPLETE", "results": results });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Whether the lifecycle stage may go from `current` to `new`: forward
/// only; an empty value clears it; `other` is outside the order.
fn stage_may_move(current: Option<&String>, new: &str) -> bool {
    let rank = |s: &str| LIFECYCLE_STAGES.iter().position(|x| *x == s);
    match (current.and_then(|c| rank(c)), rank(new)) {
        (Some(from), Some(to)) => to >= from,
        _ => true,
    }
}

type Inputs = Vec<(String, BTreeMap<String, String>)>;

/// The body's inputs, or the `errors` of a `400 VALIDATION_ERROR`; an
/// error about one input names it in `context.ids`.
fn validate(body: &[u8]) -> Result<Inputs, Vec<Value>> {
    let whole = |message: String| vec![json!({ "message": message, "code": "INVALID_INPUT" })];
    let value: Value =
        serde_json::from_slice(body).map_err(|e| whole(format!("Invalid JSON: {e}")))?;
    let inputs = value["inputs"]
        .as_array()
        .ok_or_else(|| whole("`inputs` must be an array".to_owned()))?;
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(whole(format!(
            "`inputs` holds {} entries; 1 to {MAX_INPUTS} are allowed",
            inputs.len()
        )));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        match validate_input(input) {
            Ok(one) => out.push(one),
            Err((id, message)) => errors.push(json!({
                "message": message,
                "code": "INVALID_PROPERTY",
                "context": { "ids": [id] },
            })),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn validate_input(input: &Value) -> Result<(String, BTreeMap<String, String>), (String, String)> {
    let id = input["id"].as_str().unwrap_or_default().to_owned();
    let fail = |message: String| Err((id.clone(), message));
    if input["idProperty"].as_str() != Some("email") {
        return fail("`idProperty` must be `email`".to_owned());
    }
    if !is_email(&id) {
        return fail(format!("`{id}` is not a valid email address"));
    }
    let Some(properties) = input["properties"].as_object() else {
        return fail("`properties` must be an object".to_owned());
    };
    match strings(properties) {
        Ok(properties) => Ok((id.to_lowercase(), properties)),
        Err(message) => fail(message),
    }
}

fn strings(properties: &Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (name, value) in properties {
        let known = STANDARD_PROPERTIES.contains(&name.as_str())
            || CUSTOM_PROPERTIES.contains(&name.as_str());
        if !known {
            return Err(format!("Property \"{name}\" does not exist"));
        }
        let Some(text) = value.as_str() else {
            return Err(format!("Property \"{name}\" must be a string"));
        };
        if name == "lifecyclestage"
            && !text.is_empty()
            && !LIFECYCLE_STAGES.contains(&text)
            && text != "other"
        {
            return Err(format!("\"{text}\" is not a valid lifecycle stage"));
        }
        out.insert(name.clone(), text.to_owned());
    }
    Ok(out)
}

fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}
