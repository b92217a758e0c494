//! A node whose private-channel backplane listener falls behind the Redis
//! stream's trimming (`[api] backplane_stream_len`, small here) closes the
//! connections with a private subscription with 4008 `private updates
//! lost` (they must resync), counted in `nax_private_lost_closes_total`;
//! its public-only and authenticated-only connections, and the other
//! node's, carry on.
//!
//! Two nodes on one venue, the shared Redis (127.0.0.1:6379) and DynamoDB
//! tables of this test's own on moto (`NAX_TEST_MOTO_PORT`); node B talks
//! to Redis through a proxy the test cuts. scripts/test.sh starts
//! redis-server and moto; this test FAILS without them, it never skips.

// Shared with upstream.rs, which uses more of them.
use crate::common;
use crate::harness;

use api::private::{Freshness, PrivateChannel};
use common::deployment::Deployment;
use common::{recv_within, send, Ws};
use futures_util::StreamExt as _;
use harness::{start_hub, TestVenue, Trader};
use hub::app::RunningHub;
use hub::config::Config;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::{Proxy, SHARED_REDIS};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Entries the stream keeps in this test.
const STREAM_LEN: u64 = 10;
/// Updates published while node B is cut off: far more than the stream
/// keeps (`MAXLEN ~` trims in nodes of 100 entries).
const WRITTEN_WHILE_AWAY: u64 = 400;
const JWT_SECRET: &str = "private-gap-test-0123456789abcdef0123";

/// One deployment's settings (DynamoDB tables and Redis keys of this
/// test's own), with node-specific Redis URLs.
fn deployment() -> impl Fn(&mut Config, &str) + Clone {
    let shared = Deployment::new(testkit::shared_moto_endpoint(), JWT_SECRET);
    let data_key = common::new_data_key();
    move |c: &mut Config, redis_url: &str| {
        common::share_data_key(c, &data_key);
        shared.apply(c, redis_url);
        c.api.backplane_stream_len = STREAM_LEN;
    }
}

/// A socket on `hub`, authenticated as `trader` when given, subscribed to
/// `channels` when not empty.
async fn socket(hub: &RunningHub, trader: Option<&Trader>, channels: Value) -> Ws {
    let mut ws = common::connect(hub).await;
    if let Some(trader) = trader {
        send(
            &mut ws,
            json!({"op": "auth", "id": 1, "token": trader.token}),
        )
        .await;
        let authed = recv_within(&mut ws, 5).await;
        assert_eq!(authed["type"], "authed", "{authed}");
    }
    if channels.as_array().is_some_and(|c| !c.is_empty()) {
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 2, "channels": channels}),
        )
        .await;
        let subscribed = common::recv_type(&mut ws, "subscribed").await;
        assert_eq!(subscribed["id"], 2, "{subscribed}");
    }
    ws
}

/// Publishes an `orders` update of `user` through `node`'s bus.
async fn publish(node: &RunningHub, user: &str, order_id: &str, version: u64) {
    let api = node.api.as_ref().expect("the node runs the API");
    let freshness = Freshness::Order {
        order_id: order_id.to_owned(),
        version,
    };
    let payload = json!({"order_id": order_id, "version": version});
    api.private
        .publish(user, PrivateChannel::Orders, freshness, payload)
        .await;
}

/// Reads until an `orders` message for `order_id` (other frames skipped).
async fn wait_order(ws: &mut Ws, order_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no {order_id} within 10 s");
        let v = recv_within(ws, 10).await;
        if v["channel"] == "orders" && v["order"]["order_id"] == order_id {
            return;
        }
    }
}

/// The close frame the server sends, within `secs` (other frames skipped).
async fn closed_with(ws: &mut Ws, secs: u64) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("no close within {secs} s"),
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                return (frame.code.into(), frame.reason.to_string())
            }
            Ok(Some(Ok(Message::Close(None)) | Err(_)) | None) => {
                panic!("closed without a close frame")
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The socket still answers requests: a subscribe gets its reply.
async fn still_open(ws: &mut Ws, id: u64) {
    send(
        ws,
        json!({"op": "subscribe", "id": id, "channels": ["ticker.BTC-USD"]}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no reply to subscribe {id}");
        let v = recv_within(ws, 10).await;
        if v["id"] == id {
            assert_eq!(v["type"], "subscribed", "{v}");
            return;
        }
    }
}

#[tokio::test]
async fn a_node_behind_the_trimmed_stream_closes_its_private_subscribers_with_4008() {
    tokio::time::timeout(Duration::from_secs(90), async {
        testkit::require_shared_redis();
        let venue = TestVenue::start("127.0.0.1:0".parse().unwrap(), 20).await;
        let proxy = Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
        let proxied = format!("redis://{}", proxy.addr());
        let shared = deployment();
        let on = shared.clone();
        let node_a = start_hub(&venue, move |c| on(c, SHARED_REDIS)).await;
        let node_b = start_hub(&venue, move |c| shared(c, &proxied)).await;
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        let trader = Trader::verified(&node_a, &email).await;

        let mut private_b = socket(&node_b, Some(&trader), json!(["orders"])).await;
        let mut authed_only_b = socket(&node_b, Some(&trader), json!([])).await;
        let mut public_b = socket(&node_b, None, json!(["trades.BTC-USD"])).await;
        let mut private_a = socket(&node_a, Some(&trader), json!(["orders", "balances"])).await;

        // Node B's listener reads an entry of the stream.
        publish(&node_a, &trader.user_id, "probe", 1).await;
        wait_order(&mut private_b, "probe").await;
        wait_order(&mut private_a, "probe").await;

        // B is cut off from Redis while A's updates run past what the
        // stream keeps.
        let backplane_b = node_b
            .api
            .as_ref()
            .and_then(|api| api.private.backplane().cloned())
            .expect("node B has a backplane");
        proxy.cut();
        let deadline = Instant::now() + Duration::from_secs(10);
        while backplane_b.is_listening() {
            assert!(Instant::now() < deadline, "B's listener never noticed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let nobody = format!("nobody-{}", uuid::Uuid::new_v4().simple());
        for n in 1..=WRITTEN_WHILE_AWAY {
            publish(&node_a, &nobody, "filler", n).await;
        }
        let link = node_a.api.as_ref().unwrap().redis.clone().unwrap();
        let stream = link.key("nax:private");
        let len: u64 = link
            .call(Duration::from_secs(2), |mut c| async move {
                redis::cmd("XLEN").arg(stream).query_async(&mut c).await
            })
            .await
            .expect("redis answers");
        assert!(
            len < WRITTEN_WHILE_AWAY,
            "the stream is trimmed to about {STREAM_LEN} entries: {len}"
        );
        proxy.restore();

        // B's private subscriber must resync; nothing else on B is closed.
        let (code, reason) = closed_with(&mut private_b, 20).await;
        assert_eq!((code, reason.as_str()), (4008, "private updates lost"));
        still_open(&mut public_b, 10).await;
        still_open(&mut authed_only_b, 11).await;
        // Node A lost nothing: its subscriber stays and gets what follows.
        publish(&node_a, &trader.user_id, "after", 1).await;
        wait_order(&mut private_a, "after").await;
        let (status, metrics) = common::http_get(node_b.addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            metrics
                .lines()
                .any(|l| l == "nax_private_lost_closes_total 1"),
            "one close counted: {}",
            metrics
                .lines()
                .filter(|l| l.contains("lost"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        node_a.stop().await;
        node_b.stop().await;
        venue.stop().await;
    })
    .await
    .expect("the test finishes within 90 s");
}
