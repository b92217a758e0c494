//! The dead-man's switches of a node without Redis, kept in process and
//! written through to the store (see the module doc of [`super`]), so a
//! restart keeps an armed `cancel_after` and the orders of
//! cancel_on_disconnect connections.
//!
//! The store holds one `SyncCheckpoints` record (service `deadman`, type
//! `switches`) whose value is the JSON
//! `{"after": {user: deadline ms}, "tracked": {user: [order id, ...]}}`,
//! rewritten after every change of `after` or `tracked` (one store commit
//! per `cancel_after` refresh or new tracked order; attaching, detaching
//! and a sweep that claims nothing write nothing). A change is made on a
//! copy, saved, and kept only once saved: a caller told the store failed
//! changed nothing. A sweep is the exception: what it claimed is returned
//! (and fires) even when saving the claim fails, so a store hiccup cannot
//! swallow a due switch (the record may then fire it again after a
//! restart; cancelling twice is harmless). Connections are not stored: after a restart none is live, so
//! every user with tracked orders is checked [`GRACE`] after the start
//! (a client that reconnects with cancel_on_disconnect within it keeps
//! them). The record grows with the users holding a switch; a node
//! without Redis serves one deployment's worth of them, not millions.

use super::{Sweep, Switches, GRACE, LEASE_TTL, MAX_TRACKED};
use crate::events::now;
use crate::store::{Store, SyncCheckpoint, Write};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SERVICE: &str = "deadman";
const TYPE: &str = "switches";

/// What the store keeps.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Stored {
    after: BTreeMap<String, u64>,
    /// Per user, oldest first: past the bound the oldest is dropped.
    tracked: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default)]
struct State {
    stored: Stored,
    /// Live attached connections per user: connection → lease expiry ms.
    conns: HashMap<String, HashMap<String, u64>>,
    /// When to check a user's connections (ms).
    check: BTreeMap<String, u64>,
}

/// The switches in process, written through to the store.
pub struct LocalSwitches {
    store: Arc<dyn Store>,
    /// Held across the store write of a change, so writes go in the
    /// order of changes (and a change is kept only once saved).
    state: tokio::sync::Mutex<State>,
    /// Most orders tracked per user (the newest are kept).
    max_tracked: usize,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl LocalSwitches {
    /// Loads the switches the store holds; users with tracked orders are
    /// checked [`GRACE`] from now.
    pub async fn load(store: Arc<dyn Store>) -> anyhow::Result<Self> {
        Self::load_with(store, MAX_TRACKED).await
    }

    /// [`LocalSwitches::load`] keeping at most `max_tracked` (at least 1)
    /// orders per user.
    pub async fn load_with(store: Arc<dyn Store>, max_tracked: usize) -> anyhow::Result<Self> {
        let stored: Stored = match store.checkpoint(SERVICE, TYPE).await? {
            Some(record) => serde_json::from_str(&record.value)?,
            None => Stored::default(),
        };
        let at = now_ms() + GRACE.as_millis() as u64;
        let check = stored.tracked.keys().map(|u| (u.clone(), at)).collect();
        Ok(LocalSwitches {
            store,
            state: tokio::sync::Mutex::new(State {
                stored,
                conns: HashMap::new(),
                check,
            }),
            max_tracked: max_tracked.max(1),
        })
    }

    async fn save(&self, stored: &Stored) -> Result<(), String> {
        let value = serde_json::to_string(stored).map_err(|e| e.to_string())?;
        self.store
            .commit(vec![Write::PutCheckpoint(SyncCheckpoint {
                service_name: SERVICE.into(),
                sync_type: TYPE.into(),
                value,
                updated_at: now(),
            })])
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl Switches for LocalSwitches {
    async fn arm(&self, user: &str, timeout_ms: u64) -> Result<Option<u64>, String> {
        let mut state = self.state.lock().await;
        let at = (timeout_ms > 0).then(|| now_ms() + timeout_ms);
        if at.is_none() && !state.stored.after.contains_key(user) {
            return Ok(None);
        }
        let mut changed = state.stored.clone();
        match at {
            Some(at) => changed.after.insert(user.to_owned(), at),
            None => changed.after.remove(user),
        };
        self.save(&changed).await?;
        state.stored = changed;
        Ok(at.map(|ms| ms * 1_000))
    }

    async fn attach(&self, user: &str, conn: &str) -> Result<(), String> {
        let mut state = self.state.lock().await;
        let expiry = now_ms() + LEASE_TTL.as_millis() as u64;
        state
            .conns
            .entry(user.to_owned())
            .or_default()
            .insert(conn.to_owned(), expiry);
        Ok(())
    }

    async fn renew(&self, conns: &[(String, String)]) -> Result<(), String> {
        for (user, conn) in conns {
            self.attach(user, conn).await?;
        }
        Ok(())
    }

    async fn track(&self, user: &str, order_id: &str) -> Result<(), String> {
        let mut state = self.state.lock().await;
        if state
            .stored
            .tracked
            .get(user)
            .is_some_and(|ids| ids.iter().any(|id| id == order_id))
        {
            return Ok(());
        }
        let mut changed = state.stored.clone();
        let tracked = changed.tracked.entry(user.to_owned()).or_default();
        tracked.push(order_id.to_owned());
        let over = tracked.len().saturating_sub(self.max_tracked);
        tracked.drain(..over);
        self.save(&changed).await?;
        state.stored = changed;
        Ok(())
    }

    async fn detach(&self, user: &str, conn: &str) -> Result<(), String> {
        let mut state = self.state.lock().await;
        if let Some(conns) = state.conns.get_mut(user) {
            conns.remove(conn);
            if conns.is_empty() {
                state.conns.remove(user);
            }
        }
        let at = now_ms() + GRACE.as_millis() as u64;
        state.check.insert(user.to_owned(), at);
        Ok(())
    }

    async fn sweep(&self, limit: usize) -> Result<Sweep, String> {
        let mut state = self.state.lock().await;
        let now = now_ms();
        let after: Vec<String> = state
            .stored
            .after
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(u, _)| u.clone())
            .take(limit)
            .collect();
        for user in &after {
            state.stored.after.remove(user);
        }
        let due: Vec<String> = state
            .check
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(u, _)| u.clone())
            .take(limit)
            .collect();
        let mut disconnected = Vec::new();
        for user in due {
            state.check.remove(&user);
            // A connection of this process is live until detached (its
            // lease only matters across nodes).
            if state.conns.get(&user).is_some_and(|c| !c.is_empty()) {
                continue;
            }
            let orders = state.stored.tracked.remove(&user).unwrap_or_default();
            disconnected.push((user, orders));
        }
        let claimed_stored = !after.is_empty() || disconnected.iter().any(|(_, o)| !o.is_empty());
        if claimed_stored {
            // What is claimed fires whether or not the claim is saved.
            if let Err(e) = self.save(&state.stored).await {
                tracing::warn!(error = %e, "dead-man's switch: sweep not saved (fires anyway)");
            }
        }
        let next = state
            .stored
            .after
            .values()
            .chain(state.check.values())
            .min()
            .copied();
        Ok(Sweep {
            after,
            disconnected,
            next_in: next.map(|at| Duration::from_millis(at.saturating_sub(now))),
        })
    }

    fn sweep_every(&self) -> Option<Duration> {
        None
    }
}
