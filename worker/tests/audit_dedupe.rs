//! Exactly once in the archive: redelivered deliveries add nothing, and
//! a crash (or store outage) between the PUT and the confirmation is
//! rolled forward by `recover`.

use crate::common;

use api::queue::{Consumer, Delivery, Outcome};
use api::store::Store;
use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use worker::audit::{self, state, AuditArchive, AuditSettings, DirSink, Sink, SinkError};

fn settings() -> AuditSettings {
    AuditSettings {
        put_give_up: Duration::from_secs(1),
        ..AuditSettings::default()
    }
}

fn deliveries(events: &[api::events::Event], receives: u32) -> Vec<Delivery> {
    events
        .iter()
        .map(|e| Delivery {
            receives,
            ..delivery(e)
        })
        .collect()
}

fn events(n: usize, from: usize) -> Vec<api::events::Event> {
    let users = [Some("u1"), Some("u2"), None];
    (from..from + n).map(|i| event(users[i % 3], i)).collect()
}

async fn verify_all(sink: &dyn Sink) -> audit::Report {
    let report = audit::verify(
        sink,
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap(),
    )
    .await
    .unwrap();
    assert!(report.ok(), "{report}");
    report
}

fn all_done(outcomes: &[Outcome]) -> bool {
    outcomes.iter().all(|o| *o == Outcome::Done)
}

#[tokio::test]
async fn redelivered_deliveries_are_archived_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded(&dir.path().join("store"));
    let sink = Arc::new(DirSink::new(dir.path().join("objects")));
    let small_window = AuditSettings {
        dedupe_batches: 1,
        ..settings()
    };
    let archive = AuditArchive::new(store.clone(), sink.clone(), small_window.clone());
    archive.recover().await.unwrap();
    let first = events(10, 0);
    // A repeat inside the batch is dropped too.
    let mut batch = deliveries(&first, 1);
    batch.push(batch[3].clone());
    assert!(all_done(&archive.handle(&batch).await));
    assert_eq!(files(&dir.path().join("objects")).len(), 1);
    // The same batch again (the redelivery case): nothing new.
    assert!(all_done(&archive.handle(&deliveries(&first, 2)).await));
    assert_eq!(files(&dir.path().join("objects")).len(), 1);
    // Another batch, then the first again: out of the one-batch window,
    // still caught by the streams' recent ids.
    let second = events(6, 10);
    assert!(all_done(&archive.handle(&deliveries(&second, 1)).await));
    let mixed: Vec<_> = first
        .iter()
        .take(4)
        .chain(events(2, 16).iter())
        .cloned()
        .collect();
    assert!(all_done(&archive.handle(&deliveries(&mixed, 2)).await));
    assert_eq!(files(&dir.path().join("objects")).len(), 3);
    assert_eq!(verify_all(&*sink).await.records, 18);
    // After a restart, the last object's ids are known again.
    drop(archive);
    let archive = AuditArchive::new(store.clone(), sink.clone(), small_window);
    archive.recover().await.unwrap();
    let last: Vec<_> = mixed[4..].to_vec();
    assert!(all_done(&archive.handle(&deliveries(&last, 2)).await));
    assert_eq!(files(&dir.path().join("objects")).len(), 3);
    let head = state::read_head(&*store).await.unwrap();
    assert_eq!((head.batch, head.pending), (3, None));
    assert_eq!(state::read_stream(&*store, "u1").await.unwrap().seq, 6);
}

