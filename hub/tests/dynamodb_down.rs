//! Orders over REST while DynamoDB itself is down (issue 7): every
//! placement answers 503 `store_unavailable` (nothing is acknowledged that
//! could then be lost), and once DynamoDB is back nothing is lost: every
//! acknowledged order is in the store with its `order.accepted` event
//! published, what the venue reported during the outage (an acknowledged
//! order cancelled there; the order sync met the outage with it) is
//! recorded with its `order.cancelled` event, and the refused
//! `client_order_id`s can be placed again.
//!
//! DynamoDB is the shared moto (`NAX_TEST_MOTO_PORT`, tables of this
//! test's own) behind a proxy the test cuts and restores: killing moto
//! would lose its in-memory tables. scripts/test.sh starts moto; this test
//! FAILS without it, it never skips.

use crate::common;
// Shared with upstream.rs, which uses more of them.
use crate::harness;

use api::events::log::EventLog;
use feeds::Venue as _;
use harness::{Answer, Trader};
use hub::app::RunningHub;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use testkit::Proxy;
use tokio::time::Instant;

/// Resting buys far below the market: accepted, never filled.
async fn place(trader: &Trader, client_order_id: &str) -> Answer {
    trader
        .limit(client_order_id, "buy", "0.01", "1000", "GTC")
        .await
}

