//! The dead-man's switch (docs/PROTOCOL.md "Order entry") on two nodes
//! sharing Redis (one GraphQL venue, DynamoDB on moto), and on one node
//! without Redis across a restart:
//!
//! - `cancel_after` armed on node A, refreshed on node B, then node A
//!   stopped: node B fires it, within 1 s of the trigger time and not
//!   before; the user's `orders` channel gets `cancelled` listing the
//!   orders; `timeout_ms` 0 disarms;
//! - `cancel_on_disconnect`: the socket of node A killed (no close frame)
//!   while the user's other such socket on node B lives: nothing is
//!   cancelled; that one killed too: the orders placed on those sockets
//!   (not the others) are cancelled after the grace;
//! - a connection whose node died (its lease never renewed) counts as gone
//!   once the lease expires;
//! - without Redis, an armed `cancel_after` survives a restart of the node
//!   and fires with its audit event.
//!
//! scripts/test.sh starts redis-server and moto; these tests FAIL without
//! them, they never skip.

use crate::common;
use crate::harness;

use api::trading::deadman::{Switches as _, GRACE, LEASE_TTL};
use common::deployment::Deployment;
use common::{recv_within, send};
use harness::{start_hub, TestVenue, Trader};
use hub::app::RunningHub;
use hub::config::Config;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::SHARED_REDIS;
use tokio::time::Instant;

const JWT_SECRET: &str = "deadman-test-0123456789abcdef012345678";

use common::any_port;

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Nodes of one deployment: DynamoDB tables and Redis keys of their own,
/// one signing key, a shared data key.
fn deployment() -> impl Fn(&mut Config) + Clone {
    let shared = Deployment::new(testkit::shared_moto_endpoint(), JWT_SECRET);
    let key = common::new_data_key();
    move |c: &mut Config| {
        shared.apply(c, SHARED_REDIS);
        common::share_data_key(c, &key);
    }
}

async fn bounded<F: std::future::Future>(test: F) -> F::Output {
    common::within(Duration::from_secs(90), test).await
}

async fn two_nodes() -> (TestVenue, RunningHub, RunningHub, Trader) {
    testkit::require_shared_redis();
    let venue = TestVenue::start(any_port(), 50).await;
    let shared = deployment();
    let node_a = start_hub(&venue, shared.clone()).await;
    let node_b = start_hub(&venue, shared).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let trader = Trader::verified(&node_a, &email).await;
    venue.credit(&trader.user_id, "USD", "100000").await;
    (venue, node_a, node_b, trader)
}

/// A socket on `hub` authenticated with `token` (and `extra` members on
/// `auth`), optionally subscribed to `orders`.
async fn socket(hub: &RunningHub, token: &str, extra: Value, orders: bool) -> common::Ws {
    let mut ws = common::connect(hub).await;
    let mut auth = json!({"op": "auth", "id": 1, "token": token});
    auth.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    send(&mut ws, auth).await;
    let authed = recv_within(&mut ws, 5).await;
    assert_eq!(authed["type"], "authed", "{authed}");
    if orders {
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 2, "channels": ["orders"]}),
        )
        .await;
        let sub = recv_within(&mut ws, 5).await;
        assert_eq!(sub["type"], "subscribed", "{sub}");
    }
    ws
}

/// Sends `op` and returns the answer with its id (skipping channel
/// messages).
async fn ask(ws: &mut common::Ws, op: Value) -> Value {
    let id = op["id"].clone();
    send(ws, op).await;
    loop {
        let m = recv_within(ws, 10).await;
        if m.get("channel").is_none() && m["id"] == id {
            return m;
        }
    }
}

/// Waits up to `within` for the `cancelled` notice on `orders`; with the
/// local time (µs) it arrived.
async fn notice(ws: &mut common::Ws, within: Duration) -> Option<(Value, u64)> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let Ok(Some(Ok(msg))) = tokio::time::timeout(left, futures_util::StreamExt::next(ws)).await
        else {
            return None;
        };
        let Ok(text) = msg.to_text() else { continue };
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        if v["type"] == "cancelled" && v["channel"] == "orders" {
            return Some((v, now_micros()));
        }
    }
}

/// Kills a socket: the TCP connection is reset, no close frame is sent.
fn kill(ws: common::Ws) {
    if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        // Linger 0: the drop resets the connection at once (it does not
        // block, which is what the deprecation warns of).
        #[allow(deprecated)]
        tcp.set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
    }
    drop(ws);
}

async fn place_on(ws: &mut common::Ws, id: i64, cid: &str) -> String {
    let order = json!({"client_order_id": cid, "pair": harness::PAIR, "side": "buy",
                       "type": "limit", "qty": "0.01", "price": "1000"});
    let a = ask(ws, json!({"op": "order.place", "id": id, "order": order})).await;
    assert_eq!(a["type"], "order", "{a}");
    a["order"]["order_id"].as_str().unwrap().to_owned()
}

