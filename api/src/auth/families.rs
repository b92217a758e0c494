//! [`LocalFamilies`]: refresh-family state cached in process, for a node
//! that is the only one (the embedded store, no Redis), so that verifying
//! an access token does not read the store on every request
//! (docs/ARCHITECTURE.md, "Sessions"). With Redis the shared
//! [`crate::cluster::sessions::SessionCache`] does this for every node.
//!
//! The store stays the record. Only live families are cached, each for
//! [`LIVE_TTL`] at most. A revocation (logout, refresh reuse) is written
//! to the store first, then removes the family here and counts one more
//! revocation; a store read that began before that revocation does not
//! cache what it read ([`LocalFamilies::ticket`]), so a family read live
//! just before its revocation cannot be cached live after it.

use crate::cluster::sessions::LIVE_TTL;
use crate::events::Timestamp;
use crate::store::RefreshFamily;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Instant;

/// Families cached at most; past it expired entries are dropped, and if
/// none had expired the cache starts empty again (the store answers).
pub const MAX_FAMILIES: usize = 100_000;

/// A live family as cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFamily {
    pub user_id: String,
    pub expires_at: Timestamp,
}

/// Taken before a store read; the read's result is cached only if no
/// revocation happened since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

#[derive(Default)]
pub struct LocalFamilies {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    live: HashMap<String, (LiveFamily, Instant)>,
    revocations: u64,
}

impl LocalFamilies {
    /// `family_id` if cached live and not older than [`LIVE_TTL`].
    pub fn get(&self, family_id: &str) -> Option<LiveFamily> {
        let inner = self.inner.lock();
        let (family, until) = inner.live.get(family_id)?;
        (*until > Instant::now()).then(|| family.clone())
    }

    /// To take before reading a family from the store.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.inner.lock().revocations)
    }

    /// Caches `family`, read live from the store after `ticket` was taken,
    /// unless a revocation happened since.
    pub fn put_live(&self, family: &RefreshFamily, ticket: Ticket) {
        let mut inner = self.inner.lock();
        if inner.revocations != ticket.0 {
            return;
        }
        let now = Instant::now();
        if inner.live.len() >= MAX_FAMILIES {
            inner.live.retain(|_, (_, until)| *until > now);
            if inner.live.len() >= MAX_FAMILIES {
                inner.live.clear();
            }
        }
        let live = LiveFamily {
            user_id: family.user_id.clone(),
            expires_at: family.expires_at,
        };
        inner
            .live
            .insert(family.family_id.clone(), (live, now + LIVE_TTL));
    }

    /// `family_id` was revoked in the store (or may have been): it is no
    /// longer cached, and no read begun before now caches it.
    pub fn revoked(&self, family_id: &str) {
        let mut inner = self.inner.lock();
        inner.revocations += 1;
        inner.live.remove(family_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(id: &str) -> RefreshFamily {
        RefreshFamily {
            family_id: id.into(),
            user_id: format!("user-of-{id}"),
            current_hash: "h".into(),
            generation: 1,
            expires_at: crate::events::now(),
            revoked: false,
            version: 1,
        }
    }

    #[test]
    fn a_family_read_live_is_cached_until_revoked() {
        let cache = LocalFamilies::default();
        assert_eq!(cache.get("f1"), None);
        let ticket = cache.ticket();
        cache.put_live(&family("f1"), ticket);
        assert_eq!(cache.get("f1").unwrap().user_id, "user-of-f1");
        cache.revoked("f1");
        assert_eq!(cache.get("f1"), None);
    }

    #[test]
    fn a_read_begun_before_a_revocation_is_not_cached() {
        let cache = LocalFamilies::default();
        let ticket = cache.ticket();
        // The family is revoked while this read is on its way.
        cache.revoked("f1");
        cache.put_live(&family("f1"), ticket);
        assert_eq!(cache.get("f1"), None);
        // A read begun after it caches again.
        cache.put_live(&family("f2"), cache.ticket());
        assert!(cache.get("f2").is_some());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let cache = LocalFamilies::default();
        for i in 0..MAX_FAMILIES + 10 {
            cache.put_live(&family(&i.to_string()), cache.ticket());
            assert!(cache.inner.lock().live.len() <= MAX_FAMILIES);
        }
        assert!(cache.get(&(MAX_FAMILIES + 9).to_string()).is_some());
    }
}
