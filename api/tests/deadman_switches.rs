//! The dead-man's switch state (`api::trading::deadman`) against real
//! stores, below the timers and the cancels:
//!
//! - without Redis (`LocalSwitches`, DynamoDB on moto behind a proxy the
//!   test cuts): a sweep claims and returns what is due even when saving
//!   the claim fails; an `arm`, a disarm or a `track` the store refused
//!   changes nothing; attaching and detaching without orders, and tracking
//!   an order already tracked, write nothing;
//! - with Redis (`RedisSwitches`) and without: past the bound of tracked
//!   orders, the oldest are forgotten and the newest kept.
//!
//! scripts/test.sh starts redis-server and moto; these tests FAIL without
//! them, they never skip.

use crate::common;

use api::cluster::RedisLink;
use api::store::dynamo::{DynamoConfig, DynamoStore};
use api::store::Store;
use api::trading::deadman::local::LocalSwitches;
use api::trading::deadman::shared::RedisSwitches;
use api::trading::deadman::{Switches, GRACE};
use common::redis::{fresh_prefix, SHARED_REDIS};
use std::sync::Arc;
use std::time::Duration;
use testkit::Proxy;

/// DynamoDB tables of this test's own on the shared moto, reached through
/// a proxy the test can cut.
async fn store_behind_proxy() -> (Arc<dyn Store>, Proxy) {
    let moto = format!("127.0.0.1:{}", testkit::shared_moto_port());
    let proxy = Proxy::start(moto.parse().expect("moto address")).await;
    let store = DynamoStore::new(&DynamoConfig {
        endpoint: Some(proxy.http_url()),
        table_prefix: format!("t{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(api::aws::StaticCredentials::test()),
        ..DynamoConfig::default()
    })
    .await;
    store
        .ensure_tables()
        .await
        .expect("tables on moto: run scripts/test.sh (it starts moto)");
    (Arc::new(store), proxy)
}

async fn checkpoint(store: &Arc<dyn Store>) -> Option<api::store::SyncCheckpoint> {
    store
        .checkpoint("deadman", "switches")
        .await
        .expect("the store answers")
}

/// Waits past the grace of a detach made just before.
async fn past_grace() {
    tokio::time::sleep(GRACE + Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_due_cancel_after_is_returned_even_when_saving_the_sweep_fails() {
    let (store, proxy) = store_behind_proxy().await;
    let switches = LocalSwitches::load(store).await.expect("load");
    switches.arm("u1", 50).await.expect("armed");
    proxy.cut();
    // The deadline passes while the store is unreachable.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sweep = switches.sweep(100).await.expect("the sweep answers");
    assert_eq!(sweep.after, ["u1"], "the due switch fires");
    proxy.restore();
    let again = switches.sweep(100).await.expect("sweep");
    assert!(again.after.is_empty(), "claimed once: {:?}", again.after);
}

#[tokio::test]
async fn an_arm_disarm_or_track_the_store_refused_changes_nothing() {
    let (store, proxy) = store_behind_proxy().await;
    let switches = LocalSwitches::load(store).await.expect("load");

    proxy.cut();
    assert!(switches.arm("u1", 60_000).await.is_err(), "store down");
    proxy.restore();
    let sweep = switches.sweep(100).await.expect("sweep");
    assert_eq!(sweep.next_in, None, "nothing was armed");

    switches.arm("u1", 60_000).await.expect("armed");
    proxy.cut();
    assert!(switches.arm("u1", 0).await.is_err(), "store down");
    proxy.restore();
    let sweep = switches.sweep(100).await.expect("sweep");
    assert!(sweep.next_in.is_some(), "still armed");

    switches.attach("u2", "c1").await.expect("attach");
    switches.track("u2", "kept").await.expect("tracked");
    proxy.cut();
    assert!(switches.track("u2", "refused").await.is_err(), "store down");
    proxy.restore();
    switches.detach("u2", "c1").await.expect("detach");
    past_grace().await;
    let sweep = switches.sweep(100).await.expect("sweep");
    assert_eq!(
        sweep.disconnected,
        [("u2".to_owned(), vec!["kept".to_owned()])],
        "the refused order was never tracked"
    );
}

#[tokio::test]
async fn connections_without_orders_and_repeated_tracks_write_nothing() {
    let (store, _proxy) = store_behind_proxy().await;
    let switches = LocalSwitches::load(store.clone()).await.expect("load");
    switches.attach("u1", "c1").await.expect("attach");
    switches.detach("u1", "c1").await.expect("detach");
    past_grace().await;
    let sweep = switches.sweep(100).await.expect("sweep");
    assert_eq!(sweep.disconnected, [("u1".to_owned(), vec![])]);
    assert_eq!(checkpoint(&store).await, None, "nothing written");

    switches.attach("u2", "c1").await.expect("attach");
    switches.track("u2", "o1").await.expect("tracked");
    let written = checkpoint(&store)
        .await
        .expect("the tracked order is saved");
    switches.track("u2", "o1").await.expect("tracked again");
    assert_eq!(checkpoint(&store).await, Some(written), "no second write");
}

/// Tracks o5, o4, ..., o1 (newest last; ids sort the other way) with a
/// bound of 3, then lets the connection go: the newest three come back.
async fn newest_tracked_orders_are_kept(switches: &dyn Switches, user: &str) {
    switches.attach(user, "c1").await.expect("attach");
    for id in ["o5", "o4", "o3", "o2", "o1"] {
        switches.track(user, id).await.expect("tracked");
    }
    switches.detach(user, "c1").await.expect("detach");
    past_grace().await;
    let sweep = switches.sweep(100).await.expect("sweep");
    let (who, mut orders) = sweep
        .disconnected
        .into_iter()
        .find(|(u, _)| u == user)
        .expect("the user's connection is gone");
    assert_eq!(who, user);
    orders.sort();
    assert_eq!(orders, ["o1", "o2", "o3"], "the newest three");
}

#[tokio::test]
async fn without_redis_the_newest_tracked_orders_are_kept_past_the_bound() {
    let (store, _proxy) = store_behind_proxy().await;
    let switches = LocalSwitches::load_with(store, 3).await.expect("load");
    newest_tracked_orders_are_kept(&switches, "u1").await;
}

#[tokio::test]
async fn with_redis_the_newest_tracked_orders_are_kept_past_the_bound() {
    testkit::require_shared_redis();
    let link = Arc::new(RedisLink::new(SHARED_REDIS, &fresh_prefix("dms")).expect("redis url"));
    assert!(
        link.connect(Duration::from_secs(5)).await,
        "redis-server not reachable: run scripts/test.sh (it starts one)"
    );
    let switches = RedisSwitches::with_max_tracked(link, 3);
    let user = format!("u{}", uuid::Uuid::new_v4().simple());
    newest_tracked_orders_are_kept(&switches, &user).await;
}
