//! What nodes share through a real `redis-server`: the private-channel
//! backplane, session revocation, the book cache, the outbox lease and
//! sign-in state (`cluster/login.rs`). Several nodes run in
//! this process, each with its own link to Redis, as separate hubs would.
//!
//! Needs `redis-server` on 127.0.0.1:6379 (scripts/test.sh starts it) and
//! the `redis-server` binary; the tests FAIL when either is missing.

use crate::common;

use api::cluster::backplane::{Backplane, WireChannel, WireUpdate, STREAM_LEN};
use api::cluster::book_cache::BookCache;
use api::cluster::RedisLink;
use api::private::{Freshness, PrivateBus, PrivateChannel, PrivateEvent, PrivateUpdate};
use api::secret::Secret;
use api::store::embedded::EmbeddedStore;
use api::store::Store;
use common::redis::{free_port, fresh_prefix, OwnServer, SHARED_REDIS};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// One node's side of the backplane: its bus, fed by its listener.
struct Node {
    bus: Arc<PrivateBus>,
    backplane: Arc<Backplane>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

async fn node(url: &str, prefix: &str) -> Node {
    let link = Arc::new(RedisLink::new(url, prefix).expect("redis url"));
    assert!(
        link.connect(Duration::from_secs(5)).await,
        "redis-server not reachable at {url}: run scripts/test.sh (it starts one)"
    );
    let backplane = Arc::new(Backplane::new(link, STREAM_LEN));
    let bus = Arc::new(PrivateBus::with_backplane(backplane.clone()));
    let (delivered_to, lost_on) = (bus.clone(), bus.clone());
    let listener = tokio::spawn(backplane.clone().listen(
        move |u: WireUpdate| {
            delivered_to.deliver(&u.user, u.channel, u.freshness.as_ref(), u.payload)
        },
        move || lost_on.lost(),
    ));
    wait_until("the listener reads the stream", || backplane.is_listening()).await;
    Node {
        bus,
        backplane,
        listener,
    }
}

fn order(id: &str, version: u64) -> Freshness {
    Freshness::Order {
        order_id: id.to_owned(),
        version,
    }
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn next(rx: &mut broadcast::Receiver<PrivateEvent>) -> PrivateUpdate {
    let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an update within 5 s")
        .expect("bus open");
    match event {
        PrivateEvent::Update(u) => u,
        PrivateEvent::Lost => panic!("an update, not a loss"),
    }
}

/// Nothing more arrives within a short while.
async fn quiet(rx: &mut broadcast::Receiver<PrivateEvent>) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "no further update");
}

#[tokio::test]
async fn an_update_published_by_several_nodes_reaches_every_node_once_in_order() {
    let prefix = fresh_prefix("bp");
    let (a, b) = (
        node(SHARED_REDIS, &prefix).await,
        node(SHARED_REDIS, &prefix).await,
    );
    let mut on_a = a.bus.subscribe("alice");
    let mut on_b = b.bus.subscribe("alice");
    let mut bob_on_b = b.bus.subscribe("bob");
    // Both nodes sync the same venue events: each publishes each change.
    for n in 1..=3 {
        for publisher in [&a, &b] {
            publisher
                .bus
                .publish(
                    "alice",
                    PrivateChannel::Orders,
                    order("order-1", n),
                    json!({ "version": n }),
                )
                .await;
        }
    }
    // A change only one node sees reaches the other's subscribers too.
    b.bus
        .publish(
            "alice",
            PrivateChannel::Balances,
            Freshness::Balance {
                asset: "USD".into(),
                venue_ts: 1,
            },
            json!({"asset": "USD"}),
        )
        .await;
    a.bus
        .publish(
            "alice",
            PrivateChannel::Orders,
            order("order-2", 1),
            json!({"version": 4}),
        )
        .await;
    for rx in [&mut on_a, &mut on_b] {
        for n in 1..=3u64 {
            let u = next(rx).await;
            assert_eq!((u.channel, u.seq), (PrivateChannel::Orders, n));
            assert_eq!(u.payload["version"], n, "in publish order");
        }
        let u = next(rx).await;
        assert_eq!((u.channel, u.seq), (PrivateChannel::Balances, 1));
        let u = next(rx).await;
        assert_eq!((u.channel, u.seq), (PrivateChannel::Orders, 4));
        quiet(rx).await;
    }
    assert!(bob_on_b.try_recv().is_err(), "bob sees nothing of alice");
    assert!(a.backplane.is_listening() && b.backplane.is_listening());
}

