//! Hostile WebSocket clients, from the outside (docs/SECURITY.md): frames
//! built to crash a parser, frames that break RFC 6455, handshakes that are
//! not quite right, pages from other sites. Each test is named for what
//! the hub must do, and each was a finding of a black-box attack.

use crate::common;

use common::{close_code, connect, recv, recv_type, send, start_hub, Ws};
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

async fn bounded<F: std::future::Future<Output = ()>>(secs: u64, body: F) {
    timeout(Duration::from_secs(secs), body)
        .await
        .expect("test finished within its deadline");
}

async fn assert_alive(ws: &mut Ws, id: i64) {
    send(ws, json!({"op": "ping", "id": id})).await;
    assert_eq!(recv_type(ws, "pong").await["id"], id);
}

async fn error_frame(ws: &mut Ws) -> Value {
    let v = recv(ws).await;
    assert_eq!(v["type"], "error", "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_frames_get_bad_request_and_the_hub_keeps_serving() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        let mut attacker = connect(&hub).await;
        let mut bystander = connect(&hub).await;
        send(
            &mut bystander,
            json!({"op": "subscribe", "id": 1, "channels": ["trades.BTC-USD"]}),
        )
        .await;
        recv_type(&mut bystander, "subscribed").await;
        // 4,000 `[` then 4,000 `]` once aborted the whole process.
        for depth in [3_000, 4_000, 8_000] {
            let frame = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            attacker
                .send(Message::Text(frame.into()))
                .await
                .expect("send");
            let v = error_frame(&mut attacker).await;
            assert_eq!(v["code"], "bad_request", "{v}");
        }
        let inside = format!(
            r#"{{"op":"subscribe","id":9,"channels":{}{}}}"#,
            "[".repeat(7_000),
            "]".repeat(7_000)
        );
        attacker
            .send(Message::Text(inside.into()))
            .await
            .expect("send");
        assert_eq!(error_frame(&mut attacker).await["code"], "bad_request");
        let objects = format!("{}{}", r#"{"a":"#.repeat(2_500), "}".repeat(2_500));
        attacker
            .send(Message::Text(objects.into()))
            .await
            .expect("send");
        assert_eq!(error_frame(&mut attacker).await["code"], "bad_request");
        assert_alive(&mut attacker, 2).await;
        assert_alive(&mut bystander, 3).await;
        let mut newcomer = connect(&hub).await;
        assert_alive(&mut newcomer, 4).await;
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_messages_name_the_field_without_parser_internals() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 1, "channels": [], "pad": "x"}),
        )
        .await;
        let v = error_frame(&mut ws).await;
        assert_eq!(
            (&v["code"], &v["message"]),
            (&json!("bad_request"), &json!("unknown field: pad"))
        );
        ws.send(Message::Text("{\"op\":".into()))
            .await
            .expect("send");
        let v = error_frame(&mut ws).await;
        assert_eq!(v["message"], "frame is not valid JSON", "{v}");
        send(&mut ws, json!({"op": "ping", "id": "seven"})).await;
        assert_eq!(
            error_frame(&mut ws).await["message"],
            "id must be an integer"
        );
        let long = "X".repeat(5_000);
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 2, "channels": [long]}),
        )
        .await;
        let v = error_frame(&mut ws).await;
        assert_eq!(v["code"], "unknown_channel", "{v}");
        assert!(v["message"].as_str().unwrap().len() < 100, "{v}");
        hub.stop().await;
    })
    .await;
}

// ---- raw RFC 6455 frames -------------------------------------------------

/// A connection upgraded by hand, to send frames no library would.
struct RawSocket(TcpStream);

impl RawSocket {
    async fn open(addr: SocketAddr) -> RawSocket {
        RawSocket::upgrade(TcpStream::connect(addr).await.expect("connect"), addr).await
    }

    /// Upgrades `tcp`, connected to `addr`.
    async fn upgrade(mut tcp: TcpStream, addr: SocketAddr) -> RawSocket {
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.expect("write");
        let head = read_head(&mut tcp).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        RawSocket(tcp)
    }

