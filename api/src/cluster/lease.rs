//! [`Lease`]: one node at a time does a job (the outbox relay on a store
//! several nodes share), by holding a Redis key with its node id that it
//! renews every [`TTL`]/3. When the holder stops renewing, another node
//! takes over within [`TTL`].
//!
//! Redis down: every node considers itself the holder. The job (the
//! relay) is at least once and keyed by event id, so two nodes doing it
//! at once costs duplicates, never a loss; a job nobody did would.

use super::link::RedisLink;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a lease lasts without renewal.
pub const TTL: Duration = Duration::from_secs(6);
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

const ACQUIRE_LUA: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// A named lease (see the module doc).
pub struct Lease {
    link: Arc<RedisLink>,
    key: String,
    node: String,
    script: redis::Script,
    held: AtomicBool,
}

impl Lease {
    /// The lease `name` for this node (not held until [`run`](Self::run)
    /// acquires it).
    pub fn new(link: Arc<RedisLink>, name: &str) -> Arc<Lease> {
        Arc::new(Lease {
            key: link.key(&format!("nax:lease:{name}")),
            link,
            node: uuid::Uuid::new_v4().to_string(),
            script: redis::Script::new(ACQUIRE_LUA),
            held: AtomicBool::new(false),
        })
    }

    /// Whether this node may do the job now.
    pub fn held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// Acquires or renews once; true when this node holds the lease (or
    /// Redis cannot say).
    pub async fn renew(&self) -> bool {
        let mut invocation = self.script.key(&self.key);
        invocation.arg(&self.node).arg(TTL.as_millis() as u64);
        let held = match self
            .link
            .call(CALL_TIMEOUT, |mut c| async move {
                invocation.invoke_async::<i64>(&mut c).await
            })
            .await
        {
            Ok(n) => n == 1,
            Err(e) => {
                tracing::debug!(error = %e, key = self.key, "lease: redis unavailable; acting as holder");
                true
            }
        };
        if held != self.held.swap(held, Ordering::Relaxed) {
            tracing::info!(key = self.key, held, "lease changed hands");
        }
        held
    }

    /// Keeps renewing until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.renew().await;
            tokio::time::sleep(TTL / 3).await;
        }
    }
}
