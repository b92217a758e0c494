//! A slow venue (the sandbox's latency injection): calls time out, the
//! breaker opens and answers 503 with `Retry-After` without calling the
//! venue, `/ready`-style readiness names it, and after recovery the breaker
//! closes again.

mod common;

use api::ApiConfig;
use feeds::Venue;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn slow_venue_times_out_opens_the_breaker_and_recovers() {
    let config = ApiConfig {
        upstream_timeout_ms: 150,
        upstream_attempts: 1,
        breaker_failures: 2,
        breaker_open_ms: 500,
        ..common::test_config()
    };
    let t = common::start_with(config).await;
    let (user_id, tok, _) = t.signup("slow@example.com").await;
    t.verify_kyc(&tok).await;
    t.venue
        .credit(&user_id, "USD", 100_000 * 100_000_000)
        .await
        .unwrap();
    let order = |coid: &str| json!({"client_order_id": coid, "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.010000", "price": "1000.00"});

    t.venue.set_latency(Duration::from_secs(2));
    for coid in ["s1", "s2"] {
        let (s, body, h) = t.post("/orders", Some(&tok), order(coid)).await;
        common::assert_error(s, &body, 503, "upstream_timeout");
        assert!(h.contains_key("retry-after"));
    }
    // Open: answered at once, without waiting for the venue.
    let started = std::time::Instant::now();
    let (s, body, h) = t.post("/orders", Some(&tok), order("s3")).await;
    common::assert_error(s, &body, 503, "upstream_unavailable");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=1).contains(&retry), "Retry-After {retry}");
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "fails fast: {:?}",
        started.elapsed()
    );
    assert_eq!(t.api.not_ready().await, ["venue"]);

    // The venue recovers; after the open period one probe closes the breaker.
    t.venue.set_latency(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (s, body, _) = t.post("/orders", Some(&tok), order("s4")).await;
    assert_eq!(s, 201, "{body}");
    assert!(t.api.not_ready().await.is_empty());
    // The timed-out and refused requests recorded nothing.
    let (_, list, _) = t.get("/orders", Some(&tok)).await;
    let coids: Vec<_> = list["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["client_order_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(coids, ["s4"]);
}
