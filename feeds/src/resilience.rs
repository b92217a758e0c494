//! Protection around calls to an upstream (venue, custody, payment
//! provider): a timeout per attempt, retries with jittered exponential
//! backoff for idempotent calls only, and a circuit breaker that fails fast
//! while the upstream is down. Used by the Shift adapter and by the API.
//!
//! Breaker: `breaker_failures` consecutive failures (timeouts or
//! "unavailable" answers; business errors such as insufficient funds are
//! answers, not failures) open it for `breaker_open_ms`. Then one call is
//! let through (half-open): success closes it, failure opens it again.

use parking_lot::Mutex;
use rand::Rng as _;
use std::future::Future;
use std::time::{Duration, Instant};

/// Whether a call may be repeated without changing the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, and writes carrying an idempotency key the upstream honours.
    Idempotent,
    /// Everything else: one attempt only.
    NotIdempotent,
}

/// Why a protected call did not produce the upstream's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// The breaker is open; retry after this long.
    Open(Duration),
    /// The last attempt timed out.
    Timeout,
    /// The upstream answered with an error (a failure or a business error).
    Failed(E),
}

#[derive(Debug, Default)]
struct BreakerState {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// The knobs of an [`Upstream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Attempts of an idempotent call (1 = no retry).
    pub attempts: u32,
    /// Consecutive failures that open the breaker.
    pub failures_to_open: u32,
    /// How long the breaker stays open before one probe.
    pub open_for: Duration,
}

/// One upstream's protection (one per venue / provider).
#[derive(Debug)]
pub struct Upstream {
    name: &'static str,
    timeout: Duration,
    attempts: u32,
    failures_to_open: u32,
    open_for: Duration,
    backoff_base: Duration,
    state: Mutex<BreakerState>,
}

