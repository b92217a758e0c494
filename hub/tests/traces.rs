//! Traces: with `NAX_OTLP_ENDPOINT` the real `nax-hub` binary sends each
//! REST request's span over OTLP/HTTP to a receiver of the tests' own
//! (`testkit::otlp`), joined to the caller's trace when the request
//! carries a W3C `traceparent`, and its log lines carry that `trace_id`
//! (docs/OPERATIONS.md, "Traces"); the same in process, where the hub's
//! log goes to the tests' capture and is checked (`common::logs::traced`).

use crate::common;

use common::binary::{self, HubProcess};
use feeds::Venue as _;
use std::time::Duration;
use testkit::otlp::OtlpReceiver;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_request_is_a_span_of_the_callers_trace() {
    let receiver = OtlpReceiver::start().await;
    let dir = common::fresh_data_dir();
    let port = testkit::free_port();
    let mut command = binary::command(&dir, port, "[venue]\nevents_per_sec = 5\n", "info");
    command.env("NAX_OTLP_ENDPOINT", receiver.endpoint());
    let mut hub = HubProcess::start(command, port).await;

    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/markets", hub.base()))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A request without a caller's trace starts one of its own.
    let r = http
        .get(format!("{}/markets/tickers", hub.base()))
        .send()
        .await;
    assert_eq!(r.unwrap().status(), 200);

    // The batch exporter sends within seconds.
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = receiver.trace(TRACE_ID);
        if !spans.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let request = spans
        .iter()
        .find(|s| s["name"] == "request")
        .unwrap_or_else(|| panic!("no request span in the caller's trace: {spans:?}"));
    assert_eq!(request["parentSpanId"], CALLER_SPAN, "{request}");
    assert_eq!(request["service"], "nax-hub");
    let attribute = |key: &str| {
        request["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == key)
            .map(|a| a["value"]["stringValue"].clone())
    };
    assert_eq!(attribute("http.route").unwrap(), "/markets");
    assert_eq!(attribute("http.request.method").unwrap(), "GET");
    let own_trace = receiver
        .spans()
        .into_iter()
        .find(|s| s["name"] == "request" && s["traceId"] != TRACE_ID)
        .map(|s| s["parentSpanId"].clone());
    assert!(
        own_trace.is_some_and(|parent| parent.as_str().is_none_or(str::is_empty)),
        "the request without traceparent is a root span"
    );

    let lines = hub.stop_and_check_log();
    let access = lines
        .iter()
        .find(|l| l["target"] == "nax::access" && l["route"] == "/markets")
        .expect("the access line");
    assert_eq!(access["trace_id"], TRACE_ID, "{access}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// POSTs `body` as JSON with `token` and `traceparent` when given.
async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    traceparent: Option<&str>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_its_venue_call_its_publish_and_the_workers_handling_are_one_trace() {
    let receiver = OtlpReceiver::start().await;
    // The test process is the hub here (one process per test): its spans
    // go to the receiver as a deployed hub's would, its log lines to the
    // capture every in-process hub's go to.
    let _telemetry = common::logs::traced(&receiver.endpoint());
    let hub = common::start_hub(|c| c.venue.events_per_sec = 20).await;
    let base = format!("http://{}", hub.addr);
    let http = reqwest::Client::new();
    let (user_id, token) =
        common::verified_user(&base, "trace@example.com", "Trace-Password-77").await;
    hub.venue
        .as_ref()
        .unwrap()
        .credit(&user_id, "USD", 1_000_000 * 100_000_000)
        .await
        .unwrap();

    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let order = serde_json::json!({"client_order_id": "trace-1", "pair": "BTC-USD", "side": "buy",
        "type": "limit", "qty": "0.001000", "price": "1000.00"});
    let (s, placed) = post(
        &http,
        format!("{base}/orders"),
        Some(&token),
        Some(&traceparent),
        order,
    )
    .await;
    assert_eq!(s, 201, "{placed}");

    // The request, the venue call, the store commit, the outbox's publish
    // of order.accepted and the in-process audit consumer's handling of
    // it: one trace, each span a descendant of the caller's.
    let wanted = [
        "request",
        "venue.place_order",
        "store.commit",
        "outbox.publish",
        "worker.handle",
    ];
    let mut spans = Vec::new();
    for _ in 0..300 {
        spans = receiver.trace(TRACE_ID);
        if wanted
            .iter()
            .all(|name| spans.iter().any(|s| s["name"] == *name))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<_> = spans.iter().map(|s| s["name"].clone()).collect();
    for name in wanted {
        assert!(
            names.iter().any(|n| n == name),
            "no {name} span in the trace: {names:?}"
        );
    }
    let request = spans.iter().find(|s| s["name"] == "request").unwrap();
    assert_eq!(request["parentSpanId"], CALLER_SPAN);
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| s["spanId"].clone()).collect();
    for span in &spans {
        let parent = &span["parentSpanId"];
        assert!(
            *parent == CALLER_SPAN || ids.contains(parent),
            "{} hangs off a span outside the trace: {span}",
            span["name"]
        );
    }
    let venue = spans
        .iter()
        .find(|s| s["name"] == "venue.place_order")
        .unwrap();
    assert_eq!(
        venue["parentSpanId"], request["spanId"],
        "the venue call is the request's"
    );
    let handled = spans.iter().find(|s| s["name"] == "worker.handle").unwrap();
    let publish_ids: Vec<_> = spans
        .iter()
        .filter(|s| s["name"] == "outbox.publish")
        .map(|s| s["parentSpanId"].clone())
        .collect();
    assert!(
        publish_ids.iter().all(|p| ids.contains(p)),
        "the publish joins the span that made the event"
    );
    assert!(ids.contains(&handled["parentSpanId"]), "{handled}");
    hub.stop().await;
    // The hub's log went to the capture (checked at exit, common/logs.rs),
    // and the order's access line carries the caller's trace.
    common::logs::check();
    let access = common::logs::captured()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["target"] == "nax::access" && l["route"] == "/orders" && l["method"] == "POST")
        .expect("the order's access line was captured");
    assert_eq!(access["trace_id"], TRACE_ID, "{access}");
}
