//! The floor sender (`loadtest::floor`) on 127.0.0.1 with the harness's
//! clients in `--peer nchan` mode, as `scripts/peer-bench.sh` runs it:
//! every client gets every message once, in one unbroken chain, with
//! latencies recorded; the run ends by itself.

use clap::Parser as _;
use loadtest::cli::Options;
use loadtest::floor::{Floor, FloorOptions};
use loadtest::report;
use loadtest::stats::Counter;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_the_floor_get_its_messages_in_one_chain() {
    const CLIENTS: u64 = 40;
    let floor = Floor::start(FloorOptions {
        bind: ([127, 0, 0, 1], 0).into(),
        threads: 2,
        rate: 50.0,
        bytes: 200,
        duration: Duration::from_secs(8),
    })
    .expect("floor starts");
    let url = format!("ws://{}/", floor.addr());
    let argv = [
        "loadtest",
        "--url",
        &url,
        "--no-progress",
        "--peer",
        "nchan",
        "--connections",
        "40",
        "--duration",
        "4",
        "--ramp",
        "200",
        "--verify-fraction",
        "0",
        "--channels",
        "book.BTC-USD",
    ];
    let opts = Options::try_parse_from(argv).expect("valid options");
    let result = loadtest::run(&opts).await.expect("the run completes");
    let summary = report::summary_table(&result);
    let floor_report = tokio::task::spawn_blocking(move || floor.stop())
        .await
        .unwrap();
    assert_eq!(result.counter(Counter::Connected), CLIENTS, "{summary}");
    // ~50 msgs/s for most of 4 s to each of 40 clients.
    assert!(result.throughput.messages > CLIENTS * 100, "{summary}");
    assert!(result.latency_us["live"].count > 0, "{summary}");
    assert!(result.counter(Counter::ChainChecked) > 0, "{summary}");
    assert_eq!(result.counter(Counter::ChainFailures), 0, "{summary}");
    assert!(floor_report.messages > 100, "{floor_report:?}");
    assert!(
        floor_report.writes >= result.throughput.messages,
        "{floor_report:?}"
    );
}
