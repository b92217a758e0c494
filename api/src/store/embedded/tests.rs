//! The store through its `Store` interface: inline reads, a crash image
//! replayed from the log, and scans that merge the overlay and the file.

use super::*;
use crate::events::{now, EventType};
use crate::secret::Secret;
use std::time::Duration;

fn user(id: &str, padding: usize) -> User {
    User {
        user_id: id.to_owned(),
        email: format!("{id}@example.com"),
        password_hash: Secret::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        first_name: Some("x".repeat(padding)),
        last_name: None,
        phone: None,
        country: None,
        kyc_status: KycStatus::None,
        kyc_updated_at: now(),
        mfa_secret: None,
        mfa_enabled: false,
        created_at: now(),
        updated_at: now(),
        version: 1,
    }
}

/// Waits until a checkpoint after this call has moved the overlay into
/// the file.
async fn checkpointed(store: &EmbeddedStore) {
    let shared = store.shared();
    let before = shared.checkpoints.load(Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while shared.checkpoints.load(Ordering::SeqCst) <= before || !shared.overlay.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Point reads run on the calling task while the file is within the
/// bound and go to the blocking pool once a checkpoint takes it past,
/// with the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_reads_leave_the_task_once_the_file_outgrows_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let bound = 8 << 20;
    let store = EmbeddedStore::open_with(dir.path(), bound, Duration::from_millis(20)).unwrap();
    let inline = || store.shared().inline_reads.load(Ordering::Relaxed);
    let size = || {
        std::fs::metadata(dir.path().join(EmbeddedStore::FILE))
            .unwrap()
            .len()
    };
    assert!(inline(), "a fresh store of {} bytes reads inline", size());
    store
        .commit(vec![Write::CreateUser(user("small", 10))])
        .await
        .unwrap();
    assert!(inline());
    assert!(store.user("small").await.unwrap().is_some());
    // Users of 32 KiB until the file is past the bound.
    let mut commits = 0;
    while size() <= bound {
        assert!(inline(), "{} bytes, within the bound", size());
        assert!(commits < 200, "the file stays at {} bytes", size());
        let users = (0..16)
            .map(|j| Write::CreateUser(user(&format!("big-{commits}-{j}"), 32 << 10)))
            .collect();
        store.commit(users).await.unwrap();
        checkpointed(&store).await;
        commits += 1;
    }
    assert!(!inline(), "{} bytes, past the bound", size());
    assert_eq!(
        store.user("small").await.unwrap().unwrap().first_name,
        Some("x".repeat(10))
    );
    assert!(store
        .user(&format!("big-{}-3", commits - 1))
        .await
        .unwrap()
        .is_some());
    assert!(store.user("nobody").await.unwrap().is_none());
}

/// A copy of the data directory taken while the store runs, with writes
/// in the log and none checkpointed, is what a `kill -9` leaves: opened,
/// it has every acknowledged write, including a removal, and the log is
/// replayed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_image_reopens_with_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open_with(dir.path(), u64::MAX, Duration::from_secs(3600)).unwrap();
    store
        .commit(vec![Write::CreateUser(user("before", 1))])
        .await
        .unwrap();
    let event = |n: u32| {
        let user = format!("u{n}");
        let data = serde_json::json!({ "n": n });
        Write::Emit(crate::events::Event::new(
            EventType::UserRegistered,
            Some(&user),
            data,
        ))
    };
    store.commit(vec![event(1), event(2)]).await.unwrap();
    let pending = store.outbox_pending(10).await.unwrap();
    assert_eq!(pending.len(), 2);
    store
        .outbox_ack(&[pending[0].position.clone()])
        .await
        .unwrap();
    let image = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), image.path().join(entry.file_name())).unwrap();
    }
    let reopened = EmbeddedStore::open(image.path()).unwrap();
    assert!(reopened.user("before").await.unwrap().is_some());
    let by_email = reopened.user_by_email("BEFORE@example.com").await.unwrap();
    assert_eq!(by_email.map(|u| u.user_id), Some("before".into()));
    let left = reopened.outbox_pending(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].position, pending[1].position);
    // The replayed segments are gone: the file holds their writes.
    let segments = wal::segments(image.path()).unwrap();
    assert_eq!(segments.len(), 1, "a fresh segment only: {segments:?}");
    // A new event takes the next position after the last one pending.
    reopened.commit(vec![event(3)]).await.unwrap();
    let after = reopened.outbox_pending(10).await.unwrap();
    assert!(after[1].position > pending[1].position, "{after:?}");
}

