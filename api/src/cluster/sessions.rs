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

use super::link::{RedisLink, RedisUnavailable};
use crate::events::Timestamp;
use crate::store::RefreshFamily;
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

/// Family state in Redis (see the module doc).
pub struct SessionCache {
    link: Arc<RedisLink>,
    /// How long `revoked` is kept: the access-token lifetime plus a margin.
    revoked_ttl: Duration,
}

impl SessionCache {
    pub fn new(link: Arc<RedisLink>, access_token_ttl: Duration) -> Self {
        SessionCache {
            link,
            revoked_ttl: access_token_ttl + Duration::from_secs(60),
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
            Ok(value) => value.and_then(|v| serde_json::from_str(&v).ok()),
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