async fn status(trader: &Trader, order_id: &str) -> String {
    let a = trader
        .call("GET", &format!("/orders/{order_id}"), None)
        .await;
    a.body["status"].as_str().unwrap_or("?").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_after_moves_between_nodes_and_fires_within_a_second_not_before() {
    bounded(async {
        let (venue, node_a, node_b, trader) = two_nodes().await;
        let on_b = trader.on(&node_b);
        let mut watch = socket(&node_b, &trader.token, json!({}), true).await;
        let placed = trader.limit("ca-1", "buy", "0.01", "1000", "GTC").await;
        assert_eq!(placed.status, 201, "{}", placed.body);
        let order_id = placed.body["order_id"].as_str().unwrap().to_owned();

        // Out of range is refused; 0 disarms.
        let mut on_a = socket(&node_a, &trader.token, json!({}), false).await;
        let e = ask(
            &mut on_a,
            json!({"op": "cancel_after", "id": 3, "timeout_ms": 500}),
        )
        .await;
        assert_eq!(e["code"], "bad_request", "{e}");
        let armed = ask(
            &mut on_a,
            json!({"op": "cancel_after", "id": 4, "timeout_ms": 1000}),
        )
        .await;
        assert!(armed["trigger_ts"].is_u64(), "{armed}");
        let off = ask(
            &mut on_a,
            json!({"op": "cancel_after", "id": 5, "timeout_ms": 0}),
        )
        .await;
        assert_eq!(
            off,
            json!({"type": "cancel_after_set", "id": 5, "timeout_ms": 0, "trigger_ts": null})
        );
        assert!(
            notice(&mut watch, Duration::from_millis(1_800))
                .await
                .is_none(),
            "disarmed"
        );
        assert_eq!(status(&trader, &order_id).await, "open");

        // Armed on A, refreshed through B, A gone: B fires it.
        let armed = ask(
            &mut on_a,
            json!({"op": "cancel_after", "id": 6, "timeout_ms": 2000}),
        )
        .await;
        let first = armed["trigger_ts"].as_u64().expect("trigger_ts");
        let now = now_micros();
        assert!(
            first > now + 1_500_000 && first <= now + 2_000_000,
            "{armed}"
        );
        let mut on_b_ws = socket(&node_b, &trader.token, json!({}), false).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let moved = ask(
            &mut on_b_ws,
            json!({"op": "cancel_after", "id": 7, "timeout_ms": 2500}),
        )
        .await;
        let trigger = moved["trigger_ts"].as_u64().expect("trigger_ts");
        assert!(
            trigger >= first + 500_000,
            "refreshing moves it: {first} → {trigger}"
        );
        drop(on_a);
        node_a.stop().await;

        let (msg, at) = notice(&mut watch, Duration::from_secs(6))
            .await
            .expect("the switch fired");
        assert_eq!(msg["trigger"], "cancel_after", "{msg}");
        assert_eq!(msg["order_ids"], json!([order_id]), "{msg}");
        assert!(
            at >= trigger,
            "fired {} ms before its trigger",
            (trigger - at) / 1000
        );
        assert!(
            at - trigger < 1_000_000,
            "fired {} ms after its trigger",
            (at - trigger) / 1000
        );
        eprintln!(
            "cancel_after, fired by the other node: notice {} µs after the trigger",
            at - trigger
        );
        assert_eq!(status(&on_b, &order_id).await, "cancelled");
        // Fired once: disarmed now.
        assert!(notice(&mut watch, Duration::from_millis(1_200))
            .await
            .is_none());
        node_b.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_on_disconnect_waits_for_the_last_such_connection_and_fires_after_a_kill() {
    bounded(async {
        let (venue, node_a, node_b, trader) = two_nodes().await;
        let cod = json!({"cancel_on_disconnect": true});
        let mut watch = socket(&node_b, &trader.token, json!({}), true).await;
        let mut on_a = socket(&node_a, &trader.token, cod.clone(), false).await;
        let mut on_b = socket(&node_b, &trader.token, cod.clone(), false).await;
        let from_a = place_on(&mut on_a, 3, "cod-a").await;
        let from_b = place_on(&mut on_b, 3, "cod-b").await;
        // Placed over REST: not on a cancel_on_disconnect connection.
        let kept = trader.limit("cod-rest", "buy", "0.01", "1000", "GTC").await;
        let kept = kept.body["order_id"].as_str().unwrap().to_owned();

        // One of two killed: the other still lives, nothing is cancelled.
        kill(on_a);
        assert!(
            notice(&mut watch, GRACE + LEASE_TTL + Duration::from_secs(1))
                .await
                .is_none(),
            "cancelled while another such connection was open"
        );
        assert_eq!(status(&trader, &from_a).await, "open");

        // The last one killed: after the grace, its orders and the first
        // connection's are cancelled; the REST order stays.
        let killed = now_micros();
        kill(on_b);
        let (msg, at) = notice(&mut watch, GRACE + Duration::from_secs(4))
            .await
            .expect("the switch fired");
        assert_eq!(msg["trigger"], "cancel_on_disconnect", "{msg}");
        let mut got: Vec<String> = serde_json::from_value(msg["order_ids"].clone()).unwrap();
        got.sort();
        let mut want = vec![from_a.clone(), from_b.clone()];
        want.sort();
        assert_eq!(got, want, "{msg}");
        let waited = Duration::from_micros(at - killed);
        eprintln!("cancel_on_disconnect: notice {waited:?} after the last socket was reset (grace {GRACE:?})");
        assert!(
            waited >= GRACE,
            "fired {waited:?} after the kill, within the grace"
        );
        assert!(
            waited < GRACE + Duration::from_millis(1_500),
            "fired {waited:?} after the kill"
        );
        assert_eq!(status(&trader, &from_a).await, "cancelled");
        assert_eq!(status(&trader, &from_b).await, "cancelled");
        assert_eq!(status(&trader, &kept).await, "open");
        node_a.stop().await;
        node_b.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_of_a_dead_node_s_connections_are_cancelled_by_another_node() {
    bounded(async {
        let (venue, node_a, node_b, trader) = two_nodes().await;
        let mut watch = socket(&node_b, &trader.token, json!({}), true).await;
        let mut on_a = socket(
            &node_a,
            &trader.token,
            json!({"cancel_on_disconnect": true}),
            false,
        )
        .await;
        let order_id = place_on(&mut on_a, 3, "dead-1").await;
        // Node A's switch stops (as when the process dies): it no longer
        // renews its connections' leases, and its socket never reports a
        // close. Node B's sweep finds the lease expired.
        let died = now_micros();
        node_a.api.as_ref().unwrap().stop().await;
        let (msg, at) = notice(&mut watch, LEASE_TTL + GRACE + Duration::from_secs(3))
            .await
            .expect("node B fired the switch");
        assert_eq!(msg["trigger"], "cancel_on_disconnect", "{msg}");
        assert_eq!(msg["order_ids"], json!([order_id]), "{msg}");
        let waited = Duration::from_micros(at - died);
        eprintln!(
            "cancel_on_disconnect of a dead node: notice {waited:?} after it stopped renewing"
        );
        assert!(waited >= GRACE, "{waited:?}");
        assert_eq!(status(&trader.on(&node_b), &order_id).await, "cancelled");
        drop(on_a);
        node_a.stop().await;
        node_b.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_connection_whose_node_died_counts_as_gone_when_its_lease_expires() {
    testkit::require_shared_redis();
    let prefix = format!("nax:test:{}:", uuid::Uuid::new_v4().simple());
    let link = std::sync::Arc::new(api::cluster::RedisLink::new(SHARED_REDIS, &prefix).unwrap());
    assert!(link.connect(Duration::from_secs(2)).await, "redis answers");
    let switches = api::trading::deadman::shared::RedisSwitches::new(link);
    // A node attached the connection, tracked an order, then died: no
    // renewal, no detach.
    switches.attach("u1", "c1").await.unwrap();
    switches.track("u1", "o1").await.unwrap();
    let started = Instant::now();
    let sweep = switches.sweep(100).await.unwrap();
    assert!(
        sweep.disconnected.is_empty(),
        "live until the lease expires"
    );
    let due = sweep.next_in.expect("a check is due");
    assert!(due > LEASE_TTL && due <= LEASE_TTL + GRACE, "{due:?}");
    tokio::time::sleep(due.saturating_sub(Duration::from_millis(300))).await;
    assert!(
        switches.sweep(100).await.unwrap().disconnected.is_empty(),
        "not before"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let sweep = switches.sweep(100).await.unwrap();
    assert_eq!(
        sweep.disconnected,
        [("u1".to_owned(), vec!["o1".to_owned()])]
    );
    assert!(started.elapsed() >= LEASE_TTL + GRACE);
    // Claimed once: another node's sweep finds nothing.
    assert!(switches.sweep(100).await.unwrap().disconnected.is_empty());

    // A connection its node keeps renewing stays live past its lease.
    switches.attach("u2", "c2").await.unwrap();
    switches.track("u2", "o2").await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(LEASE_TTL / 2).await;
        switches.renew(&[("u2".into(), "c2".into())]).await.unwrap();
    }
    assert!(
        switches.sweep(100).await.unwrap().disconnected.is_empty(),
        "renewed: live"
    );
}

#[tokio::test]
async fn without_redis_cancel_on_disconnect_waits_for_the_grace_and_survives_a_restart() {
    use api::trading::deadman::local::LocalSwitches;
    let dir = common::fresh_data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let store: std::sync::Arc<dyn api::store::Store> =
        std::sync::Arc::new(api::store::embedded::EmbeddedStore::open(&dir).unwrap());
    let switches = LocalSwitches::load(store.clone()).await.unwrap();
    switches.attach("u1", "c1").await.unwrap();
    switches.attach("u1", "c2").await.unwrap();
    switches.track("u1", "o1").await.unwrap();
    // One of two connections gone: after the grace, nothing fires.
    switches.detach("u1", "c1").await.unwrap();
    let due = switches.sweep(100).await.unwrap().next_in.expect("a check");
    assert!(due <= GRACE, "{due:?}");
    tokio::time::sleep(due + Duration::from_millis(50)).await;
    assert!(switches.sweep(100).await.unwrap().disconnected.is_empty());
    // The last one gone: not before the grace, then its orders.
    switches.detach("u1", "c2").await.unwrap();
    let gone = Instant::now();
    assert!(switches.sweep(100).await.unwrap().disconnected.is_empty());
    tokio::time::sleep(GRACE - Duration::from_millis(300)).await;
    assert!(switches.sweep(100).await.unwrap().disconnected.is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fired = switches.sweep(100).await.unwrap().disconnected;
    assert!(gone.elapsed() >= GRACE);
    assert_eq!(fired, [("u1".to_owned(), vec!["o1".to_owned()])]);

    // Remembered orders survive a restart (a new process on the store):
    // checked GRACE after it starts, when no connection came back.
    let switches = LocalSwitches::load(store.clone()).await.unwrap();
    switches.attach("u2", "c3").await.unwrap();
    switches.track("u2", "o2").await.unwrap();
    drop(switches);
    let started = Instant::now();
    let switches = LocalSwitches::load(store).await.unwrap();
    let due = switches.sweep(100).await.unwrap().next_in.expect("a check");
    tokio::time::sleep(due + Duration::from_millis(50)).await;
    let fired = switches.sweep(100).await.unwrap().disconnected;
    assert!(started.elapsed() >= GRACE);
    assert_eq!(fired, [("u2".to_owned(), vec!["o2".to_owned()])]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_an_armed_cancel_after_survives_a_restart() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 50).await;
        let dir = common::fresh_data_dir();
        let same_dir = {
            let dir = dir.clone();
            move |c: &mut Config| c.data_dir = dir.clone()
        };
        let node = start_hub(&venue, same_dir.clone()).await;
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        let trader = Trader::verified(&node, &email).await;
        venue.credit(&trader.user_id, "USD", "100000").await;
        let placed = trader.limit("r-1", "buy", "0.01", "1000", "GTC").await;
        let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
        let mut ws = socket(&node, &trader.token, json!({}), false).await;
        let armed = ask(
            &mut ws,
            json!({"op": "cancel_after", "id": 3, "timeout_ms": 3000}),
        )
        .await;
        let trigger = armed["trigger_ts"].as_u64().expect("trigger_ts");
        drop(ws);
        node.stop().await;

        let node = start_hub(&venue, same_dir).await;
        let trader = trader.on(&node);
        let mut watch = socket(&node, &trader.token, json!({}), true).await;
        let (msg, at) = notice(&mut watch, Duration::from_secs(8))
            .await
            .expect("the restarted node fired the switch");
        assert_eq!(msg["order_ids"], json!([order_id]), "{msg}");
        assert!(
            at >= trigger && at - trigger < 1_000_000,
            "at {at}, trigger {trigger}"
        );
        eprintln!(
            "cancel_after after a restart: notice {} µs after the trigger",
            at - trigger
        );
        assert_eq!(status(&trader, &order_id).await, "cancelled");
        // The audit event.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = std::fs::read_to_string(dir.join("events.ndjson")).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| l.contains("orders.auto_cancelled")) {
                let event: Value = serde_json::from_str(line).unwrap();
                assert_eq!(event["user_id"], trader.user_id.as_str(), "{event}");
                assert_eq!(event["data"]["trigger"], "cancel_after", "{event}");
                assert_eq!(event["data"]["order_ids"], json!([order_id]), "{event}");
                break;
            }
            assert!(Instant::now() < deadline, "no orders.auto_cancelled event");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        node.stop().await;
        venue.stop().await;
    })
    .await;
}
