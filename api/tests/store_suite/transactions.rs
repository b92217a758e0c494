//! Transaction cases: conditional create/update, newest-first lists with
//! filters, and pagination without duplicates or gaps.

use super::fixtures::{tx, unique};
use api::store::{Conflict, Store, StoreError, Transaction, TxKind, TxQuery, Write};
use std::collections::HashSet;

fn query(limit: usize) -> TxQuery {
    TxQuery {
        limit,
        ..TxQuery::default()
    }
}

/// Ids newest first (the store's order: descending time-ordered id).
fn newest_first(txs: &[Transaction]) -> Vec<String> {
    let mut ids: Vec<String> = txs.iter().map(|t| t.transaction_id.clone()).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

fn ids(txs: &[Transaction]) -> Vec<String> {
    txs.iter().map(|t| t.transaction_id.clone()).collect()
}

/// Follows `next` until the end; asserts every page is within `limit`.
async fn all_pages(store: &dyn Store, user_id: &str, mut q: TxQuery) -> (Vec<String>, Vec<usize>) {
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = store.transactions(user_id, &q).await.unwrap();
        assert!(page.items.len() <= q.limit, "page over the limit");
        sizes.push(page.items.len());
        seen.extend(ids(&page.items));
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
        assert!(sizes.len() < 1000, "pagination does not end");
    }
    (seen, sizes)
}

pub async fn transaction_create_update_and_version(store: &dyn Store) {
    let user_id = unique("user");
    let t = tx(&user_id, TxKind::Withdrawal, "pending", Some("BTC"));
    store
        .commit(vec![Write::CreateTransaction(t.clone())])
        .await
        .unwrap();
    assert_eq!(
        store
            .transaction(&user_id, &t.transaction_id)
            .await
            .unwrap(),
        Some(t.clone())
    );
    // Another user cannot see it under their id.
    assert_eq!(
        store
            .transaction("someone-else", &t.transaction_id)
            .await
            .unwrap(),
        None
    );
    // The same (user, id) again.
    let again = store
        .commit(vec![Write::CreateTransaction(t.clone())])
        .await;
    assert_eq!(
        again,
        Err(StoreError::Conflict(Conflict::AlreadyExists("transaction")))
    );

    let mut done = t.clone();
    done.status = "completed".into();
    done.version = 2;
    store
        .commit(vec![Write::UpdateTransaction {
            tx: done.clone(),
            expected_version: 1,
        }])
        .await
        .unwrap();
    assert_eq!(
        store
            .transaction(&user_id, &t.transaction_id)
            .await
            .unwrap(),
        Some(done.clone())
    );

    let mut stale = t.clone();
    stale.status = "failed".into();
    stale.version = 2;
    let result = store
        .commit(vec![Write::UpdateTransaction {
            tx: stale,
            expected_version: 1,
        }])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::VersionMismatch(
            "transaction"
        )))
    );
    assert_eq!(
        store
            .transaction(&user_id, &t.transaction_id)
            .await
            .unwrap(),
        Some(done)
    );

    let ghost = tx(&user_id, TxKind::Order, "open", Some("BTC-USD"));
    let result = store
        .commit(vec![Write::UpdateTransaction {
            tx: ghost,
            expected_version: 1,
        }])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::VersionMismatch(
            "transaction"
        )))
    );
}

pub async fn transactions_list_newest_first_with_filters(store: &dyn Store) {
    let user_id = unique("user");
    let other = unique("user");
    let all = [
        tx(&user_id, TxKind::Order, "open", Some("BTC-USD")),
        tx(&user_id, TxKind::Order, "filled", Some("BTC-USD")),
        tx(&user_id, TxKind::Order, "open", Some("ETH-USD")),
        tx(&user_id, TxKind::Deposit, "pending", Some("BTC")),
        tx(&user_id, TxKind::Deposit, "completed", Some("BTC")),
        tx(&user_id, TxKind::Withdrawal, "pending", Some("ETH")),
        tx(&user_id, TxKind::FiatDeposit, "pending", Some("USD")),
        tx(&user_id, TxKind::Fill, "filled", Some("BTC-USD")),
    ];
    let writes = all.iter().cloned().map(Write::CreateTransaction).collect();
    store.commit(writes).await.unwrap();
    store
        .commit(vec![Write::CreateTransaction(tx(
            &other,
            TxKind::Order,
            "open",
            Some("BTC-USD"),
        ))])
        .await
        .unwrap();

    let select = |f: &dyn Fn(&Transaction) -> bool| {
        let chosen: Vec<Transaction> = all.iter().filter(|t| f(t)).cloned().collect();
        newest_first(&chosen)
    };
    let user = user_id.as_str();
    let list = |q: TxQuery| async move {
        let page = store.transactions(user, &q).await.unwrap();
        assert_eq!(page.next, None, "everything fits one page");
        ids(&page.items)
    };

    assert_eq!(
        list(query(100)).await,
        select(&|_| true),
        "all, newest first"
    );
    let orders = TxQuery {
        kinds: vec![TxKind::Order],
        ..query(100)
    };
    assert_eq!(list(orders).await, select(&|t| t.kind == TxKind::Order));
    let wallet = TxQuery {
        kinds: vec![TxKind::Deposit, TxKind::Withdrawal],
        ..query(100)
    };
    assert_eq!(
        list(wallet).await,
        select(&|t| matches!(t.kind, TxKind::Deposit | TxKind::Withdrawal))
    );
    let pending = TxQuery {
        status: Some("pending".into()),
        ..query(100)
    };
    assert_eq!(list(pending).await, select(&|t| t.status == "pending"));
    let btc_usd_open = TxQuery {
        kinds: vec![TxKind::Order],
        status: Some("open".into()),
        pair: Some("BTC-USD".into()),
        ..query(100)
    };
    assert_eq!(
        list(btc_usd_open).await,
        select(&|t| t.kind == TxKind::Order
            && t.status == "open"
            && t.pair.as_deref() == Some("BTC-USD"))
    );
    let nothing = TxQuery {
        status: Some("no-such-status".into()),
        ..query(100)
    };
    assert!(list(nothing).await.is_empty());
    // A user with no transactions.
    let empty = store
        .transactions(&unique("user"), &query(10))
        .await
        .unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
}

