//! The API's use of [`feeds::resilience`]: the policy from [`ApiConfig`]
//! and the mapping of breaker and timeout outcomes to 503s with
//! `Retry-After`. Every venue, custody and payment-provider call goes
//! through an [`Upstream`].

pub use feeds::resilience::{CallError, Idempotency, Policy, Upstream};

use crate::config::ApiConfig;
use crate::error::ApiError;
use std::time::Duration;

/// The upstream policy of the API's configuration.
pub fn policy(config: &ApiConfig) -> Policy {
    Policy {
        timeout: Duration::from_millis(config.upstream_timeout_ms),
        attempts: config.upstream_attempts,
        failures_to_open: config.breaker_failures,
        open_for: Duration::from_millis(config.breaker_open_ms),
    }
}

/// Maps a protected call's failure to the API's error.
pub trait IntoApiError<E> {
    /// Breaker open → 503 `upstream_unavailable` with `Retry-After` (the
    /// time left open); timeout → 503 `upstream_timeout`; an upstream
    /// answer → `f`.
    fn into_api(self, name: &str, f: impl FnOnce(E) -> ApiError) -> ApiError;
}

impl<E> IntoApiError<E> for CallError<E> {
    fn into_api(self, name: &str, f: impl FnOnce(E) -> ApiError) -> ApiError {
        match self {
            CallError::Open(wait) => ApiError::unavailable(
                "upstream_unavailable",
                format!("{name} is unavailable; retry later"),
                wait.as_secs_f64().ceil() as u64,
            ),
            CallError::Timeout => ApiError::unavailable(
                "upstream_timeout",
                format!("{name} did not answer in time"),
                1,
            ),
            CallError::Failed(e) => f(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_and_timeout_are_503_with_retry_after() {
        let open: CallError<()> = CallError::Open(Duration::from_millis(1500));
        let e = open.into_api("venue", |_| unreachable!());
        assert_eq!(
            (e.status.as_u16(), &*e.code, e.retry_after),
            (503, "upstream_unavailable", Some(2))
        );
        let e = CallError::<()>::Timeout.into_api("venue", |_| unreachable!());
        assert_eq!(
            (e.status.as_u16(), &*e.code, e.retry_after),
            (503, "upstream_timeout", Some(1))
        );
        let e =
            CallError::Failed(7).into_api("venue", |n| ApiError::unprocessable("x", n.to_string()));
        assert_eq!((e.status.as_u16(), e.message.as_str()), (422, "7"));
    }
}
