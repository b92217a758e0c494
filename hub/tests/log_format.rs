//! The real `nax-hub` binary's log formats off a terminal (its output is a
//! file here): text lines with `--log-format text` or
//! `NAX_LOG_FORMAT=text`, JSON lines by default, and neither with an ANSI
//! escape code (colour is for terminals only; docs/OPERATIONS.md, "Logs").

use crate::common;

use common::binary::{self, HubProcess};
use std::time::Duration;

const JWT_SECRET: &str = "log-format-jwt-key-0123456789abcdef0123456789";

/// Starts the binary with `edit` applied to its command, makes one REST
/// request, stops it and returns what it logged.
async fn run_hub(edit: impl FnOnce(&mut std::process::Command)) -> String {
    let dir = common::fresh_data_dir();
    let port = testkit::free_port();
    let mut command = binary::command(&dir, port, "[venue]\nevents_per_sec = 5\n", "debug");
    command.env("NAX_JWT_SECRET", JWT_SECRET);
    edit(&mut command);
    let mut hub = HubProcess::start(command, port).await;
    let r = reqwest::Client::new()
        .get(format!("{}/markets", hub.base()))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = hub.stop_and_read_log();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!text.contains(JWT_SECRET), "the JWT key is in the log");
    assert!(!text.contains('\x1b'), "an ANSI escape code in the log");
    text
}

/// A text line: `<RFC 3339 timestamp> <LEVEL> <target>: ...`, not JSON.
fn assert_text_lines(text: &str) {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "a few lines: {text}");
    for line in &lines {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_err(),
            "a JSON line in the text log: {line}"
        );
        let mut words = line.split_whitespace();
        let timestamp = words.next().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "no timestamp first: {line}"
        );
        let level = words.next().unwrap_or_default();
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "no level second: {line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" INFO ") && l.contains("nax::access:") && l.contains("/markets")),
        "the access line, as text: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nax_log_format_text_writes_text_lines_without_colour() {
    let text = run_hub(|c| {
        c.env("NAX_LOG_FORMAT", "text");
    })
    .await;
    assert_text_lines(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_format_flag_writes_text_lines_without_colour() {
    let text = run_hub(|c| {
        c.args(["--log-format", "text"]);
    })
    .await;
    assert_text_lines(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_a_terminal_the_default_is_json_without_colour() {
    let text = run_hub(|_| {}).await;
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "a few lines: {text}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
    }
}

/// The lines the hub has dropped so far, from its `/metrics`.
async fn dropped_lines(client: &reqwest::Client, base: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the hub answers /metrics")
        .text()
        .await
        .expect("a metrics body");
    text.lines()
        .find_map(|l| l.strip_prefix("nax_log_lines_dropped_total "))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

/// A reader of the log that stops reading (a stalled pipe, a log shipper
/// that hangs) does not stop the hub: with its standard output a pipe
/// nobody reads, which fills after a few hundred lines, the hub answers
/// every request, and once its own buffer is full it drops lines and
/// counts them in `nax_log_lines_dropped_total` (docs/OPERATIONS.md,
/// "Logs"). Written to standard output directly, the first full pipe
/// held every worker in `write` and the requests went unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_reader_that_stops_reading_does_not_stop_the_hub() {
    common::within(Duration::from_secs(240), async {
        let dir = common::fresh_data_dir();
        let port = testkit::free_port();
        let toml = "[venue]\nevents_per_sec = 5\n\
                    [api]\nrequests_per_minute = 1000000\nrequest_burst = 100000\n\
                    [http]\nmax_connections_per_ip = 1024\n";
        let mut command = binary::command(&dir, port, toml, "debug");
        command.env("NAX_JWT_SECRET", JWT_SECRET);
        // A pipe held open and never read.
        command.stdout(std::process::Stdio::piped());
        let mut hub = HubProcess::start_logging_to(command, port, None).await;
        let client = reqwest::Client::new();
        let base = hub.base();
        let mut answered = 0u64;
        // At DEBUG each request logs several lines; 4 MiB of waiting lines
        // plus the pipe's 64 KiB take a few thousand requests. Bounded:
        // a hub that never drops fails at the end.
        while answered < 200_000 {
            let requests = (0..64).map(|_| {
                client
                    .get(format!("{base}/markets"))
                    .timeout(Duration::from_secs(5))
                    .send()
            });
            for r in futures_util::future::join_all(requests).await {
                let r = r.expect("the hub answers while its log is stalled");
                assert_eq!(r.status(), 200);
                answered += 1;
            }
            if dropped_lines(&client, &base).await > 0 {
                break;
            }
        }
        let dropped = dropped_lines(&client, &base).await;
        assert!(
            dropped > 0,
            "{answered} requests answered and no line dropped"
        );
        hub.kill();
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}