fn order(user_id: &str, n: u32) -> Transaction {
    Transaction {
        user_id: user_id.to_owned(),
        transaction_id: format!("t{n:03}"),
        kind: TxKind::Order,
        status: "open".into(),
        pair: Some("BTC-USD".into()),
        created_at: now(),
        updated_at: now(),
        version: 1,
        detail: serde_json::json!({}).into(),
    }
}

/// A user's transactions listed newest first across the file (older
/// ones, checkpointed) and the overlay (newer ones, and an update of an
/// older one), pages included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_merge_the_overlay_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open_with(dir.path(), u64::MAX, Duration::from_millis(20)).unwrap();
    for n in 0..5 {
        store
            .commit(vec![Write::CreateTransaction(order("alice", n))])
            .await
            .unwrap();
    }
    store
        .commit(vec![Write::CreateTransaction(order("bob", 9))])
        .await
        .unwrap();
    checkpointed(&store).await;
    let mut updated = order("alice", 1);
    updated.status = "filled".into();
    updated.version = 2;
    store
        .commit(vec![
            Write::CreateTransaction(order("alice", 5)),
            Write::UpdateTransaction {
                tx: updated,
                expected_version: 1,
            },
        ])
        .await
        .unwrap();
    let ids = |page: &Page<Transaction>| -> Vec<String> {
        page.items
            .iter()
            .map(|t| t.transaction_id.clone())
            .collect()
    };
    let query = TxQuery {
        limit: 4,
        ..TxQuery::default()
    };
    let first = store.transactions("alice", &query).await.unwrap();
    assert_eq!(ids(&first), ["t005", "t004", "t003", "t002"]);
    let rest = TxQuery {
        after: first.next.clone(),
        ..query
    };
    let second = store.transactions("alice", &rest).await.unwrap();
    assert_eq!(ids(&second), ["t001", "t000"]);
    assert_eq!(second.items[0].status, "filled");
    assert_eq!(second.next, None);
}

/// The relay's reads hand out the events this process committed as they
/// were committed, nothing of a batch refused after its event was put in
/// the outbox (the next batch takes its position), and the same events,
/// decoded from the file, after a reopen; an acknowledgement forgets
/// them.
#[tokio::test]
async fn pending_events_are_the_committed_ones_with_or_without_the_decoded_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let event = |name: &str| {
        crate::events::Event::new(
            EventType::UserRegistered,
            Some(name),
            serde_json::json!({ "name": name }),
        )
    };
    let (first, refused, next) = (event("first"), event("refused"), event("next"));
    store
        .commit(vec![
            Write::CreateUser(user("taken", 1)),
            Write::Emit(first.clone()),
        ])
        .await
        .unwrap();
    // Refused after its event was put in the outbox: over the bound on a
    // batch's size.
    let refused_batch = store
        .commit(vec![
            Write::CreateUser(user("large", 5 << 20)),
            Write::Emit(refused.clone()),
        ])
        .await;
    assert!(
        matches!(refused_batch, Err(StoreError::Corrupt(_))),
        "{refused_batch:?}"
    );
    assert_eq!(store.shared().emitted.len(), 1);
    store.commit(vec![Write::Emit(next.clone())]).await.unwrap();
    assert_eq!(store.shared().emitted.len(), 2);
    let pending = store.outbox_pending(10).await.unwrap();
    let events: Vec<_> = pending.iter().map(|e| e.event.as_ref().clone()).collect();
    assert_eq!(events, vec![first.clone(), next.clone()]);
    drop(store);
    let reopened = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(reopened.shared().emitted.len(), 0);
    let decoded = reopened.outbox_pending(10).await.unwrap();
    assert_eq!(decoded, pending);
    let another = event("another");
    reopened
        .commit(vec![Write::Emit(another.clone())])
        .await
        .unwrap();
    let positions: Vec<_> = reopened
        .outbox_pending(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.position)
        .collect();
    reopened.outbox_ack(&positions).await.unwrap();
    assert_eq!(reopened.shared().emitted.len(), 0);
    assert!(reopened.outbox_pending(10).await.unwrap().is_empty());
}
