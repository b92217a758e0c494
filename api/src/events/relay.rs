//! The outbox relay: moves committed events from the store's outbox to the
//! [`EventPublisher`], oldest first, at least once.
//!
//! Loop: read up to [`BATCH`] pending entries, publish them, acknowledge
//! them. A publish failure keeps the entries and retries with jittered
//! exponential backoff (the outbox is the buffer; nothing is dropped). A
//! crash between publish and acknowledgement re-publishes the batch (same
//! event ids). Delivery is prompt without anyone pairing a commit with a
//! wake-up: the application's store carries the relay's [`RelayWake`]
//! layer ([`Relay::waking`]), so every commit that emits an event wakes
//! the relay, which then lets [`GATHER`] pass so that one batch carries
//! the events of the commits of that time. A periodic poll
//! ([`RelayOptions::poll`]) covers writes that did not go through it
//! (another node's commits on a shared store).

use super::EventPublisher;
use crate::store::layered::{Emitted, LayeredStore, StoreLayer};
use crate::store::Store;
use rand::Rng as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// Entries per publish.
pub const BATCH: usize = 100;
/// Poll interval when nobody notifies.
pub const POLL: Duration = Duration::from_millis(500);
/// After a wake-up, how long the relay lets commits gather before it
/// reads the outbox: one publish (one event-log write and sync) and one
/// acknowledgement then carry the events of every commit of that time,
/// instead of one each (docs/BENCHMARKS.md, "Fewer store reads and
/// copies per order, and a relay that gathers"). A full batch is followed
/// at once.
pub const GATHER: Duration = Duration::from_millis(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Whether this node may relay now (see [`Relay::start_gated`]).
pub type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

/// How the relay runs.
#[derive(Clone)]
pub struct RelayOptions {
    /// Relay only while this says so (one node of several sharing a
    /// store: a [`crate::cluster::lease::Lease`]); `None`: always.
    pub gate: Option<Gate>,
    /// How often the outbox is read when nothing wakes the relay.
    pub poll: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            gate: None,
            poll: POLL,
        }
    }
}

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
        Self::start_with(store, publisher, RelayOptions { gate, poll: POLL })
    }

    /// Spawns the relay task with `options`.
    pub fn start_with(
        store: Arc<dyn Store>,
        publisher: Arc<dyn EventPublisher>,
        options: RelayOptions,
    ) -> Relay {
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, publisher, options, wake.clone(), stopped));
        Relay {
            wake,
            stop,
            task: parking_lot::Mutex::new(Some(task)),
        }
    }

    /// Wakes the relay: new events were committed. Commits through a
    /// store made by [`waking`](Self::waking) do this by themselves.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// `store` with this relay's [`RelayWake`] layer: each of its commits
    /// that emits an event wakes the relay.
    pub fn waking(&self, store: Arc<dyn Store>) -> LayeredStore {
        LayeredStore::new(
            store,
            RelayWake {
                wake: self.wake.clone(),
            },
        )
    }

    /// Drains what it can (one last pass, up to 5 s) and stops; returns
    /// once its task is gone, so it no longer holds the store. What a pass
    /// cut short did not publish stays in the outbox for the next start.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        self.wake.notify_one();
        let task = self.task.lock().take();
        if let Some(mut task) = task {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                tracing::warn!("outbox relay: its last pass took over 5 s at stop; aborted (the rest stays in the outbox)");
                task.abort();
                let _ = task.await;
            }
        }
    }
}

/// The [`StoreLayer`] that wakes the relay after a commit with events (a
/// wake-up before the relay waits is kept, never lost).
pub struct RelayWake {
    wake: Arc<Notify>,
}

impl StoreLayer for RelayWake {
    fn traces_commits(&self) -> bool {
        true
    }

    fn committed(&self, events: &[Emitted]) {
        if events.is_empty() {
            return;
        }
        self.wake.notify_one();
        for event in events {
            count_business_event(event);
        }
    }
}

/// Counter: domain events committed, by `type`, and by `status` for the
/// types whose status is a business outcome (deposits, withdrawals, KYC):
/// orders accepted and filled, deposits and withdrawals by state, KYC
/// decisions (docs/OPERATIONS.md, "Metrics"). Counted here, where every
/// committing store passes (each process's outbox relay layer), once per
/// committed event.
pub const DOMAIN_EVENTS_TOTAL: &str = "nax_domain_events_total";

