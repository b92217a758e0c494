//! Per-client request rate limiting (docs/API.md, "Errors"): a GCRA limiter
//! held in process.
//!
//! Each client has a steady rate of `requests_per_minute` and may burst up
//! to `request_burst` requests at once. A client is the user of its bearer
//! token when the token verifies ([`ClientKey::user`], the key the
//! WebSocket order ops are charged to as well, so one user has one
//! allowance; local tokens and Cognito tokens alike), else its IP address
//! ([`ClientIp`](super::ClientIp): behind a trusted proxy the forwarded
//! one; IPv6 grouped by /64, the block one host usually holds). Limited
//! responses carry `RateLimit-Limit` (the burst), `RateLimit-Remaining`
//! (requests allowed right now) and `RateLimit-Reset` (seconds until the
//! allowance is full again); a refused request is 429 `rate_limited` with `Retry-After`.
//!
//! State is one "theoretical arrival time" per client in a [`DashMap`].
//! A client whose allowance is full again is indistinguishable from a new
//! one, so such entries are swept periodically; past [`MAX_CLIENTS`]
//! tracked clients, new ones share one bucket until the next sweep. Memory
//! is therefore bounded whatever the number of clients.
//!
//! Known limit: a client inventing a new bearer token per request gets a
//! fresh allowance each time (those requests fail authentication anyway).
//!
//! Across nodes: [`RateLimiter::with_redis`] keeps the same GCRA in Redis
//! ([`shared`]), so nodes sharing one Redis enforce one budget per client.
//! When Redis fails or is slow (over [`shared::CALL_TIMEOUT`]), that
//! request is decided by this process's table instead (a per-node budget),
//! `nax_ratelimit_redis_fallbacks_total` counts it and a warning is logged
//! at most once per [`FALLBACK_WARN_EVERY`]; nothing else depends on Redis.

use crate::auth::{Auth, Signed};
use crate::cluster::link::{RedisLink, RedisUnavailable};
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use sha2::{Digest as _, Sha256};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod shared;

/// Least time between two "redis unavailable" warnings.
pub const FALLBACK_WARN_EVERY: Duration = Duration::from_secs(10);

/// Most clients tracked individually.
pub const MAX_CLIENTS: usize = 100_000;
/// How often idle entries are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Paths not limited: provider webhooks are authenticated by signature and
/// refusing them would only delay confirmations the provider retries.
const UNLIMITED_PREFIXES: &[&str] = &["/webhooks/"];

pub const LIMIT_HEADER: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const REMAINING_HEADER: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RESET_HEADER: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Who a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// First 16 bytes of SHA-256 of the user id of a verified token.
    User([u8; 16]),
    Ip(IpAddr),
    /// No token and no peer address known.
    Unknown,
    /// Shared by new clients while the table is full.
    Overflow,
}

