//! [`Claims`]: one request at a time per idempotency key, on this node and
//! across the nodes sharing a Redis.
//!
//! A request that moves money or places an order checks its idempotency
//! key, calls the venue, then commits the key with its result. The store
//! refuses a second record of one key, but that comes after the venue
//! call: two requests with one key on two nodes would both reach the
//! venue (two orders, one unrecorded; or two debits, one credited back).
//! Holding the key's claim from the check to the commit makes the second
//! request wait and then find the first one's record.
//!
//! - On this node: an async mutex per claimed key (forgotten when nobody
//!   holds or waits for it, so memory stays bounded).
//! - Across nodes: `SET nax:claim:<sha256(scope, user, key)> <token> NX PX
//!   30000`, polled every few milliseconds while another holds it, for at
//!   most [`WAIT`]; released by a compare-and-delete script when the
//!   request ends. A holder that dies frees the key within [`TTL`].
//! - A claim still held by another after [`WAIT`] is [`ClaimBusy`]
//!   (callers answer 409: the key is in use by another request).
//! - Redis down (or not configured): the node's own mutex only, logged and
//!   counted (`nax_claim_redis_fallbacks_total`); the store's condition
//!   still keeps one record per key. A link resting after another
//!   caller's failure is asked again for up to 1 s first.
//!
//! Guarantee: while Redis answers, two requests holding the claim of one
//! key never overlap unless one of them took longer than [`TTL`] (the
//! venue call is bounded by the upstream timeout, far below it).

use super::link::RedisLink;
use dashmap::DashMap;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a claim lives in Redis without its holder releasing it.
pub const TTL: Duration = Duration::from_secs(30);
/// Longest a request waits for another's claim of its key.
pub const WAIT: Duration = Duration::from_secs(35);
/// Timeout of one Redis call.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a claim keeps asking a resting link (one that failed a
/// moment ago) before it falls back to this node's lock.
const FALLBACK_AFTER: Duration = Duration::from_secs(1);
/// Pause between two attempts while another node holds the claim.
const POLL: Duration = Duration::from_millis(10);

const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Another request kept the key's claim for all of [`WAIT`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the idempotency key is in use by another request")]
pub struct ClaimBusy;

/// The claims of one node (see the module doc).
pub struct Claims {
    redis: Option<Arc<RedisLink>>,
    local: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    release: redis::Script,
    redis_fallbacks: AtomicU64,
}

/// A held claim; released when dropped.
pub struct Claim<'a> {
    claims: &'a Claims,
    name: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The Redis key and this holder's token, when Redis granted it.
    shared: Option<(String, String)>,
}

impl Claims {
    /// Claims on this node, shared through `redis` when given.
    pub fn new(redis: Option<Arc<RedisLink>>) -> Self {
        Claims {
            redis,
            local: DashMap::new(),
            release: redis::Script::new(RELEASE_LUA),
            redis_fallbacks: AtomicU64::new(0),
        }
    }

