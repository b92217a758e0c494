//! A slow venue (the sandbox's latency injection): calls time out, the
//! breaker opens and answers 503 with `Retry-After` without calling the
//! venue, `/ready`-style readiness names it, and after recovery the breaker
//! closes again.

use crate::common;

use api::ApiConfig;
use feeds::Venue;
use serde_json::json;
use std::time::Duration;

/// Per-attempt timeout: long enough that a healthy call on two busy
/// cores is never cut short, so a venue call is the only way to take it.
const TIMEOUT: Duration = Duration::from_millis(1_500);
/// How long the breaker stays open: a whole request round trip must fit
/// between the second timeout and the refused third call.
const OPEN_FOR: Duration = Duration::from_millis(3_000);

#[tokio::test]
async fn slow_venue_times_out_opens_the_breaker_and_recovers() {
    let config = ApiConfig {
        upstream_timeout_ms: TIMEOUT.as_millis() as u64,
        upstream_attempts: 1,
        breaker_failures: 2,
        breaker_open_ms: OPEN_FOR.as_millis() as u64,
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

    // Far beyond the timeout: every call that reaches the venue times out.
    t.venue.set_latency(TIMEOUT * 4);
    for coid in ["s1", "s2"] {
        let (s, body, h) = t.post("/orders", Some(&tok), order(coid)).await;
        common::assert_error(s, &body, 503, "upstream_timeout");
        assert!(h.contains_key("retry-after"));
    }
    // Open: answered without calling the venue. A call would have been cut
    // by the timeout (`upstream_timeout`, after TIMEOUT at the earliest).
    let started = std::time::Instant::now();
    let (s, body, h) = t.post("/orders", Some(&tok), order("s3")).await;
    common::assert_error(s, &body, 503, "upstream_unavailable");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    // The time left open, rounded up.
    assert!(
        (1..=OPEN_FOR.as_secs()).contains(&retry),
        "Retry-After {retry}"
    );
    assert!(
        started.elapsed() < TIMEOUT,
        "fails fast, without waiting for the venue: {:?}",
        started.elapsed()
    );
    assert_eq!(t.api.not_ready().await, ["venue"]);

    // The venue recovers; once the open period is over, one probe closes
    // the breaker. Until then every call is refused at once (and records
    // nothing), whatever the machine's speed.
    t.venue.set_latency(Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let deadline = std::time::Instant::now() + OPEN_FOR + Duration::from_secs(30);
    let (s, body) = loop {
        let (s, body, h) = t.post("/orders", Some(&tok), order("s4")).await;
        if s != 503 || body["error"]["code"] != "upstream_unavailable" {
            break (s, body);
        }
        common::assert_error(s, &body, 503, "upstream_unavailable");
        assert!(
            std::time::Instant::now() < deadline,
            "the breaker stayed open: {body}"
        );
        let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(
            (1..=OPEN_FOR.as_secs()).contains(&retry),
            "Retry-After {retry}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
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
