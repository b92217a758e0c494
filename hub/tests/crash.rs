//! Crash safety of the real binary: orders are placed in a loop, the
//! process is killed with SIGKILL mid-stream, and after a restart on the
//! same data directory every order that got a 2xx is there, and every
//! event of it is in the event log (duplicates only as copies with the same
//! event id).

mod common;

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Correct-Horse-9-Battery";

struct Hub {
    child: Child,
    base: String,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn spawn_hub(dir: &std::path::Path, port: u16) -> Hub {
    let config = dir.join("test.toml");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&config, "[venue]\nevents_per_sec = 20\n[api]\nkyc_verify_delay_ms = 50\nfiat_confirm_delay_ms = 50\nrequests_per_minute = 100000\nrequest_burst = 10000\n").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_nax-hub"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            dir.to_str().unwrap(),
        ])
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .env("NAX_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nax-hub starts");
    let hub = Hub {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{}/health", hub.base)).send().await {
            if r.status() == 200 {
                return hub;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nax-hub did not come up");
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_orders_and_their_events_survive_kill_9() {
    let dir = common::fresh_data_dir();
    let port = free_port();
    let hub = spawn_hub(&dir, port).await;
    let http = reqwest::Client::new();
    let base = hub.base.clone();
    let (s, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/auth/register"),
        "",
        Some(json!({"email": "crash@example.com", "password": PASSWORD})),
    )
    .await
    .unwrap();
    assert_eq!(s, 201);
    let (s, login) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/auth/login"),
        "",
        Some(json!({"email": "crash@example.com", "password": PASSWORD})),
    )
    .await
    .unwrap();
    assert_eq!(s, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (s, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/users/kyc-documents"),
        &token,
        Some(json!({"document_type": "passport", "content_base64": "aGVsbG8="})),
    )
    .await
    .unwrap();
    assert_eq!(s, 202);
    // Fund the account the real way, once KYC is verified (deposits need
    // it): a fiat deposit the sandbox provider confirms by webhook.
    let mut verified = false;
    for _ in 0..200 {
        let (_, kyc) = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/users/kyc-status"),
            &token,
            None,
        )
        .await
        .unwrap();
        if kyc["kyc_status"] == "VERIFIED" {
            verified = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(verified, "KYC verified");
    let (s, dep) = call(&http, reqwest::Method::POST, format!("{base}/fiat/deposit"), &token, Some(json!({"currency": "USD", "amount": "100000.00", "provider": "stripe", "idempotency_key": "fund-1"}))).await.unwrap();
    assert_eq!(s, 201, "{dep}");
    let mut funded = false;
    for _ in 0..200 {
        let (_, balances) = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/wallets/balances"),
            &token,
            None,
        )
        .await
        .unwrap();
        if balances.as_array().is_some_and(|a| {
            a.iter()
                .any(|b| b["asset"] == "USD" && b["available"] != "0.00000000")
        }) {
            funded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(funded, "deposit credited");

    // Place resting orders from 4 clients until the kill.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (http, base, token, acked) = (http.clone(), base.clone(), token.clone(), acked.clone());
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let body = json!({"client_order_id": format!("w{w}-{i}"), "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.001000", "price": "1000.00"});
                match call(&http, reqwest::Method::POST, format!("{base}/orders"), &token, Some(body)).await {
                    Ok((201, order)) => acked.lock().unwrap().push(order["order_id"].as_str().unwrap().to_owned()),
                    Ok((status, body)) => panic!("unexpected answer {status}: {body}"),
                    Err(_) => return, // the process is gone
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut hub = hub;
    hub.child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    hub.child.wait().unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 10,
        "placed only {} orders before the kill",
        acked.len()
    );
    eprintln!("{} orders acknowledged before SIGKILL", acked.len());
    drop(hub);

    // Restart on the same data directory; the old access token still works
    // (the signing key is in the data directory).
    let hub = spawn_hub(&dir, port).await;
    let mut stored = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{}/orders?limit=100&cursor={c}", hub.base),
            None => format!("{}/orders?limit=100", hub.base),
        };
        let (s, page) = call(&http, reqwest::Method::GET, url, &token, None)
            .await
            .unwrap();
        assert_eq!(s, 200, "{page}");
        stored.extend(
            page["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["order_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let missing: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged orders lost: {missing:?}");

    // The relay drains the outbox after the restart.
    let log = dir.join("events.ndjson");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = read_events(&log);
        let accepted: HashSet<String> = events
            .values()
            .filter(|e| e["type"] == "order.accepted")
            .map(|e| e["data"]["order"]["order_id"].as_str().unwrap().to_owned())
            .collect();
        let missing: Vec<_> = acked.iter().filter(|id| !accepted.contains(*id)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "order.accepted missing for {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Events by id; panics if two lines share an id but differ.
fn read_events(path: &std::path::Path) -> HashMap<String, Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut by_id: HashMap<String, Value> = HashMap::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let id = event["id"].as_str().expect("event id").to_owned();
        if let Some(earlier) = by_id.get(&id) {
            assert_eq!(earlier, &event, "two different events share id {id}");
        }
        by_id.insert(id, event);
    }
    by_id
}
