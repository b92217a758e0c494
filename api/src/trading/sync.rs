//! The order sync: the venue's user events, applied in the venue's order
//! for each user. A user's events go to one of [`LANES`] tasks (by a hash
//! of the user id), each applying its events one after the other; the
//! lanes run side by side, so a user's wait for an order's commit (below)
//! holds only its lane, and the lanes' commits share the store's group
//! commit instead of each paying its own sync (docs/BENCHMARKS.md,
//! "Orders: reads without hand-offs").
//!
//! - an order report updates its `order` transaction when it is newer
//!   ([`model::supersedes`]), with `order.cancelled` when it became
//!   cancelled; then the user's `orders` channel gets the stored order;
//! - a fill becomes a `fill` transaction with an `order.filled` event;
//! - a balance change goes to the user's `balances` channel.
//!
//! An order's first reports can arrive before `POST /orders` has committed
//! the order: the sync waits for the commit (up to [`WAIT_FOR_ORDER`]), so
//! the `orders` channel never shows a state older than the store's.
//! `POST /orders` says when it committed ([`super::committed`]); an order
//! placed on another node is read again at growing intervals
//! ([`RECHECK_MIN`] to [`RECHECK_MAX`]).
//!
//! While the store is unavailable (a DynamoDB outage) the sync tries the
//! same event again, backing off up to [`STORE_RETRY_MAX`], and holds the
//! events after it (`nax_order_sync_store_retries_total`): an outage
//! delays the sync, in the venue's order, instead of losing what the venue
//! reported meanwhile (a fill, a cancel of an acknowledged order). Every
//! write is conditional, so applying an event again is harmless. Other
//! failures are logged and the event skipped, and so is an event whose
//! application panics: its lane goes on ([`run_lane`]). The events held are counted
//! in [`super::backlog`], whose limit pauses new orders until the sync
//! has caught up: that, not a drop, is what bounds them.

use super::backlog::Backlog;
use super::model::{self, fill_transaction, order_view, OrderDetail};
use super::TradingState;
use crate::error::ApiError;
use crate::events::{Event, EventType};
use crate::private::{Freshness, PrivateChannel};
use crate::store::{Conflict, Detail, StoreError, Transaction, Write};
use feeds::venue::{Balance, OrderReport, UserEvent};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest wait for `POST /orders` to commit an order the venue reports.
const WAIT_FOR_ORDER: Duration = Duration::from_secs(2);
/// First and longest pause between reads of an order committed by
/// another node (this node's commits wake the sync at once).
const RECHECK_MIN: Duration = Duration::from_millis(20);
const RECHECK_MAX: Duration = Duration::from_millis(200);
/// First and longest pause before trying an event again while the store
/// is unavailable.
const STORE_RETRY_MIN: Duration = Duration::from_millis(100);
const STORE_RETRY_MAX: Duration = Duration::from_secs(2);

/// Lanes of the sync: a user's events stay in order on one.
const LANES: usize = 16;

/// Subscribes to the venue's user events and spawns the sync: the task
/// that hands each event to its user's lane, then one task per lane.
/// Returns them all, in that order, so that stopping the API can abort
/// each and wait until it is gone (and with it its hold on the store):
/// the dispatcher first, so that it never finds a lane gone and reports
/// a panic that was a stop.
pub async fn start(state: TradingState) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut events = state.venue.user_events().await?;
    let scales: Arc<HashMap<String, u8>> = Arc::new(
        state
            .venue
            .assets()
            .into_iter()
            .map(|a| (a.symbol, a.scale))
            .collect(),
    );
    let mut lane_tasks = Vec::with_capacity(LANES);
    let lanes: Vec<_> = (0..LANES)
        .map(|_| {
            let (lane, mut queued) = mpsc::unbounded_channel::<UserEvent>();
            let (state, scales) = (state.clone(), scales.clone());
            lane_tasks.push(tokio::spawn(async move {
                let backlog = &state.trading.backlog;
                run_lane(&mut queued, backlog, |event| apply(&state, &scales, event)).await;
            }));
            lane
        })
        .collect();
    let trading = state.trading.clone();
    // When the venue's stream ends, the lanes are dropped with this task:
    // each applies what it holds, then ends.
    let dispatcher = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            trading.backlog.received();
            // A lane outlives its events' panics (`run_lane`); it is gone
            // only if its task was aborted, which a stop does after this
            // task.
            if lanes[lane_of(user_of(&event))].send(event).is_err() {
                trading.backlog.applied();
                tracing::error!(
                    "order sync: a lane has stopped; its users' venue events are not applied until a restart"
                );
            }
        }
    });
    Ok(std::iter::once(dispatcher).chain(lane_tasks).collect())
}

