//! The harness against a real hub on 127.0.0.1 (any free port): a short
//! steady run must see traffic and no integrity failure, and its reports
//! must be written and read back; a short resume storm must recover its
//! channels.

use crate::common;

use common::{options, start_hub};
use loadtest::stats::Counter;
use loadtest::{report, RunResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_run_sees_traffic_and_no_integrity_failure() {
    let data = tempfile::tempdir().unwrap();
    let hub = start_hub(data.path()).await;
    let out = tempfile::tempdir().unwrap();
    let opts = options(
        &hub,
        &[
            "--connections",
            "50",
            "--duration",
            "5",
            "--ramp",
            "200",
            "--verify-fraction",
            "0.1",
            "--channels",
            "3*book.BTC-USD,trades.BTC-USD",
            "--channels",
            "depth10.ETH-USD,ticker.ETH-USD,heartbeat",
            "--channels",
            "book.SOL-USD@100ms,depth5.ETH-BTC",
        ],
    );
    let result = loadtest::run(&opts).await.expect("the run completes");
    hub.stop().await;

    let summary = report::summary_table(&result);
    assert_eq!(result.connections.clients, 50, "{summary}");
    assert_eq!(result.counter(Counter::Connected), 50, "{summary}");
    assert_eq!(result.counter(Counter::Subscribed), 50, "{summary}");
    assert!(result.throughput.messages > 0, "{summary}");
    assert!(result.latency_us["live"].count > 0, "{summary}");
    assert!(result.counter(Counter::ChainChecked) > 0, "{summary}");
    assert_eq!(result.counter(Counter::ChainFailures), 0, "{summary}");
    assert!(result.counter(Counter::ChecksumChecked) > 0, "{summary}");
    assert_eq!(result.counter(Counter::ChecksumFailures), 0, "{summary}");
    assert_eq!(result.counter(Counter::ErrorFrames), 0, "{summary}");
    assert!(result.integrity_ok, "{summary}");
    assert!(!result.timeline.is_empty(), "{summary}");

    let (json, html) = report::write(out.path(), &result).expect("reports are written");
    let back: RunResult =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).expect("result.json parses");
    assert_eq!(back.throughput.messages, result.throughput.messages);
    assert_eq!(back.counters, result.counters);
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("<svg") && html.contains("integrity OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_storm_recovers_every_channel() {
    let data = tempfile::tempdir().unwrap();
    let hub = start_hub(data.path()).await;
    let opts = options(
        &hub,
        &[
            "--scenario",
            "resume-storm",
            "--connections",
            "20",
            "--duration",
            "4",
            "--resume-every",
            "1.5",
            "--reconnect-jitter-ms",
            "100",
            "--verify-fraction",
            "0.1",
            "--channels",
            "book.BTC-USD,trades.BTC-USD,ticker.BTC-USD",
        ],
    );
    let result = loadtest::run(&opts).await.expect("the run completes");
    hub.stop().await;

    let summary = report::summary_table(&result);
    assert_eq!(result.connections.storms, 2, "{summary}");
    assert_eq!(result.counter(Counter::ResumeAttempts), 40, "{summary}");
    assert_eq!(result.counter(Counter::ChannelsRecovered), 120, "{summary}");
    assert_eq!(
        result.counter(Counter::ChannelsNotRecovered),
        0,
        "{summary}"
    );
    assert_eq!(result.counter(Counter::ChainFailures), 0, "{summary}");
    assert_eq!(result.counter(Counter::ChecksumFailures), 0, "{summary}");
    assert!(result.integrity_ok, "{summary}");
}
