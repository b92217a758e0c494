//! The Redis side of [`RateLimiter`](super::RateLimiter): one GCRA state
//! per client in Redis, updated by one Lua script (`gcra.lua`) so that
//! every node sharing the Redis enforces one budget per client.
//!
//! The script reads Redis' `TIME`, so nodes with skewed clocks still
//! agree. Keys are `{prefix}{client-key-hex}` (prefix `nax:rl:` in
//! production) and expire when the client's allowance is full again, so
//! Redis holds only clients that spent part of theirs.
//!
//! Calls go through a [`ConnectionManager`] (multiplexed, reconnects by
//! itself) and are bounded by [`CALL_TIMEOUT`]; the caller falls back to
//! the in-process decision when a call fails. The first connection is made
//! lazily in the background, so a node starts while Redis is down.

use super::{ClientKey, Decision};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a request waits for Redis before it is decided in process.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(50);
/// Least time between two attempts to make the first connection.
const CONNECT_RETRY: Duration = Duration::from_secs(1);

const GCRA_LUA: &str = include_str!("gcra.lua");

/// Why Redis gave no decision.
#[derive(Debug, thiserror::Error)]
pub enum SharedLimitError {
    #[error("invalid redis url: {0}")]
    Url(#[source] redis::RedisError),
    #[error("not connected to redis yet")]
    NotConnected,
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis call failed: {0}")]
    Redis(#[from] redis::RedisError),
}

/// A GCRA state shared through one Redis.
pub struct SharedLimits {
    client: redis::Client,
    key_prefix: String,
    script: redis::Script,
    connection: Arc<parking_lot::Mutex<Connection>>,
}

/// The connection, or when the next attempt to make it is due.
enum Connection {
    Ready(ConnectionManager),
    Connecting,
    Idle { next_attempt: Instant },
}

impl SharedLimits {
    /// Parses `redis_url`; no connection is made until the first check.
    pub fn new(redis_url: &str, key_prefix: &str) -> Result<Self, SharedLimitError> {
        let client = redis::Client::open(redis_url).map_err(SharedLimitError::Url)?;
        Ok(SharedLimits {
            client,
            key_prefix: key_prefix.to_owned(),
            script: redis::Script::new(GCRA_LUA),
            connection: Arc::new(parking_lot::Mutex::new(Connection::Idle {
                next_attempt: Instant::now(),
            })),
        })
    }

    /// Counts one request of `key` in Redis (EVALSHA, EVAL when the
    /// script is not cached), within [`CALL_TIMEOUT`].
    pub async fn check(
        &self,
        key: &ClientKey,
        interval_ns: u64,
        burst: u32,
    ) -> Result<Decision, SharedLimitError> {
        let mut connection = self.connection()?;
        let interval_us = (interval_ns / 1_000).max(1);
        let mut invocation = self.script.key(self.redis_key(key));
        invocation.arg(interval_us).arg(burst);
        let call = invocation.invoke_async::<(u8, u64, u64, u64)>(&mut connection);
        let (allowed, remaining, reset_us, retry_us) = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| SharedLimitError::Timeout(CALL_TIMEOUT))??;
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

    /// The connection when it is made; else starts making it in the
    /// background (at most once per [`CONNECT_RETRY`]) and says so.
    fn connection(&self) -> Result<ConnectionManager, SharedLimitError> {
        let mut state = self.connection.lock();
        match &*state {
            Connection::Ready(manager) => return Ok(manager.clone()),
            Connection::Connecting => return Err(SharedLimitError::NotConnected),
            Connection::Idle { next_attempt } if Instant::now() < *next_attempt => {
                return Err(SharedLimitError::NotConnected)
            }
            Connection::Idle { .. } => {}
        }
        *state = Connection::Connecting;
        let client = self.client.clone();
        let slot = self.connection.clone();
        tokio::spawn(async move {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Duration::from_millis(250))
                .set_number_of_retries(2)
                .set_max_delay(500);
            let made = ConnectionManager::new_with_config(client, config).await;
            *slot.lock() = match made {
                Ok(manager) => Connection::Ready(manager),
                Err(e) => {
                    // Logged (rate-limited) by the caller's fallback warning.
                    tracing::debug!(error = %e, "rate limiter: cannot connect to redis yet");
                    Connection::Idle {
                        next_attempt: Instant::now() + CONNECT_RETRY,
                    }
                }
            };
        });
        Err(SharedLimitError::NotConnected)
    }
}

impl SharedLimits {
    /// Starts connecting when not connected and waits up to `within` for
    /// the connection; true when connected.
    pub async fn connect(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.connection().is_ok() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