/// One lane: applies its events one after the other and counts each
/// one out of the backlog. An event whose `apply` panics (a bug) is
/// logged, counted (`nax_order_sync_panics_total`) and skipped, like an
/// event that fails; the lane goes on with the next one, so one such
/// event does not stop the sync of every user of the lane.
async fn run_lane<F, Fut>(
    queued: &mut mpsc::UnboundedReceiver<UserEvent>,
    backlog: &Backlog,
    mut apply: F,
) where
    F: FnMut(Arc<UserEvent>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures_util::FutureExt as _;
    while let Some(event) = queued.recv().await {
        // Shared, so that the log line of a panic can still name it.
        let event = Arc::new(event);
        if std::panic::AssertUnwindSafe(apply(event.clone()))
            .catch_unwind()
            .await
            .is_err()
        {
            metrics::counter!("nax_order_sync_panics_total").increment(1);
            tracing::error!(event = %describe(&event), "order sync: applying a venue event panicked; the event was skipped");
        }
        backlog.applied();
    }
}

/// What an event is, for a log line: its kind, user and order.
fn describe(event: &UserEvent) -> String {
    match event {
        UserEvent::Order(r) => format!(
            "order report of {} for {}",
            r.user,
            r.client_id
                .as_deref()
                .unwrap_or("an order with no client id")
        ),
        UserEvent::Fill(f) => format!("fill of {} for {}", f.user, f.order_id),
        UserEvent::Balance { user, .. } => format!("balance of {user}"),
    }
}

/// The user an event is about.
fn user_of(event: &UserEvent) -> &str {
    match event {
        UserEvent::Order(report) => &report.user,
        UserEvent::Fill(fill) => &fill.user,
        UserEvent::Balance { user, .. } => user,
    }
}

/// The lane of `user`'s events.
fn lane_of(user: &str) -> usize {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::hash::DefaultHasher::new();
    user.hash(&mut hasher);
    (hasher.finish() % LANES as u64) as usize
}

