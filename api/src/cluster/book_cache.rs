//! [`BookCache`]: the exchange design's `market:{pair}:orderbook` keys, a
//! JSON snapshot of each pair's book (the `GET /markets/{pair}/orderbook`
//! body) kept for [`TTL`], for services that read books from Redis
//! instead of a hub. Hubs write it (every node the same content: the seq
//! numbers come from the upstream); a pair whose feed stops being
//! refreshed disappears after [`TTL`], so a reader never sees an older
//! book than that.

use super::link::{RedisLink, RedisUnavailable};
use redis::AsyncCommands as _;
use std::sync::Arc;
use std::time::Duration;

/// How long a snapshot lives (exchange design: 5 s).
pub const TTL: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_millis(250);

/// Writes and reads `market:{pair}:orderbook`.
pub struct BookCache {
    link: Arc<RedisLink>,
}

impl BookCache {
    pub fn new(link: Arc<RedisLink>) -> Self {
        BookCache { link }
    }

    /// The key of `pair`'s snapshot (after the link's prefix).
    pub fn key(&self, pair: &str) -> String {
        self.link.key(&format!("market:{pair}:orderbook"))
    }

    /// Stores `body` as `pair`'s snapshot for [`TTL`].
    pub async fn put(&self, pair: &str, body: String) -> Result<(), RedisUnavailable> {
        let key = self.key(pair);
        let ttl_ms = TTL.as_millis() as u64;
        self.link
            .call(CALL_TIMEOUT, |mut c| async move {
                c.pset_ex::<_, _, ()>(key, body, ttl_ms).await
            })
            .await
    }

    /// `pair`'s snapshot, if one is cached.
    pub async fn get(&self, pair: &str) -> Result<Option<String>, RedisUnavailable> {
        let key = self.key(pair);
        self.link
            .call(CALL_TIMEOUT, |mut c| async move { c.get(key).await })
            .await
    }
}
