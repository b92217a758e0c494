//! The dead-man's switch (docs/PROTOCOL.md "Order entry"): two ways for a
//! client to have the user's orders cancelled when it stops talking.
//!
//! - **cancel_after** (Kraken-style): [`DeadMan::cancel_after`] arms a
//!   deadline `timeout_ms` from now (re-arming moves it; 0 disarms). When
//!   it passes, every open order of the user is cancelled and the switch
//!   is disarmed.
//! - **cancel_on_disconnect**: a connection [`attach`](DeadMan::attach)es
//!   to the switch; the orders placed on it are
//!   [`tracked`](DeadMan::track). When the user's last attached connection
//!   is gone for [`GRACE`] (closed, killed, or its node dead: attached
//!   connections hold a lease of [`LEASE_TTL`] that their node renews
//!   every [`LEASE_TTL`]/3 while the socket lives), the tracked orders
//!   still open are cancelled.
//!
//! When a switch fires, the user's `orders` channel gets a notice listing
//! the cancelled order ids (through the private bus, so on every node) and
//! an `orders.auto_cancelled` audit event is committed. A firing that left
//! orders open (the venue or the store failing) tries again what it did
//! not cancel, [`FIRE_ATTEMPTS`] attempts in all, [`FIRE_BACKOFF`] apart
//! and doubling (1 s, 2 s, 4 s), with a notice and an audit event for each
//! attempt that cancelled something; after the last the orders stay open
//! (logged, `nax_deadman_gave_up_total`). At most
//! [`MAX_CONCURRENT_FIRINGS`] firings cancel at once on a node; the others
//! wait their turn.
//!
//! State lives where it survives the process: in Redis when `redis_url` is
//! set (shared by the nodes, [`shared`]), else in the store ([`local`]).
//! One task per node waits on a timer for the earliest deadline it knows
//! of; with Redis it also sweeps every [`SWEEP_EVERY`] for what other
//! nodes armed or left behind (one bounded script call). A due entry is
//! claimed atomically (removed as it is read), so exactly one node fires
//! it; a node that dies between the claim and the cancels (or between two
//! attempts) loses that one firing (the orders stay open).
//!
//! With Redis, a sweep follows a successful lease renewal: after a
//! renewal or a sweep failed (Redis unreachable, maybe for longer than
//! [`LEASE_TTL`]), this node renews its own connections' leases before it
//! sweeps again, so it never takes its own live connections for gone.

pub mod local;
pub mod shared;

use super::entry::{cancel_open, Scope};
use super::TradingState;
use crate::error::{ApiError, ApiResult};
use crate::events::{Event, EventType};
use crate::private::{Freshness, PrivateChannel};
use crate::store::Write;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Shortest non-zero `timeout_ms` of `cancel_after`.
pub const MIN_TIMEOUT_MS: u64 = 1_000;
/// Longest `timeout_ms` of `cancel_after` (24 h).
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// How long after the user's last attached connection went the tracked
/// orders are cancelled (a reconnect within it keeps them).
pub const GRACE: Duration = Duration::from_secs(2);
/// How long an attached connection counts as live without its node
/// renewing it (a killed node's connections expire after this).
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// With Redis, how often a node looks for due entries it has no timer for
/// (armed or left by other nodes).
pub const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// Most due entries one sweep claims.
const SWEEP_BATCH: usize = 100;
/// Most orders tracked per user for cancel_on_disconnect: past it, the
/// oldest tracked order is forgotten (the newest are protected).
pub const MAX_TRACKED: usize = 1_000;
/// Attempts of one firing that leaves orders open (see the module doc).
pub const FIRE_ATTEMPTS: u32 = 4;
/// Wait before the second attempt of a firing; doubles for each next one.
pub const FIRE_BACKOFF: Duration = Duration::from_secs(1);
/// Most firings cancelling at once on one node.
pub const MAX_CONCURRENT_FIRINGS: usize = 16;

/// Which switch fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    CancelAfter,
    CancelOnDisconnect,
}

impl Trigger {
    /// The name on the wire and in the audit event.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::CancelAfter => "cancel_after",
            Trigger::CancelOnDisconnect => "cancel_on_disconnect",
        }
    }
}

/// What one sweep claimed, and when the next entry is due.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Users whose `cancel_after` passed (now disarmed).
    pub after: Vec<String>,
    /// Users whose last attached connection is gone, with their tracked
    /// orders (now forgotten).
    pub disconnected: Vec<(String, Vec<String>)>,
    /// How long until the earliest remaining entry is due, if any.
    pub next_in: Option<Duration>,
}

