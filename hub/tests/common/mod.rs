//! Shared by the hub's integration tests: a real hub on 127.0.0.1 (port 0)
//! and a real WebSocket client with protocol helpers. Every hub made from
//! [`test_config`] has its log captured and checked for the test's secrets
//! when the test process exits ([`logs`]).
#![allow(dead_code)]

pub mod binary;
pub mod deployment;
pub mod logs;

use futures_util::{SinkExt, StreamExt};
use hub::app::RunningHub;
use hub::config::Config;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Any free port on 127.0.0.1 (the system picks it at bind).
pub fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("a socket address")
}

/// Runs `test`, failing it when it takes longer than `limit`: every
/// network test is bounded in time. (Boxed: some tests' futures are near
/// the compiler's layout depth limit.)
pub async fn within<F: std::future::Future>(limit: Duration, test: F) -> F::Output {
    tokio::time::timeout(limit, Box::pin(test))
        .await
        .unwrap_or_else(|_| panic!("the test finishes within {limit:?}"))
}

/// A config for tests: 127.0.0.1, any free port, defaults otherwise;
/// `edit` adjusts it.
pub fn test_config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut config =
        Config::load_from(["nax-hub"], Vec::<(String, String)>::new()).expect("default config");
    config.bind = "127.0.0.1".parse().unwrap();
    config.port = 0;
    config.shutdown_drain_ms = 2_000;
    config.data_dir = fresh_data_dir();
    config.api.kyc_verify_delay_ms = 50;
    config.api.fiat_confirm_delay_ms = 50;
    edit(&mut config);
    // Its log is captured and checked for its secrets (logs.rs).
    logs::capture(&config);
    config
}

/// A new empty data directory under the system's temp dir (each hub has
/// its own store file).
pub fn fresh_data_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    // Hubs do not delete their data directory; remove those of test
    // processes that have exited.
    SWEEP.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("nax-hub-test-")
                .and_then(|r| r.split('-').next())
            else {
                continue;
            };
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    let dir = std::env::temp_dir().join(format!(
        "nax-hub-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Starts a sandbox hub and waits until every book is warm.
pub async fn start_hub(edit: impl FnOnce(&mut Config)) -> RunningHub {
    let hub = hub::app::start(&test_config(edit))
        .await
        .expect("hub starts");
    wait_ready(&hub).await;
    hub
}

pub async fn wait_ready(hub: &RunningHub) {
    // The hub has written its key files by now.
    logs::remember_key_files();
    for _ in 0..200 {
        if hub.context.markets.cold_pairs().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("hub did not become ready");
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(hub: &RunningHub) -> Ws {
    let url = format!("ws://{}/ws", hub.addr);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects")
        .0
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON text frame (skipping pings/pongs), within `secs` seconds.
pub async fn recv_within(ws: &mut Ws, secs: u64) -> Value {
    let deadline = Duration::from_secs(secs);
    loop {
        let msg = tokio::time::timeout(deadline, ws.next())
            .await
            .expect("a message within the deadline")
            .expect("stream open")
            .expect("no websocket error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).expect("hub sends JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

pub async fn recv(ws: &mut Ws) -> Value {
    recv_within(ws, 5).await
}

/// Reads until a frame with `"type": ty` arrives.
pub async fn recv_type(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == ty {
            return v;
        }
    }
}

/// Reads until the server closes; returns the close code.
pub async fn close_code(ws: &mut Ws, secs: u64) -> Option<CloseCode> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("no close within {secs} s"),
            Ok(None) => return None,
            Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// `GET path` over HTTP/1.0 (no chunking; the server closes after the
/// answer): status code and body text.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("http connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("http write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("http answer within 5 s")
        .expect("http read");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("http head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("http status");
    (status, body.to_string())
}

/// A fresh data key in the form of `keys/data.key` (32 random bytes,
/// base64url), for the nodes of one deployment to share.
pub fn new_data_key() -> String {
    use base64::Engine as _;
    let bytes = [
        *uuid::Uuid::new_v4().as_bytes(),
        *uuid::Uuid::new_v4().as_bytes(),
    ]
    .concat();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Puts `key` (from [`new_data_key`]) in the data directory of `c`: nodes
/// sharing a store need the same data key, or they refuse to start
/// (docs/SECURITY.md, "Secrets at rest and in logs").
pub fn share_data_key(c: &Config, key: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = c.data_dir.join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&c.data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = dir.join("data.key");
    std::fs::write(&file, key).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Registers `email` with `password` on the hub at `base`
/// (`http://host:port`), signs in and passes the sandbox KYC (its
/// `kyc_verify_delay_ms` is 50 ms in [`test_config`]): (user id, access
/// token).
pub async fn verified_user(base: &str, email: &str, password: &str) -> (String, String) {
    logs::forbid("test user's email", email);
    logs::forbid("test user's password", password);
    let http = reqwest::Client::new();
    let credentials = serde_json::json!({"email": email, "password": password});
    let r = http
        .post(format!("{base}/auth/register"))
        .json(&credentials)
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 201, "register {email}");
    let user: Value = r.json().await.expect("register body");
    let login: Value = http
        .post(format!("{base}/auth/login"))
        .json(&credentials)
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login body");
    let token = login["access_token"].as_str().expect("a token").to_owned();
    logs::forbid("test user's access token", &token);
    let r = http
        .post(format!("{base}/users/kyc-documents"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"document_type": "passport", "content_base64": "aGVsbG8="}))
        .send()
        .await
        .expect("kyc documents");
    assert_eq!(r.status(), 202);
    for _ in 0..250 {
        let status: Value = http
            .get(format!("{base}/users/kyc-status"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("kyc status")
            .json()
            .await
            .expect("kyc status body");
        if status["kyc_status"] == "VERIFIED" {
            let user_id = user["user_id"].as_str().expect("a user id").to_owned();
            return (user_id, token);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{email}: KYC not verified within 5 s");
}

/// SQS settings for queues of the test's own (a fresh prefix) at
/// `endpoint`, and a client; the queues are made.
pub async fn own_sqs_queues(
    endpoint: String,
) -> (api::events::sqs::SqsConfig, aws_sdk_sqs::Client) {
    use api::events::sqs::{SqsConfig, SqsPublisher, StaticCredentials};
    let sqs = SqsConfig {
        endpoint: Some(endpoint),
        region: "us-east-1".into(),
        queue_prefix: format!("t{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(StaticCredentials::test()),
    };
    let client = SqsPublisher::client(&sqs).await;
    SqsPublisher::ensure_queues(&client, &sqs.queue_prefix)
        .await
        .expect("queues");
    (sqs, client)
}
