//! What an operator reads: the Grafana dashboard's queries name metrics
//! the hub (and the consumers it runs in process) really export, and a
//! deliberately slow route shows in the latency histogram and trips the
//! REST latency alarm as Terraform defines it (docs/OPERATIONS.md,
//! "Metrics"; infra/terraform/alarms.tf).

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

const DASHBOARD: &str = include_str!("../../docs/grafana/nax-stream.json");
const VARIABLES_TF: &str = include_str!("../../infra/terraform/variables.tf");
const ALARMS_TF: &str = include_str!("../../infra/terraform/alarms.tf");
const ECS_TF: &str = include_str!("../../infra/terraform/ecs.tf");

/// Every `nax_*` metric name in the dashboard's queries, without the
/// `_bucket`/`_sum`/`_count` series suffixes of a histogram.
fn dashboard_metrics() -> BTreeSet<String> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("a query");
            for (i, _) in expr.match_indices("nax_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let name = name.strip_suffix("_bucket").unwrap_or(&name).to_owned();
                names.insert(name);
            }
        }
    }
    names
}

/// The metric names in a Prometheus text exposition (histogram series
/// under their base name).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let name = l.split(['{', ' ']).next().unwrap_or_default();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name)
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_names_an_exported_metric() {
    let wanted = dashboard_metrics();
    assert!(wanted.len() >= 15, "{wanted:?}");
    let hub = common::start_hub(|c| c.venue.events_per_sec = 50).await;
    let base = format!("http://{}", hub.addr);
    let http = reqwest::Client::new();
    // Traffic that makes the labelled series exist: REST requests, a
    // user (a domain event, audited by the in-process consumer), a
    // refused webhook, a subscribed socket.
    let r = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": "metrics@example.com", "password": "Metrics-Password-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{base}/webhooks/stripe"))
        .header("stripe-signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let _ws = book_client(&hub).await;

    let mut missing = wanted.clone();
    for _ in 0..60 {
        let (status, text) = common::http_get(hub.addr, "/metrics").await;
        assert_eq!(status, 200);
        let have = exported(&text);
        missing = wanted.difference(&have).cloned().collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        missing.is_empty(),
        "dashboard queries name metrics /metrics does not export: {missing:?}"
    );
}

/// The number after `key = ` in `block` (Terraform's `key = 0.5`).
fn number_after(block: &str, key: &str) -> f64 {
    let at = block
        .find(&format!("{key} "))
        .unwrap_or_else(|| panic!("no {key} in {block}"));
    let rest = block[at + key.len()..].trim_start().trim_start_matches('=');
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} is not a number"))
}