/// Where the switches' state lives.
#[async_trait::async_trait]
pub trait Switches: Send + Sync {
    /// Arms `user`'s `cancel_after` to fire `timeout_ms` from now (0
    /// disarms); the trigger time, µs since the Unix epoch.
    async fn arm(&self, user: &str, timeout_ms: u64) -> Result<Option<u64>, String>;
    /// Records a live attached connection of `user`.
    async fn attach(&self, user: &str, conn: &str) -> Result<(), String>;
    /// Renews the leases of these live connections (user, conn).
    async fn renew(&self, conns: &[(String, String)]) -> Result<(), String>;
    /// Tracks an order placed on an attached connection of `user` (an
    /// order already tracked changes nothing); past the bound the oldest
    /// tracked order of the user is forgotten.
    async fn track(&self, user: &str, order_id: &str) -> Result<(), String>;
    /// Records that an attached connection of `user` is gone.
    async fn detach(&self, user: &str, conn: &str) -> Result<(), String>;
    /// Claims what is due now (see [`Sweep`]). What it claimed is
    /// returned even when recording the claim fails (logged): it must
    /// fire.
    async fn sweep(&self, limit: usize) -> Result<Sweep, String>;
    /// How often to sweep without a timer (state other nodes change);
    /// `None` for state only this process changes (then leases are not
    /// renewed either: a live connection is live until detached).
    fn sweep_every(&self) -> Option<Duration>;
}

/// A connection attached to cancel_on_disconnect; hand it back to
/// [`DeadMan::detach`] when the connection ends.
#[derive(Debug)]
pub struct Attached {
    pub user_id: String,
    conn: String,
}

/// The switches of this node (see the module doc).
pub struct DeadMan {
    switches: Arc<dyn Switches>,
    trading: TradingState,
    /// Wakes the timer task when a deadline may have moved earlier.
    wake: Notify,
    /// Attached connections of this node, whose leases it renews.
    live: parking_lot::Mutex<std::collections::HashSet<(String, String)>>,
    /// The last lease renewal failed: renew before the next sweep.
    renew_failed: AtomicBool,
    /// Bounds the firings cancelling at once.
    firing: Semaphore,
}

impl DeadMan {
    pub fn new(switches: Arc<dyn Switches>, trading: TradingState) -> Arc<DeadMan> {
        Arc::new(DeadMan {
            switches,
            trading,
            wake: Notify::new(),
            live: Default::default(),
            renew_failed: AtomicBool::new(false),
            firing: Semaphore::new(MAX_CONCURRENT_FIRINGS),
        })
    }

