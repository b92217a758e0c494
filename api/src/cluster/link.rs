//! [`RedisLink`]: the one Redis connection of a node, made lazily.
//!
//! A node starts while Redis is down: the first call starts connecting in
//! the background and fails at once ([`RedisUnavailable::NotConnected`]);
//! later calls use the connection when it is made. The
//! [`ConnectionManager`] is multiplexed and reconnects by itself after
//! Redis restarts. Every caller bounds its calls with a timeout and has a
//! fallback. After a call fails or times out, calls fail at once for
//! [`FAIL_FAST`] (one probe per window), so a Redis that is down costs
//! one timeout per window, not one per call: requests and the order sync
//! keep their pace on the fallbacks. A caller with no fallback (the
//! dead-man's switches, the idempotency claim's first moments) uses
//! [`RedisLink::call_within`], which waits a window out instead.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Least time between two attempts to make the first connection.
const CONNECT_RETRY: Duration = Duration::from_secs(1);
/// How long calls fail at once after one failed.
pub const FAIL_FAST: Duration = Duration::from_millis(500);

/// Why Redis gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisUnavailable {
    #[error("invalid redis url: {0}")]
    Url(#[source] redis::RedisError),
    #[error("not connected to redis yet")]
    NotConnected,
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis call failed: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis failed a moment ago; not trying again yet")]
    Resting,
}

/// A node's link to Redis: the URL, the key prefix every user of the link
/// puts before its keys, and the shared connection.
pub struct RedisLink {
    client: redis::Client,
    prefix: String,
    connection: Arc<parking_lot::Mutex<Connection>>,
    /// Whether calls fail at once (after a failure) or wait for a probe.
    rest: parking_lot::Mutex<Rest>,
}

/// Where the link is after its last answered call.
#[derive(Clone, Copy)]
enum Rest {
    /// The last call was answered: calls go.
    Ready,
    /// A call failed: calls fail at once until then.
    Failed { until: Instant },
    /// The first call after a failure's window is out (the probe): other
    /// calls fail at once until it answers, or until its timeout.
    Probing { until: Instant },
}

/// How long a [`RedisLink::call_within`] caller waits between looks at a
/// probe in flight.
const PROBE_POLL: Duration = Duration::from_millis(5);

/// The connection, or when the next attempt to make it is due.
enum Connection {
    Ready(ConnectionManager),
    Connecting,
    Idle { next_attempt: Instant },
}

impl RedisLink {
    /// Parses `url` (`redis://[:password@]host:port[/db]`, or `rediss://`
    /// for TLS, verified against the system's roots); connects on
    /// first use. `prefix` goes before every key and channel name
    /// (deployments sharing a Redis, and tests, keep apart with it).
    pub fn new(url: &str, prefix: &str) -> Result<Self, RedisUnavailable> {
        if url.starts_with("rediss://") {
            // rustls is built with two crypto back ends here (the AWS SDK
            // brings aws-lc-rs, others ring) and then needs the process to
            // pick one; the first pick stays (an error means one was).
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        Ok(RedisLink {
            client: redis::Client::open(url).map_err(RedisUnavailable::Url)?,
            prefix: prefix.to_owned(),
            connection: Arc::new(parking_lot::Mutex::new(Connection::Idle {
                next_attempt: Instant::now(),
            })),
            rest: parking_lot::Mutex::new(Rest::Ready),
        })
    }

    /// `name` with the link's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The client, for connections of their own (pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The connection when it is made; else starts making it in the
    /// background (at most once per [`CONNECT_RETRY`]) and says so.
    pub fn connection(&self) -> Result<ConnectionManager, RedisUnavailable> {
        let mut state = self.connection.lock();
        match &*state {
            Connection::Ready(manager) => return Ok(manager.clone()),
            Connection::Connecting => return Err(RedisUnavailable::NotConnected),
            Connection::Idle { next_attempt } if Instant::now() < *next_attempt => {
                return Err(RedisUnavailable::NotConnected)
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
                    // Callers log their fallback (rate-limited).
                    tracing::debug!(error = %e, "cannot connect to redis yet");
                    Connection::Idle {
                        next_attempt: Instant::now() + CONNECT_RETRY,
                    }
                }
            };
        });
        Err(RedisUnavailable::NotConnected)
    }

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

    /// Runs `call` on the connection within `timeout`; fails at once
    /// while resting after a failure (see the module doc).
    pub async fn call<T, F, Fut>(&self, timeout: Duration, call: F) -> Result<T, RedisUnavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if self.enter(timeout).is_err() {
            return Err(RedisUnavailable::Resting);
        }
        self.run(timeout, call).await
    }

    /// [`Self::call`] for a caller with no fallback: while the link rests
    /// after a failure, waits for the window's end, and while the window's
    /// probe is out, for its answer (looking every [`PROBE_POLL`]), then
    /// makes the call; [`RedisUnavailable::Resting`] when the window ends
    /// after `patience`, or the probe has not answered by then.
    pub async fn call_within<T, F, Fut>(
        &self,
        timeout: Duration,
        patience: Duration,
        call: F,
    ) -> Result<T, RedisUnavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let deadline = Instant::now() + patience;
        loop {
            let wake = match self.enter(timeout) {
                Ok(()) => return self.run(timeout, call).await,
                Err(Rest::Failed { until }) if until <= deadline => until,
                Err(Rest::Probing { .. }) if Instant::now() < deadline => {
                    deadline.min(Instant::now() + PROBE_POLL)
                }
                Err(_) => return Err(RedisUnavailable::Resting),
            };
            tokio::time::sleep_until(wake.into()).await;
        }
    }

    /// Whether a call may go now: `Err` with the [`Rest`] that stops it.
    /// The first call after a failure's window (or after a probe that
    /// outlived its timeout) is the probe.
    fn enter(&self, timeout: Duration) -> Result<(), Rest> {
        let mut rest = self.rest.lock();
        let now = Instant::now();
        match *rest {
            Rest::Ready => Ok(()),
            Rest::Failed { until } | Rest::Probing { until } if now < until => Err(*rest),
            Rest::Failed { .. } | Rest::Probing { .. } => {
                *rest = Rest::Probing {
                    until: now + timeout,
                };
                Ok(())
            }
        }
    }

    /// Makes a call [`Self::enter`] let through and sets the next window.
    async fn run<T, F, Fut>(&self, timeout: Duration, call: F) -> Result<T, RedisUnavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection()?;
        let result = tokio::time::timeout(timeout, call(connection))
            .await
            .map_err(|_| RedisUnavailable::Timeout(timeout))
            .and_then(|r| r.map_err(RedisUnavailable::from));
        let failed = match &result {
            Ok(_) => false,
            // A command error (wrong type, script error) is an answer.
            Err(RedisUnavailable::Redis(e)) => {
                e.is_io_error() || e.is_connection_dropped() || e.is_timeout()
            }
            Err(_) => true,
        };
        *self.rest.lock() = if failed {
            Rest::Failed {
                until: Instant::now() + FAIL_FAST,
            }
        } else {
            Rest::Ready
        };
        result
    }
}
