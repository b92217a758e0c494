//! The private-channel backplane's listener, fallen behind the stream's
//! trimming (`[api] backplane_stream_len`): it reports the loss to every
//! subscriber of its node, once and after what it delivered before, then
//! carries on with what follows. The listener's Redis connection goes
//! through a proxy the test cuts; the stream is on the shared
//! `redis-server` (127.0.0.1:6379, scripts/test.sh starts it; the test
//! FAILS without it).

use crate::common;

use api::cluster::backplane::{Backplane, WireChannel, WireUpdate};
use api::cluster::RedisLink;
use api::private::{PrivateBus, PrivateEvent};
use common::redis::{fresh_prefix, SHARED_REDIS};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use testkit::Proxy;
use tokio::sync::broadcast;

/// Entries the stream keeps in this test.
const STREAM_LEN: u64 = 10;
/// Entries written while the listener is cut off: far more than the
/// stream keeps (`MAXLEN ~` trims in nodes of 100 entries).
const WRITTEN_WHILE_AWAY: u64 = 400;

async fn link(url: &str, prefix: &str) -> Arc<RedisLink> {
    let link = Arc::new(RedisLink::new(url, prefix).expect("redis url"));
    assert!(
        link.connect(Duration::from_secs(5)).await,
        "redis-server not reachable at {url}: run scripts/test.sh (it starts one)"
    );
    link
}

fn wire(user: &str, n: u64) -> WireUpdate {
    WireUpdate {
        user: user.to_owned(),
        channel: WireChannel::Orders,
        freshness: None,
        payload: json!({ "n": n }),
    }
}

async fn next(rx: &mut broadcast::Receiver<PrivateEvent>) -> PrivateEvent {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("an event within 15 s")
        .expect("bus open")
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn a_listener_behind_the_trimmed_stream_reports_the_loss_once_and_carries_on() {
    testkit::require_shared_redis();
    let prefix = fresh_prefix("gap");
    let publisher = Backplane::new(link(SHARED_REDIS, &prefix).await, STREAM_LEN);
    let proxy = Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let proxied = format!("redis://{}", proxy.addr());
    let backplane = Arc::new(Backplane::new(link(&proxied, &prefix).await, STREAM_LEN));
    let bus = Arc::new(PrivateBus::with_backplane(backplane.clone()));
    let (delivered_to, lost_on) = (bus.clone(), bus.clone());
    let listener = tokio::spawn(backplane.clone().listen(
        move |u: WireUpdate| {
            delivered_to.deliver(&u.user, u.channel, u.freshness.as_ref(), u.payload)
        },
        move || lost_on.lost(),
    ));
    wait_until("the listener reads", || backplane.is_listening()).await;
    let mut alice = bus.subscribe("alice");
    let mut bob = bus.subscribe("bob");

    publisher
        .publish("alice:1", &wire("alice", 1))
        .await
        .unwrap();
    match next(&mut alice).await {
        PrivateEvent::Update(u) => assert_eq!(u.payload["n"], 1),
        PrivateEvent::Lost => panic!("no loss yet"),
    }

    // Away while the stream moves on past what it keeps.
    proxy.cut();
    wait_until("the listener is cut off", || !backplane.is_listening()).await;
    for n in 0..WRITTEN_WHILE_AWAY {
        let key = format!("nobody:{n}");
        publisher.publish(&key, &wire("nobody", n)).await.unwrap();
    }
    publisher
        .publish("alice:2", &wire("alice", 2))
        .await
        .unwrap();
    proxy.restore();

    // Every subscriber hears of the loss, alice before what follows it.
    assert_eq!(next(&mut alice).await, PrivateEvent::Lost);
    match next(&mut alice).await {
        PrivateEvent::Update(u) => assert_eq!(u.payload["n"], 2, "it carries on"),
        PrivateEvent::Lost => panic!("one gap, one loss"),
    }
    assert_eq!(next(&mut bob).await, PrivateEvent::Lost);
    publisher
        .publish("alice:3", &wire("alice", 3))
        .await
        .unwrap();
    match next(&mut alice).await {
        PrivateEvent::Update(u) => assert_eq!(u.payload["n"], 3),
        PrivateEvent::Lost => panic!("one gap, one loss"),
    }
    assert!(bob.try_recv().is_err(), "one loss only");
    listener.abort();
}