    /// Arms (or with 0 disarms) `user_id`'s cancel_after; the trigger time
    /// (µs since the Unix epoch), `None` when disarmed. `timeout_ms` must
    /// be 0 or within [`MIN_TIMEOUT_MS`]..=[`MAX_TIMEOUT_MS`] (the caller
    /// checks; out of range is refused here too).
    pub async fn cancel_after(&self, user_id: &str, timeout_ms: u64) -> ApiResult<Option<u64>> {
        if timeout_ms != 0 && !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(ApiError::invalid_field(
                "timeout_ms",
                "0 or 1000..=86400000",
            ));
        }
        let at = self
            .switches
            .arm(user_id, timeout_ms)
            .await
            .map_err(unreachable_state)?;
        self.wake.notify_one();
        Ok(at)
    }

    /// Attaches a live connection of `user_id` to cancel_on_disconnect.
    pub async fn attach(&self, user_id: &str) -> ApiResult<Attached> {
        let conn = uuid::Uuid::new_v4().simple().to_string();
        self.switches
            .attach(user_id, &conn)
            .await
            .map_err(unreachable_state)?;
        self.live.lock().insert((user_id.to_owned(), conn.clone()));
        Ok(Attached {
            user_id: user_id.to_owned(),
            conn,
        })
    }

    /// Tracks `order_id`, placed on the attached connection `on`. When `on`
    /// was detached meanwhile (the connection went away while the order
    /// was being placed), the user's connections are checked again
    /// [`GRACE`] from now, so the order is not left out of a check that
    /// already happened.
    pub async fn track(&self, on: &Attached, order_id: &str) -> ApiResult<()> {
        self.switches
            .track(&on.user_id, order_id)
            .await
            .map_err(unreachable_state)?;
        let gone = !self
            .live
            .lock()
            .contains(&(on.user_id.clone(), on.conn.clone()));
        if gone {
            self.detach(on).await;
        }
        Ok(())
    }

    /// The attached connection ended (however it ended).
    pub async fn detach(&self, on: &Attached) {
        self.live
            .lock()
            .remove(&(on.user_id.clone(), on.conn.clone()));
        if let Err(e) = self.switches.detach(&on.user_id, &on.conn).await {
            // The lease then expires by itself.
            tracing::warn!(error = %e, "dead-man's switch: detach not recorded");
        }
        self.wake.notify_one();
    }

    /// Runs the timer (and, with Redis, the sweep and the lease renewal)
    /// until aborted.
    pub async fn run(self: Arc<Self>) {
        // Leases matter only where other processes look at them (Redis).
        let _abort_renew = self
            .switches
            .sweep_every()
            .map(|_| AbortOnDrop(tokio::spawn(self.clone().renew_leases())));
        loop {
            // After a failure, this node's leases may have lapsed: renew
            // them before a sweep could take its live connections for gone.
            if self.switches.sweep_every().is_some()
                && self.renew_failed.load(Ordering::Acquire)
                && !self.renew_now().await
            {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = self.wake.notified() => {}
                }
                continue;
            }
            let next_in = match self.switches.sweep(SWEEP_BATCH).await {
                Ok(sweep) => {
                    let full = sweep.after.len() + sweep.disconnected.len() >= SWEEP_BATCH;
                    for user in sweep.after {
                        tokio::spawn(self.clone().fire(user, Trigger::CancelAfter, None));
                    }
                    // A connection that placed nothing leaves nothing to
                    // cancel and nothing to say.
                    for (user, orders) in sweep.disconnected {
                        if orders.is_empty() {
                            continue;
                        }
                        tokio::spawn(self.clone().fire(
                            user,
                            Trigger::CancelOnDisconnect,
                            Some(orders),
                        ));
                    }
                    if full {
                        Some(Duration::ZERO)
                    } else {
                        sweep.next_in
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dead-man's switch: sweep failed");
                    self.renew_failed.store(true, Ordering::Release);
                    Some(Duration::from_secs(1))
                }
            };
            let wait = match (next_in, self.switches.sweep_every()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match wait {
                Some(wait) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    /// Renews this node's attached connections every [`LEASE_TTL`]/3.
    async fn renew_leases(self: Arc<Self>) {
        loop {
            tokio::time::sleep(LEASE_TTL / 3).await;
            self.renew_now().await;
        }
    }

    /// Renews this node's attached connections now; whether that worked
    /// (remembered for the next sweep).
    async fn renew_now(&self) -> bool {
        let live: Vec<_> = self.live.lock().iter().cloned().collect();
        let ok = match live.is_empty() {
            true => true,
            false => match self.switches.renew(&live).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "dead-man's switch: lease renewal failed");
                    false
                }
            },
        };
        self.renew_failed.store(!ok, Ordering::Release);
        ok
    }

    /// Cancels what `trigger` covers, tells the user, commits the audit
    /// event; tries again what it left open (see the module doc).
    async fn fire(self: Arc<Self>, user: String, trigger: Trigger, orders: Option<Vec<String>>) {
        metrics::counter!("nax_deadman_fired_total", "trigger" => trigger.as_str()).increment(1);
        let mut scope = match orders {
            Some(ids) => Scope::Only(ids),
            None => Scope::All { pair: None },
        };
        let mut backoff = FIRE_BACKOFF;
        for attempt in 1..=FIRE_ATTEMPTS {
            let outcome = {
                let _turn = self
                    .firing
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                cancel_open(&self.trading, &user, &scope).await
            };
            let (cancelled, failure) = match outcome {
                Ok(done) => (
                    done.order_ids,
                    done.failed.map(|(code, m)| format!("{code}: {m}")),
                ),
                Err(e) => (Vec::new(), Some(format!("{}: {}", e.code, e.message))),
            };
            // The first attempt always tells the user the switch fired;
            // a retry only when it cancelled something.
            if attempt == 1 || !cancelled.is_empty() {
                self.notify(&user, trigger, &cancelled).await;
            }
            let Some(failure) = failure else {
                return;
            };
            if attempt == FIRE_ATTEMPTS {
                metrics::counter!("nax_deadman_gave_up_total", "trigger" => trigger.as_str())
                    .increment(1);
                tracing::warn!(%failure, attempt, trigger = trigger.as_str(),
                    "dead-man's switch: orders left open, giving up");
                return;
            }
            tracing::warn!(%failure, attempt, trigger = trigger.as_str(),
                "dead-man's switch: orders left open, trying again");
            if let Scope::Only(ids) = &mut scope {
                ids.retain(|id| !cancelled.contains(id));
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }

    /// The user's notice on `orders` and the audit event of one firing
    /// attempt.
    async fn notify(&self, user: &str, trigger: Trigger, order_ids: &[String]) {
        let notice = json!({
            "trigger": trigger.as_str(),
            "order_ids": order_ids,
        });
        let event = Event::new(EventType::OrdersAutoCancelled, Some(user), notice.clone());
        let event_id = event.id.clone();
        if let Err(e) = self.trading.store.commit(vec![Write::Emit(event)]).await {
            tracing::warn!(error = %e, "dead-man's switch: audit event not committed");
        }
        self.trading
            .private
            .publish(
                user,
                PrivateChannel::Orders,
                Freshness::AutoCancelled { id: event_id },
                notice,
            )
            .await;
    }
}

/// The error of a switch whose state cannot be read or written.
fn unreachable_state(e: String) -> ApiError {
    tracing::warn!(error = %e, "dead-man's switch state unreachable");
    ApiError::unavailable(
        "store_unavailable",
        "the dead-man's switch state is unreachable",
        1,
    )
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
