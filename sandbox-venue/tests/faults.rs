//! The TEST-ONLY fault-injection routes: a dropped delta is a seq gap of
//! exactly one for the subscribers of that moment, a paused stream holds
//! market data back, and injected latency slows trading queries.

use crate::common;

use common::{price, start, start_sandbox, TestVenue, WsClient, TOKEN};
use feeds::SandboxConfig;
use sandbox_venue::ServerLimits;
use serde_json::json;
use std::time::{Duration, Instant};

const BOOK: &str = "subscription { orderBookUpdates(pair: \"BTC-USD\") { kind seq reason } }";

/// Subscribes to BTC-USD's book; the snapshot's seq.
async fn book_subscriber(t: &TestVenue) -> (WsClient, u64) {
    let mut ws = t.ws().await;
    ws.subscribe("book", BOOK, json!({})).await;
    let snapshot = ws.next_data("book").await["orderBookUpdates"].clone();
    assert_eq!(snapshot["kind"], "SNAPSHOT");
    (ws, snapshot["seq"].as_u64().unwrap())
}

async fn next_seq(ws: &mut WsClient) -> u64 {
    let event = ws.next_data("book").await["orderBookUpdates"].clone();
    assert_eq!(event["kind"], "DELTA", "{event}");
    event["seq"].as_u64().unwrap()
}

#[tokio::test]
async fn drop_next_delta_gives_current_subscribers_a_gap_of_exactly_one() {
    let t = start().await;
    t.credit("hana", "USD", "1000").await;
    let (bid, _) = t.btc_top().await;
    // Each resting buy at a new price below the best bid is one delta.
    let rest = async |n: u64| {
        t.limit("hana", "BUY", &price(bid - 100 * n), "0.001").await;
    };

    let (mut old, start_seq) = book_subscriber(&t).await;
    rest(1).await;
    assert_eq!(next_seq(&mut old).await, start_seq + 1);

    assert_eq!(
        t.admin("/admin/drop-next-delta", json!({"pair": "BTC-USD"}))
            .await,
        204
    );
    let (mut new, new_start) = book_subscriber(&t).await;
    assert_eq!(new_start, start_seq + 1);

    rest(2).await;
    rest(3).await;
    rest(4).await;
    assert_eq!(
        next_seq(&mut old).await,
        start_seq + 3,
        "seq + 2 was dropped"
    );
    assert_eq!(
        next_seq(&mut old).await,
        start_seq + 4,
        "only one was dropped"
    );
    for expected in start_seq + 2..=start_seq + 4 {
        assert_eq!(
            next_seq(&mut new).await,
            expected,
            "a later subscriber misses nothing"
        );
    }

    let (status, body) = t
        .post(
            "/admin/drop-next-delta",
            Some(TOKEN),
            &json!({"pair": "XRP-USD"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNKNOWN_PAIR");
    assert_eq!(
        t.admin("/admin/drop-next-delta", json!({"pairs": "BTC-USD"}))
            .await,
        400
    );
    t.stop().await;
}

#[tokio::test]
async fn pause_stream_holds_market_data_back_but_not_queries() {
    let t = start().await;
    t.credit("ines", "USD", "1000").await;
    let (bid, _) = t.btc_top().await;
    let (mut ws, start_seq) = book_subscriber(&t).await;

    assert_eq!(
        t.admin("/admin/pause-stream", json!({"ms": 700})).await,
        204
    );
    let paused_at = Instant::now();
    t.limit("ines", "BUY", &price(bid - 100), "0.001").await;
    let queried = t
        .data("{ orderBook(pair: \"BTC-USD\") { seq } }", json!({}))
        .await;
    assert_eq!(
        queried["orderBook"]["seq"],
        start_seq + 1,
        "queries are not paused"
    );
    assert!(
        ws.recv_within(Duration::from_millis(400)).await.is_none(),
        "nothing while paused"
    );
    assert_eq!(next_seq(&mut ws).await, start_seq + 1, "held, not lost");
    assert!(paused_at.elapsed() >= Duration::from_millis(600));

    let resumed = Instant::now();
    t.limit("ines", "BUY", &price(bid - 200), "0.001").await;
    assert_eq!(next_seq(&mut ws).await, start_seq + 2);
    assert!(
        resumed.elapsed() < Duration::from_millis(500),
        "flowing again"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_pause_longer_than_the_venue_stream_holds_ends_in_a_resync_snapshot() {
    let sandbox = SandboxConfig {
        events_per_sec: 400,
        stream_capacity: 16,
        ..SandboxConfig::default()
    };
    let t = start_sandbox(sandbox, ServerLimits::default()).await;
    let (mut ws, mut seq) = book_subscriber(&t).await;
    assert_eq!(
        t.admin("/admin/pause-stream", json!({"ms": 600})).await,
        204
    );
    // What was queued before the venue stream overflowed, then a resync.
    let resync = loop {
        let event = ws.next_data("book").await["orderBookUpdates"].clone();
        let event_seq = event["seq"].as_u64().unwrap();
        if event["kind"] == "SNAPSHOT" {
            break event;
        }
        assert_eq!(event_seq, seq + 1, "queued deltas stay consecutive");
        seq = event_seq;
    };
    let resync_seq = resync["seq"].as_u64().unwrap();
    assert_eq!(resync["reason"], "resync");
    assert!(
        resync_seq > seq + 1,
        "the resync replaces the deltas it missed"
    );
    assert_eq!(
        next_seq(&mut ws).await,
        resync_seq + 1,
        "deltas go on from it"
    );
    t.stop().await;
}

#[tokio::test]
async fn injected_latency_slows_trading_queries_until_reset() {
    let t = start().await;
    let user = "query { user(id: \"jo\") { balances { asset } } }";
    let timed = async || {
        let started = Instant::now();
        t.data(user, json!({})).await;
        started.elapsed()
    };
    assert!(timed().await < Duration::from_millis(300));
    assert_eq!(t.admin("/admin/latency", json!({"ms": 400})).await, 204);
    assert!(timed().await >= Duration::from_millis(400));
    assert_eq!(t.admin("/admin/latency", json!({"ms": 0})).await, 204);
    assert!(timed().await < Duration::from_millis(300));

    for bad in [
        json!({"ms": 600_001}),
        json!({"ms": -1}),
        json!({"ms": 1, "x": 2}),
        json!({}),
    ] {
        assert_eq!(t.admin("/admin/latency", bad.clone()).await, 400, "{bad}");
        assert_eq!(
            t.admin("/admin/pause-stream", bad.clone()).await,
            400,
            "{bad}"
        );
    }
    t.stop().await;
}