impl ClientKey {
    /// The key of the verified user `user_id`: the one function both the
    /// REST middleware and the WebSocket order ops (`Api::charge`) count
    /// a user's requests under.
    pub fn user(user_id: &str) -> Self {
        let digest = Sha256::digest(user_id.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        ClientKey::User(key)
    }

    /// The key of a request: the user of its verified token, else its
    /// peer's address (an unverifiable token counts against the address,
    /// so made-up tokens cannot buy fresh allowances).
    pub fn of(user: Option<&str>, peer: Option<IpAddr>) -> Self {
        if let Some(user) = user {
            return ClientKey::user(user);
        }
        match peer {
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::Ip(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey::Ip(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
            Some(v4) => ClientKey::Ip(v4),
            None => ClientKey::Unknown,
        }
    }
}

/// The outcome of one request against its client's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The burst size (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests allowed right now, after this one.
    pub remaining: u32,
    /// Whole seconds until the allowance is full again.
    pub reset_secs: u64,
    /// Whole seconds until a refused request would be allowed (0 if allowed).
    pub retry_after_secs: u64,
}

impl Decision {
    /// Writes the `RateLimit-*` headers.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(LIMIT_HEADER, HeaderValue::from(self.limit));
        headers.insert(REMAINING_HEADER, HeaderValue::from(self.remaining));
        headers.insert(RESET_HEADER, HeaderValue::from(self.reset_secs));
    }
}

/// The steady rate and burst of every client.
#[derive(Debug, Clone, Copy)]
struct Quota {
    /// Time one request "costs" (60 s / requests per minute), in ns.
    interval_ns: u64,
    burst: u32,
}

/// In-process GCRA rate limiter (see the module doc).
pub struct RateLimiter {
    /// `None`: limiting disabled (`requests_per_minute = 0`).
    quota: Option<Quota>,
    /// Theoretical arrival time per client, ns since `epoch`.
    clients: DashMap<ClientKey, u64>,
    /// Clients tracked individually before new ones share `Overflow`.
    max_clients: usize,
    epoch: Instant,
    next_sweep_ns: AtomicU64,
    /// Shared state in Redis, when configured.
    shared: Option<shared::SharedLimits>,
    /// When the last fallback warning was logged, ns since `epoch` (+1, so
    /// 0 means never).
    last_fallback_warn_ns: AtomicU64,
    /// Requests decided in process because Redis failed.
    redis_fallbacks: AtomicU64,
}

fn ceil_secs(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

impl RateLimiter {
    /// `requests_per_minute` steady, bursts of `burst` (at least 1);
    /// `requests_per_minute = 0` disables limiting.
    pub fn new(requests_per_minute: u32, burst: u32) -> Self {
        Self::with_max_clients(requests_per_minute, burst, MAX_CLIENTS)
    }

    fn with_max_clients(requests_per_minute: u32, burst: u32, max_clients: usize) -> Self {
        let quota = (requests_per_minute > 0).then(|| Quota {
            interval_ns: (60_000_000_000 / u64::from(requests_per_minute)).max(1),
            burst: burst.max(1),
        });
        RateLimiter {
            quota,
            clients: DashMap::new(),
            max_clients,
            epoch: Instant::now(),
            next_sweep_ns: AtomicU64::new(SWEEP_EVERY.as_nanos() as u64),
            shared: None,
            last_fallback_warn_ns: AtomicU64::new(0),
            redis_fallbacks: AtomicU64::new(0),
        }
    }

    /// Like [`new`](Self::new), with the limits kept in Redis through
    /// `link`, under `nax:rl:` keys (see the module doc). Until the link is
    /// connected, requests are decided in process.
    pub fn with_redis(requests_per_minute: u32, burst: u32, link: Arc<RedisLink>) -> Self {
        let mut limiter = Self::new(requests_per_minute, burst);
        limiter.shared = Some(shared::SharedLimits::new(link, "nax:rl:"));
        limiter
    }

    /// Limits in the Redis at `redis_url` with keys under exactly
    /// `key_prefix` (tests isolate themselves with a prefix of their own).
    pub fn with_redis_prefix(
        requests_per_minute: u32,
        burst: u32,
        redis_url: &str,
        key_prefix: &str,
    ) -> Result<Self, RedisUnavailable> {
        let link = Arc::new(RedisLink::new(redis_url, "")?);
        let mut limiter = Self::new(requests_per_minute, burst);
        limiter.shared = Some(shared::SharedLimits::new(link, key_prefix));
        Ok(limiter)
    }

    /// Connects to Redis now (when configured), waiting up to `within`;
    /// true when connected or when no Redis is configured.
    pub async fn connect_redis(&self, within: Duration) -> bool {
        match &self.shared {
            Some(shared) => shared.link().connect(within).await,
            None => true,
        }
    }

    /// Counts one request of `key` now, in Redis when configured and
    /// reachable, else in process; `None` when limiting is disabled.
    pub async fn decide(&self, key: ClientKey) -> Option<Decision> {
        let quota = self.quota?;
        let Some(shared) = &self.shared else {
            return self.check(key);
        };
        match shared.check(&key, quota.interval_ns, quota.burst).await {
            Ok(decision) => Some(decision),
            Err(e) => {
                metrics::counter!("nax_ratelimit_redis_fallbacks_total").increment(1);
                self.redis_fallbacks.fetch_add(1, Ordering::Relaxed);
                self.warn_fallback(&e);
                self.check(key)
            }
        }
    }

    /// Requests decided in process because Redis failed or was slow, since
    /// start (the `nax_ratelimit_redis_fallbacks_total` of this limiter).
    pub fn redis_fallbacks(&self) -> u64 {
        self.redis_fallbacks.load(Ordering::Relaxed)
    }

    /// Logs a fallback, at most once per [`FALLBACK_WARN_EVERY`].
    fn warn_fallback(&self, error: &RedisUnavailable) {
        let now = self.epoch.elapsed().as_nanos() as u64 + 1;
        let last = self.last_fallback_warn_ns.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= FALLBACK_WARN_EVERY.as_nanos() as u64;
        if due
            && self
                .last_fallback_warn_ns
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%error, "rate limiting falls back to the in-process limiter");
        }
    }

