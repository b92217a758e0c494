//! Several hub nodes behind one load balancer (issue 7): one venue (the
//! standalone GraphQL venue in this process), one Redis (127.0.0.1:6379,
//! or a test's own `redis-server`), one DynamoDB (moto on
//! `NAX_TEST_MOTO_PORT`). Every node keeps its own book; users, sessions
//! and orders are shared.
//!
//! - a user connected to node B sees on `orders` the order placed through
//!   node A's REST API, once per change, and can cancel it through B;
//! - a session revoked on node A (logout, refresh-token reuse) is refused
//!   on node B at once;
//! - Redis stopped and restarted under a node: it keeps serving (REST,
//!   private channels), its rate limits keep holding, and it uses Redis
//!   again once it is back.
//!
//! scripts/test.sh starts redis-server and moto; these tests FAIL without
//! them, they never skip.

// Shared with upstream.rs, which uses more of them.
use crate::common;
use crate::harness;

use common::deployment::Deployment;
use common::{recv_within, send};
use harness::{start_hub, TestVenue, Trader};
use hub::app::RunningHub;
use hub::config::Config;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::{OwnServer, SHARED_REDIS};
use tokio::time::Instant;

/// Every node of a deployment signs with the same key.
const JWT_SECRET: &str = "nodes-test-0123456789abcdef0123456789";

use common::any_port;

/// The settings every node of one deployment shares: DynamoDB tables and
/// Redis keys of this test's own, the same signing key, a KMS key (on
/// moto) of its own whose data key the nodes share through the store.
async fn deployment(redis_url: &str) -> impl Fn(&mut Config) + Clone {
    let moto = testkit::shared_moto_endpoint();
    let shared = Deployment::new(moto.clone(), JWT_SECRET);
    let redis_url = redis_url.to_owned();
    let kms = api::ApiConfig {
        kms_endpoint: moto.clone(),
        aws_access_key_id: "test".into(),
        aws_secret_access_key: Some(api::secret::Secret::new("test")),
        ..api::ApiConfig::default()
    };
    let kms_key_id = api::seal::create_kms_key(&api::seal::kms_client(&kms).await)
        .await
        .expect("a KMS key on moto");
    move |c: &mut Config| {
        shared.apply(c, &redis_url);
        c.api.kms_key_id = kms_key_id.clone();
        c.api.kms_endpoint = moto.clone();
    }
}

async fn bounded<F: std::future::Future>(test: F) -> F::Output {
    common::within(Duration::from_secs(60), test).await
}

/// A WebSocket on `hub`, authenticated as `trader`, subscribed to
/// `channels`.
async fn private_socket(hub: &RunningHub, trader: &Trader, channels: Value) -> common::Ws {
    let mut ws = common::connect(hub).await;
    send(
        &mut ws,
        json!({"op": "auth", "id": 1, "token": trader.token}),
    )
    .await;
    let authed = recv_within(&mut ws, 5).await;
    assert_eq!(authed["type"], "authed", "{authed}");
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 2, "channels": channels}),
    )
    .await;
    let subscribed = recv_within(&mut ws, 5).await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    ws
}

/// Every `orders` message arriving within `window`.
async fn orders_within(ws: &mut common::Ws, window: Duration) -> Vec<Value> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(left, futures_util::StreamExt::next(ws)).await
        else {
            break;
        };
        if let Ok(text) = msg.to_text() {
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            if v["channel"] == "orders" {
                got.push(v);
            }
        }
    }
    got
}

/// Waits until `pred` holds for one of the `orders` messages (collecting
/// all of them into `seen`).
async fn wait_order(ws: &mut common::Ws, seen: &mut Vec<Value>, pred: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.iter().any(&pred) {
        assert!(
            Instant::now() < deadline,
            "no such orders message within 10 s; got {seen:?}"
        );
        seen.extend(orders_within(ws, Duration::from_millis(200)).await);
    }
}

/// One venue, two nodes sharing the shared Redis and DynamoDB tables of
/// their own, and a verified user of node A (and the same session on B).
async fn two_nodes() -> (TestVenue, RunningHub, RunningHub, String, Trader, Trader) {
    testkit::require_shared_redis();
    let venue = TestVenue::start(any_port(), 50).await;
    let shared = deployment(SHARED_REDIS).await;
    let node_a = start_hub(&venue, shared.clone()).await;
    let node_b = start_hub(&venue, shared).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let on_a = Trader::verified(&node_a, &email).await;
    let on_b = on_a.on(&node_b);
    (venue, node_a, node_b, email, on_a, on_b)
}

