//! [`HubspotClient`]: HubSpot CRM v3 batch upsert of contacts keyed by
//! email (docs/HUBSPOT.md), within the app's request limit.
//!
//! Guarantees: never more requests than the configured limit in any
//! rolling window ([`super::limiter`]); a `429` waits its `Retry-After`
//! (else the `X-HubSpot-RateLimit-Interval-Milliseconds` hint, else the
//! configured window) before the next request of this client; `5xx`,
//! timeouts and connection errors are retried with jittered exponential
//! backoff a bounded number of times, then reported
//! ([`UpsertError::Unavailable`]); a `400 VALIDATION_ERROR` naming inputs
//! (`errors[].context.ids`) rejects those and sends the others again; any
//! other refusal is [`UpsertError::Refused`]. The token is a [`Secret`]
//! and is never logged; answers are read up to [`MAX_RESPONSE_BYTES`] and
//! checked against JSON bounds before parsing.

use super::limiter::Limiter;
use super::mapping::ContactInput;
use super::HubspotSettings;
use api::secret::Secret;
use inbound::JsonBounds;
use rand::Rng as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// The batch upsert path.
pub const UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";
/// Inputs one batch call takes at most (HubSpot's limit).
pub const MAX_INPUTS: usize = 100;
/// The largest answer read.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// `429`s in a row after which the batch is given back.
const MAX_RATE_LIMITED: u32 = 8;

const BOUNDS: JsonBounds = JsonBounds {
    max_bytes: MAX_RESPONSE_BYTES,
    max_depth: 16,
    max_elements: 200_000,
};

/// Why a batch was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UpsertError {
    /// HubSpot did not answer, answered `5xx`, or kept answering `429`:
    /// worth trying again later.
    #[error("hubspot unavailable: {0}")]
    Unavailable(String),
    /// HubSpot refused the whole batch (`4xx` other than `429`).
    #[error("hubspot refused the batch: {status} {category}: {message}")]
    Refused {
        status: u16,
        category: String,
        message: String,
    },
}

/// What became of a batch HubSpot took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpsertReport {
    /// Inputs HubSpot refused, by email, with its message; the others
    /// were taken.
    pub rejected: BTreeMap<String, String>,
}

/// A HubSpot CRM client; cheap to share behind an `Arc`.
pub struct HubspotClient {
    http: reqwest::Client,
    url: String,
    token: Secret,
    limiter: Arc<Limiter>,
    attempts: u32,
    backoff: Duration,
}

/// An answer, read and bounded.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    interval: Option<Duration>,
    body: Value,
}

