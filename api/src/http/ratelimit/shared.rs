//! The Redis side of [`RateLimiter`](super::RateLimiter): one GCRA state
//! per client in Redis, updated by one Lua script (`gcra.lua`) so that
//! every node sharing the Redis enforces one budget per client.
//!
//! The script reads Redis' `TIME`, so nodes with skewed clocks still
//! agree. Keys are `{prefix}{client-key-hex}` (prefix `nax:rl:` in
//! production) and expire when the client's allowance is full again, so
//! Redis holds only clients that spent part of theirs.
//!
//! Calls go through the node's [`RedisLink`] (connected lazily, so a node
//! starts while Redis is down) and are bounded by [`CALL_TIMEOUT`]; the
//! caller falls back to the in-process decision when a call fails.

use super::{ClientKey, Decision};
use crate::cluster::link::{RedisLink, RedisUnavailable};
use std::sync::Arc;
use std::time::Duration;

/// Longest a request waits for Redis before it is decided in process.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(50);

const GCRA_LUA: &str = include_str!("gcra.lua");

/// A GCRA state shared through one Redis.
pub struct SharedLimits {
    link: Arc<RedisLink>,
    /// `nax:rl:` after the link's prefix.
    key_prefix: String,
    script: redis::Script,
}

impl SharedLimits {
    /// The link the limits go through.
    pub fn link(&self) -> &RedisLink {
        &self.link
    }

    /// Limits kept under `key_prefix` (after the link's own prefix).
    pub fn new(link: Arc<RedisLink>, key_prefix: &str) -> Self {
        SharedLimits {
            key_prefix: link.key(key_prefix),
            link,
            script: redis::Script::new(GCRA_LUA),
        }
    }

    /// Counts one request of `key` in Redis (EVALSHA, EVAL when the
    /// script is not cached), within [`CALL_TIMEOUT`].
    pub async fn check(
        &self,
        key: &ClientKey,
        interval_ns: u64,
        burst: u32,
    ) -> Result<Decision, RedisUnavailable> {
        let interval_us = (interval_ns / 1_000).max(1);
        let mut invocation = self.script.key(self.redis_key(key));
        invocation.arg(interval_us).arg(burst);
        let (allowed, remaining, reset_us, retry_us) = self
            .link
            .call(CALL_TIMEOUT, |mut c| async move {
                invocation.invoke_async::<(u8, u64, u64, u64)>(&mut c).await
            })
            .await?;
        let allowed = allowed == 1;
        Ok(Decision {
            allowed,
            limit: burst,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX).min(burst),
            reset_secs: reset_us.div_ceil(1_000_000),
            retry_after_secs: if allowed {
                0
            } else {
                retry_us.div_ceil(1_000_000).max(1)
            },
        })
    }

    /// The Redis key of a client.
    fn redis_key(&self, key: &ClientKey) -> String {
        let suffix = match key {
            ClientKey::User(digest) => format!("u{}", hex::encode(digest)),
            ClientKey::Ip(std::net::IpAddr::V4(v4)) => format!("v4{}", hex::encode(v4.octets())),
            ClientKey::Ip(std::net::IpAddr::V6(v6)) => format!("v6{}", hex::encode(v6.octets())),
            ClientKey::Unknown => "unknown".to_owned(),
            ClientKey::Overflow => "overflow".to_owned(),
        };
        format!("{}{suffix}", self.key_prefix)
    }
}
