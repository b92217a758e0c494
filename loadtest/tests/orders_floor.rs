//! The order flow's floor server (`loadtest::orders_floor`) on 127.0.0.1:
//! the orders scenario runs against it with no error, every acknowledged
//! order and cancel is a line of its log, bad requests are refused
//! without a line, and a connection left half-open does not keep it
//! running past its duration.

use clap::Parser as _;
use loadtest::cli::Options;
use loadtest::orders_floor::{OrdersFloor, OrdersFloorOptions};
use loadtest::report;
use serde_json::Value;
use std::time::Duration;

async fn start(dir: &std::path::Path) -> OrdersFloor {
    start_for(dir, Duration::from_secs(120)).await
}

async fn start_for(dir: &std::path::Path, duration: Duration) -> OrdersFloor {
    OrdersFloor::start(OrdersFloorOptions {
        bind: ([127, 0, 0, 1], 0).into(),
        data_dir: dir.to_owned(),
        duration,
    })
    .await
    .expect("the floor starts")
}

fn log_lines(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("orders.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The answer's status and JSON body (`Null` when it is not JSON).
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the floor answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Registers `email` and logs it in; its token.
async fn sign_up(http: &reqwest::Client, base: &str, email: &str) -> String {
    let credentials = serde_json::json!({"email": email, "password": "password1"});
    let register = http
        .post(format!("{base}/auth/register"))
        .json(&credentials);
    assert_eq!(answer(register).await.0, 201, "{email}");
    let (status, login) = answer(http.post(format!("{base}/auth/login")).json(&credentials)).await;
    assert_eq!(status, 200, "{login}");
    login["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_scenario_runs_against_the_floor_and_every_ack_is_logged() {
    let data = tempfile::tempdir().unwrap();
    let floor = start(data.path()).await;
    let url = format!("ws://{}/ws", floor.addr());
    let argv = [
        "loadtest",
        "--url",
        &url,
        "--no-progress",
        "--scenario",
        "orders",
        "--users",
        "4",
        "--rate",
        "40",
        "--duration",
        "2",
        "--rest-ms",
        "200",
    ];
    let opts = Options::try_parse_from(argv).expect("valid options");
    let result = loadtest::run(&opts).await.expect("the run completes");
    let summary = report::summary_table(&result);
    let o = result.orders.as_ref().expect("an orders section");
    assert!(result.errors.is_empty(), "{summary}");
    assert_eq!((o.sent, o.sent_resting), (80, 40), "{summary}");
    assert_eq!(o.placed, o.sent, "{summary}");
    assert_eq!(o.cancelled, o.sent_resting, "{summary}");
    assert_eq!(o.order_states.get("open"), Some(&40), "{summary}");
    assert_eq!(o.order_states.get("filled"), Some(&40), "{summary}");

    let metrics = reqwest::get(format!("http://{}/metrics", floor.addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    floor.stop().await.unwrap();
    let lines = log_lines(data.path());
    let ops = |op: &str| lines.iter().filter(|l| l["op"] == op).count();
    assert_eq!((ops("place"), ops("cancel")), (80, 40));
    // Each order once, each cancel after its open order's line.
    let mut placed = std::collections::HashMap::new();
    for (at, line) in lines.iter().enumerate() {
        let id = line["order_id"].as_str().unwrap();
        match line["op"].as_str() {
            Some("place") => assert!(placed.insert(id, (at, &line["status"])).is_none(), "{id}"),
            _ => assert!(
                matches!(placed.get(id), Some((before, s)) if *before < at && *s == "open"),
                "cancel of {id} before its open order"
            ),
        }
    }
    let syncs: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("nax_store_syncs_total "))
        .and_then(|n| n.parse().ok())
        .expect("a sync count");
    assert!((1..=120).contains(&syncs), "{metrics}");
    assert!(
        metrics.contains("nax_store_batches_total 120\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nax_domain_events_total{type=\"order.filled\"} 40\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_log_nothing() {
    let data = tempfile::tempdir().unwrap();
    let floor = start(data.path()).await;
    let base = format!("http://{}", floor.addr());
    let http = reqwest::Client::new();
    let token = sign_up(&http, &base, "a@b.c").await;
    let order = serde_json::json!({
        "client_order_id": "c1", "pair": "BTC-USD", "side": "buy", "type": "limit",
        "qty": "0.0001", "price": "100.00", "time_in_force": "GTC",
    });
    let post = |body: Vec<u8>, token: Option<&str>| {
        let mut r = http
            .post(format!("{base}/orders"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    let json = |v: &Value| serde_json::to_vec(v).unwrap();
    assert_eq!(post(json(&order), None).await, 401, "no token");
    assert_eq!(post(json(&order), Some("nope")).await, 401, "unknown token");
    assert_eq!(post(b"{".to_vec(), Some(&token)).await, 400, "broken JSON");
    assert_eq!(
        post(vec![b' '; 17 * 1024], Some(&token)).await,
        413,
        "oversized"
    );
    for (field, value) in [
        ("qty", "0"),
        ("qty", "-1"),
        ("qty", "1e3"),
        ("price", "abc"),
        ("side", "hold"),
        ("pair", "ETH-USD"),
        ("time_in_force", "FOK"),
    ] {
        let mut bad = order.clone();
        bad[field] = value.into();
        assert_eq!(post(json(&bad), Some(&token)).await, 400, "{field} {value}");
    }
    for (field, value) in [
        ("price", Value::Null),
        ("client_order_id", "".into()),
        ("client_order_id", "x".repeat(65).into()),
        ("qty", "0.000000001".into()),
        ("price", "100.001".into()),
    ] {
        let mut bad = order.clone();
        bad[field] = value.clone();
        assert_eq!(post(json(&bad), Some(&token)).await, 400, "{field} {value}");
    }
    let mut market = order.clone();
    market["type"] = "market".into();
    market["time_in_force"] = "IOC".into();
    assert_eq!(
        post(json(&market), Some(&token)).await,
        400,
        "market with a price"
    );
    let orders = format!("{base}/orders");
    let (_, refusal) = answer(http.post(&orders).json(&market).bearer_auth(&token)).await;
    assert_eq!(refusal["error"]["code"], "validation_error", "{refusal}");
    assert!(log_lines(data.path()).is_empty());

    // A good order is logged; another user cannot cancel it, nor can its
    // owner cancel an order that does not exist.
    let (_, placed) = answer(http.post(&orders).json(&order).bearer_auth(&token)).await;
    let id = placed["order_id"].as_str().unwrap().to_owned();
    let other_token = sign_up(&http, &base, "d@e.f").await;
    for (path, token) in [(id.as_str(), &other_token), ("o-999", &token)] {
        let (status, _) = answer(
            http.delete(format!("{base}/orders/{path}"))
                .bearer_auth(token),
        )
        .await;
        assert_eq!(status, 404, "{path}");
    }
    floor.stop().await.unwrap();
    let lines = log_lines(data.path());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["order_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_does_not_keep_the_floor_running() {
    use tokio::io::AsyncWriteExt as _;
    let data = tempfile::tempdir().unwrap();
    let floor = start_for(data.path(), Duration::from_secs(1)).await;
    let mut stalled = tokio::net::TcpStream::connect(floor.addr()).await.unwrap();
    stalled
        .write_all(b"POST /orders HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // A request head that never ends; the duration (1 s) and the grace
    // (5 s) are over well before this.
    tokio::time::timeout(Duration::from_secs(30), floor.wait())
        .await
        .expect("the floor stopped despite the stalled connection")
        .unwrap();
    drop(stalled);
}