#[tokio::test]
async fn a_crash_between_put_and_confirm_is_rolled_forward_by_recover() {
    let dir = tempfile::tempdir().unwrap();
    let inner = embedded(&dir.path().join("store"));
    let sink = Arc::new(DirSink::new(dir.path().join("objects")));
    // Batch 1: commits 1 (pending) and 2 (confirm). Batch 2: commit 3
    // (pending), the PUT, then commit 4 (confirm) fails.
    let failing = FailingStore::new(inner.clone(), 4);
    let archive = AuditArchive::new(failing.clone(), sink.clone(), settings());
    archive.recover().await.unwrap();
    let first = events(9, 0);
    assert!(all_done(&archive.handle(&deliveries(&first, 1)).await));
    let second = events(9, 9);
    let outcomes = archive.handle(&deliveries(&second, 1)).await;
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Retry(_))),
        "{outcomes:?}"
    );
    assert_eq!(
        files(&dir.path().join("objects")).len(),
        2,
        "the object was put"
    );
    let head = state::read_head(&*inner).await.unwrap();
    assert_eq!(head.batch, 1);
    let pending = head.pending.clone().expect("batch 2 is pending");
    // The crash: the archiver is gone; a new one on the healed store.
    drop(archive);
    let archive = AuditArchive::new(inner.clone(), sink.clone(), settings());
    archive.recover().await.unwrap();
    let head = state::read_head(&*inner).await.unwrap();
    assert_eq!(
        (head.batch, head.key.as_str(), head.pending),
        (2, pending.as_str(), None)
    );
    assert_eq!(state::read_stream(&*inner, "u1").await.unwrap().seq, 6);
    // The redelivered batch adds nothing; the next one continues the chains.
    assert!(all_done(&archive.handle(&deliveries(&second, 2)).await));
    assert_eq!(files(&dir.path().join("objects")).len(), 2);
    assert!(all_done(
        &archive.handle(&deliveries(&events(3, 18), 1)).await
    ));
    assert_eq!(files(&dir.path().join("objects")).len(), 3);
    assert_eq!(verify_all(&*sink).await.records, 21);
}

#[tokio::test]
async fn a_store_outage_answers_retry_and_the_same_archiver_recovers_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let inner = embedded(&dir.path().join("store"));
    let sink = Arc::new(DirSink::new(dir.path().join("objects")));
    // The pending commit of the first batch fails: nothing written.
    let failing = FailingStore::new(inner.clone(), 1);
    let archive = AuditArchive::new(failing.clone(), sink.clone(), settings());
    archive.recover().await.unwrap();
    let first = events(6, 0);
    let outcomes = archive.handle(&deliveries(&first, 1)).await;
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Retry(_))));
    assert!(files(&dir.path().join("objects")).is_empty());
    // Healed: the retried batch goes through as batch 1 with seq 1.
    failing.heal();
    assert!(all_done(&archive.handle(&deliveries(&first, 2)).await));
    // The confirmation fails after the PUT; the same archiver settles it
    // on its next batch (a redelivery, then new events).
    let failing2 = FailingStore::new(inner.clone(), 2);
    let archive = AuditArchive::new(failing2.clone(), sink.clone(), settings());
    archive.recover().await.unwrap();
    let second = events(6, 6);
    let outcomes = archive.handle(&deliveries(&second, 1)).await;
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Retry(_))));
    failing2.heal();
    assert!(all_done(&archive.handle(&deliveries(&second, 2)).await));
    assert!(all_done(
        &archive.handle(&deliveries(&events(3, 12), 1)).await
    ));
    assert_eq!(files(&dir.path().join("objects")).len(), 3);
    let report = verify_all(&*sink).await;
    assert_eq!((report.objects, report.records), (3, 15));
}

/// A sink whose PUTs fail while `down`.
struct DownSink {
    inner: DirSink,
    down: AtomicBool,
}

#[async_trait]
impl Sink for DownSink {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SinkError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::Unavailable("test outage".to_owned()));
        }
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, SinkError> {
        self.inner.get(key, max).await
    }
    async fn list(&self, a: &str, b: &str, limit: usize) -> Result<Vec<String>, SinkError> {
        self.inner.list(a, b, limit).await
    }
}

#[tokio::test]
async fn a_pending_object_never_written_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = embedded(&dir.path().join("store"));
    let down = Arc::new(DownSink {
        inner: DirSink::new(dir.path().join("objects")),
        down: AtomicBool::new(true),
    });
    let archive = AuditArchive::new(store.clone(), down.clone(), settings());
    archive.recover().await.unwrap();
    let first = events(5, 0);
    let outcomes = archive.handle(&deliveries(&first, 1)).await;
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Retry(_))));
    assert!(state::read_head(&*store).await.unwrap().pending.is_some());
    drop(archive);
    down.down.store(false, Ordering::SeqCst);
    let archive = AuditArchive::new(store.clone(), down.clone(), settings());
    archive.recover().await.unwrap();
    let head = state::read_head(&*store).await.unwrap();
    assert_eq!((head.batch, head.pending), (0, None));
    assert!(all_done(&archive.handle(&deliveries(&first, 2)).await));
    let report = verify_all(&*down).await;
    assert_eq!((report.objects, report.records), (1, 5));
}
