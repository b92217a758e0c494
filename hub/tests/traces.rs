//! Traces: with `NAX_OTLP_ENDPOINT` the real `nax-hub` binary sends each
//! REST request's span over OTLP/HTTP to a receiver of the tests' own
//! (`testkit::otlp`), joined to the caller's trace when the request
//! carries a W3C `traceparent`, and its log lines carry that `trace_id`
//! (docs/OPERATIONS.md, "Traces").

mod common;

use common::binary::{self, HubProcess};
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