/// Applies one venue event, trying it again while the store is
/// unavailable (see the module doc).
async fn apply(state: &TradingState, scales: &HashMap<String, u8>, event: Arc<UserEvent>) {
    let mut pause = STORE_RETRY_MIN;
    loop {
        match handle(state, scales, &event).await {
            Ok(()) => return,
            Err(e) if is_store_outage(&e) => {
                metrics::counter!("nax_order_sync_store_retries_total").increment(1);
                if pause == STORE_RETRY_MIN {
                    tracing::warn!(error = %e,
                        "order sync: the store is unavailable; holding the venue's events until it is back");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(STORE_RETRY_MAX);
            }
            Err(e) => {
                tracing::warn!(error = %e, "order sync: event not applied");
                return;
            }
        }
    }
}

/// Whether `e` says the store could not be reached (the event may apply
/// once it can).
fn is_store_outage(e: &ApiError) -> bool {
    e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE && e.code == "store_unavailable"
}

async fn handle(
    state: &TradingState,
    scales: &HashMap<String, u8>,
    event: &UserEvent,
) -> Result<(), ApiError> {
    match event {
        UserEvent::Order(report) => {
            let Some(order_id) = report.client_id.clone() else {
                return Ok(());
            };
            // Registered before the first read, so a commit between the
            // read and the wait is not missed.
            let commit = state.trading.commits.wait_for(&order_id);
            let deadline = tokio::time::Instant::now() + WAIT_FOR_ORDER;
            let mut recheck = RECHECK_MIN;
            loop {
                if let Some(tx) = apply_report(state, &report.user, &order_id, report).await? {
                    publish_order(state, &tx).await;
                    return Ok(());
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    tracing::warn!(
                        order_id,
                        "order sync: the venue reports an order the store never recorded"
                    );
                    return Ok(());
                }
                // Woken by this node's commit; an order another node
                // placed (its commit is not said here) is read again now
                // and then.
                let _ = tokio::time::timeout(recheck.min(deadline - now), commit.next()).await;
                recheck = (recheck * 2).min(RECHECK_MAX);
            }
        }
        UserEvent::Fill(fill) => {
            let spec = state.trading.spec(&fill.pair)?;
            let order_id = fill
                .client_id
                .clone()
                .unwrap_or_else(|| fill.order_id.clone());
            let tx = fill_transaction(spec, &fill.user, &order_id, fill);
            let event = Event::new(
                EventType::OrderFilled,
                Some(&fill.user),
                json!({ "fill": tx.detail, "order_id": order_id }),
            );
            match state
                .store
                .commit(vec![Write::CreateTransaction(tx), Write::Emit(event)])
                .await
            {
                Ok(()) => {}
                // Another node (every node syncs) recorded it first.
                Err(StoreError::Conflict(Conflict::AlreadyExists(_))) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(())
        }
        UserEvent::Balance {
            user,
            asset,
            balance,
            venue_ts,
        } => {
            if !state.private.listened(user) {
                return Ok(());
            }
            let scale = scales.get(asset).copied().unwrap_or(8);
            let freshness = Freshness::Balance {
                asset: asset.clone(),
                venue_ts: *venue_ts,
            };
            state
                .private
                .publish(
                    user,
                    PrivateChannel::Balances,
                    freshness,
                    balance_json(asset, scale, *balance),
                )
                .await;
            Ok(())
        }
    }
}

/// `{asset, available, locked, total}` at the asset's scale.
pub fn balance_json(asset: &str, scale: u8, b: Balance) -> serde_json::Value {
    let f = |raw| orderbook::decimal::format_scaled(raw, scale);
    json!({ "asset": asset, "available": f(b.available), "locked": f(b.locked), "total": f(b.total()) })
}

/// Publishes the stored order (its version names the change, so nodes
/// publishing the same stored state put it on the backplane once).
async fn publish_order(state: &TradingState, tx: &Transaction) {
    if !state.private.listened(&tx.user_id) {
        return;
    }
    match order_view(tx) {
        Ok(view) => match serde_json::to_value(view) {
            Ok(v) => {
                let freshness = Freshness::Order {
                    order_id: tx.transaction_id.clone(),
                    version: tx.version,
                };
                state
                    .private
                    .publish(&tx.user_id, PrivateChannel::Orders, freshness, v)
                    .await
            }
            Err(e) => tracing::error!(error = %e, "order view not serializable"),
        },
        Err(e) => tracing::error!(error = %e, "stored order not decodable"),
    }
}

/// Brings the stored order up to `report` if the report is newer; returns
/// the stored order afterwards, or `None` when the store has no such order.
/// Safe against concurrent writers (version check, re-read, retry).
pub async fn apply_report(
    state: &TradingState,
    user_id: &str,
    order_id: &str,
    report: &OrderReport,
) -> Result<Option<Transaction>, ApiError> {
    let spec = state.trading.spec(&report.pair)?;
    update_order(state, user_id, order_id, |tx, old| {
        let new = OrderDetail::from_report(spec, &old.client_order_id, report);
        let status = model::status_str(report.status, report.filled_qty.0);
        model::supersedes(&new, status, old, &tx.status).then_some((status, new))
    })
    .await
}

/// Records an order the venue no longer knows as cancelled (with its
/// `order.cancelled` event), unless it is already final.
pub async fn mark_cancelled(
    state: &TradingState,
    tx: Transaction,
) -> Result<Transaction, ApiError> {
    let updated = update_order(state, &tx.user_id, &tx.transaction_id, |tx, old| {
        (!model::is_final(&tx.status)).then(|| ("cancelled", old.clone()))
    })
    .await?
    .ok_or_else(|| ApiError::internal("order vanished"))?;
    if updated.version != tx.version {
        publish_order(state, &updated).await;
    }
    Ok(updated)
}

/// Moves a stored order to the (status, detail) `next` gives for it
/// (`None`: no change), with `order.cancelled` when it became cancelled;
/// re-reads and retries when a concurrent writer won. Returns the stored
/// order afterwards, or `None` when the store has no such order.
async fn update_order(
    state: &TradingState,
    user_id: &str,
    order_id: &str,
    next: impl Fn(&Transaction, &OrderDetail) -> Option<(&'static str, OrderDetail)>,
) -> Result<Option<Transaction>, ApiError> {
    for _ in 0..8 {
        let Some(tx) = state.store.transaction(user_id, order_id).await? else {
            return Ok(None);
        };
        let old: OrderDetail = tx.detail.decode().map_err(ApiError::internal)?;
        let Some((status, detail)) = next(&tx, &old) else {
            return Ok(Some(tx));
        };
        let (version, was_cancelled) = (tx.version, tx.status == "cancelled");
        let mut updated = tx;
        updated.status = status.to_owned();
        updated.updated_at = crate::events::now();
        updated.version = version + 1;
        updated.detail = Detail::new(&detail).map_err(ApiError::internal)?;
        let mut writes = vec![Write::UpdateTransaction {
            tx: updated.clone(),
            expected_version: version,
        }];
        if status == "cancelled" && !was_cancelled {
            let view = order_view(&updated).map_err(ApiError::internal)?;
            writes.push(Write::Emit(Event::new(
                EventType::OrderCancelled,
                Some(user_id),
                json!({ "order": view }),
            )));
        }
        match state.store.commit(writes).await {
            Ok(()) => return Ok(Some(updated)),
            Err(StoreError::Conflict(Conflict::VersionMismatch(_))) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal("order update lost too many races"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// One user's events always take the same lane (their order holds),
    /// and many users spread over the lanes (they run side by side).
    #[test]
    fn a_users_events_share_a_lane_and_users_spread_over_lanes() {
        let users: Vec<String> = (0..64).map(|i| format!("user-{i}")).collect();
        for user in &users {
            assert_eq!(lane_of(user), lane_of(&user.clone()));
            assert!(lane_of(user) < LANES);
        }
        let used: HashSet<usize> = users.iter().map(|u| lane_of(u)).collect();
        assert!(used.len() >= LANES / 2, "64 users on {} lanes", used.len());
    }

    fn balance_of(user: &str) -> UserEvent {
        UserEvent::Balance {
            user: user.to_owned(),
            asset: "USD".to_owned(),
            balance: Balance {
                available: 1,
                locked: 0,
            },
            venue_ts: 0,
        }
    }

    /// An event whose application panics is skipped: the lane applies
    /// the events after it, in order, and counts every event out of the
    /// backlog.
    #[tokio::test]
    async fn a_lane_goes_on_after_an_event_panics() {
        let backlog = Backlog::new(100);
        let (lane, mut queued) = mpsc::unbounded_channel();
        for user in ["a", "panics", "b", "c"] {
            backlog.received();
            lane.send(balance_of(user)).unwrap();
        }
        drop(lane);
        let applied = std::sync::Mutex::new(Vec::new());
        run_lane(&mut queued, &backlog, |event| {
            let user = user_of(&event).to_owned();
            let applied = &applied;
            async move {
                assert_ne!(user, "panics", "the event that panics");
                applied.lock().unwrap().push(user);
            }
        })
        .await;
        assert_eq!(*applied.lock().unwrap(), ["a", "b", "c"]);
        assert_eq!(backlog.held(), 0);
    }
}
