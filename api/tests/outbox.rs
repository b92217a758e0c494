//! The outbox relay (`events::relay`) with the NDJSON `EventLog`: every
//! committed event is delivered, in commit order, exactly the committed
//! ids; a failing publisher loses nothing; a crash between publish and
//! acknowledgement only ever duplicates events under the same id.

use api::events::log::EventLog;
use api::events::relay::{drain_once, Relay};
use api::events::{Event, EventPublisher, EventType, PublishError};
use api::store::embedded::EmbeddedStore;
use api::store::{Store, Write};
use async_trait::async_trait;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn event(n: usize) -> Event {
    Event::new(EventType::WebhookReceived, None, json!({ "n": n }))
}

fn log_ids(dir: &Path) -> Vec<String> {
    EventLog::read_all(&dir.join(EventLog::FILE))
        .expect("read log")
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Waits until the log holds at least `n` events.
async fn wait_for_log(dir: &Path, n: usize) -> Vec<String> {
    for _ in 0..1500 {
        let ids = log_ids(dir);
        if ids.len() >= n {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("log has {} of {n} events", log_ids(dir).len());
}

/// Commits `count` events in batches of 1, 2, 3, ... events; returns
/// their ids in commit order.
async fn commit_events(store: &dyn Store, relay: Option<&Relay>, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut size = 1;
    while ids.len() < count {
        let batch: Vec<Event> = (ids.len()..(ids.len() + size).min(count))
            .map(event)
            .collect();
        ids.extend(batch.iter().map(|e| e.id.clone()));
        store
            .commit(batch.into_iter().map(Write::Emit).collect())
            .await
            .expect("commit");
        if let Some(relay) = relay {
            relay.notify();
        }
        size += 1;
    }
    ids
}

/// An event sink that refuses everything while `down`, then appends to
/// the real log: a publisher whose backend is unreachable for a while.
struct UnreliableLog {
    log: EventLog,
    down: AtomicBool,
    failures: AtomicUsize,
}

#[async_trait]
impl EventPublisher for UnreliableLog {
    async fn publish(&self, events: &[Arc<Event>]) -> Result<(), PublishError> {
        if self.down.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(PublishError::Unavailable("sink down".into()));
        }
        self.log.publish(events).await
    }
}

#[tokio::test]
async fn relay_delivers_exactly_the_committed_events_in_commit_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let log = Arc::new(EventLog::open(dir.path()).unwrap());
    let relay = Relay::start(store.clone(), log);

    // More than one relay batch (100), from many commits.
    let mut committed = commit_events(&*store, Some(&relay), 260).await;
    // A batch that fails commits nothing, so its event is never delivered.
    let user = {
        let now = api::events::now();
        api::store::User {
            user_id: "u1".into(),
            email: "a@example.com".into(),
            password_hash: api::secret::Secret::new("x"),
            first_name: None,
            last_name: None,
            phone: None,
            country: None,
            kyc_status: api::store::KycStatus::None,
            kyc_updated_at: now,
            mfa_secret: None,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    };
    let registered = event(1000);
    store
        .commit(vec![
            Write::CreateUser(user.clone()),
            Write::Emit(registered.clone()),
        ])
        .await
        .unwrap();
    committed.push(registered.id);
    let mut twin = user.clone();
    twin.user_id = "u2".into();
    let lost = event(1001);
    assert!(store
        .commit(vec![Write::CreateUser(twin), Write::Emit(lost.clone())])
        .await
        .is_err());
    committed.extend(commit_events(&*store, Some(&relay), 5).await);
    relay.notify();

    let delivered = wait_for_log(dir.path(), committed.len()).await;
    // Give a stray extra delivery the chance to show up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    relay.stop().await;
    assert_eq!(log_ids(dir.path()), delivered);
    assert_eq!(
        delivered, committed,
        "every committed id once, in commit order"
    );
    assert!(!delivered.contains(&lost.id));
    assert!(store.outbox_pending(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn failing_publisher_keeps_events_in_the_outbox_until_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let sink = Arc::new(UnreliableLog {
        log: EventLog::open(dir.path()).unwrap(),
        down: AtomicBool::new(true),
        failures: AtomicUsize::new(0),
    });
    let relay = Relay::start(store.clone(), sink.clone());
    let committed = commit_events(&*store, Some(&relay), 150).await;

    for _ in 0..1500 {
        if sink.failures.load(Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        sink.failures.load(Ordering::SeqCst) >= 3,
        "relay kept retrying"
    );
    let pending: Vec<String> = store
        .outbox_pending(1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.id.clone())
        .collect();
    assert_eq!(pending, committed, "nothing dropped while the sink is down");
    assert!(log_ids(dir.path()).is_empty());

    sink.down.store(false, Ordering::SeqCst);
    let delivered = wait_for_log(dir.path(), committed.len()).await;
    relay.stop().await;
    assert_eq!(delivered, committed);
    assert!(store.outbox_pending(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn crash_between_publish_and_ack_only_duplicates_with_the_same_ids() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path()).unwrap();
    let committed = {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let committed = commit_events(&store, None, 10).await;
        // The relay's first half of a drain: read and publish...
        let entries = store.outbox_pending(100).await.unwrap();
        let events: Vec<Event> = entries
            .into_iter()
            .map(|e| std::sync::Arc::unwrap_or_clone(e.event))
            .collect();
        log.publish(&crate::common::shared(&events)).await.unwrap();
        // ...and the process dies before `outbox_ack`.
        committed
    };
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(drain_once(&store, &log).await.unwrap(), 10, "re-published");
    assert_eq!(
        drain_once(&store, &log).await.unwrap(),
        0,
        "then acknowledged"
    );

    let delivered = log_ids(dir.path());
    assert_eq!(delivered.len(), 20);
    assert_eq!(delivered[..10], committed[..]);
    assert_eq!(delivered[10..], committed[..]);
    let mut first_seen = Vec::new();
    for id in delivered {
        if !first_seen.contains(&id) {
            first_seen.push(id);
        }
    }
    assert_eq!(
        first_seen, committed,
        "deduplicated by id: exactly the committed events"
    );
}
