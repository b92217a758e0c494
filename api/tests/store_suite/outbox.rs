//! Outbox cases: events come out in commit order and leave once
//! acknowledged; helpers other cases use to look into the outbox.

use super::fixtures::{event, tx, user};
use api::store::{OutboxEntry, Store, TxKind, Write};

/// Every pending entry whose event id is in `ids`, in outbox order (other
/// cases' events on a shared store are skipped).
pub async fn pending_of(store: &dyn Store, ids: &[String]) -> Vec<OutboxEntry> {
    store
        .outbox_pending(100_000)
        .await
        .expect("outbox_pending")
        .into_iter()
        .filter(|e| ids.contains(&e.event.id))
        .collect()
}

fn ids(entries: &[OutboxEntry]) -> Vec<String> {
    entries.iter().map(|e| e.event.id.clone()).collect()
}

pub async fn outbox_keeps_commit_order_and_forgets_acked(store: &dyn Store) {
    let u = user();
    let events: Vec<_> = (0..5).map(|i| event(&format!("order-{i}"))).collect();
    let want: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    // Three batches; one also carries a state change.
    store
        .commit(vec![
            Write::Emit(events[0].clone()),
            Write::Emit(events[1].clone()),
        ])
        .await
        .unwrap();
    store
        .commit(vec![Write::Emit(events[2].clone())])
        .await
        .unwrap();
    store
        .commit(vec![
            Write::CreateUser(u.clone()),
            Write::CreateTransaction(tx(&u.user_id, TxKind::Deposit, "pending", None)),
            Write::Emit(events[3].clone()),
            Write::Emit(events[4].clone()),
        ])
        .await
        .unwrap();

    let pending = pending_of(store, &want).await;
    assert_eq!(ids(&pending), want, "commit order");
    assert_eq!(*pending[3].event, events[3], "stored as committed");
    let positions: Vec<&String> = pending.iter().map(|e| &e.position).collect();
    let mut unique = positions.clone();
    unique.dedup();
    assert_eq!(unique.len(), positions.len(), "distinct positions");

    // `outbox_pending(limit)` returns the oldest first.
    let first = store.outbox_pending(1).await.unwrap();
    assert_eq!(first.len(), 1);

    // Ack the first two; unknown and repeated positions are ignored.
    let acked: Vec<String> = pending[..2].iter().map(|e| e.position.clone()).collect();
    store.outbox_ack(&acked).await.unwrap();
    store.outbox_ack(&acked).await.unwrap();
    store
        .outbox_ack(&["not-a-position".to_owned()])
        .await
        .unwrap();
    assert_eq!(ids(&pending_of(store, &want).await), want[2..].to_vec());

    let rest: Vec<String> = pending[2..].iter().map(|e| e.position.clone()).collect();
    store.outbox_ack(&rest).await.unwrap();
    assert!(pending_of(store, &want).await.is_empty());

    // Later events still come after: the order holds across acks.
    let later = event("later");
    store
        .commit(vec![Write::Emit(later.clone())])
        .await
        .unwrap();
    assert_eq!(
        ids(&pending_of(store, std::slice::from_ref(&later.id)).await),
        vec![later.id]
    );
}
