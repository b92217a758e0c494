//! Crash safety of the real binary: orders are placed in a loop by
//! [`CLIENTS`] clients at once (so the store's group commit makes groups),
//! the process is killed with SIGKILL mid-stream, and after a restart on
//! the same data directory every order that got a 2xx is there, and every
//! event of it is in the event log (duplicates only as copies with the same
//! event id).

use crate::common;

use common::binary::{self, HubProcess};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Correct-Horse-9-Battery";

/// The config of every start: a quiet venue, fast sandbox confirmations,
/// request limits out of the way.
const CONFIG: &str = "[venue]\nevents_per_sec = 20\n[api]\nkyc_verify_delay_ms = 50\nfiat_confirm_delay_ms = 50\nrequests_per_minute = 100000\nrequest_burst = 10000\n";
/// Orders acknowledged before the kill: enough that the kill lands
/// mid-stream with work committed.
const ACKED_BEFORE_KILL: usize = 300;
/// Clients placing orders at once, over [`USERS`] users.
const CLIENTS: usize = 32;
const USERS: usize = 4;
/// Longest wait for any one awaited state (KYC verified, deposit
/// credited, orders acknowledged, events relayed).
const WAIT: Duration = Duration::from_secs(60);

async fn spawn_hub(dir: &std::path::Path, port: u16) -> HubProcess {
    let command = binary::command(dir, port, CONFIG, "warn");
    HubProcess::start(command, port).await
}

/// Polls `check` every 25 ms until it is true; panics after [`WAIT`].
async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
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

/// Registers `email`, passes the sandbox KYC and funds the account with a
/// fiat deposit; returns its access token.
async fn funded_user(http: &reqwest::Client, base: &str, email: String) -> String {
    let (_, token) = common::verified_user(base, &email, PASSWORD).await;
    // Fund the account the real way (deposits need KYC): a fiat deposit
    // the sandbox provider confirms by webhook.
    let (s, dep) = call(http, reqwest::Method::POST, format!("{base}/fiat/deposit"), &token, Some(json!({"currency": "USD", "amount": "100000.00", "provider": "stripe", "idempotency_key": "fund-1"}))).await.unwrap();
    assert_eq!(s, 201, "{dep}");
    wait_until("deposit credited", || async {
        let (_, balances) = call(
            http,
            reqwest::Method::GET,
            format!("{base}/wallets/balances"),
            &token,
            None,
        )
        .await
        .unwrap();
        balances.as_array().is_some_and(|a| {
            a.iter()
                .any(|b| b["asset"] == "USD" && b["available"] != "0.00000000")
        })
    })
    .await;

    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_orders_and_their_events_survive_kill_9() {
    let dir = common::fresh_data_dir();
    let port = testkit::free_port();
    let hub = spawn_hub(&dir, port).await;
    let http = reqwest::Client::new();
    let base = hub.base();
    // Several users, so that their orders commit concurrently (one
    // user's orders are serialised by the API's per-user lock).
    let tokens: Vec<String> = futures_util::future::join_all(
        (0..USERS).map(|u| funded_user(&http, &base, format!("crash{u}@example.com"))),
    )
    .await;

    // Place resting orders from the clients until the kill.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..CLIENTS {
        let token = tokens[w % USERS].clone();
        let (http, base, acked) = (http.clone(), base.clone(), acked.clone());
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
    // Kill once enough orders are acknowledged, while the workers are
    // still placing more.
    wait_until("orders acknowledged", || {
        let n = acked.lock().unwrap().len();
        async move { n >= ACKED_BEFORE_KILL }
    })
    .await;
    // The kill lands on grouped commits: some sync made several batches
    // durable at once.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counter = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    let (batches, syncs) = (
        counter("nax_store_batches_total "),
        counter("nax_store_syncs_total "),
    );
    eprintln!("{batches} batches in {syncs} syncs before SIGKILL");
    assert!(
        batches > syncs,
        "no commits were grouped: {batches} batches, {syncs} syncs"
    );
    let mut hub = hub;
    hub.kill();
    for w in workers {
        w.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= ACKED_BEFORE_KILL,
        "placed only {} orders before the kill",
        acked.len()
    );
    eprintln!("{} orders acknowledged before SIGKILL", acked.len());
    drop(hub);

    // Restart on the same data directory; the old access token still works
    // (the signing key is in the data directory).
    let hub = spawn_hub(&dir, port).await;
    let mut stored = HashSet::new();
    for token in &tokens {
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{}/orders?limit=100&cursor={c}", hub.base()),
                None => format!("{}/orders?limit=100", hub.base()),
            };
            let (s, page) = call(&http, reqwest::Method::GET, url, token, None)
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
    }
    let missing: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged orders lost: {missing:?}");

    // The relay drains the outbox after the restart.
    let log = dir.join("events.ndjson");
    let deadline = Instant::now() + WAIT;
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

