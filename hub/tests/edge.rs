//! The HTTP server's edge against misbehaving connections, over real
//! sockets: header and idle timeouts, the head size bound, the per-address
//! cap, client addresses behind a trusted proxy, request ids, and the real
//! binary out of file descriptors.

use crate::common;

use common::binary::{self, HubProcess};
use common::start_hub;
use hub::app::RunningHub;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, Instant};

/// How long a test waits for a close that a 1 s timeout should cause.
const CLOSE_DEADLINE: Duration = Duration::from_secs(20);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A TCP connection to `addr` from `from` (any 127/8 address is local).
async fn connect_from(addr: SocketAddr, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip(from), 0)).unwrap();
    socket.connect(addr).await.expect("tcp connect")
}

/// Reads until the peer closes (EOF or reset); panics at `within`.
async fn wait_closed(stream: &mut TcpStream, within: Duration) {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!("the server did not close the connection within {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
        }
    }
}

/// One `GET path` on a kept-alive connection: the status, after reading
/// the whole response (`Content-Length` bodies only).
async fn get(stream: &mut TcpStream, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: hub\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if raw.len() >= end + 4 + length {
                return head.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
        }
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before the response was complete");
        raw.extend_from_slice(&buf[..n]);
    }
}

async fn short_timeouts_hub(header_ms: u64, idle_ms: u64) -> RunningHub {
    start_hub(|c| {
        c.http.header_timeout_ms = header_ms;
        c.http.idle_timeout_ms = idle_ms;
    })
    .await
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_header_timeout() {
    let hub = short_timeouts_hub(1_000, 60_000).await;
    let mut silent = connect_from(hub.addr, "127.0.0.1").await;
    wait_closed(&mut silent, CLOSE_DEADLINE).await;
    hub.stop().await;
}

#[tokio::test]
async fn partial_headers_are_closed_after_the_header_timeout() {
    let hub = short_timeouts_hub(1_000, 60_000).await;
    let mut partial = connect_from(hub.addr, "127.0.0.1").await;
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: hub\r\nX-Unfinished: ye")
        .await
        .unwrap();
    wait_closed(&mut partial, CLOSE_DEADLINE).await;
    hub.stop().await;
}

#[tokio::test]
async fn a_one_byte_drip_does_not_keep_the_head_open() {
    let hub = short_timeouts_hub(1_000, 60_000).await;
    let mut drip = connect_from(hub.addr, "127.0.0.1").await;
    // 150 bytes at one per 200 ms: 30 s of a head that never ends. A
    // deadline per byte (or none) would let it run to the end.
    let head = format!("GET /health HTTP/1.1\r\nX-Drip: {}", "a".repeat(120));
    let mut buf = [0u8; 64];
    for (sent, byte) in head.bytes().enumerate() {
        if drip.write_all(&[byte]).await.is_err() {
            assert!(sent < head.len());
            hub.stop().await;
            return;
        }
        match timeout(Duration::from_millis(200), drip.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => {
                hub.stop().await;
                return;
            }
            Ok(Ok(n)) => panic!("unexpected answer to a partial head: {:?}", &buf[..n]),
        }
    }
    panic!("the drip kept the connection open for the whole head");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_while_a_busy_one_is_not() {
    // Idle 3 s, header 1 s: a kept-alive connection may wait longer than
    // the header timeout between requests, but not longer than 3 s.
    let hub = short_timeouts_hub(1_000, 3_000).await;
    let mut idle = connect_from(hub.addr, "127.0.0.1").await;
    assert_eq!(get(&mut idle, "/health").await, 200);
    let mut busy = connect_from(hub.addr, "127.0.0.1").await;
    assert_eq!(get(&mut busy, "/health").await, 200);
    let watcher = tokio::spawn(async move { wait_closed(&mut idle, CLOSE_DEADLINE).await });
    // The busy one: requests 1.5 s apart (past the header timeout, within
    // the idle timeout) until the idle one is closed, then one more.
    while !watcher.is_finished() {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(get(&mut busy, "/health").await, 200);
    }
    watcher.await.unwrap();
    assert_eq!(get(&mut busy, "/health").await, 200);
    hub.stop().await;
}

#[tokio::test]
async fn stop_closes_idle_keep_alive_connections_and_the_listener() {
    let hub = short_timeouts_hub(60_000, 60_000).await;
    let addr = hub.addr;
    let mut kept = connect_from(addr, "127.0.0.1").await;
    assert_eq!(get(&mut kept, "/health").await, 200);
    // Stopping must not wait for the 60 s idle timeout.
    timeout(Duration::from_secs(10), hub.stop())
        .await
        .expect("stop returns within the drain time");
    wait_closed(&mut kept, Duration::from_secs(10)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

#[tokio::test]
async fn an_oversized_head_is_refused() {
    let hub = start_hub(|c| c.http.max_head_bytes = 16 * 1024).await;
    let big = "b".repeat(40 * 1024);
    // Complete but too large: 431 (or a reset if the close outruns it),
    // never an answer from the route.
    let mut complete = connect_from(hub.addr, "127.0.0.1").await;
    let head = format!("GET /health HTTP/1.1\r\nHost: hub\r\nX-Big: {big}\r\n\r\n");
    let _ = complete.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = timeout(CLOSE_DEADLINE, complete.read_to_end(&mut answer))
        .await
        .expect("closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );
    // Unfinished and too large: refused at the bound, not after the
    // header timeout (10 s here).
    let mut unfinished = connect_from(hub.addr, "127.0.0.1").await;
    let head = format!("GET /health HTTP/1.1\r\nHost: hub\r\nX-Big: {big}");
    let _ = unfinished.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = timeout(Duration::from_secs(5), unfinished.read_to_end(&mut answer))
        .await
        .expect("closed at the bound");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );
    // A normal request still works.
    let mut normal = connect_from(hub.addr, "127.0.0.1").await;
    assert_eq!(get(&mut normal, "/health").await, 200);
    hub.stop().await;
}

#[tokio::test]
async fn the_connection_past_the_per_address_cap_is_closed_at_once() {
    let hub = start_hub(|c| {
        c.http.max_connections_per_ip = 3;
        c.http.header_timeout_ms = 60_000;
    })
    .await;
    // Two WebSockets (their places are held through the upgrade) and one
    // plain connection from 127.0.0.1 fill its three places.
    let ws_a = common::connect(&hub).await;
    let ws_b = common::connect(&hub).await;
    let mut plain = connect_from(hub.addr, "127.0.0.1").await;
    assert_eq!(get(&mut plain, "/health").await, 200);
    let mut fourth = connect_from(hub.addr, "127.0.0.1").await;
    // Closed long before the header timeout (60 s).
    wait_closed(&mut fourth, Duration::from_secs(10)).await;
    let mut other = connect_from(hub.addr, "127.0.0.2").await;
    assert_eq!(get(&mut other, "/health").await, 200);
    // A closed connection frees its place.
    drop(ws_a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = connect_from(hub.addr, "127.0.0.1").await;
        let request = b"GET /health HTTP/1.1\r\nHost: hub\r\n\r\n";
        if again.write_all(request).await.is_ok() {
            let mut buf = [0u8; 12];
            if let Ok(Ok(_)) = timeout(Duration::from_secs(5), again.read_exact(&mut buf)).await {
                assert_eq!(&buf, b"HTTP/1.1 200");
                break;
            }
        }
        assert!(Instant::now() < deadline, "the place was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, metrics) = common::http_get(hub.addr, "/metrics").await;
    assert!(
        metrics.contains("nax_http_connections_refused_total{reason=\"per_ip\"}"),
        "{metrics}"
    );
    drop(ws_b);
    hub.stop().await;
}

/// A reqwest client whose connections come from `from`.
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip(from))
        .build()
        .unwrap()
}

async fn failed_login(http: &reqwest::Client, hub: &RunningHub, xff: &str, n: usize) -> u16 {
    http.post(format!("http://{}/auth/login", hub.addr))
        .header("x-forwarded-for", xff)
        .json(&serde_json::json!({
            "email": format!("nobody-{n}@example.com"),
            "password": "Wrong-Horse-9-Battery"
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_address_decides_the_login_throttle() {
    // One failure per account, so five per IP; every attempt below uses a
    // new account, so only the IP can lock.
    let hub = start_hub(|c| {
        c.http.trusted_proxies = "127.0.0.1/32".parse().unwrap();
        c.api.login_failures_allowed = 1;
    })
    .await;
    let proxy = client_from("127.0.0.1");
    let direct = client_from("127.0.0.2");
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    for _ in 0..5 {
        assert_eq!(failed_login(&proxy, &hub, "203.0.113.7", next()).await, 401);
    }
    assert_eq!(failed_login(&proxy, &hub, "203.0.113.7", next()).await, 429);
    // The proxy itself is not locked: another client behind it is not.
    assert_eq!(failed_login(&proxy, &hub, "203.0.113.8", next()).await, 401);
    // A peer that is not a trusted proxy cannot claim the locked address...
    assert_eq!(
        failed_login(&direct, &hub, "203.0.113.8", next()).await,
        401
    );
    // ...nor escape its own lock by naming new ones.
    for i in 0..4 {
        let xff = format!("198.51.100.{i}");
        assert_eq!(failed_login(&direct, &hub, &xff, next()).await, 401);
    }
    assert_eq!(
        failed_login(&direct, &hub, "198.51.100.99", next()).await,
        429
    );
    hub.stop().await;
}

async fn limited_get(http: &reqwest::Client, hub: &RunningHub, xff: &str) -> u16 {
    http.get(format!("http://{}/wallets/balances", hub.addr))
        .header("x-forwarded-for", xff)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_address_decides_the_rate_limit() {
    let hub = start_hub(|c| {
        c.http.trusted_proxies = "127.0.0.1".parse().unwrap();
        c.api.requests_per_minute = 1;
        c.api.request_burst = 2;
    })
    .await;
    let proxy = client_from("127.0.0.1");
    let direct = client_from("127.0.0.2");
    // Unauthenticated: 401 when let through, 429 when limited.
    assert_eq!(limited_get(&proxy, &hub, "203.0.113.7").await, 401);
    assert_eq!(limited_get(&proxy, &hub, "203.0.113.7").await, 401);
    assert_eq!(limited_get(&proxy, &hub, "203.0.113.7").await, 429);
    assert_eq!(limited_get(&proxy, &hub, "203.0.113.8").await, 401);
    assert_eq!(limited_get(&direct, &hub, "203.0.113.9").await, 401);
    assert_eq!(limited_get(&direct, &hub, "203.0.113.10").await, 401);
    assert_eq!(limited_get(&direct, &hub, "203.0.113.11").await, 429);
    hub.stop().await;
}

/// A WebSocket upgrade through the proxy on 127.0.0.1 for client `xff`:
/// the HTTP status of the answer (101 when upgraded) and the socket.
async fn ws_through_proxy(
    hub: &RunningHub,
    xff: &str,
) -> (u16, Option<tokio_tungstenite::WebSocketStream<TcpStream>>) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws", hub.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-forwarded-for", xff.parse().unwrap());
    let tcp = connect_from(hub.addr, "127.0.0.1").await;
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok((ws, response)) => (response.status().as_u16(), Some(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            (response.status().as_u16(), None)
        }
        Err(e) => panic!("upgrade: {e}"),
    }
}

#[tokio::test]
async fn websockets_behind_a_trusted_proxy_are_capped_per_forwarded_address() {
    let hub = start_hub(|c| {
        c.http.trusted_proxies = "127.0.0.1".parse().unwrap();
        c.http.max_connections_per_ip = 2;
    })
    .await;
    let (a, first) = ws_through_proxy(&hub, "203.0.113.7").await;
    let (b, _second) = ws_through_proxy(&hub, "203.0.113.7").await;
    assert_eq!((a, b), (101, 101));
    let (third, _) = ws_through_proxy(&hub, "203.0.113.7").await;
    assert_eq!(third, 429, "a third socket for one client behind the proxy");
    let (other, _other_ws) = ws_through_proxy(&hub, "203.0.113.8").await;
    assert_eq!(other, 101, "another client behind the same proxy");
    drop(first);
    let deadline = Instant::now() + CLOSE_DEADLINE;
    loop {
        let (again, ws) = ws_through_proxy(&hub, "203.0.113.7").await;
        if again == 101 {
            drop(ws);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed socket's place was not freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.stop().await;
}

async fn echoed_id(hub: &RunningHub, sent: &str) -> String {
    let resp = reqwest::Client::new()
        .get(format!("http://{}/health", hub.addr))
        .header("x-request-id", sent)
        .send()
        .await
        .unwrap();
    resp.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn unsafe_request_ids_are_replaced_and_safe_ones_echoed() {
    let hub = start_hub(|_| {}).await;
    assert_eq!(echoed_id(&hub, "abc-123.x_y:z").await, "abc-123.x_y:z");
    let too_long = "a".repeat(65);
    for sent in ["\"><script>", "a b", "x/../y", &too_long] {
        let echoed = echoed_id(&hub, sent).await;
        assert_ne!(echoed, sent);
        assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "{echoed}");
    }
    hub.stop().await;
}

// ---- the real binary out of file descriptors -------------------------------

/// The open-file limit the binary runs under (soft and hard): its own
/// files take about 15, so a few dozen sockets exhaust it.
const FD_LIMIT: u64 = 64;

/// The `nax-hub` command of the test: header timeout 1 s, at most
/// [`FD_LIMIT`] open files (its log in [`binary::log_path`]).
fn limited_hub(dir: &std::path::Path, port: u16) -> std::process::Command {
    use std::os::unix::process::CommandExt as _;
    let mut command = binary::command(
        dir,
        port,
        "[venue]\nevents_per_sec = 20\n[http]\nheader_timeout_ms = 1000\n",
        "warn",
    );
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls setrlimit(2), which is async-signal-safe.
    unsafe {
        command.pre_exec(|| rlimit::setrlimit(rlimit::Resource::NOFILE, FD_LIMIT, FD_LIMIT));
    }
    command
}

fn accept_error_lines(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("accept error"))
        .count()
}

/// `GET /health` on a new connection: the status once answered.
async fn health(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    Some(get(&mut stream, "/health").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_hub_recovers_once_idle_sockets_time_out() {
    let dir = common::fresh_data_dir();
    let log = binary::log_path(&dir);
    let port = testkit::free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    let _hub = HubProcess::start(limited_hub(&dir, port), port).await;
    // Idle sockets from several addresses (each under the per-address
    // cap) until the hub runs out of descriptors.
    let mut idle = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while accept_error_lines(&log) == 0 {
        assert!(Instant::now() < deadline, "accepts never failed");
        for n in 0..20 {
            let from = format!("127.0.0.{}", 10 + (idle.len() + n) % 5);
            idle.push(connect_from(addr, &from).await);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Within the header timeout (1 s) of each batch the idle sockets are
    // closed, and the hub accepts again.
    let answered = timeout(Duration::from_secs(30), health(addr)).await;
    assert_eq!(answered.ok().flatten(), Some(200), "/health answers again");
    let elapsed = started.elapsed().as_secs() + 1;
    let lines = accept_error_lines(&log);
    assert!(
        lines as u64 <= 2 * elapsed + 2,
        "{lines} accept-error lines in {elapsed} s"
    );
    eprintln!(
        "{} idle sockets, {lines} accept-error lines in {elapsed} s",
        idle.len()
    );
    drop(idle);
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let hub = start_hub(|_| {}).await;
    let http = reqwest::Client::new();
    for path in [
        "/health",
        "/no-such-route",
        "/wallets/balances",
        "/openapi.json",
    ] {
        let resp = http
            .get(format!("http://{}{path}", hub.addr))
            .send()
            .await
            .unwrap();
        let headers = resp.headers();
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(
                headers.get(name).and_then(|v| v.to_str().ok()),
                Some(value),
                "{name} on {path} ({})",
                resp.status()
            );
        }
    }
    hub.stop().await;
}