fn count_business_event(event: &Emitted) {
    let with_status = matches!(
        event.event_type.as_str(),
        "deposit.state_changed" | "withdrawal.state_changed" | "kyc.status_changed"
    );
    // Our own statuses (a handful of words); anything else is bounded to
    // one label value rather than trusted.
    let status = match &event.status {
        Some(s)
            if with_status
                && s.len() <= 24
                && s.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') =>
        {
            s.to_ascii_lowercase()
        }
        Some(_) if with_status => "other".to_owned(),
        _ => String::new(),
    };
    metrics::counter!(
        DOMAIN_EVENTS_TOTAL,
        "type" => event.event_type.clone(),
        "status" => status
    )
    .increment(1);
}

async fn run(
    store: Arc<dyn Store>,
    publisher: Arc<dyn EventPublisher>,
    options: RelayOptions,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    let RelayOptions { gate, poll } = options;
    let mut backoff = BACKOFF_MIN;
    loop {
        let stopping = *stopped.borrow();
        if gate.as_ref().is_some_and(|may| !may()) {
            // Another node relays; check again at the next poll.
            if stopping {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
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
            _ = wake.notified() => {
                tokio::select! {
                    _ = tokio::time::sleep(GATHER) => {}
                    _ = stopped.changed() => {}
                }
            }
            _ = tokio::time::sleep(poll) => {}
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
    let (events, positions): (Vec<_>, Vec<_>) =
        entries.into_iter().map(|e| (e.event, e.position)).unzip();
    // One span per event, in the trace of the request that made it, open
    // for as long as the batch's publish takes.
    let spans: Vec<tracing::Span> = events
        .iter()
        .map(|e| {
            let span =
                tracing::info_span!(target: super::trace::TRACE_ONLY, "outbox.publish", event_type = %e.event_type, event_id = %e.id);
            super::trace::join(&span, e.traceparent.as_deref());
            span
        })
        .collect();
    let published = publisher.publish(&events).await;
    drop(spans);
    published?;
    store.outbox_ack(&positions).await?;
    metrics::counter!("nax_outbox_published_total").increment(positions.len() as u64);
    Ok(positions.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventType, PublishError};
    use crate::store::embedded::EmbeddedStore;
    use crate::store::Write;
    use async_trait::async_trait;
    use tokio::sync::mpsc;

    /// Hands every published event to the test.
    struct Channel(mpsc::UnboundedSender<Event>);

    #[async_trait]
    impl EventPublisher for Channel {
        async fn publish(&self, events: &[Arc<Event>]) -> Result<(), PublishError> {
            for e in events {
                let _ = self.0.send((**e).clone());
            }
            Ok(())
        }
    }

    /// A relay that would poll only once an hour: whatever reaches the
    /// publisher was woken by its commit.
    fn relay_without_poll(
        dir: &std::path::Path,
    ) -> (Relay, Arc<dyn Store>, mpsc::UnboundedReceiver<Event>) {
        let raw: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir).unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        let options = RelayOptions {
            gate: None,
            poll: Duration::from_secs(3600),
        };
        let relay = Relay::start_with(raw.clone(), Arc::new(Channel(tx)), options);
        let store: Arc<dyn Store> = Arc::new(relay.waking(raw));
        (relay, store, rx)
    }

    #[tokio::test]
    async fn a_commit_with_an_event_wakes_the_relay_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let (relay, store, mut published) = relay_without_poll(dir.path());
        for i in 0..3 {
            let event = Event::new(
                EventType::UserRegistered,
                Some("u"),
                serde_json::json!({ "i": i }),
            );
            store
                .commit(vec![Write::Emit(event.clone())])
                .await
                .unwrap();
            // Generous: only a missing wake-up (an hour's poll) fails this.
            let got = tokio::time::timeout(Duration::from_secs(30), published.recv())
                .await
                .expect("the commit woke the relay")
                .unwrap();
            assert_eq!(got.id, event.id);
        }
        relay.stop().await;
    }
}