/// Stripe's endpoint secret of the webhook case (set in its config).
const STRIPE_SECRET: &str = "whsec_crash_0123456789abcdef0123456789";

/// The webhook case's config: the sandbox never reports on its own (the
/// test plays Stripe), and the webhook applier runs in process or not.
fn webhook_config(applier: bool) -> String {
    format!(
        "[venue]\nevents_per_sec = 20\n[api]\nkyc_verify_delay_ms = 50\nfiat_confirm_delay_ms = 600000\n\
         requests_per_minute = 100000\nrequest_burst = 10000\n\
         stripe_webhook_secret = \"{STRIPE_SECRET}\"\nwebhook_worker_in_process = {applier}\n"
    )
}

/// The USD row of `GET /wallets/balances`, `available`.
async fn usd_available(http: &reqwest::Client, base: &str, token: &str) -> String {
    let (s, balances) = call(
        http,
        reqwest::Method::GET,
        format!("{base}/wallets/balances"),
        token,
        None,
    )
    .await
    .unwrap();
    assert_eq!(s, 200, "{balances}");
    balances
        .as_array()
        .and_then(|rows| rows.iter().find(|b| b["asset"] == "USD"))
        .and_then(|b| b["available"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A webhook answered `accepted` by a process whose applier is off, then
/// SIGKILL: the receipt and its queued `webhook.received` survive, and the
/// next process (applier on, same data directory) credits it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_webhook_survives_kill_9_and_is_applied_once_after() {
    let dir = common::fresh_data_dir();
    let port = testkit::free_port();
    let command = binary::command(&dir, port, &webhook_config(false), "warn");
    let mut hub = HubProcess::start(command, port).await;
    let http = reqwest::Client::new();
    let base = hub.base();
    let (user_id, token) = common::verified_user(&base, "hook@example.com", PASSWORD).await;
    let url = |path: &str| format!("{base}{path}");
    let deposit = json!({"currency": "USD", "amount": "40.00", "provider": "stripe", "idempotency_key": "hook-1"});
    let (s, opened) = call(
        &http,
        reqwest::Method::POST,
        url("/fiat/deposit"),
        &token,
        Some(deposit),
    )
    .await
    .unwrap();
    assert_eq!(s, 201, "{opened}");
    let tx_id = opened["transaction_id"].as_str().unwrap().to_owned();
    let report = api::webhooks::delivery::Report {
        direction: api::webhooks::notice::Direction::In,
        outcome: api::webhooks::notice::Outcome::Completed,
        user_id: &user_id,
        transaction_id: &tx_id,
        provider_ref: "pi_crash",
        currency: "USD",
        amount: "40.00",
    };
    let body = api::webhooks::stripe::event_body(&report, "evt_kill");
    let signer =
        api::webhooks::signing::WebhookSigner::Stripe(api::secret::Secret::new(STRIPE_SECRET));
    let deliver = |base: String| {
        let (http, body) = (http.clone(), body.clone());
        let headers = signer.headers(&body);
        async move {
            let mut request = http
                .post(format!("{base}/webhooks/stripe"))
                .header("content-type", "application/json")
                .body(body);
            for (k, v) in headers {
                request = request.header(k, v);
            }
            let response = request.send().await.expect("hub answers");
            (
                response.status().as_u16(),
                response.json::<Value>().await.expect("json"),
            )
        }
    };
    assert_eq!(
        deliver(base.clone()).await,
        (200, json!({"status": "accepted"}))
    );
    // Not applied by this process (its applier is off): a while later
    // nothing is credited yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(usd_available(&http, &base, &token).await, "0.00000000");
    hub.kill();
    drop(hub);

    let command = binary::command(&dir, port, &webhook_config(true), "warn");
    let hub = HubProcess::start(command, port).await;
    let base = hub.base();
    wait_until("deposit credited after the restart", || {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move { usd_available(&http, &base, &token).await == "40.00000000" }
    })
    .await;
    // Once: a redelivery is a duplicate, one webhook.applied is logged.
    assert_eq!(
        deliver(base.clone()).await,
        (200, json!({"status": "duplicate"}))
    );
    let log = dir.join("events.ndjson");
    wait_until("webhook.applied logged", || {
        let applied = read_events(&log)
            .values()
            .filter(|e| e["type"] == "webhook.applied" && e["data"]["webhook_id"] == "evt_kill")
            .count();
        async move { applied == 1 }
    })
    .await;
    assert_eq!(usd_available(&http, &base, &token).await, "40.00000000");
}