    /// Claims `key` of `user` in `scope` (`order`, `withdraw`, ...),
    /// waiting up to [`WAIT`] for another request holding it.
    pub async fn claim(&self, scope: &str, user: &str, key: &str) -> Result<Claim<'_>, ClaimBusy> {
        let name = claim_name(scope, user, key);
        let deadline = tokio::time::Instant::now() + WAIT;
        let lock = self.local.entry(name.clone()).or_default().clone();
        let guard = tokio::time::timeout_at(deadline, lock.clone().lock_owned())
            .await
            .map_err(|_| ClaimBusy)?;
        let mut claim = Claim {
            claims: self,
            name,
            lock,
            guard: Some(guard),
            shared: None,
        };
        if let Some(link) = &self.redis {
            claim.shared = self.claim_shared(link, &claim.name, deadline).await?;
        }
        Ok(claim)
    }

    /// Takes the Redis claim `name`: its key and token, `None` when Redis
    /// cannot say (the node's own lock then stands alone).
    async fn claim_shared(
        &self,
        link: &RedisLink,
        name: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Option<(String, String)>, ClaimBusy> {
        let key = link.key(&format!("nax:claim:{name}"));
        let token = uuid::Uuid::new_v4().simple().to_string();
        let patience = tokio::time::Instant::now() + FALLBACK_AFTER;
        loop {
            let (k, t) = (key.clone(), token.clone());
            // While the link rests after another caller's failure (a slow
            // moment, say), wait for it rather than give up the shared
            // claim at once, until `patience`.
            let wait = patience.saturating_duration_since(tokio::time::Instant::now());
            let set = link
                .call_within(CALL_TIMEOUT, wait, |mut c| async move {
                    redis::cmd("SET")
                        .arg(k)
                        .arg(t)
                        .arg("NX")
                        .arg("PX")
                        .arg(TTL.as_millis() as u64)
                        .query_async::<Option<String>>(&mut c)
                        .await
                })
                .await;
            match set {
                Ok(Some(_)) => return Ok(Some((key, token))),
                Ok(None) => {}
                Err(e) => {
                    metrics::counter!("nax_claim_redis_fallbacks_total").increment(1);
                    self.redis_fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "idempotency claim: redis unavailable; this node's lock only");
                    return Ok(None);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClaimBusy);
            }
            let jitter = Duration::from_millis(u64::from(rand::random::<u8>() % 10));
            tokio::time::sleep(POLL + jitter).await;
        }
    }

    /// Claims taken without Redis because it failed, since start.
    pub fn redis_fallbacks(&self) -> u64 {
        self.redis_fallbacks.load(Ordering::Relaxed)
    }

    /// Keys with a local mutex (held or awaited).
    pub fn tracked(&self) -> usize {
        self.local.len()
    }
}

/// The claim's name: a digest, so client-chosen keys of any shape make
/// fixed-size Redis keys.
fn claim_name(scope: &str, user: &str, key: &str) -> String {
    let mut hash = Sha256::new();
    for part in [scope, user, key] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let (Some((key, token)), Some(link)) = (self.shared.take(), self.claims.redis.clone()) {
            let script = self.claims.release.clone();
            // Released in the background: the next holder polls for it,
            // and the TTL frees it should this call fail.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let released = link
                        .call(CALL_TIMEOUT, |mut c| async move {
                            script
                                .key(key)
                                .arg(token)
                                .invoke_async::<i64>(&mut c)
                                .await
                        })
                        .await;
                    if let Err(e) = released {
                        tracing::debug!(error = %e, "idempotency claim: release failed; expires by its TTL");
                    }
                });
            }
        }
        self.guard.take();
        // References: the map's and `self.lock` (the guard is gone);
        // waiters clone under the map's shard lock, which `remove_if` holds.
        self.claims.local.remove_if(&self.name, |_, l| {
            Arc::ptr_eq(l, &self.lock) && Arc::strong_count(l) <= 2
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_held_by_one_request_at_a_time_on_a_node() {
        let claims = Arc::new(Claims::new(None));
        let first = claims.claim("order", "u", "k").await.expect("free");
        let waiter = {
            let claims = claims.clone();
            tokio::spawn(async move {
                let _second = claims
                    .claim("order", "u", "k")
                    .await
                    .expect("after release");
            })
        };
        // Another key, user or scope is independent.
        drop(claims.claim("order", "u", "k2").await.expect("free"));
        drop(claims.claim("withdraw", "u", "k").await.expect("free"));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits for the holder");
        drop(first);
        waiter.await.expect("the waiter gets the claim");
        assert_eq!(claims.tracked(), 0, "nothing left behind");
    }

    #[test]
    fn names_separate_their_parts() {
        assert_ne!(claim_name("a", "bc", "d"), claim_name("ab", "c", "d"));
        assert_eq!(claim_name("a", "b", "c").len(), 64);
    }
}
