//! Secrets stay out of the log at every level: the real `nax-hub` binary
//! runs with `NAX_LOG=trace` while a client registers, signs in, refreshes
//! and authenticates a WebSocket; neither the password nor any token may
//! appear in what it wrote (the wire libraries' TRACE output carried the
//! `auth` frame, docs/SECURITY.md).

mod common;

use common::binary::{self, HubProcess};
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "Log-Secret-Password-77";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_token_reaches_the_log_at_trace_level() {
    let dir = common::fresh_data_dir();
    let log = dir.with_extension("log");
    let port = testkit::free_port();
    let mut command = binary::command(&dir, port, "[venue]\nevents_per_sec = 20\n", "trace");
    command
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null());
    let mut hub = HubProcess::start(command, port).await;
    let base = hub.base();
    let http = reqwest::Client::new();

    let credentials = json!({"email": "log@example.com", "password": PASSWORD});
    let r = http
        .post(format!("{base}/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let login: Value = http
        .post(format!("{base}/auth/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let refreshed: Value = http
        .post(format!("{base}/auth/refresh"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access2 = refreshed["access_token"].as_str().unwrap().to_owned();

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .unwrap();
    let auth = json!({"op": "auth", "id": 1, "token": access2}).to_string();
    ws.send(Message::text(auth)).await.unwrap();
    let answer = common::recv_within(&mut ws, 10).await;
    assert_eq!(answer["type"], "authed", "{answer}");
    drop(ws);
    // Let the hub write what it logs about the closed socket.
    tokio::time::sleep(Duration::from_millis(500)).await;
    hub.kill();

    let text = std::fs::read_to_string(&log).unwrap();
    // The filter took: below-INFO lines are there (wire crates' DEBUG
    // included), so the absence below means something.
    assert!(
        text.contains("DEBUG"),
        "no DEBUG line under NAX_LOG=trace:\n{text}"
    );
    for (name, secret) in [
        ("password", PASSWORD),
        ("access token", &access),
        ("refresh token", &refresh),
        ("refreshed access token", &access2),
    ] {
        // Any long enough part of a token is as bad as the whole.
        let probe = &secret[secret.len().saturating_sub(24)..];
        assert!(!text.contains(probe), "the {name} is in the log");
    }
    let _ = std::fs::remove_file(&log);
}
