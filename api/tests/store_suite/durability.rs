//! Durability: everything a store acknowledged is there after the store
//! is closed and opened again (for the embedded store, from the same data
//! directory). Split in two halves so any store can run it: write through
//! one instance, drop it, check through a new one.

use super::fixtures::{checkpoint, event, family, idempotency, receipt, tx, unique, user};
use super::outbox::pending_of;
use api::store::{
    IdempotencyRecord, RefreshFamily, Store, SyncCheckpoint, Transaction, TxKind, TxQuery, User,
    WebhookReceipt, Write,
};

/// What [`write_everything`] committed.
pub struct Committed {
    user: User,
    transactions: Vec<Transaction>,
    idempotency: IdempotencyRecord,
    receipt: WebhookReceipt,
    family: RefreshFamily,
    checkpoint: SyncCheckpoint,
    event_ids: Vec<String>,
    acked_event_id: String,
}

/// Commits one of every record (and an update of each versioned one),
/// plus events of which one is acknowledged.
pub async fn write_everything(store: &dyn Store) -> Committed {
    let mut u = user();
    let t1 = tx(&u.user_id, TxKind::Order, "open", Some("BTC-USD"));
    let mut t2 = tx(&u.user_id, TxKind::Withdrawal, "pending", Some("BTC"));
    let key = idempotency(&u.user_id, &unique("key"), "fp");
    let rec = receipt("fireblocks", &unique("wh"));
    let mut fam = family(&u.user_id);
    let cp = checkpoint(&unique("service"), "orders", "42");
    let acked = event("durable-acked");
    let events = [event("durable-1"), event("durable-2")];
    store
        .commit(vec![
            Write::CreateUser(u.clone()),
            Write::CreateTransaction(t1.clone()),
            Write::CreateTransaction(t2.clone()),
            Write::CreateIdempotency(key.clone()),
            Write::CreateWebhookReceipt(rec.clone()),
            Write::PutRefreshFamily {
                family: fam.clone(),
                expected_version: None,
            },
            Write::PutCheckpoint(cp.clone()),
            Write::Emit(acked.clone()),
            Write::Emit(events[0].clone()),
        ])
        .await
        .unwrap();

    u.country = Some("DE".into());
    u.version = 2;
    t2.status = "completed".into();
    t2.version = 2;
    fam.revoked = true;
    fam.version = 2;
    store
        .commit(vec![
            Write::UpdateUser {
                user: u.clone(),
                expected_version: 1,
            },
            Write::UpdateTransaction {
                tx: t2.clone(),
                expected_version: 1,
            },
            Write::PutRefreshFamily {
                family: fam.clone(),
                expected_version: Some(1),
            },
            Write::Emit(events[1].clone()),
        ])
        .await
        .unwrap();
    let acked_entry = pending_of(store, std::slice::from_ref(&acked.id)).await;
    store
        .outbox_ack(&[acked_entry[0].position.clone()])
        .await
        .unwrap();

    Committed {
        user: u,
        transactions: vec![t2, t1],
        idempotency: key,
        receipt: rec,
        family: fam,
        checkpoint: cp,
        event_ids: events.iter().map(|e| e.id.clone()).collect(),
        acked_event_id: acked.id,
    }
}

/// Asserts a (reopened) store holds exactly what was committed.
pub async fn assert_everything_there(store: &dyn Store, c: &Committed) {
    let u = &c.user;
    assert_eq!(store.user(&u.user_id).await.unwrap().as_ref(), Some(u));
    assert_eq!(
        store.user_by_email(&u.email).await.unwrap().as_ref(),
        Some(u)
    );
    let listed = store
        .transactions(
            &u.user_id,
            &TxQuery {
                limit: 10,
                ..TxQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        listed.items, c.transactions,
        "newest first, latest versions"
    );
    let k = &c.idempotency;
    assert_eq!(
        store
            .idempotency(&k.user_id, &k.scope, &k.key)
            .await
            .unwrap()
            .as_ref(),
        Some(k)
    );
    let r = &c.receipt;
    assert_eq!(
        store
            .webhook_receipt(&r.provider, &r.webhook_id)
            .await
            .unwrap()
            .as_ref(),
        Some(r)
    );
    assert_eq!(
        store
            .refresh_family(&c.family.family_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&c.family)
    );
    let cp = &c.checkpoint;
    assert_eq!(
        store
            .checkpoint(&cp.service_name, &cp.sync_type)
            .await
            .unwrap()
            .as_ref(),
        Some(cp)
    );
    let mut wanted = c.event_ids.clone();
    wanted.push(c.acked_event_id.clone());
    let pending: Vec<String> = pending_of(store, &wanted)
        .await
        .into_iter()
        .map(|e| e.event.id.clone())
        .collect();
    assert_eq!(
        pending, c.event_ids,
        "unacked events stay, in order; acked ones stay gone"
    );
    store.ping().await.unwrap();
}
