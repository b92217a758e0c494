//! The log of the real `nax-hub` binary: JSON lines (its output is a file,
//! not a terminal) with the request's and the connection's ids on them, one
//! access line per REST request and per WebSocket connection
//! (docs/OPERATIONS.md, "Logs"), and no secret at any level: it runs with
//! `NAX_LOG=trace` while a client registers, signs in, refreshes and
//! authenticates a WebSocket; neither the password nor any token nor a
//! configured secret may appear in what it wrote (the wire libraries'
//! TRACE output carried the `auth` frame, docs/SECURITY.md).

use crate::common;

use common::binary::{self, HubProcess};
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "Log-Secret-Password-77";
const JWT_SECRET: &str = "log-test-jwt-key-0123456789abcdef0123456789";
const STRIPE_SECRET: &str = "whsec_log_test_secret_must_not_appear";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_json_lines_with_access_lines_and_no_secret_at_trace_level() {
    let dir = common::fresh_data_dir();
    let port = testkit::free_port();
    let mut command = binary::command(&dir, port, "[venue]\nevents_per_sec = 20\n", "trace");
    command
        .env("NAX_JWT_SECRET", JWT_SECRET)
        .env("NAX_STRIPE_WEBHOOK_SECRET", STRIPE_SECRET)
        .stderr(Stdio::null());
    assert_eq!(
        binary::secrets_of(&command).len(),
        2,
        "the configured secrets"
    );
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
    let profile: Value = http
        .get(format!("{base}/users/profile"))
        .bearer_auth(&access2)
        .header("x-request-id", "log-test-profile-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = profile["user_id"].as_str().unwrap().to_owned();

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .unwrap();
    let auth = json!({"op": "auth", "id": 1, "token": access2}).to_string();
    ws.send(Message::text(auth)).await.unwrap();
    let answer = common::recv_within(&mut ws, 10).await;
    assert_eq!(answer["type"], "authed", "{answer}");
    ws.close(None).await.unwrap();
    // Let the hub write what it logs about the closed socket.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Every line JSON with timestamp, level and target; no configured secret.
    let lines = hub.stop_and_check_log();

    let log = binary::log_path(&dir);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "an ANSI escape in a log file");
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "nax::access" && l["message"] == "request")
        .collect();
    let line_of = |route: &str| {
        requests
            .iter()
            .find(|l| l["route"] == route)
            .unwrap_or_else(|| panic!("no access line for {route}: {requests:?}"))
    };
    for route in ["/auth/register", "/auth/login", "/auth/refresh", "/ws"] {
        let line = line_of(route);
        assert!(line["request_id"].is_string(), "{line}");
        assert!(line["latency_ms"].is_number(), "{line}");
    }
    assert_eq!(line_of("/auth/register")["status"], 201);
    assert_eq!(line_of("/ws")["status"], 101);
    let profile_line = line_of("/users/profile");
    assert_eq!(profile_line["method"], "GET");
    assert_eq!(profile_line["status"], 200);
    assert_eq!(profile_line["request_id"], "log-test-profile-1");
    assert_eq!(profile_line["user_id"], user_id.as_str(), "{profile_line}");
    assert!(
        profile_line["bytes"].as_u64().unwrap() > 0,
        "{profile_line}"
    );
    let closed = lines
        .iter()
        .find(|l| l["message"] == "connection closed")
        .expect("a line for the WebSocket connection's end");
    assert_eq!(closed["target"], "nax::access");
    assert_eq!(closed["user_id"], user_id.as_str(), "{closed}");
    assert!(closed["conn_id"].is_u64(), "{closed}");
    assert_eq!(
        closed["close_code"], 1005,
        "closed without a code: {closed}"
    );
    assert_eq!(closed["messages_in"], 1, "{closed}");
    assert!(closed["messages_out"].as_u64().unwrap() >= 1, "{closed}");
    assert!(closed["duration_ms"].is_u64(), "{closed}");
    // The filter took: below-INFO lines are there (wire crates' DEBUG
    // included), so the absence below means something.
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
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
    let _ = std::fs::remove_dir_all(&dir);
}