impl Upstream {
    pub fn new(name: &'static str, policy: Policy) -> Self {
        Upstream {
            name,
            timeout: policy.timeout,
            attempts: policy.attempts.max(1),
            failures_to_open: policy.failures_to_open.max(1),
            open_for: policy.open_for,
            backoff_base: Duration::from_millis(50),
            state: Mutex::new(BreakerState::default()),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// True while calls fail fast.
    pub fn is_open(&self) -> bool {
        let s = self.state.lock();
        s.open_until.is_some_and(|t| Instant::now() < t)
    }

    /// Admits a call, or says how long the breaker stays open.
    fn admit(&self) -> Result<(), Duration> {
        let mut s = self.state.lock();
        match s.open_until {
            Some(until) if Instant::now() < until => Err(until - Instant::now()),
            Some(_) if s.probing => Err(Duration::from_secs(1)),
            Some(_) => {
                s.probing = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn record(&self, failed: bool) {
        let mut s = self.state.lock();
        s.probing = false;
        if failed {
            s.consecutive_failures += 1;
            if s.consecutive_failures >= self.failures_to_open || s.open_until.is_some() {
                if s.open_until.is_none() {
                    tracing::warn!(upstream = self.name, "circuit breaker open");
                }
                s.open_until = Some(Instant::now() + self.open_for);
            }
        } else {
            if s.open_until.is_some() {
                tracing::info!(upstream = self.name, "circuit breaker closed");
            }
            *s = BreakerState::default();
        }
    }

    /// Runs `call` under the timeout, retry and breaker policy.
    /// `is_failure` says which upstream errors count against the breaker
    /// (and are retried when the call is idempotent).
    pub async fn call<T, E, Fut>(
        &self,
        idempotency: Idempotency,
        is_failure: impl Fn(&E) -> bool,
        mut call: impl FnMut() -> Fut,
    ) -> Result<T, CallError<E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let attempts = match idempotency {
            Idempotency::Idempotent => self.attempts,
            Idempotency::NotIdempotent => 1,
        };
        let mut last = CallError::Timeout;
        for attempt in 0..attempts {
            if attempt > 0 {
                let exp = self.backoff_base * 2u32.saturating_pow(attempt - 1);
                let jitter = rand::thread_rng().gen_range(0.5..1.0);
                tokio::time::sleep(exp.mul_f64(jitter)).await;
            }
            self.admit().map_err(CallError::Open)?;
            match tokio::time::timeout(self.timeout, call()).await {
                Ok(Ok(v)) => {
                    self.record(false);
                    return Ok(v);
                }
                Ok(Err(e)) if is_failure(&e) => {
                    self.record(true);
                    last = CallError::Failed(e);
                }
                Ok(Err(e)) => {
                    // An answer (e.g. insufficient funds): the upstream works.
                    self.record(false);
                    return Err(CallError::Failed(e));
                }
                Err(_) => {
                    self.record(true);
                    last = CallError::Timeout;
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn upstream(attempts: u32, failures: u32, open_ms: u64) -> Upstream {
        Upstream::new(
            "test",
            Policy {
                timeout: Duration::from_millis(50),
                attempts,
                failures_to_open: failures,
                open_for: Duration::from_millis(open_ms),
            },
        )
    }

    #[tokio::test]
    async fn idempotent_calls_retry_until_success() {
        let u = upstream(3, 10, 1000);
        let n = AtomicU32::new(0);
        let r: Result<u32, CallError<&str>> = u
            .call(
                Idempotency::Idempotent,
                |_| true,
                || async {
                    if n.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err("down")
                    } else {
                        Ok(7)
                    }
                },
            )
            .await;
        assert_eq!(r, Ok(7));
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn non_idempotent_calls_run_once() {
        let u = upstream(3, 10, 1000);
        let n = AtomicU32::new(0);
        let r: Result<u32, CallError<&str>> = u
            .call(
                Idempotency::NotIdempotent,
                |_| true,
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err("down")
                },
            )
            .await;
        assert_eq!(r, Err(CallError::Failed("down")));
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn business_errors_do_not_open_the_breaker() {
        let u = upstream(1, 2, 1000);
        for _ in 0..5 {
            let r: Result<(), CallError<&str>> = u
                .call(
                    Idempotency::NotIdempotent,
                    |_| false,
                    || async { Err("insufficient") },
                )
                .await;
            assert_eq!(r, Err(CallError::Failed("insufficient")));
        }
        assert!(!u.is_open());
    }

    #[tokio::test]
    async fn timeouts_open_the_breaker_which_fails_fast_then_recovers() {
        let u = upstream(1, 2, 100);
        for _ in 0..2 {
            let r: Result<(), CallError<&str>> = u
                .call(
                    Idempotency::NotIdempotent,
                    |_| true,
                    || async {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok(())
                    },
                )
                .await;
            assert_eq!(r, Err(CallError::Timeout));
        }
        assert!(u.is_open());
        let calls = AtomicU32::new(0);
        let r: Result<(), CallError<&str>> = u
            .call(
                Idempotency::NotIdempotent,
                |_| true,
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
            )
            .await;
        assert!(matches!(r, Err(CallError::Open(_))), "{r:?}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "an open breaker never calls"
        );
        assert!(matches!(r, Err(CallError::Open(wait)) if wait <= Duration::from_millis(100)));
        tokio::time::sleep(Duration::from_millis(120)).await;
        let r: Result<(), CallError<&str>> = u
            .call(Idempotency::NotIdempotent, |_| true, || async { Ok(()) })
            .await;
        assert_eq!(r, Ok(()));
        assert!(!u.is_open());
    }

    #[tokio::test]
    async fn a_failed_probe_reopens() {
        let u = upstream(1, 1, 50);
        let fail = || async { Err::<(), _>("down") };
        let _ = u.call(Idempotency::NotIdempotent, |_| true, fail).await;
        assert!(u.is_open());
        tokio::time::sleep(Duration::from_millis(60)).await;
        let r = u.call(Idempotency::NotIdempotent, |_| true, fail).await;
        assert_eq!(r, Err(CallError::Failed("down")));
        assert!(u.is_open());
    }
}
