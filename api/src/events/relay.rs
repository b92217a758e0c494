//! The outbox relay: moves committed events from the store's outbox to the
//! [`EventPublisher`], oldest first, at least once.
//!
//! Loop: read up to [`BATCH`] pending entries, publish them, acknowledge
//! them. A publish failure keeps the entries and retries with jittered
//! exponential backoff (the outbox is the buffer; nothing is dropped). A
//! crash between publish and acknowledgement re-publishes the batch (same
//! event ids). Writers call [`Relay::notify`] after a commit with events so
//! delivery is prompt; a periodic poll covers anything else.

use super::EventPublisher;
use crate::store::Store;
use rand::Rng as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// Entries per publish.
pub const BATCH: usize = 100;
/// Poll interval when nobody notifies.
const POLL: Duration = Duration::from_millis(500);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Whether this node may relay now (see [`Relay::start_gated`]).
pub type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

/// Handle of the running relay task.
pub struct Relay {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Relay {
    /// Spawns the relay task.
    pub fn start(store: Arc<dyn Store>, publisher: Arc<dyn EventPublisher>) -> Relay {
        Self::start_gated(store, publisher, None)
    }

    /// Spawns the relay task, which relays only while `gate` says so (one
    /// node of several sharing a store: a [`crate::cluster::lease::Lease`]).
    pub fn start_gated(
        store: Arc<dyn Store>,
        publisher: Arc<dyn EventPublisher>,
        gate: Option<Gate>,
    ) -> Relay {
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, publisher, gate, wake.clone(), stopped));
        Relay {
            wake,
            stop,
            task: parking_lot::Mutex::new(Some(task)),
        }
    }

    /// Wakes the relay: new events were committed.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Drains what it can (one last pass) and stops.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        self.wake.notify_one();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    publisher: Arc<dyn EventPublisher>,
    gate: Option<Gate>,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let stopping = *stopped.borrow();
        if gate.as_ref().is_some_and(|may| !may()) {
            // Another node relays; check again at the next poll.
            if stopping {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        match drain_once(&*store, &*publisher).await {
            Ok(n) if n == BATCH => {
                backoff = BACKOFF_MIN;
                continue;
            }
            Ok(_) => backoff = BACKOFF_MIN,
            Err(e) => {
                metrics::counter!("nax_outbox_publish_failures_total").increment(1);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox relay: publish failed; events stay in the outbox");
                if stopping {
                    return;
                }
                let jitter = rand::thread_rng().gen_range(0.5..1.0);
                tokio::select! {
                    _ = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
                    _ = stopped.changed() => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        }
        if stopping {
            return;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Publishes and acknowledges one batch; returns how many entries it moved.
pub async fn drain_once(
    store: &dyn Store,
    publisher: &dyn EventPublisher,
) -> anyhow::Result<usize> {
    let entries = store.outbox_pending(BATCH).await?;
    if entries.is_empty() {
        return Ok(0);
    }
    let events: Vec<_> = entries.iter().map(|e| e.event.clone()).collect();
    publisher.publish(&events).await?;
    let positions: Vec<String> = entries.into_iter().map(|e| e.position).collect();
    store.outbox_ack(&positions).await?;
    metrics::counter!("nax_outbox_published_total").increment(positions.len() as u64);
    Ok(positions.len())
}