/// The text of the Terraform block that starts with `header`.
fn block<'a>(file: &'a str, header: &str) -> &'a str {
    let start = file.find(header).unwrap_or_else(|| panic!("no {header}"));
    let end = file[start..]
        .find("\n}\n")
        .map_or(file.len(), |e| start + e);
    &file[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_route_shows_in_the_histogram_and_trips_the_latency_alarm() {
    // The alarm as Terraform has it: the threshold variable, the hub's
    // slow threshold set from it, and the share of slow requests over
    // the alarm's threshold (percent).
    let p99_seconds = number_after(
        block(VARIABLES_TF, "variable \"rest_p99_latency_alarm_seconds\""),
        "default",
    );
    assert!(
        ECS_TF.contains(
            "NAX_SLOW_REQUEST_MS = tostring(ceil(var.rest_p99_latency_alarm_seconds * 1000))"
        ),
        "the hub's slow threshold comes from the alarm's variable"
    );
    let alarm = block(
        ALARMS_TF,
        "resource \"aws_cloudwatch_metric_alarm\" \"rest_p99_latency\"",
    );
    let alarm_percent = number_after(alarm, "threshold");
    for metric in [
        api::http::access::SLOW_REQUESTS_TOTAL,
        api::http::access::REQUESTS_TOTAL,
    ] {
        assert!(
            alarm.contains(&format!("metric_name = \"{metric}\"")),
            "the alarm reads {metric}"
        );
    }

    let slow_ms = (p99_seconds * 1000.0).ceil() as u64;
    let hub = common::start_hub(|c| c.http.slow_request_ms = slow_ms).await;
    // A route of the test's own behind the same layers as the hub's: it
    // answers after the threshold and a margin.
    let sleep = Duration::from_millis(slow_ms + 150);
    let app = api::http::layers(
        axum::Router::new()
            .route(
                "/test/slow",
                axum::routing::get(move || async move {
                    tokio::time::sleep(sleep).await;
                    "slow"
                }),
            )
            .route("/test/fast", axum::routing::get(|| async { "fast" })),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let before = counters(&hub).await;
    // 1 slow request in 50: 2 % slow, p99 above the threshold.
    let http = reqwest::Client::new();
    for _ in 0..49 {
        let r = http.get(format!("http://{addr}/test/fast")).send().await;
        assert_eq!(r.unwrap().status(), 200);
    }
    let r = http.get(format!("http://{addr}/test/slow")).send().await;
    assert_eq!(r.unwrap().status(), 200);
    let after = counters(&hub).await;

    let requests = after.0 - before.0;
    let slow = after.1 - before.1;
    assert!(requests >= 50.0, "{requests} requests counted");
    assert_eq!(slow, 1.0, "the slow request counted, and only it");
    let share = 100.0 * slow / requests;
    assert!(
        share > alarm_percent,
        "{share:.2} % slow does not cross the alarm's {alarm_percent} %"
    );

    // The histogram: the slow route's one request is above the bucket at
    // the threshold, the fast ones below it.
    let (_, text) = common::http_get(hub.addr, "/metrics").await;
    let bucket = |route: &str, le: &str| -> f64 {
        text.lines()
            .find(|l| {
                l.starts_with("nax_http_request_duration_seconds_bucket{")
                    && l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("le=\"{le}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no bucket le={le} for {route}:\n{text}"))
    };
    let le = format!("{p99_seconds}");
    assert_eq!(bucket("/test/slow", &le), 0.0, "under the threshold");
    assert_eq!(bucket("/test/slow", "+Inf"), 1.0);
    assert_eq!(bucket("/test/fast", &le), 49.0);
}

/// (all requests, slow requests) as the hub's `/metrics` counts them.
async fn counters(hub: &hub::app::RunningHub) -> (f64, f64) {
    let (_, text) = common::http_get(hub.addr, "/metrics").await;
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter(|l| !l.contains("route=\"/metrics\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (
        sum(api::http::access::REQUESTS_TOTAL),
        sum(api::http::access::SLOW_REQUESTS_TOTAL),
    )
}

/// A client subscribed to `book.BTC-USD`, its snapshot read.
async fn book_client(hub: &hub::app::RunningHub) -> common::Ws {
    let mut ws = common::connect(hub).await;
    common::send(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "channels": ["book.BTC-USD"]}),
    )
    .await;
    common::recv_type(&mut ws, "snapshot").await;
    ws
}

/// The value of the sample line `name ` (no labels) in a `/metrics` text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// The hub counts what it writes to clients itself, apart from the
/// recorder (`hub::metrics::Tally`): messages a client received show in
/// `nax_messages_out_total` and `nax_bytes_out_total`, and each update in
/// the publish-to-write histogram, whose `+Inf` bucket is its count.
/// The totals are the process's: nextest runs this test in a process of
/// its own; under `cargo test` other tests' writes can only add to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_written_show_in_the_counters_and_the_latency_histogram() {
    let hub = common::start_hub(|c| c.venue.events_per_sec = 200).await;
    let read = || async {
        let (status, text) = common::http_get(hub.addr, "/metrics").await;
        assert_eq!(status, 200);
        let latency = "nax_publish_to_write_seconds";
        let count = sample(&text, &format!("{latency}_count"));
        let inf = sample(&text, &format!("{latency}_bucket{{le=\"+Inf\"}}"));
        assert_eq!(count, inf, "the +Inf bucket is the count");
        (
            sample(&text, "nax_messages_out_total"),
            sample(&text, "nax_bytes_out_total"),
            count,
        )
    };
    let before = read().await;
    let mut ws = book_client(&hub).await;
    let (mut updates, mut bytes) = (0.0, 0.0);
    while updates < 20.0 {
        let v = common::recv(&mut ws).await;
        if v["type"] == "update" {
            updates += 1.0;
            bytes += v.to_string().len() as f64;
        }
    }
    let after = read().await;
    assert!(after.0 - before.0 >= updates + 1.0, "{before:?} {after:?}");
    // Serialized again here, so only about the bytes the hub wrote.
    assert!(
        after.1 - before.1 >= bytes * 0.9,
        "{before:?} {after:?} {bytes}"
    );
    assert!(after.2 - before.2 >= updates, "{before:?} {after:?}");
}