#[tokio::test]
async fn a_user_on_node_b_sees_the_order_placed_through_node_a() {
    bounded(async {
        let (venue, node_a, node_b, _, on_a, on_b) = two_nodes().await;
        venue.credit(&on_a.user_id, "USD", "100000").await;
        let mut ws = private_socket(&node_b, &on_a, json!(["orders"])).await;

        // A resting buy far below the market, through node A.
        let placed = on_a.limit("nodes-1", "buy", "0.01", "1000", "GTC").await;
        assert_eq!(placed.status, 201, "{}", placed.body);
        let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
        let mut seen = Vec::new();
        wait_order(&mut ws, &mut seen, |m| {
            m["order"]["order_id"] == order_id.as_str() && m["order"]["status"] == "open"
        })
        .await;

        // Node B knows the order (one store) and cancels it; its client
        // sees that too.
        let listed = on_b.call("GET", &format!("/orders/{order_id}"), None).await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        let cancelled = on_b
            .call("DELETE", &format!("/orders/{order_id}"), None)
            .await;
        assert_eq!(cancelled.status, 200, "{}", cancelled.body);
        wait_order(&mut ws, &mut seen, |m| {
            m["order"]["order_id"] == order_id.as_str() && m["order"]["status"] == "cancelled"
        })
        .await;
        seen.extend(orders_within(&mut ws, Duration::from_millis(500)).await);

        // Both nodes synced every venue event; each change arrived once,
        // numbered without gaps.
        let mut prev = 0;
        for m in &seen {
            assert_eq!(m["prev_seq"], prev, "chained: {seen:?}");
            prev = m["seq"].as_u64().unwrap();
        }
        let statuses: Vec<&str> = seen
            .iter()
            .map(|m| m["order"]["status"].as_str().unwrap())
            .collect();
        let mut unique = statuses.clone();
        unique.dedup();
        assert_eq!(statuses, unique, "no change delivered twice: {seen:?}");
        assert_eq!(statuses.last(), Some(&"cancelled"));

        // Those updates went through Redis: both nodes synced the venue,
        // and the stream holds each order change once.
        let link = node_a.api.as_ref().unwrap().redis.clone().unwrap();
        let stream_key = link.key("nax:private");
        let entries: redis::streams::StreamRangeReply = link
            .call(Duration::from_secs(2), |mut c| async move {
                redis::cmd("XRANGE")
                    .arg(stream_key)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut c)
                    .await
            })
            .await
            .expect("redis answers");
        let of_order: Vec<String> = entries
            .ids
            .iter()
            .filter_map(|e| e.get::<String>("u"))
            .filter(|u| u.contains(order_id.as_str()) && u.contains("\"channel\":\"orders\""))
            .collect();
        assert_eq!(
            of_order.len(),
            seen.len(),
            "each change the socket got is in the stream once: {of_order:?}"
        );

        // The nodes keep market:{pair}:orderbook in Redis (TTL 5 s).
        let cache = api::cluster::book_cache::BookCache::new(link);
        let deadline = Instant::now() + Duration::from_secs(5);
        let cached = loop {
            if let Some(body) = cache.get(harness::PAIR).await.expect("redis answers") {
                break body;
            }
            assert!(Instant::now() < deadline, "no cached book within 5 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let cached: Value = serde_json::from_str(&cached).unwrap();
        let (status, rest) = harness::get(node_b.addr, "/markets/BTC-USD/orderbook").await;
        assert_eq!(status, 200);
        assert_eq!(cached["pair"], harness::PAIR);
        assert_eq!(cached["epoch"], rest["epoch"], "one venue epoch");
        assert!(cached["seq"].as_u64().unwrap() <= rest["seq"].as_u64().unwrap());
        assert!(cached["bids"].as_array().is_some_and(|b| !b.is_empty()));
        assert!(cached["checksum"].is_u64());
        node_a.stop().await;
        node_b.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_session_revoked_on_node_a_is_refused_on_node_b() {
    bounded(async {
        let (venue, node_a, node_b, email, on_a, on_b) = two_nodes().await;
        // Logout on A: B refuses the access and the refresh token.
        assert_eq!(on_b.call("GET", "/users/profile", None).await.status, 200);
        let out = on_a.call("POST", "/auth/logout", Some(json!({}))).await;
        assert_eq!(out.status, 204, "{}", out.body);
        let refused = on_b.call("GET", "/users/profile", None).await;
        assert_eq!(
            (refused.status, refused.body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{}",
            refused.body
        );
        let refresh = on_b
            .call(
                "POST",
                "/auth/refresh",
                Some(json!({"refresh_token": on_a.refresh})),
            )
            .await;
        assert_eq!(
            (refresh.status, refresh.body["error"]["code"].as_str()),
            (401, Some("invalid_refresh_token")),
            "{}",
            refresh.body
        );

        // Refresh-token reuse: rotated on A, the old token replayed on B
        // revokes the family on every node.
        let login = on_a
            .call(
                "POST",
                "/auth/login",
                Some(json!({"email": email, "password": "Correct-Horse-9-Battery"})),
            )
            .await;
        assert_eq!(login.status, 200, "{}", login.body);
        let old_refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
        let rotated = on_a
            .call(
                "POST",
                "/auth/refresh",
                Some(json!({"refresh_token": old_refresh})),
            )
            .await;
        assert_eq!(rotated.status, 200, "{}", rotated.body);
        let new_access = rotated.body["access_token"].as_str().unwrap().to_owned();
        let mut b_session = on_b.on(&node_b);
        b_session.token = new_access;
        assert_eq!(
            b_session.call("GET", "/users/profile", None).await.status,
            200
        );
        let replay = on_b
            .call(
                "POST",
                "/auth/refresh",
                Some(json!({"refresh_token": old_refresh})),
            )
            .await;
        assert_eq!(
            replay.body["error"]["code"], "token_reused",
            "{}",
            replay.body
        );
        let mut a_session = on_a.on(&node_a);
        a_session.token = b_session.token.clone();
        for node in [&a_session, &b_session] {
            let r = node.call("GET", "/users/profile", None).await;
            assert_eq!(r.status, 401, "{}", r.body);
        }
        node_a.stop().await;
        node_b.stop().await;
        venue.stop().await;
    })
    .await;
}

/// Statuses of `n` anonymous requests from `ip` (counted against it).
async fn burst(hub: &RunningHub, ip: std::net::IpAddr, n: usize) -> Vec<u16> {
    let http = reqwest::Client::builder()
        .local_address(ip)
        .build()
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let r = http
            .get(format!("http://{}/users/profile", hub.addr))
            .send()
            .await
            .unwrap();
        out.push(r.status().as_u16());
    }
    out
}

/// A loopback address of this run's own (a rate-limit budget nobody else
/// spends).
fn own_loopback_ip() -> std::net::IpAddr {
    let octets: [u8; 3] = rand::random();
    std::net::Ipv4Addr::new(127, octets[0], octets[1], octets[2].max(2)).into()
}

#[tokio::test]
async fn a_node_keeps_serving_while_redis_is_down_and_uses_it_again_after() {
    bounded(async {
        let port = testkit::free_port();
        let url = format!("redis://127.0.0.1:{port}");
        let redis = OwnServer::redis(port);
        let venue = TestVenue::start(any_port(), 20).await;
        let shared = deployment(&url).await;
        // 20 at once, then one per 10 s: the trader's own requests (per
        // user) fit, an anonymous burst of 21 (per IP) does not.
        let node = start_hub(&venue, move |c| {
            shared(c);
            c.api.requests_per_minute = 6;
            c.api.request_burst = 20;
        })
        .await;
        let api = node.api.clone().expect("the node runs the API");
        let burst_size = api.config.request_burst as usize;
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        let trader = Trader::verified(&node, &email).await;
        venue.credit(&trader.user_id, "USD", "100000").await;
        let mut ws = private_socket(&node, &trader, json!(["orders"])).await;

        drop(redis);
        // Sessions are read from the store, orders reach the socket, and
        // the limiter counts in process: the burst still holds.
        assert_eq!(trader.call("GET", "/users/profile", None).await.status, 200);
        let placed = trader
            .limit("redis-down-1", "buy", "0.01", "1000", "GTC")
            .await;
        assert_eq!(placed.status, 201, "{}", placed.body);
        let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
        let mut seen = Vec::new();
        wait_order(&mut ws, &mut seen, |m| {
            m["order"]["order_id"] == order_id.as_str()
        })
        .await;
        let fallbacks = api.limiter.redis_fallbacks();
        let statuses = burst(&node, own_loopback_ip(), burst_size + 1).await;
        assert!(
            statuses[..burst_size].iter().all(|&s| s == 401),
            "{statuses:?}"
        );
        assert_eq!(statuses[burst_size], 429, "the limit holds without Redis");
        assert!(
            api.limiter.redis_fallbacks() > fallbacks,
            "decided in process"
        );

        // Redis back on the same port (empty): the node uses it again.
        let _redis = OwnServer::redis(port);
        let ip = own_loopback_ip();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let before = api.limiter.redis_fallbacks();
            burst(&node, ip, 1).await;
            if api.limiter.redis_fallbacks() == before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the limiter never used Redis again"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(trader.call("GET", "/users/profile", None).await.status, 200);
        node.stop().await;
        venue.stop().await;
    })
    .await;
}
