//! The `nax-venue` binary: prints its address once bound, serves the
//! contract there, stops cleanly on SIGTERM, and refuses to start without
//! a token.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nax-venue");

#[tokio::test]
async fn prints_its_address_serves_queries_and_health_and_stops_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--events-per-sec", "0", "--seed", "7"])
        .env("NAX_VENUE_TOKEN", "bin-token")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nax-venue starts");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/graphql"),
        "{url}"
    );

    let http = reqwest::Client::new();
    let reply: serde_json::Value = http
        .post(&url)
        .bearer_auth("bin-token")
        .json(&serde_json::json!({"query": "{ assets { symbol } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["data"]["assets"][0]["symbol"], "USD");
    let unauthorized = http
        .post(&url)
        .json(&serde_json::json!({"query": "{ assets { symbol } }"}));
    assert_eq!(unauthorized.send().await.unwrap().status(), 401);
    // Liveness for container health checks needs no token.
    let health = http
        .get(url.replace("/graphql", "/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "nax-venue did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "graceful stop exits 0: {status:?}");
}

#[test]
fn refuses_to_start_without_a_token() {
    let output = Command::new(BIN)
        .args(["--port", "0"])
        .env_remove("NAX_VENUE_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--token"), "{stderr}");
    assert!(output.stdout.is_empty());
}