impl HubspotClient {
    /// A client for `settings` (no call made).
    pub fn new(settings: &HubspotSettings) -> anyhow::Result<HubspotClient> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(5)))
            .build()?;
        Ok(HubspotClient {
            http,
            url: format!("{}{UPSERT_PATH}", settings.base_url.trim_end_matches('/')),
            token: settings.token.clone(),
            limiter: Limiter::new(settings.requests_per_window, settings.window),
            attempts: settings.max_attempts.max(1),
            backoff: settings.backoff,
        })
    }

    /// Creates or updates `inputs` (at most [`MAX_INPUTS`]) by email.
    pub async fn upsert_contacts(
        &self,
        inputs: &[ContactInput],
    ) -> Result<UpsertReport, UpsertError> {
        if inputs.len() > MAX_INPUTS {
            return Err(UpsertError::Refused {
                status: 0,
                category: "CLIENT".to_owned(),
                message: format!("{} inputs; at most {MAX_INPUTS}", inputs.len()),
            });
        }
        let mut report = UpsertReport::default();
        let mut pending: Vec<&ContactInput> = inputs.iter().collect();
        let mut failures = 0u32;
        let mut limited = 0u32;
        while !pending.is_empty() {
            let answer = match self.send(&pending).await {
                Ok(answer) => answer,
                Err(why) => {
                    failures += 1;
                    if failures >= self.attempts {
                        return Err(UpsertError::Unavailable(why));
                    }
                    tracing::debug!(error = %why, failures, "hubspot request failed; retrying");
                    self.back_off(failures).await;
                    continue;
                }
            };
            match answer.status {
                200..=299 => {
                    report
                        .rejected
                        .extend(rejected_inputs(&answer.body, &emails(&pending)));
                    return Ok(report);
                }
                429 => {
                    metrics::counter!("nax_hubspot_rate_limited_total").increment(1);
                    limited += 1;
                    let wait = answer
                        .retry_after
                        .or(answer.interval)
                        .unwrap_or(self.limiter.window());
                    tracing::info!(
                        wait_ms = wait.as_millis() as u64,
                        policy = answer.body["policyName"].as_str().unwrap_or(""),
                        "hubspot rate limited; pausing"
                    );
                    if limited >= MAX_RATE_LIMITED {
                        return Err(UpsertError::Unavailable(format!(
                            "rate limited {limited} times in a row"
                        )));
                    }
                    self.limiter.pause(wait);
                }
                500..=599 => {
                    failures += 1;
                    let why = format!("{} {}", answer.status, message(&answer.body));
                    if failures >= self.attempts {
                        return Err(UpsertError::Unavailable(why));
                    }
                    tracing::debug!(error = %why, failures, "hubspot server error; retrying");
                    self.back_off(failures).await;
                }
                status => {
                    let named = rejected_inputs(&answer.body, &emails(&pending));
                    let category = answer.body["category"].as_str().unwrap_or("").to_owned();
                    if status == 400 && !named.is_empty() {
                        tracing::warn!(
                            rejected = named.len(),
                            "hubspot refused some contacts; sending the others again"
                        );
                        pending.retain(|i| !named.contains_key(&i.email.to_lowercase()));
                        report.rejected.extend(named);
                        continue;
                    }
                    let message = message(&answer.body);
                    tracing::warn!(status, category = %category, message = %message,
                        "hubspot refused the batch");
                    return Err(UpsertError::Refused {
                        status,
                        category,
                        message,
                    });
                }
            }
        }
        Ok(report)
    }

    /// Sleeps the jittered exponential backoff after `failures` failures.
    async fn back_off(&self, failures: u32) {
        let base = self.backoff * 2u32.saturating_pow(failures.saturating_sub(1).min(10));
        let jitter = rand::thread_rng().gen_range(0.5..1.0);
        tokio::time::sleep(base.mul_f64(jitter)).await;
    }

    /// One request, within the limit; `Err` when no answer came.
    async fn send(&self, inputs: &[&ContactInput]) -> Result<Answer, String> {
        let body = json!({
            "inputs": inputs.iter().map(|i| json!({
                "idProperty": "email",
                "id": i.email,
                "properties": i.properties,
            })).collect::<Vec<_>>(),
        });
        let permit = self.limiter.acquire().await;
        let sent = self
            .http
            .post(&self.url)
            .bearer_auth(self.token.expose())
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                metrics::counter!("nax_hubspot_requests_total", "status" => "error").increment(1);
                return Err(format!("request failed: {}", e.without_url()));
            }
        };
        let status = response.status().as_u16();
        metrics::counter!("nax_hubspot_requests_total", "status" => status.to_string())
            .increment(1);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let retry_after = header("retry-after").map(Duration::from_secs);
        let interval =
            header("x-hubspot-ratelimit-interval-milliseconds").map(Duration::from_millis);
        let bytes = read_bounded(response).await?;
        drop(permit);
        Ok(Answer {
            status,
            retry_after,
            interval,
            body: decode_answer(&bytes),
        })
    }
}

/// The body, up to [`MAX_RESPONSE_BYTES`] (a longer one is cut there and
/// then fails the JSON check).
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESPONSE_BYTES + 1 - out.len();
                out.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if out.len() > MAX_RESPONSE_BYTES {
                    return Ok(out);
                }
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(format!("reading the answer: {}", e.without_url())),
        }
    }
}

/// An answer's body as JSON: `Null` when it is empty, not JSON, or over
/// the answer bounds (1 MiB, depth 16, 200,000 elements; checked before
/// parsing).
/// Public for the fuzz test (`worker/tests/hubspot_fuzz.rs`).
pub fn decode_answer(bytes: &[u8]) -> Value {
    if bytes.is_empty() || BOUNDS.check(bytes).is_err() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// The longest message kept from an error body, in characters.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// An error body's message (HubSpot's `message`, every field optional),
/// at most [`MAX_MESSAGE_CHARS`].
fn message(body: &Value) -> String {
    let text = body["message"].as_str().unwrap_or("(no message)");
    text.chars().take(MAX_MESSAGE_CHARS).collect()
}

fn emails<'a>(inputs: &[&'a ContactInput]) -> Vec<&'a str> {
    inputs.iter().map(|i| i.email.as_str()).collect()
}

/// The emails of `sent` (lowercased) an error body names
/// (`errors[].context.ids`, or a top-level `context.ids`), each with the
/// message naming it; names of anything not sent are ignored. Public for
/// the fuzz test.
pub fn rejected_inputs(body: &Value, sent: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let entries = body["errors"]
        .as_array()
        .map(|a| a.iter().collect::<Vec<_>>())
        .unwrap_or_default();
    for entry in entries.into_iter().chain(std::iter::once(body)) {
        let Some(ids) = entry["context"]["ids"].as_array() else {
            continue;
        };
        for id in ids.iter().filter_map(Value::as_str) {
            let id = id.to_lowercase();
            if sent.iter().any(|email| email.to_lowercase() == id) {
                out.insert(id, message(entry));
            }
        }
    }
    out
}
