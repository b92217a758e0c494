//! The dead-man's switch and socket order entry (docs/PROTOCOL.md "Order
//! entry") when something fails underneath (one node with Redis, one
//! GraphQL venue, DynamoDB on moto):
//!
//! - a `cancel_after` that fires while DynamoDB is unreachable (a proxy
//!   the test cuts) tells the user at once (nothing cancelled yet), tries
//!   again, and cancels the order once DynamoDB is back;
//! - an `order.place` whose connection goes away while the venue is
//!   answering (slowed by its fault control) runs to its end: the order is
//!   recorded and tracked, so `cancel_on_disconnect` cancels it;
//! - Redis unreachable (a proxy the test cuts) for longer than a lease and
//!   the grace: once it is back, the orders of a connection still open are
//!   not cancelled (the node renews its leases before it sweeps).
//!
//! scripts/test.sh starts redis-server and moto; these tests FAIL without
//! them, they never skip.

use crate::common;
use crate::harness;

use api::trading::deadman::{GRACE, LEASE_TTL};
use common::deployment::Deployment;
use common::{recv_within, send};
use harness::{start_hub, TestVenue, Trader};
use hub::app::RunningHub;
use hub::config::Config;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::{Proxy, SHARED_REDIS};
use tokio::time::Instant;

const JWT_SECRET: &str = "deadman-faults-0123456789abcdef0123456";

use common::any_port;

async fn bounded<F: std::future::Future>(test: F) -> F::Output {
    common::within(Duration::from_secs(90), test).await
}

/// One node on DynamoDB at `dynamodb` and Redis at `redis`, with a
/// verified trader holding USD.
async fn node(
    dynamodb: String,
    redis: String,
    edit: impl FnOnce(&mut Config),
) -> (TestVenue, RunningHub, Trader) {
    testkit::require_shared_redis();
    let venue = TestVenue::start(any_port(), 50).await;
    let deployment = Deployment::new(dynamodb, JWT_SECRET);
    let key = common::new_data_key();
    let hub = start_hub(&venue, |c| {
        deployment.apply(c, &redis);
        common::share_data_key(c, &key);
        edit(c);
    })
    .await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let trader = Trader::verified(&hub, &email).await;
    venue.credit(&trader.user_id, "USD", "100000").await;
    (venue, hub, trader)
}

/// A socket authenticated with `token` (and `extra` members on `auth`),
/// subscribed to `orders`.
async fn socket(hub: &RunningHub, token: &str, extra: Value) -> common::Ws {
    let mut ws = common::connect(hub).await;
    let mut auth = json!({"op": "auth", "id": 1, "token": token});
    auth.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    send(&mut ws, auth).await;
    let authed = recv_within(&mut ws, 5).await;
    assert_eq!(authed["type"], "authed", "{authed}");
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 2, "channels": ["orders"]}),
    )
    .await;
    let sub = recv_within(&mut ws, 5).await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
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

/// The next `cancelled` notice on `orders` within `within`.
async fn notice(ws: &mut common::Ws, within: Duration) -> Option<Value> {
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
            return Some(v);
        }
    }
}

async fn status(trader: &Trader, order_id: &str) -> String {
    let a = trader
        .call("GET", &format!("/orders/{order_id}"), None)
        .await;
    a.body["status"].as_str().unwrap_or("?").to_owned()
}

