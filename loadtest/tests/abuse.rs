//! `loadtest abuse` against a real hub on 127.0.0.1 (in process, any free
//! port, a fresh data directory) with short HTTP deadlines (header 1 s,
//! idle 2 s) so that a 10 s run sees every idle socket closed: every kind
//! of abuse must be exercised, every malformed frame answered with its
//! error or close code, every deadline kept, and the hub must never answer
//! 5xx nor fail a `/health` sample.

use crate::common;

use clap::Parser as _;
use common::start_hub_with;
use loadtest::abuse::frames::Case;
use loadtest::abuse::{self, KINDS};
use loadtest::cli::Command;
use loadtest::Options;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_soak_exercises_every_kind_and_the_hub_survives() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let hub = start_hub_with(data.path(), |config| {
        config.http.header_timeout_ms = 1_000;
        config.http.idle_timeout_ms = 2_000;
    })
    .await;
    let url = format!("http://{}", hub.addr);
    let pid = std::process::id().to_string();
    let argv = [
        "loadtest",
        "abuse",
        "--url",
        &url,
        "--duration",
        "10",
        "--pid",
        &pid,
        "--rss-budget-mb",
        "4096",
        // A debug build shares two cores with the hub in this process.
        "--health-budget-ms",
        "5000",
        "--idle-sockets",
        "64",
        "--idle-per-address",
        "8",
        "--no-progress",
        "--out",
        out.path().to_str().unwrap(),
    ];
    let Some(Command::Abuse(opts)) = Options::try_parse_from(argv).unwrap().command else {
        panic!("not an abuse run");
    };
    let result = abuse::run(&opts).await.expect("the run completes");
    hub.stop().await;

    let summary = abuse::summary(&result);
    assert!(result.bound_local_addresses, "{summary}");
    assert_eq!(result.server_errors, 0, "{summary}");
    assert!(result.unexpected.is_empty(), "{summary}");
    for kind in KINDS {
        assert!(result.exercised(kind) > 0, "{kind}\n{summary}");
    }
    assert_eq!(result.count("login register", "201"), 4, "{summary}");
    assert!(result.count("login right", "200") > 0, "{summary}");
    assert!(result.count("login wrong", "401") > 0, "{summary}");
    assert!(result.count("login unknown", "401") > 0, "{summary}");
    for case in Case::ALL {
        assert!(
            result.count(case.kind(), case.expected()) > 0,
            "{case:?}\n{summary}"
        );
    }
    for mode in ["silent", "partial", "drip"] {
        let kind = format!("idle {mode}");
        assert!(result.count(&kind, "closed by hub") > 0, "{summary}");
        // Closed at the 1 s header deadline; a drip does not extend it.
        let hold = &result.timings_us[&format!("idle hold {mode}")];
        assert!(hold.max < 2_500_000, "{mode} held {hold:?}\n{summary}");
    }
    let keepalive = "answered 200, then closed by hub";
    assert!(result.count("idle keepalive", keepalive) > 0, "{summary}");
    assert!(
        result.count("flip", "subscribed + unsubscribed") > 0,
        "{summary}"
    );
    assert!(result.health_us.count >= 9, "{summary}");
    assert_eq!(result.health_failures, 0, "{summary}");
    let rss = result.rss.as_ref().expect("memory was read");
    assert!(
        rss.start_kib > 0 && rss.max_kib >= rss.start_kib,
        "{summary}"
    );
    assert!(result.passed(), "{summary}");

    let json = abuse::write(out.path(), &result).expect("abuse.json is written");
    let back: abuse::AbuseResult =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(back.outcomes, result.outcomes);
    assert_eq!(back.health_us.p99, result.health_us.p99);
    assert_eq!(back.rss, result.rss);
    assert_eq!(back.timeline.len(), result.timeline.len());
}
