//! [`LoginCounts`]: the login throttle's counts in Redis, so that every
//! node sees every failure and success (the policy is in
//! `auth::throttle`). One key per counter, `nax:login:<name>` (names carry
//! the account hashed, never an email):
//! - a window count (`Limit::Window`): `INCR`, then `PEXPIRE NX` for the
//!   window, so the key's TTL is what is left of the window;
//! - a backoff count (`Limit::Backoff`): one Lua script increments the
//!   count and sets the TTL to the wait it earns plus the cap, so the wait
//!   left is `PTTL - cap`. One key per counter keeps every call within one
//!   hash slot.
//!
//! Every call is bounded by a short timeout; the caller falls back to the
//! node's own counts when Redis cannot answer.

use super::link::{RedisLink, RedisUnavailable};
use std::sync::Arc;
use std::time::Duration;

/// Longest a login waits for Redis before using this node's counts.
const CALL_TIMEOUT: Duration = Duration::from_millis(50);

/// Counts a backoff failure: KEYS[1] the count; ARGV allowed, cap ms,
/// first wait ms. Returns the wait earned, ms. Mirrors
/// `auth::throttle::backoff`.
const BACKOFF_LUA: &str = r"
local n = redis.call('INCR', KEYS[1])
local allowed = math.max(tonumber(ARGV[1]), 1)
local cap = tonumber(ARGV[2])
local wait = 0
if n >= allowed then
  wait = math.min(tonumber(ARGV[3]) * 2 ^ math.min(n - allowed, 31), cap)
end
wait = math.floor(wait)
redis.call('PEXPIRE', KEYS[1], wait + cap)
return wait
";

/// A counter's state in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedCount {
    pub count: u64,
    /// Milliseconds the key has left; negative when it has no expiry or
    /// does not exist.
    pub ttl_ms: i64,
}

/// The throttle's counters in Redis (module doc).
pub struct LoginCounts {
    link: Arc<RedisLink>,
    backoff_script: redis::Script,
}

impl LoginCounts {
    pub fn new(link: Arc<RedisLink>) -> Self {
        LoginCounts {
            link,
            backoff_script: redis::Script::new(BACKOFF_LUA),
        }
    }

    fn key(&self, name: &str) -> String {
        self.link.key(&format!("nax:login:{name}"))
    }

    /// The count and TTL of each named counter, in order (one pipeline).
    pub async fn read(&self, names: &[String]) -> Result<Vec<SharedCount>, RedisUnavailable> {
        let keys: Vec<String> = names.iter().map(|n| self.key(n)).collect();
        self.link
            .call(CALL_TIMEOUT, |mut c| async move {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
                }
                let flat: Vec<redis::Value> = pipe.query_async(&mut c).await?;
                Ok(flat
                    .chunks(2)
                    .map(|pair| SharedCount {
                        count: match &pair[0] {
                            redis::Value::BulkString(b) => std::str::from_utf8(b)
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .unwrap_or(0),
                            _ => 0,
                        },
                        ttl_ms: match pair.get(1) {
                            Some(redis::Value::Int(n)) => *n,
                            _ => -2,
                        },
                    })
                    .collect())
            })
            .await
    }

    /// Counts one event against each named window counter; a window
    /// starts with its first event and lasts its duration.
    pub async fn record_windows(
        &self,
        windows: &[(String, Duration)],
    ) -> Result<(), RedisUnavailable> {
        let keys: Vec<(String, u64)> = windows
            .iter()
            .map(|(n, w)| (self.key(n), w.as_millis() as u64))
            .collect();
        self.link
            .call(CALL_TIMEOUT, |mut c| async move {
                let mut pipe = redis::pipe();
                for (key, window_ms) in &keys {
                    pipe.cmd("INCR").arg(key).ignore();
                    pipe.cmd("PEXPIRE")
                        .arg(key)
                        .arg(*window_ms)
                        .arg("NX")
                        .ignore();
                }
                pipe.query_async::<()>(&mut c).await
            })
            .await
    }

    /// Counts one failure against a backoff counter; returns the wait it
    /// earned.
    pub async fn record_backoff(
        &self,
        name: &str,
        allowed: u32,
        cap: Duration,
        first: Duration,
    ) -> Result<Duration, RedisUnavailable> {
        let mut invocation = self.backoff_script.key(self.key(name));
        invocation
            .arg(allowed)
            .arg(cap.as_millis() as u64)
            .arg(first.as_millis() as u64);
        let wait_ms: u64 = self
            .link
            .call(CALL_TIMEOUT, |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        Ok(Duration::from_millis(wait_ms))
    }

    /// Forgets a counter.
    pub async fn clear(&self, name: &str) -> Result<(), RedisUnavailable> {
        let key = self.key(name);
        self.link
            .call(CALL_TIMEOUT, |mut c| async move {
                redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await
            })
            .await
    }
}