    /// Writes one frame: `first` is FIN/RSV/opcode, masked unless `mask`
    /// is `None`.
    async fn frame(&mut self, first: u8, mask: Option<[u8; 4]>, payload: &[u8]) {
        let mut out = vec![first];
        let masked = if mask.is_some() { 0x80 } else { 0 };
        assert!(payload.len() < 126);
        out.push(masked | payload.len() as u8);
        match mask {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        self.0.write_all(&out).await.expect("write frame");
    }

    /// The code of the server's Close frame; `None` if the connection ended
    /// without one. Skips other frames.
    async fn close_code(&mut self) -> Option<u16> {
        let mut buf = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            // Parse whole server frames (never masked) from the front.
            while buf.len() >= 2 {
                let (opcode, len7) = (buf[0] & 0x0f, (buf[1] & 0x7f) as usize);
                let (start, len) = match len7 {
                    126 if buf.len() >= 4 => (4, u16::from_be_bytes([buf[2], buf[3]]) as usize),
                    127 if buf.len() >= 10 => (
                        10,
                        u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                    ),
                    126 | 127 => break,
                    n => (2, n),
                };
                if buf.len() < start + len {
                    break;
                }
                if opcode == 0x8 {
                    return (len >= 2).then(|| u16::from_be_bytes([buf[start], buf[start + 1]]));
                }
                buf.drain(..start + len);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.0.read(&mut chunk))
                .await
                .expect("the server answers within 5 s")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = timeout(Duration::from_secs(5), tcp.read(&mut byte))
            .await
            .expect("response head within 5 s")
            .expect("read");
        if n == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_close_with_1002() {
    bounded(30, async {
        let hub = start_hub(|_| {}).await;
        // A client frame without a mask.
        let mut raw = RawSocket::open(hub.addr).await;
        raw.frame(0x81, None, br#"{"op":"ping","id":1}"#).await;
        assert_eq!(raw.close_code().await, Some(1002));
        // A reserved opcode.
        let mut raw = RawSocket::open(hub.addr).await;
        raw.frame(0x83, MASK, b"x").await;
        assert_eq!(raw.close_code().await, Some(1002));
        // RSV bits without an extension that defines them.
        let mut raw = RawSocket::open(hub.addr).await;
        raw.frame(0xc1, MASK, b"{}").await;
        assert_eq!(raw.close_code().await, Some(1002));
        // A continuation frame with no message to continue.
        let mut raw = RawSocket::open(hub.addr).await;
        raw.frame(0x80, MASK, b"{}").await;
        assert_eq!(raw.close_code().await, Some(1002));
        // The hub is fine.
        let mut ws = connect(&hub).await;
        assert_alive(&mut ws, 1).await;
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_frames_that_are_not_utf8_close_with_1007() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let mut raw = RawSocket::open(hub.addr).await;
        raw.frame(0x81, MASK, b"{\"op\":\"ping\",\"id\":\xff\xfe}")
            .await;
        assert_eq!(raw.close_code().await, Some(1007));
        hub.stop().await;
    })
    .await;
}

/// Sends an upgrade request with `extra` header lines; the status code.
async fn upgrade_status(addr: SocketAddr, key: &str, extra: &str) -> u16 {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let head = read_head(&mut tcp).await;
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_websocket_keys_are_refused_with_400() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        for bad in [
            "abc",
            "dGhlIHNhbXBsZSBub25jZQ",
            "not base64 at all!!!!!!!",
            "dGhlIHNhbXBsZSBub25jZSE=",
        ] {
            assert_eq!(upgrade_status(hub.addr, bad, "").await, 400, "{bad}");
        }
        assert_eq!(
            upgrade_status(hub.addr, "dGhlIHNhbXBsZSBub25jZQ==", "").await,
            101
        );
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_are_refused_unless_allowed() {
    bounded(20, async {
        const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
        let hub = start_hub(|_| {}).await;
        let same = format!("Origin: http://{}\r\n", hub.addr);
        assert_eq!(upgrade_status(hub.addr, KEY, &same).await, 101);
        let evil = "Origin: https://evil.example\r\n";
        assert_eq!(upgrade_status(hub.addr, KEY, evil).await, 403);
        assert_eq!(
            upgrade_status(hub.addr, KEY, "").await,
            101,
            "no Origin: not a browser"
        );
        hub.stop().await;

        let hub = start_hub(|c| c.allowed_origins = vec!["https://trade.example.com".into()]).await;
        let listed = "Origin: https://trade.example.com\r\n";
        assert_eq!(upgrade_status(hub.addr, KEY, listed).await, 101);
        assert_eq!(upgrade_status(hub.addr, KEY, evil).await, 403);
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_still_close_with_1009() {
    bounded(20, async {
        let hub = start_hub(|_| {}).await;
        let mut ws = connect(&hub).await;
        let big = format!("[{}]", "1,".repeat(9_000));
        let _ = ws.send(Message::Text(big.into())).await;
        let code = close_code(&mut ws, 5).await;
        assert_eq!(code.map(u16::from), Some(1009));
        hub.stop().await;
    })
    .await;
}

/// The value of the metric line starting with `name ` (0 when absent).
async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let (status, text) = common::http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// A client that subscribes to busy channels and then reads nothing: its
/// receive buffer and the hub's send buffer fill, and a write to it waits.
/// The hub must not wait for ever (the writer would hold the connection's
/// slot, its pings and its close): after `pong_timeout_ms` without
/// progress the connection is dropped and counted as a slow-consumer
/// close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_slot() {
    bounded(60, async {
        let hub = start_hub(|c| {
            c.venue.events_per_sec = 2_000;
            c.limits.socket_send_buffer_bytes = 16 * 1024;
            c.limits.outbound_queue_bytes = 64 * 1024;
            c.limits.ping_interval_ms = 500;
            c.limits.pong_timeout_ms = 2_000;
        })
        .await;
        // Deltas: the metrics recorder is the process's.
        let connections = metric(hub.addr, "nax_connections").await;
        let closes = metric(hub.addr, "nax_slow_consumer_closes_total").await;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(hub.addr).await.expect("connect");
        let mut raw = RawSocket::upgrade(tcp, hub.addr).await;
        for (id, pair) in ["BTC-USD", "ETH-USD", "SOL-USD"].iter().enumerate() {
            let op = format!(r#"{{"op":"subscribe","id":{id},"channels":["book.{pair}"]}}"#);
            raw.frame(0x81, MASK, op.as_bytes()).await;
        }
        assert_eq!(metric(hub.addr, "nax_connections").await, connections + 1.0);
        // Read nothing; the hub gives up within the stall bound (2 s) and
        // a moment for its reader.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while metric(hub.addr, "nax_connections").await > connections {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the connection of a client that reads nothing is still held"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(
            metric(hub.addr, "nax_slow_consumer_closes_total").await,
            closes + 1.0
        );
        // The hub serves others meanwhile.
        let mut ws = connect(&hub).await;
        assert_alive(&mut ws, 1).await;
        drop(raw);
        hub.stop().await;
    })
    .await;
}