/// Waits until the order has `want` as its status.
async fn wait_status(trader: &Trader, order_id: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = status(trader, order_id).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{order_id}: {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn moto() -> SocketAddr {
    format!("127.0.0.1:{}", testkit::shared_moto_port())
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_that_met_the_store_down_is_tried_again_once_it_is_back() {
    bounded(async {
        let proxy = Proxy::start(moto()).await;
        let (venue, hub, trader) = node(proxy.http_url(), SHARED_REDIS.into(), |_| {}).await;
        let mut ws = socket(&hub, &trader.token, json!({})).await;
        let placed = trader.limit("retry-1", "buy", "0.01", "1000", "GTC").await;
        assert_eq!(placed.status, 201, "{}", placed.body);
        let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
        let armed = ask(
            &mut ws,
            json!({"op": "cancel_after", "id": 3, "timeout_ms": 1000}),
        )
        .await;
        assert!(armed["trigger_ts"].is_u64(), "{armed}");
        proxy.cut();
        // The first attempt cannot list the orders: the user hears the
        // switch fired, nothing cancelled yet.
        let first = notice(&mut ws, Duration::from_secs(20))
            .await
            .expect("the switch fired");
        assert_eq!(first["order_ids"], json!([]), "{first}");
        proxy.restore();
        let second = notice(&mut ws, Duration::from_secs(20))
            .await
            .expect("tried again");
        assert_eq!(second["trigger"], "cancel_after", "{second}");
        assert_eq!(second["order_ids"], json!([order_id]), "{second}");
        wait_status(&trader, &order_id, "cancelled", Duration::from_secs(5)).await;
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_as_its_connection_goes_away_is_recorded_and_tracked() {
    bounded(async {
        let (venue, hub, trader) =
            node(testkit::shared_moto_endpoint(), SHARED_REDIS.into(), |c| {
                c.limits.ping_interval_ms = 200;
                c.limits.pong_timeout_ms = 500;
                c.venue.request_timeout_ms = 10_000;
                c.api.upstream_timeout_ms = 10_000;
            })
            .await;
        let mut ws = socket(&hub, &trader.token, json!({"cancel_on_disconnect": true})).await;
        venue.admin("/admin/latency", json!({"ms": 2_500})).await;
        let order = json!({"client_order_id": "gone-1", "pair": harness::PAIR, "side": "buy",
                           "type": "limit", "qty": "0.01", "price": "1000"});
        send(
            &mut ws,
            json!({"op": "order.place", "id": 3, "order": order}),
        )
        .await;
        // The client stops reading (and so answering pings): the hub gives
        // up on it (pong timeout, then 1 s for the reader) while the venue
        // still holds the order's answer back.
        let held = ws;
        let placed_at = Instant::now();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        drop(held);
        venue.admin("/admin/latency", json!({"ms": 0})).await;
        // The order is recorded, and cancelled once the connection's grace
        // is over.
        let deadline = placed_at + Duration::from_secs(15);
        let order_id = loop {
            let list = trader.call("GET", "/orders?limit=10", None).await;
            let found = list.body["orders"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|o| o["client_order_id"] == "gone-1")
                    .and_then(|o| o["order_id"].as_str().map(str::to_owned))
            });
            if let Some(id) = found {
                break id;
            }
            assert!(
                Instant::now() < deadline,
                "the order is not recorded: {}",
                list.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        wait_status(&trader, &order_id, "cancelled", GRACE * 5).await;
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_longer_than_a_lease_does_not_cancel_a_live_connection_s_orders() {
    bounded(async {
        let proxy = Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
        let redis = format!("redis://{}", proxy.addr());
        let (venue, hub, trader) = node(testkit::shared_moto_endpoint(), redis, |_| {}).await;
        let mut ws = socket(&hub, &trader.token, json!({"cancel_on_disconnect": true})).await;
        let order = json!({"client_order_id": "live-1", "pair": harness::PAIR, "side": "buy",
                           "type": "limit", "qty": "0.01", "price": "1000"});
        let a = ask(
            &mut ws,
            json!({"op": "order.place", "id": 3, "order": order}),
        )
        .await;
        assert_eq!(a["type"], "order", "{a}");
        let order_id = a["order"]["order_id"].as_str().unwrap().to_owned();
        proxy.cut();
        tokio::time::sleep(LEASE_TTL + GRACE + Duration::from_millis(1_500)).await;
        proxy.restore();
        // Sweeps run every 0.5 s once Redis answers: none may take this
        // live connection for gone.
        assert!(
            notice(&mut ws, LEASE_TTL + GRACE).await.is_none(),
            "a live connection's orders were cancelled"
        );
        assert_eq!(status(&trader, &order_id).await, "open");
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_cancel_all_does_not_hold_up_the_connection_s_other_ops() {
    bounded(async {
        let (venue, hub, trader) =
            node(testkit::shared_moto_endpoint(), SHARED_REDIS.into(), |_| {}).await;
        let mut ws = socket(&hub, &trader.token, json!({})).await;
        for n in 0..2 {
            let placed = trader
                .limit(&format!("slow-ca-{n}"), "buy", "0.01", "1000", "GTC")
                .await;
            assert_eq!(placed.status, 201, "{}", placed.body);
        }
        // Each cancel takes the venue a second.
        venue.admin("/admin/latency", json!({"ms": 1_000})).await;
        send(&mut ws, json!({"op": "order.cancel_all", "id": 5})).await;
        send(&mut ws, json!({"op": "ping", "id": 6})).await;
        let mut answered = Vec::new();
        while answered.len() < 2 {
            let m = recv_within(&mut ws, 15).await;
            if m.get("channel").is_none() && m["id"].is_i64() {
                answered.push((m["id"].as_i64().unwrap(), m["type"].clone()));
            }
        }
        assert_eq!(
            answered,
            [(6, json!("pong")), (5, json!("cancelled"))],
            "the ping is answered while the cancels run"
        );
        venue.admin("/admin/latency", json!({"ms": 0})).await;
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}