/// Order ids of the events of `event_type` in the hub's event log.
fn logged(data_dir: &Path, event_type: &str) -> Vec<String> {
    let path = data_dir.join(EventLog::FILE);
    EventLog::read_all(&path)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.event_type == event_type)
        .filter_map(|e| e.data["order"]["order_id"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until every one of `order_ids` has an `event_type` event logged.
async fn wait_logged(data_dir: &Path, event_type: &str, order_ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = logged(data_dir, event_type);
        let missing: Vec<&String> = order_ids.iter().filter(|id| !got.contains(id)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {event_type} event published for {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The order as `GET /orders/{id}` answers it, once the store answers.
async fn stored_status(trader: &Trader, order_id: &str) -> String {
    let got = trader
        .call("GET", &format!("/orders/{order_id}"), None)
        .await;
    assert_eq!(got.status, 200, "{order_id}: {}", got.body);
    got.body["status"].as_str().expect("status").to_owned()
}

/// `nax_order_sync_store_retries_total`: venue events the order sync
/// tried again because the store was unavailable.
async fn sync_store_retries(hub: &RunningHub) -> u64 {
    let (status, text) = common::http_get(hub.addr, "/metrics").await;
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix("nax_order_sync_store_retries_total "))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

/// `nax_order_sync_backlog`: venue events received and not yet applied.
async fn sync_backlog(hub: &RunningHub) -> f64 {
    let (status, text) = common::http_get(hub.addr, "/metrics").await;
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix("nax_order_sync_backlog "))
        .map(|v| v.trim().parse().expect("a gauge"))
        .expect("the backlog gauge is exported")
}

async fn start(proxy: &Proxy) -> (RunningHub, std::path::PathBuf) {
    let endpoint = proxy.http_url();
    let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    let config = common::test_config(|c| {
        c.venue.events_per_sec = 20;
        let api = &mut c.api;
        api.store = api::config::StoreKind::Dynamodb;
        api.dynamodb_endpoint = endpoint;
        api.dynamodb_table_prefix = prefix;
        api.dynamodb_create_tables = true;
        api.aws_access_key_id = "test".into();
        api.aws_secret_access_key = Some(api::secret::Secret::new("test"));
        api.requests_per_minute = 100_000;
        api.request_burst = 10_000;
    });
    let hub = hub::app::start(&config).await.expect("hub starts");
    common::wait_ready(&hub).await;
    (hub, config.data_dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_while_dynamodb_is_down_are_refused_and_nothing_acknowledged_is_lost() {
    let moto: std::net::SocketAddr = format!("127.0.0.1:{}", testkit::shared_moto_port())
        .parse()
        .unwrap();
    let proxy = Proxy::start(moto).await;
    let (hub, data_dir) = start(&proxy).await;
    let venue = hub.venue.clone().expect("the in-process sandbox");
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let trader = Trader::verified(&hub, &email).await;
    venue
        .credit(&trader.user_id, "USD", 1_000_000 * 100_000_000)
        .await
        .unwrap();

    let mut acknowledged = Vec::new();
    for n in 0..3 {
        let r = place(&trader, &format!("before-{n}")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        acknowledged.push(r.body["order_id"].as_str().unwrap().to_owned());
    }
    let to_cancel = acknowledged[0].clone();

    proxy.cut();
    // Placements are refused with 503 (none hangs: each has the client's
    // 15 s timeout, and answers).
    let mut refused = Vec::new();
    for n in 0..5 {
        let id = format!("during-{n}");
        let r = place(&trader, &id).await;
        match r.status {
            503 => {
                assert_eq!(r.body["error"]["code"], "store_unavailable", "{}", r.body);
                assert!(r.retry_after.is_some(), "503 carries Retry-After");
                refused.push(id);
            }
            201 => acknowledged.push(r.body["order_id"].as_str().unwrap().to_owned()),
            other => panic!("{id}: {other} {}", r.body),
        }
    }
    assert!(!refused.is_empty(), "the store is down: placements fail");
    let ready = trader.call("GET", "/ready", None).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    // The venue cancels an acknowledged order meanwhile (a fill would take
    // the same path: a venue report the sync must record).
    let at_venue = venue.orders(&trader.user_id).await.unwrap();
    let venue_id = at_venue
        .iter()
        .find(|o| o.client_id.as_deref() == Some(to_cancel.as_str()))
        .expect("the venue holds the order")
        .order_id
        .clone();
    let retries = sync_store_retries(&hub).await;
    venue
        .cancel_order(&trader.user_id, &venue_id)
        .await
        .expect("cancelled at the venue");
    // DynamoDB stays down until the order sync has met the outage with
    // the venue's report.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sync_store_retries(&hub).await <= retries {
        assert!(
            Instant::now() < deadline,
            "the order sync never tried the venue's report against the store"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The report being tried again is held, and counted as held.
    assert!(sync_backlog(&hub).await >= 1.0);

    proxy.restore();
    // The refused ids were never recorded: each places now (retrying
    // while the hub's DynamoDB client reconnects).
    for id in &refused {
        let deadline = Instant::now() + Duration::from_secs(30);
        let r = loop {
            let r = place(&trader, id).await;
            if r.status != 503 || Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(r.status, 201, "{id} after the outage: {}", r.body);
        acknowledged.push(r.body["order_id"].as_str().unwrap().to_owned());
    }

    // Nothing acknowledged is lost: each order is stored, its event
    // published; the cancel the venue reported during the outage is
    // recorded and published too.
    let mut statuses = HashMap::new();
    for id in &acknowledged {
        statuses.insert(id.clone(), stored_status(&trader, id).await);
    }
    wait_logged(&data_dir, "order.accepted", &acknowledged).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_status(&trader, &to_cancel).await != "cancelled" {
        assert!(
            Instant::now() < deadline,
            "the venue's cancel during the outage was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_logged(
        &data_dir,
        "order.cancelled",
        std::slice::from_ref(&to_cancel),
    )
    .await;
    for (id, status) in &statuses {
        if *id != to_cancel {
            assert_eq!(status, "open", "{id}");
        }
    }
    let ready = trader.call("GET", "/ready", None).await;
    assert_eq!(ready.status, 200, "ready again: {}", ready.body);
    // Everything the venue reported has been applied.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sync_backlog(&hub).await != 0.0 {
        assert!(Instant::now() < deadline, "the order sync kept a backlog");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hub.stop().await;
}
