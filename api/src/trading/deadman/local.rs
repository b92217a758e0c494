//! The dead-man's switches of a node without Redis, kept in process and
//! written through to the store (see the module doc of [`super`]), so a
//! restart keeps an armed `cancel_after` and the orders of
//! cancel_on_disconnect connections.
//!
//! The store holds one `SyncCheckpoints` record (service `deadman`, type
//! `switches`) whose value is the JSON
//! `{"after": {user: deadline ms}, "tracked": {user: [order id, ...]}}`,
//! rewritten after every change (one store commit per `cancel_after`
//! refresh). Connections are not stored: after a restart none is live, so
//! every user with tracked orders is checked [`GRACE`] after the start
//! (a client that reconnects with cancel_on_disconnect within it keeps
//! them). The record grows with the users holding a switch; a node
//! without Redis serves one deployment's worth of them, not millions.

use super::{Sweep, Switches, GRACE, LEASE_TTL, MAX_TRACKED};
use crate::events::now;
use crate::store::{Store, SyncCheckpoint, Write};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SERVICE: &str = "deadman";
const TYPE: &str = "switches";

/// What the store keeps.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Stored {
    after: BTreeMap<String, u64>,
    tracked: BTreeMap<String, BTreeSet<String>>,
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
    /// Held across the store write, so writes go in the order of changes.
    state: tokio::sync::Mutex<State>,
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
        })
    }

    async fn save(&self, state: &State) -> Result<(), String> {
        let value = serde_json::to_string(&state.stored).map_err(|e| e.to_string())?;
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
        match at {
            Some(at) => state.stored.after.insert(user.to_owned(), at),
            None => state.stored.after.remove(user),
        };
        self.save(&state).await?;
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
        let tracked = state.stored.tracked.entry(user.to_owned()).or_default();
        if tracked.len() < MAX_TRACKED {
            tracked.insert(order_id.to_owned());
        }
        self.save(&state).await
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
            disconnected.push((user, orders.into_iter().collect()));
        }
        if !after.is_empty() || !disconnected.is_empty() {
            self.save(&state).await?;
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