    /// Counts one request of `key` now in this process's table (whatever
    /// the Redis configuration); `None` when limiting is disabled.
    pub fn check(&self, key: ClientKey) -> Option<Decision> {
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.check_at(key, now)
    }

    /// Clients currently tracked.
    pub fn tracked_clients(&self) -> usize {
        self.clients.len()
    }

    /// [`check`](Self::check) at `now` ns since the limiter's start.
    fn check_at(&self, key: ClientKey, now: u64) -> Option<Decision> {
        let quota = self.quota?;
        self.sweep_if_due(now);
        let key = if self.clients.len() >= self.max_clients && !self.clients.contains_key(&key) {
            ClientKey::Overflow
        } else {
            key
        };
        let interval = quota.interval_ns;
        let tolerance = interval.saturating_mul(u64::from(quota.burst));
        let mut tat = self.clients.entry(key).or_insert(now);
        let start = (*tat).max(now);
        let new_tat = start.saturating_add(interval);
        let decision = if new_tat - now <= tolerance {
            *tat = new_tat;
            Decision {
                allowed: true,
                limit: quota.burst,
                remaining: ((tolerance - (new_tat - now)) / interval) as u32,
                reset_secs: ceil_secs(new_tat - now),
                retry_after_secs: 0,
            }
        } else {
            Decision {
                allowed: false,
                limit: quota.burst,
                remaining: 0,
                reset_secs: ceil_secs(start - now),
                retry_after_secs: ceil_secs(new_tat - tolerance - now).max(1),
            }
        };
        Some(decision)
    }

    /// Drops clients whose allowance is full again (at most one sweep per
    /// [`SWEEP_EVERY`], by whichever request comes first).
    fn sweep_if_due(&self, now: u64) {
        let due = self.next_sweep_ns.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        let next = now + SWEEP_EVERY.as_nanos() as u64;
        if self
            .next_sweep_ns
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.clients.retain(|_, tat| *tat > now);
        }
    }
}

/// What [`middleware`] needs of the API (`FromRef<Api>`): two handles,
/// not the whole `Api`, which it would otherwise clone (and drop) on
/// every request.
#[derive(Clone)]
pub struct LimitState {
    pub auth: Arc<Auth>,
    pub limiter: Arc<RateLimiter>,
}