pub async fn transactions_paginate_without_duplicates_or_gaps(store: &dyn Store) {
    let user_id = unique("user");
    let mut all = Vec::new();
    for batch in 0..5 {
        let txs: Vec<Transaction> = (0..50)
            .map(|i| {
                let status = if (batch * 50 + i) % 3 == 0 {
                    "filled"
                } else {
                    "open"
                };
                // Two far-apart items of another pair (a sparse filter).
                let pair = if (batch, i) == (0, 0) || (batch, i) == (3, 10) {
                    "ETH-USD"
                } else {
                    "BTC-USD"
                };
                tx(&user_id, TxKind::Order, status, Some(pair))
            })
            .collect();
        all.extend(txs.iter().cloned());
        store
            .commit(txs.into_iter().map(Write::CreateTransaction).collect())
            .await
            .unwrap();
    }
    assert_eq!(all.len(), 250);

    let (seen, sizes) = all_pages(store, &user_id, query(100)).await;
    assert_eq!(sizes, vec![100, 100, 50]);
    assert_eq!(seen, newest_first(&all), "every item once, newest first");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 250);

    // Exactly a page's worth: the last page says there is no more.
    let (seen, sizes) = all_pages(store, &user_id, query(125)).await;
    assert_eq!(sizes, vec![125, 125]);
    assert_eq!(seen.len(), 250);

    // Filtered pages skip the rest without losing any.
    let filled = TxQuery {
        status: Some("filled".into()),
        ..query(7)
    };
    let (seen, _) = all_pages(store, &user_id, filled).await;
    let want: Vec<Transaction> = all
        .iter()
        .filter(|t| t.status == "filled")
        .cloned()
        .collect();
    assert_eq!(seen, newest_first(&want));

    // A filter matching two items far apart: still full pages, and the
    // page of the last match says there is no more.
    let sparse = TxQuery {
        pair: Some("ETH-USD".into()),
        ..query(1)
    };
    let (seen, sizes) = all_pages(store, &user_id, sparse).await;
    assert_eq!(sizes, vec![1, 1]);
    let want: Vec<Transaction> = all
        .iter()
        .filter(|t| t.pair.as_deref() == Some("ETH-USD"))
        .cloned()
        .collect();
    assert_eq!(seen, newest_first(&want));
}

/// Work left in a state, across users: oldest first, up to a time, at most
/// `limit` (DynamoDB answers from `status-index`).
pub async fn transactions_with_status_across_users_oldest_first(store: &dyn Store) {
    let status = unique("processing");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let base = api::events::now() - chrono::TimeDelta::minutes(10);
    let at = |user: &str, minutes: i64, status: &str| {
        let mut t = tx(user, TxKind::Withdrawal, status, Some("BTC"));
        t.created_at = base + chrono::TimeDelta::minutes(minutes);
        t.updated_at = t.created_at;
        t
    };
    let oldest = at(&bob, 0, &status);
    let middle = at(&alice, 1, &status);
    let newest = at(&bob, 2, &status);
    let other_status = at(&alice, 1, &unique("completed"));
    let too_new = at(&alice, 5, &status);
    let mut writes = Vec::new();
    // Committed out of time order.
    for t in [&newest, &too_new, &oldest, &other_status, &middle] {
        writes.push(Write::CreateTransaction((*t).clone()));
    }
    store.commit(writes).await.unwrap();

    let until = base + chrono::TimeDelta::minutes(3);
    let ids = |ts: Vec<Transaction>| -> Vec<String> {
        ts.into_iter().map(|t| t.transaction_id).collect()
    };
    let all = store
        .transactions_with_status(&status, until, 10)
        .await
        .unwrap();
    assert_eq!(
        ids(all),
        [&oldest, &middle, &newest].map(|t| t.transaction_id.clone())
    );
    let first_two = store
        .transactions_with_status(&status, until, 2)
        .await
        .unwrap();
    assert_eq!(
        ids(first_two),
        [&oldest, &middle].map(|t| t.transaction_id.clone())
    );
    let none = store
        .transactions_with_status(&unique("nothing"), until, 10)
        .await
        .unwrap();
    assert!(none.is_empty());
}
