//! Queries and mutations: one JSON POST per call with the bearer token,
//! each through the venue's [`Upstream`] (timeout per attempt, retries of
//! idempotent calls only, circuit breaker), and the mapping of GraphQL
//! `extensions.code` to [`VenueError`].
//!
//! An answer's body is read up to [`UPSTREAM_BOUNDS`]`.max_bytes` and no
//! further, then checked against the bounds before it is parsed.

use super::config::{ShiftConfig, ShiftToken};
use super::wire::{WireError, WireResponse, UPSTREAM_BOUNDS};
use crate::resilience::{CallError, Idempotency, Upstream};
use crate::venue::VenueError;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Why one attempt did not produce `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// No HTTP answer (connection refused, reset, TLS, ...).
    Transport(String),
    /// An HTTP error status without a GraphQL error body.
    Status(u16),
    /// A GraphQL error: `extensions.code` and the message.
    Graphql {
        code: Option<String>,
        message: String,
    },
    /// An answer in a shape this adapter cannot read.
    Decode(String),
}

impl CallFailure {
    /// Failures count against the breaker and are retried when the call is
    /// idempotent; business errors (insufficient funds, ...) are answers.
    pub fn is_failure(&self) -> bool {
        match self {
            CallFailure::Transport(_) => true,
            CallFailure::Status(s) => *s >= 500 || *s == 429,
            CallFailure::Graphql { code, .. } => code.as_deref() == Some("UNAVAILABLE"),
            CallFailure::Decode(_) => false,
        }
    }

    /// True when the venue refused the adapter's token.
    pub fn is_unauthenticated(&self) -> bool {
        match self {
            CallFailure::Status(s) => *s == 401 || *s == 403,
            CallFailure::Graphql { code, .. } => code.as_deref() == Some("UNAUTHENTICATED"),
            _ => false,
        }
    }

    fn from_error(e: &WireError) -> CallFailure {
        CallFailure::Graphql {
            code: e.code().map(str::to_string),
            message: e.message.clone(),
        }
    }

    /// The feeds error for this failure. `subject` is the pair or asset the
    /// call was about, named by `UnknownPair` / `UnknownAsset`.
    pub fn into_venue_error(self, subject: &str) -> VenueError {
        let (code, message) = match self {
            CallFailure::Transport(e) => {
                return VenueError::Unavailable(format!("Shift unreachable: {e}"))
            }
            CallFailure::Status(s) => {
                return VenueError::Unavailable(format!("Shift answered HTTP {s}"))
            }
            CallFailure::Decode(e) => return VenueError::Unavailable(e),
            CallFailure::Graphql { code, message } => (code, message),
        };
        let named = |fallback: String| {
            if subject.is_empty() {
                fallback
            } else {
                subject.to_string()
            }
        };
        match code.as_deref() {
            Some("UNKNOWN_PAIR") => VenueError::UnknownPair(named(message)),
            Some("UNKNOWN_ASSET") => VenueError::UnknownAsset(named(message)),
            Some("INVALID_ORDER") => VenueError::InvalidOrder(message),
            Some("INVALID_AMOUNT") => VenueError::InvalidAmount(message),
            Some("INSUFFICIENT_FUNDS") => VenueError::InsufficientFunds,
            Some("ORDER_NOT_FOUND") => VenueError::OrderNotFound,
            Some("ORDER_NOT_OPEN") => VenueError::OrderNotOpen,
            Some("MARKET_HALTED") => VenueError::MarketHalted {
                pair: subject.to_string(),
                reason: message,
            },
            Some("UNAVAILABLE") => VenueError::Unavailable(format!("Shift: {message}")),
            Some("UNAUTHENTICATED") => VenueError::Unavailable(
                "Shift refused the adapter's token (UNAUTHENTICATED)".into(),
            ),
            Some(other) => VenueError::Unavailable(format!("Shift error {other}: {message}")),
            None => VenueError::Unavailable(format!("Shift error: {message}")),
        }
    }
}

/// Maps a protected call's outcome to a feeds error.
pub fn venue_error(e: CallError<CallFailure>, subject: &str, timeout_ms: u128) -> VenueError {
    match e {
        CallError::Open(wait) => VenueError::Unavailable(format!(
            "Shift circuit breaker open (failing fast for {} ms)",
            wait.as_millis()
        )),
        CallError::Timeout => {
            VenueError::Unavailable(format!("Shift did not answer within {timeout_ms} ms"))
        }
        CallError::Failed(f) => f.into_venue_error(subject),
    }
}

/// The HTTP side of the adapter. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct GraphqlHttp {
    client: reqwest::Client,
    endpoint: String,
    token: ShiftToken,
    upstream: Upstream,
    timeout_ms: u128,
}

impl GraphqlHttp {
    pub fn new(config: &ShiftConfig) -> Result<GraphqlHttp, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.request_timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(GraphqlHttp {
            client,
            endpoint: config.endpoint.trim().to_string(),
            token: config.token.clone(),
            upstream: Upstream::new("shift", config.upstream_policy()),
            timeout_ms: config.request_timeout.as_millis(),
        })
    }

    /// True while the breaker fails fast.
    pub fn breaker_open(&self) -> bool {
        self.upstream.is_open()
    }

    /// Runs `document` and reads `data[field]` (all of `data` for `None`)
    /// as `T`, under the breaker.
    pub async fn call<T: DeserializeOwned>(
        &self,
        idempotency: Idempotency,
        document: &str,
        field: Option<&str>,
        variables: Value,
    ) -> Result<T, CallError<CallFailure>> {
        self.upstream
            .call(idempotency, CallFailure::is_failure, || {
                self.post(document, field, &variables)
            })
            .await
    }

    /// [`GraphqlHttp::call`] with the error mapped for the `Venue` API.
    pub async fn request<T: DeserializeOwned>(
        &self,
        idempotency: Idempotency,
        document: &str,
        field: &str,
        variables: Value,
        subject: &str,
    ) -> Result<T, VenueError> {
        self.call(idempotency, document, Some(field), variables)
            .await
            .map_err(|e| venue_error(e, subject, self.timeout_ms))
    }

    async fn post<T: DeserializeOwned>(
        &self,
        document: &str,
        field: Option<&str>,
        variables: &Value,
    ) -> Result<T, CallFailure> {
        let mut request = self
            .client
            .post(&self.endpoint)
            .header(reqwest::header::AUTHORIZATION, self.token.bearer());
        if let Some(traceparent) = crate::trace::current() {
            request = request.header(crate::trace::TRACEPARENT, traceparent);
        }
        let response = request
            .json(&json!({ "query": document, "variables": variables }))
            .send()
            .await
            .map_err(|e| CallFailure::Transport(transport_cause(&e)))?;
        let status = response.status().as_u16();
        let body = read_body(response, UPSTREAM_BOUNDS.max_bytes).await?;
        read_data(status, &body, field)
    }
}

/// The body of `response`, refused as soon as it is announced or found to
/// be longer than `max` bytes: at most `max` bytes and one chunk are held.
/// Refused, a success status is `Decode` (naming the limit); any other is
/// its `Status`, which says more than the body would.
async fn read_body(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, CallFailure> {
    let status = response.status().as_u16();
    let too_large = || {
        if (200..300).contains(&status) {
            CallFailure::Decode(format!("Shift's answer is larger than {max} bytes"))
        } else {
            CallFailure::Status(status)
        }
    };
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CallFailure::Transport(transport_cause(&e)))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads one HTTP answer: GraphQL errors first (they may come with any
/// status), then the status, then `data[field]` (all of `data` for `None`).
/// A body over [`UPSTREAM_BOUNDS`] is not parsed: only its status counts,
/// and a success is `Decode` naming the bound.
pub fn read_data<T: DeserializeOwned>(
    status: u16,
    body: &[u8],
    field: Option<&str>,
) -> Result<T, CallFailure> {
    let bounded = UPSTREAM_BOUNDS.check(body);
    let parsed: Option<WireResponse> = match bounded {
        Ok(()) => serde_json::from_slice(body).ok(),
        Err(_) => None,
    };
    if let Some(first) = parsed.as_ref().and_then(|r| r.errors.first()) {
        return Err(CallFailure::from_error(first));
    }
    if !(200..300).contains(&status) {
        return Err(CallFailure::Status(status));
    }
    if let Err(e) = bounded {
        return Err(CallFailure::Decode(format!("Shift's answer refused: {e}")));
    }
    let mut data = parsed
        .and_then(|r| r.data)
        .ok_or_else(|| CallFailure::Decode("Shift answered without data".into()))?;
    let value = match field {
        None => data,
        Some(name) => data
            .get_mut(name)
            .map(Value::take)
            .ok_or_else(|| CallFailure::Decode(format!("Shift's answer has no {name:?}")))?,
    };
    serde_json::from_value(value).map_err(|e| {
        CallFailure::Decode(format!(
            "unreadable {} from Shift: {e}",
            field.unwrap_or("data")
        ))
    })
}

/// The innermost cause of a reqwest error, which says what actually went
/// wrong ("connection refused") rather than "error sending request".
fn transport_cause(e: &reqwest::Error) -> String {
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn graphql_error(code: &str, message: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "data": null,
            "errors": [{"message": message, "extensions": {"code": code}}]
        }))
        .unwrap()
    }

    fn failure(code: &str) -> CallFailure {
        read_data::<Value>(200, &graphql_error(code, "why"), Some("x")).unwrap_err()
    }

    /// A typed parse skips an ignored member's bytes unchecked, so an
    /// answer with bad bytes there read as data until the bounds check
    /// refused what is not UTF-8.
    #[test]
    fn an_answer_that_is_not_utf8_is_refused_even_where_nothing_reads_it() {
        let clean = br#"{"extensions":"ok","data":{"x":1}}"#;
        assert_eq!(read_data::<u32>(200, clean, Some("x")).unwrap(), 1);
        let bad = b"{\"extensions\":\"\xff\",\"data\":{\"x\":1}}";
        match read_data::<u32>(200, bad, Some("x")) {
            Err(CallFailure::Decode(why)) => {
                assert_eq!(why, "Shift's answer refused: input is not UTF-8")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn error_codes_map_to_venue_errors() {
        let cases = [
            ("UNKNOWN_PAIR", VenueError::UnknownPair("BTC-EUR".into())),
            ("UNKNOWN_ASSET", VenueError::UnknownAsset("BTC-EUR".into())),
            ("INVALID_ORDER", VenueError::InvalidOrder("why".into())),
            ("INVALID_AMOUNT", VenueError::InvalidAmount("why".into())),
            ("INSUFFICIENT_FUNDS", VenueError::InsufficientFunds),
            ("ORDER_NOT_FOUND", VenueError::OrderNotFound),
            ("ORDER_NOT_OPEN", VenueError::OrderNotOpen),
            (
                "MARKET_HALTED",
                VenueError::MarketHalted {
                    pair: "BTC-EUR".into(),
                    reason: "why".into(),
                },
            ),
        ];
        for (code, expected) in cases {
            let f = failure(code);
            assert!(!f.is_failure(), "{code} is an answer, not a failure");
            assert_eq!(f.into_venue_error("BTC-EUR"), expected, "{code}");
        }
    }

    #[test]
    fn unavailable_and_unauthenticated_are_unavailable_with_a_clear_message() {
        let f = failure("UNAVAILABLE");
        assert!(f.is_failure());
        assert_eq!(
            f.into_venue_error(""),
            VenueError::Unavailable("Shift: why".into())
        );
        let f = read_data::<Value>(401, &graphql_error("UNAUTHENTICATED", "no"), Some("x"))
            .unwrap_err();
        assert!(f.is_unauthenticated());
        assert!(
            matches!(f.into_venue_error(""), VenueError::Unavailable(m) if m.contains("token"))
        );
        let f = failure("TEAPOT");
        assert!(
            matches!(f.into_venue_error(""), VenueError::Unavailable(m) if m.contains("TEAPOT"))
        );
    }

    #[test]
    fn transport_status_and_breaker_errors_are_unavailable() {
        let e = venue_error(CallError::Timeout, "", 250);
        assert_eq!(
            e,
            VenueError::Unavailable("Shift did not answer within 250 ms".into())
        );
        let e = venue_error(CallError::Open(Duration::from_millis(900)), "", 250);
        assert!(matches!(e, VenueError::Unavailable(m) if m.contains("breaker open")));
        let e = venue_error(
            CallError::Failed(CallFailure::Transport("connection refused".into())),
            "",
            1,
        );
        assert!(matches!(e, VenueError::Unavailable(m) if m.contains("connection refused")));
        let f = read_data::<Value>(503, b"gateway down", None).unwrap_err();
        assert_eq!(f, CallFailure::Status(503));
        assert!(f.is_failure());
        assert!(!CallFailure::Status(400).is_failure());
    }

    #[test]
    fn answers_over_the_bounds_are_refused_before_parsing() {
        let junk = format!("{}{}", "[".repeat(17), "]".repeat(17));
        let deep = format!(r#"{{"data":{{"assets":[]}},"extensions":{{"x":{junk}}}}}"#);
        assert_eq!(
            read_data::<Value>(200, deep.as_bytes(), Some("assets")).unwrap_err(),
            CallFailure::Decode("Shift's answer refused: input nests deeper than 16 levels".into())
        );
        // A failure status stays the failure it is.
        assert_eq!(
            read_data::<Value>(503, deep.as_bytes(), None).unwrap_err(),
            CallFailure::Status(503)
        );
        let attack = "[".repeat(100_000);
        assert!(matches!(
            read_data::<Value>(200, attack.as_bytes(), None),
            Err(CallFailure::Decode(m)) if m.contains("deeper than 16")
        ));
    }

    #[test]
    fn data_is_read_from_the_named_field() {
        let body =
            serde_json::to_vec(&json!({"data": {"assets": [{"symbol": "USD", "scale": 8}]}}))
                .unwrap();
        let v: Vec<super::super::wire::WireAsset> = read_data(200, &body, Some("assets")).unwrap();
        assert_eq!(v[0].symbol, "USD");
        assert!(matches!(
            read_data::<Value>(200, &body, Some("markets")),
            Err(CallFailure::Decode(_))
        ));
        assert!(matches!(
            read_data::<u64>(200, &body, Some("assets")),
            Err(CallFailure::Decode(_))
        ));
    }
}
