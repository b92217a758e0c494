//! [`SessionCache`]: refresh-family state shared by every node through
//! Redis, so that verifying an access token costs one Redis `GET` instead
//! of a store read, and a session revoked on one node (logout, refresh
//! reuse) is refused on every node at its next request.
//!
//! The store stays the record (durable; refresh-token rotation is a
//! conditional write there). Redis holds, per family, either `live` (the
//! user and the family's expiry; kept [`LIVE_TTL`], written only where no
//! entry exists) or `revoked` (kept as long as an access token of the
//! family can live). A revocation writes the store first, then `revoked`
//! unconditionally, so a `live` entry written by a node that read the
//! store just before cannot hide it; at worst, when Redis refuses that
//! write, a `live` entry outlives the revocation by [`LIVE_TTL`].
//! When Redis is down every lookup is a miss and reads the store.
//!
//! It also remembers each user's last TOTP step, so a code used on one
//! node cannot sign in on another ([`SessionCache::claim_totp_step`]).

use super::link::{RedisLink, RedisUnavailable};
use crate::events::Timestamp;
use crate::store::RefreshFamily;
use inbound::JsonBounds;
use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How long a `live` entry is trusted before the store is read again.
pub const LIVE_TTL: Duration = Duration::from_secs(30);
/// Longest a token check waits for Redis before reading the store.
const CALL_TIMEOUT: Duration = Duration::from_millis(50);

/// What Redis knows of a family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CachedFamily {
    Live {
        user_id: String,
        expires_at: Timestamp,
    },
    Revoked,
}

/// Bounds of a cached entry, checked before it is parsed (see
/// docs/SECURITY.md, "Input bounds"): one flat object of three members.
const ENTRY_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 4096,
    max_depth: 1,
    max_elements: 8,
};

impl CachedFamily {
    /// Reads a cached entry; `None` when it is unreadable or over
    /// [`ENTRY_BOUNDS`] (the caller then reads the store).
    fn decode(value: &str) -> Option<CachedFamily> {
        ENTRY_BOUNDS.check(value.as_bytes()).ok()?;
        serde_json::from_str(value).ok()
    }
}

/// Family state in Redis (see the module doc).
pub struct SessionCache {
    link: Arc<RedisLink>,
    /// How long `revoked` is kept: the access-token lifetime plus a margin.
    revoked_ttl: Duration,
    totp_script: redis::Script,
}

/// How long a user's last TOTP step is remembered (codes are valid for a
/// minute and a half at most, with the allowed clock skew).
const TOTP_MEMORY: Duration = Duration::from_secs(300);

const TOTP_LUA: &str = r"
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

impl SessionCache {
    pub fn new(link: Arc<RedisLink>, access_token_ttl: Duration) -> Self {
        SessionCache {
            link,
            revoked_ttl: access_token_ttl + Duration::from_secs(60),
            totp_script: redis::Script::new(TOTP_LUA),
        }
    }

    fn key(&self, family_id: &str) -> String {
        self.link.key(&format!("nax:session:{family_id}"))
    }

    /// The cached state of `family_id`; `None` on a miss, an unreadable
    /// entry or Redis unavailable (the caller reads the store).
    pub async fn get(&self, family_id: &str) -> Option<CachedFamily> {
        let key = self.key(family_id);
        let got: Result<Option<String>, _> = self
            .link
            .call(CALL_TIMEOUT, |mut c| async move { c.get(key).await })
            .await;
        match got {
            Ok(value) => value.as_deref().and_then(CachedFamily::decode),
            Err(e) => {
                metrics::counter!("nax_session_cache_fallbacks_total").increment(1);
                tracing::debug!(error = %e, "session cache: reading the store instead");
                None
            }
        }
    }

    /// Caches a family read from the store as live, unless Redis already
    /// has an entry for it. Best effort.
    pub async fn put_live(&self, family: &RefreshFamily) {
        let value = CachedFamily::Live {
            user_id: family.user_id.clone(),
            expires_at: family.expires_at,
        };
        let Ok(value) = serde_json::to_string(&value) else {
            return;
        };
        let key = self.key(&family.family_id);
        let ttl_ms = LIVE_TTL.as_millis() as u64;
        let _ = self
            .link
            .call(CALL_TIMEOUT, |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await;
    }

    /// Records that `user_id` signed in with TOTP time step `step`, for
    /// every node; false if that step or a later one was used already
    /// (on any node). Errors when Redis cannot say.
    pub async fn claim_totp_step(
        &self,
        user_id: &str,
        step: u64,
    ) -> Result<bool, RedisUnavailable> {
        let mut invocation = self
            .totp_script
            .key(self.link.key(&format!("nax:totp:{user_id}")));
        invocation.arg(step).arg(TOTP_MEMORY.as_millis() as u64);
        let claimed: i64 = self
            .link
            .call(Duration::from_secs(1), |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        Ok(claimed == 1)
    }

    /// Records `family_id` as revoked for every node.
    pub async fn put_revoked(&self, family_id: &str) -> Result<(), RedisUnavailable> {
        let value = serde_json::to_string(&CachedFamily::Revoked).expect("serializable");
        let key = self.key(family_id);
        let ttl_ms = self.revoked_ttl.as_millis() as u64;
        self.link
            .call(Duration::from_secs(1), |mut c| async move {
                c.pset_ex::<_, _, ()>(key, value, ttl_ms).await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_over_the_bounds_are_not_read() {
        let live = CachedFamily::Live {
            user_id: "u1".into(),
            expires_at: crate::events::now(),
        };
        let text = serde_json::to_string(&live).unwrap();
        assert_eq!(CachedFamily::decode(&text), Some(live));
        assert_eq!(
            CachedFamily::decode(r#"{"state":"revoked"}"#),
            Some(CachedFamily::Revoked)
        );
        let deep = format!(
            r#"{{"state":"revoked","x":{}{}}}"#,
            "[".repeat(50),
            "]".repeat(50)
        );
        assert_eq!(CachedFamily::decode(&deep), None);
    }
}
