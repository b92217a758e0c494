//! How the Shift adapter reaches the venue: the GraphQL endpoint, the
//! bearer token (never printed), and the timeouts, backoff and breaker
//! knobs. The WebSocket URL is derived from the HTTP endpoint, so one
//! setting names the venue.

use crate::resilience::Policy;
use std::fmt;
use std::time::Duration;

/// The adapter's bearer token. `Debug` and `Display` print `<redacted>`;
/// only [`ShiftToken::expose`] gives the value, for the request headers.
#[derive(Clone, PartialEq, Eq)]
pub struct ShiftToken(String);

impl ShiftToken {
    pub fn new(token: impl Into<String>) -> Self {
        ShiftToken(token.into())
    }

    /// The token itself: only for the `Authorization` header and the
    /// WebSocket `connection_init` payload.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `Bearer <token>`.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for ShiftToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShiftToken(<redacted>)")
    }
}

impl fmt::Display for ShiftToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The circuit breaker and retry knobs of queries and mutations (see
/// [`crate::resilience`]); the per-attempt timeout is
/// [`ShiftConfig::request_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Attempts of an idempotent call (queries, `cancelOrder`); 1 = none.
    pub attempts: u32,
    /// Consecutive failures (timeouts, transport errors, `UNAVAILABLE`)
    /// that open the breaker.
    pub failures_to_open: u32,
    /// How long the breaker fails fast before one probe call.
    pub open_for: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            attempts: 3,
            failures_to_open: 5,
            open_for: Duration::from_secs(5),
        }
    }
}

/// Everything the adapter needs to reach the venue.
#[derive(Debug, Clone)]
pub struct ShiftConfig {
    /// The GraphQL endpoint, `http(s)://host:port/path`. Subscriptions use
    /// the same host and path over `ws(s)://`.
    pub endpoint: String,
    pub token: ShiftToken,
    /// Timeout of one query or mutation attempt, of a WebSocket connect
    /// (including `connection_ack`), and of the first snapshot.
    pub request_timeout: Duration,
    /// First wait before reconnecting a lost subscription connection.
    pub backoff_min: Duration,
    /// Longest wait between reconnect attempts (the wait doubles up to it,
    /// each one jittered to 50–100 %).
    pub backoff_max: Duration,
    pub breaker: BreakerPolicy,
    /// A subscription connection silent this long gets a `ping`; silent
    /// twice as long, it is considered lost and reconnected.
    pub keepalive: Duration,
    /// Market events the hub may have queued before a pair is resynced.
    pub stream_capacity: usize,
}

impl ShiftConfig {
    /// A config with the default timeouts: 5 s per request, reconnect
    /// backoff 100 ms to 10 s, keepalive 10 s.
    pub fn new(endpoint: impl Into<String>, token: ShiftToken) -> Self {
        ShiftConfig {
            endpoint: endpoint.into(),
            token,
            request_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            breaker: BreakerPolicy::default(),
            keepalive: Duration::from_secs(10),
            stream_capacity: 65_536,
        }
    }

    /// The subscription URL: the endpoint with `http` → `ws`, `https` →
    /// `wss`; any other scheme is refused.
    pub fn ws_url(&self) -> Result<String, String> {
        let endpoint = self.endpoint.trim();
        if let Some(rest) = endpoint.strip_prefix("http://") {
            Ok(format!("ws://{rest}"))
        } else if let Some(rest) = endpoint.strip_prefix("https://") {
            Ok(format!("wss://{rest}"))
        } else {
            Err(format!(
                "endpoint {endpoint:?} must start with http:// or https://"
            ))
        }
    }

    /// Checks the values the adapter relies on.
    pub fn validate(&self) -> Result<(), String> {
        self.ws_url()?;
        if self.token.expose().is_empty() {
            return Err("token is empty".into());
        }
        if self.request_timeout.is_zero() || self.keepalive.is_zero() {
            return Err("request_timeout and keepalive must be positive".into());
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return Err("backoff_min must be positive and at most backoff_max".into());
        }
        Ok(())
    }

    pub(crate) fn upstream_policy(&self) -> Policy {
        Policy {
            timeout: self.request_timeout,
            attempts: self.breaker.attempts,
            failures_to_open: self.breaker.failures_to_open,
            open_for: self.breaker.open_for,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str) -> ShiftConfig {
        ShiftConfig::new(endpoint, ShiftToken::new("s3cret-token"))
    }

    #[test]
    fn ws_url_follows_the_endpoint_scheme() {
        assert_eq!(
            config("http://127.0.0.1:7000/graphql").ws_url().unwrap(),
            "ws://127.0.0.1:7000/graphql"
        );
        assert_eq!(
            config("https://shift.example/api/graphql")
                .ws_url()
                .unwrap(),
            "wss://shift.example/api/graphql"
        );
        assert!(config("ftp://x/graphql").ws_url().is_err());
        assert!(config("127.0.0.1:7000").validate().is_err());
    }

    #[test]
    fn the_token_never_prints() {
        let c = config("http://127.0.0.1:1/graphql");
        let printed = format!("{c:?} {} {:?}", c.token, c.token);
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("<redacted>"));
        assert_eq!(c.token.bearer(), "Bearer s3cret-token");
    }

    #[test]
    fn validation_refuses_unusable_values() {
        assert!(config("http://h/graphql").validate().is_ok());
        let mut c = config("http://h/graphql");
        c.token = ShiftToken::new("");
        assert!(c.validate().is_err());
        let mut c = config("http://h/graphql");
        c.backoff_min = Duration::from_secs(20);
        assert!(c.validate().is_err());
    }
}