/// Middleware: counts the request against its client and either lets it
/// through with the `RateLimit-*` headers or answers 429 `rate_limited`
/// with `Retry-After` (and the same headers).
pub async fn middleware(
    State(limits): State<LimitState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if UNLIMITED_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let peer = super::ClientIp::from_extensions(&parts.extensions).map(|client| client.0);
    let signed = match crate::auth::bearer(&parts) {
        Some(token) => limits.auth.signed(token).await,
        None => None,
    };
    let key = ClientKey::of(signed.as_ref().map(Signed::subject), peer);
    if let Some(signed) = signed {
        // For `AuthUser`, which then skips the signature (one HMAC and
        // one JSON decode per request).
        parts.extensions.insert(signed);
    }
    let request = Request::from_parts(parts, body);
    let Some(decision) = limits.limiter.decide(key).await else {
        return next.run(request).await;
    };
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        metrics::counter!("nax_rate_limited_total").increment(1);
        ApiError::rate_limited(decision.retry_after_secs).into_response()
    };
    decision.write_headers(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn ip(n: u8) -> ClientKey {
        ClientKey::Ip(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn burst_then_refused_then_refilled_at_the_steady_rate() {
        let l = RateLimiter::new(60, 3); // one per second, bursts of 3
        let d: Vec<_> = (0..3).map(|_| l.check_at(ip(1), 0).unwrap()).collect();
        assert!(d.iter().all(|d| d.allowed));
        assert_eq!(
            d.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            vec![2, 1, 0]
        );
        assert_eq!(d[2].reset_secs, 3);
        let refused = l.check_at(ip(1), 0).unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert_eq!(refused.remaining, 0);
        // Half a second later: still refused; a second later: one more.
        assert!(!l.check_at(ip(1), SEC / 2).unwrap().allowed);
        let later = l.check_at(ip(1), SEC).unwrap();
        assert!(later.allowed);
        assert_eq!(later.remaining, 0);
        // Other clients are unaffected.
        assert!(l.check_at(ip(2), 0).unwrap().allowed);
    }

    #[test]
    fn a_full_allowance_returns_after_idling() {
        let l = RateLimiter::new(60, 2);
        for _ in 0..2 {
            assert!(l.check_at(ip(1), 0).unwrap().allowed);
        }
        let d = l.check_at(ip(1), 10 * SEC).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
    }

    #[test]
    fn idle_clients_are_swept() {
        let l = RateLimiter::new(60, 2);
        for n in 0..50 {
            l.check_at(ip(n), 0);
        }
        assert_eq!(l.tracked_clients(), 50);
        l.check_at(ip(200), 20 * SEC);
        assert_eq!(l.tracked_clients(), 1);
    }

    #[test]
    fn past_the_client_cap_new_clients_share_one_allowance() {
        let l = RateLimiter::with_max_clients(60, 2, 3);
        for n in 0..3 {
            assert!(l.check_at(ip(n), 0).unwrap().allowed);
        }
        // Known clients keep their own allowance; new ones share.
        assert!(l.check_at(ip(0), 0).unwrap().allowed);
        assert!(l.check_at(ip(10), 0).unwrap().allowed);
        assert!(l.check_at(ip(11), 0).unwrap().allowed);
        assert!(!l.check_at(ip(12), 0).unwrap().allowed);
        assert_eq!(l.tracked_clients(), 4);
    }

    #[test]
    fn zero_rate_disables() {
        assert_eq!(RateLimiter::new(0, 10).check(ip(1)), None);
    }

    #[test]
    fn keys() {
        assert_eq!(
            ClientKey::of(Some("t1"), None),
            ClientKey::of(Some("t1"), None)
        );
        assert_ne!(
            ClientKey::of(Some("t1"), None),
            ClientKey::of(Some("t2"), None)
        );
        let v6a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let v6c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(
            ClientKey::of(None, Some(v6a)),
            ClientKey::of(None, Some(v6b))
        );
        assert_ne!(
            ClientKey::of(None, Some(v6a)),
            ClientKey::of(None, Some(v6c))
        );
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ClientKey::of(None, Some(mapped)), ip(1));
        assert_eq!(ClientKey::of(None, None), ClientKey::Unknown);
    }
}