#[tokio::test]
async fn with_redis_down_a_node_delivers_its_own_updates_locally() {
    let port = free_port();
    let link = Arc::new(RedisLink::new(&format!("redis://127.0.0.1:{port}"), "").unwrap());
    let bus = PrivateBus::with_backplane(Arc::new(Backplane::new(link, STREAM_LEN)));
    let mut rx = bus.subscribe("alice");
    bus.publish(
        "alice",
        PrivateChannel::Orders,
        order("x", 1),
        json!({"n": 1}),
    )
    .await;
    let u = next(&mut rx).await;
    assert_eq!((u.seq, u.payload["n"].as_u64()), (1, Some(1)));
}

#[tokio::test]
async fn a_listener_that_loses_its_connection_carries_on_from_its_last_entry() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let _redis = OwnServer::redis(port);
    let publisher = node(&url, "").await;
    let listener = node(&url, "").await;
    let mut rx = listener.bus.subscribe("alice");
    publisher
        .bus
        .publish(
            "alice",
            PrivateChannel::Orders,
            order("o", 1),
            json!({"n": 1}),
        )
        .await;
    assert_eq!(next(&mut rx).await.payload["n"], 1);
    // Cut every client connection (listeners and the publishers' managed
    // connection), then publish before the listener is back.
    let admin = redis::Client::open(url.as_str()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut admin)
        .await
        .unwrap();
    // The listener notices the cut before anything is published.
    wait_until("the listener notices the cut", || {
        !listener.backplane.is_listening()
    })
    .await;
    let wire = WireUpdate {
        user: "alice".into(),
        channel: WireChannel::Orders,
        freshness: Some(order("o", 2)),
        payload: json!({"n": 2}),
    };
    // Through the backplane directly (no local fallback), retrying while
    // the publisher's connection comes back.
    let mut published = false;
    for _ in 0..100 {
        if publisher
            .backplane
            .publish("alice:o:2", &wire)
            .await
            .is_ok()
        {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(published, "the publisher reconnects");
    let u = next(&mut rx).await;
    assert_eq!(u.payload["n"], 2, "the entry written while cut off arrives");
    assert_eq!(u.seq, 2);
}

/// Two API nodes on one store and one Redis, with the same signing key.
async fn two_api_nodes(prefix: &str) -> (common::TestApi, common::TestApi, tempfile::TempDir) {
    two_api_nodes_with(prefix, |_| {}).await
}

/// [`two_api_nodes`] with `edit` applied to both configs.
async fn two_api_nodes_with(
    prefix: &str,
    edit: impl Fn(&mut api::ApiConfig),
) -> (common::TestApi, common::TestApi, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let config = || {
        let mut config = api::ApiConfig {
            redis_url: Some(Secret::new(SHARED_REDIS)),
            redis_key_prefix: prefix.to_owned(),
            jwt_secret: Some(Secret::new("0123456789abcdef0123456789abcdef-cluster")),
            ..common::test_config()
        };
        edit(&mut config);
        config
    };
    let a = common::start_sharing(config(), store.clone()).await;
    let b = common::start_sharing(config(), store).await;
    (a, b, dir)
}

#[tokio::test]
async fn a_session_revoked_on_one_node_is_refused_on_another_at_once() {
    let prefix = fresh_prefix("sessions");
    let (a, b, _dir) = two_api_nodes(&prefix).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (_, access, refresh) = a.signup(&email).await;
    // Node B verifies the token once: the family is now cached as live.
    let (s, body, _) = b.get("/users/profile", Some(&access)).await;
    assert_eq!(s, 200, "{body}");
    let link = RedisLink::new(SHARED_REDIS, &prefix).unwrap();
    assert!(link.connect(Duration::from_secs(5)).await);
    let family = refresh.split('.').next().unwrap();
    // Caching is best effort (a short timeout): on a busy machine another
    // request may be what caches it.
    let mut cached: Option<String> = None;
    for _ in 0..50 {
        cached = redis::cmd("GET")
            .arg(link.key(&format!("nax:session:{family}")))
            .query_async(&mut link.connection().unwrap())
            .await
            .unwrap();
        if cached.is_some() {
            break;
        }
        let (s, _, _) = b.get("/users/profile", Some(&access)).await;
        assert_eq!(s, 200);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cached: Value = serde_json::from_str(&cached.expect("family cached in redis")).unwrap();
    assert_eq!(cached["state"], "live");

    let (s, body, _) = a.post("/auth/logout", Some(&access), json!({})).await;
    assert_eq!(s, 204, "logout: {body}");
    let (s, body, _) = b.get("/users/profile", Some(&access)).await;
    common::assert_error(s, &body, 401, "unauthorized");
    let (s, body, _) = b
        .post("/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    common::assert_error(s, &body, 401, "invalid_refresh_token");
}

#[tokio::test]
async fn with_redis_down_tokens_are_still_checked_against_the_store() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let node = common::start_sharing(
        api::ApiConfig {
            redis_url: Some(Secret::new(format!("redis://127.0.0.1:{port}"))),
            ..common::test_config()
        },
        store,
    )
    .await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (_, access, _) = node.signup(&email).await;
    let (s, body, _) = node.get("/users/profile", Some(&access)).await;
    assert_eq!(s, 200, "{body}");
    let (s, _, _) = node.post("/auth/logout", Some(&access), json!({})).await;
    assert_eq!(s, 204);
    let (s, body, _) = node.get("/users/profile", Some(&access)).await;
    common::assert_error(s, &body, 401, "unauthorized");
}

#[tokio::test]
async fn book_snapshots_live_five_seconds() {
    let link = Arc::new(RedisLink::new(SHARED_REDIS, &fresh_prefix("book")).unwrap());
    assert!(link.connect(Duration::from_secs(5)).await);
    let cache = BookCache::new(link.clone());
    assert_eq!(cache.get("BTC-USD").await.unwrap(), None);
    cache
        .put("BTC-USD", r#"{"pair":"BTC-USD","seq":7}"#.into())
        .await
        .unwrap();
    assert_eq!(
        cache.get("BTC-USD").await.unwrap().as_deref(),
        Some(r#"{"pair":"BTC-USD","seq":7}"#)
    );
    assert!(cache.key("BTC-USD").ends_with("market:BTC-USD:orderbook"));
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(cache.key("BTC-USD"))
        .query_async(&mut link.connection().unwrap())
        .await
        .unwrap();
    assert!((1..=5000).contains(&ttl_ms), "TTL 5 s, got {ttl_ms} ms");
}

/// Counts what it is handed.
#[derive(Default)]
struct Counting(parking_lot::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl api::events::EventPublisher for Counting {
    async fn publish(
        &self,
        events: &[Arc<api::events::Event>],
    ) -> Result<(), api::events::PublishError> {
        self.0.lock().extend(events.iter().map(|e| e.id.clone()));
        Ok(())
    }
}

#[tokio::test]
async fn nodes_sharing_a_store_relay_its_outbox_one_at_a_time_and_take_over() {
    use api::cluster::lease::{Lease, TTL};
    use api::events::relay::{Gate, Relay};
    use api::events::{Event, EventType};
    use api::store::Write;

    let prefix = fresh_prefix("lease");
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let node = || async {
        let link = Arc::new(RedisLink::new(SHARED_REDIS, &prefix).unwrap());
        assert!(
            link.connect(Duration::from_secs(5)).await,
            "redis-server on 6379"
        );
        let lease = Lease::new(link, "outbox-relay");
        lease.renew().await;
        let renewing = tokio::spawn(lease.clone().run());
        let sink = Arc::new(Counting::default());
        let gate = lease.clone();
        let relay = Relay::start_gated(
            store.clone(),
            sink.clone(),
            Some(Arc::new(move || gate.held()) as Gate),
        );
        (lease, renewing, sink, relay)
    };
    let (lease_a, renewing_a, sink_a, relay_a) = node().await;
    let (lease_b, renewing_b, sink_b, relay_b) = node().await;
    assert!(lease_a.held() && !lease_b.held(), "the first node holds it");

    let commit = |n: usize| {
        let store = store.clone();
        async move {
            let mut ids = Vec::new();
            for i in 0..n {
                let e = Event::new(EventType::OrderAccepted, Some("u"), json!({ "i": i }));
                ids.push(e.id.clone());
                store.commit(vec![Write::Emit(e)]).await.unwrap();
            }
            ids
        }
    };
    let first = commit(30).await;
    relay_a.notify();
    relay_b.notify();
    wait_until("node A relays all 30", || sink_a.0.lock().len() == 30).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(*sink_a.0.lock(), first, "in commit order");
    assert!(sink_b.0.lock().is_empty(), "node B relayed nothing");

    // Node A dies: B takes over within the lease's lifetime.
    renewing_a.abort();
    relay_a.stop().await;
    let second = commit(10).await;
    for _ in 0..((TTL.as_millis() / 100) as usize + 30) {
        if sink_b.0.lock().len() == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(*sink_b.0.lock(), second, "node B relays after A is gone");
    assert!(lease_b.held());
    renewing_b.abort();
    relay_b.stop().await;
}

/// Sign-in state shared by the nodes: the TOTP replay guard and the login
/// throttle.
mod login;

/// Puts `link` to rest: a call over its timeout fails it.
async fn rest(link: &RedisLink) {
    use api::cluster::link::RedisUnavailable;
    let slow = link
        .call(Duration::from_millis(5), |_| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, redis::RedisError>(())
        })
        .await;
    assert!(
        matches!(slow, Err(RedisUnavailable::Timeout(_))),
        "{slow:?}"
    );
}

/// After one call fails, the link rests and fails calls at once; a call
/// with patience (`call_within`, for callers with no fallback) waits the
/// window out and is answered, one whose patience is shorter than the
/// window is still refused at once, and several waiting together are all
/// answered (one probes, the others wait for its answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_patience_waits_out_the_window_that_fails_other_calls() {
    use api::cluster::link::{RedisUnavailable, FAIL_FAST};
    let link = RedisLink::new(SHARED_REDIS, &fresh_prefix("rest")).unwrap();
    assert!(
        link.connect(Duration::from_secs(5)).await,
        "redis at {SHARED_REDIS}"
    );
    let ping = |mut c: redis::aio::ConnectionManager| async move {
        redis::cmd("PING").query_async::<String>(&mut c).await
    };
    rest(&link).await;
    let at_once = link.call(Duration::from_secs(1), ping).await;
    assert!(
        matches!(at_once, Err(RedisUnavailable::Resting)),
        "{at_once:?}"
    );
    let short = link
        .call_within(Duration::from_secs(1), FAIL_FAST / 10, ping)
        .await;
    assert!(matches!(short, Err(RedisUnavailable::Resting)), "{short:?}");
    let patient = link
        .call_within(Duration::from_secs(1), FAIL_FAST, ping)
        .await;
    assert_eq!(patient.unwrap(), "PONG");

    // Several waiters of one window: one is its probe, the others wait
    // for the probe's answer instead of failing.
    rest(&link).await;
    let link = Arc::new(link);
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let link = link.clone();
            tokio::spawn(async move {
                link.call_within(Duration::from_secs(1), 2 * FAIL_FAST, ping)
                    .await
            })
        })
        .collect();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap().unwrap(), "PONG");
    }
}
