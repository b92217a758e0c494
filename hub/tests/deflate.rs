//! permessage-deflate (docs/PROTOCOL.md, "Compression") against real
//! clients: a client of this test's own that reads the frames off the
//! socket, Python's `websockets`, and (in `hub/browser-tests/`) Chromium.

use crate::common;

use common::{start_hub, within};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const CHANNELS: [&str; 3] = ["book.BTC-USD", "trades.BTC-USD", "ticker.BTC-USD"];
const ACCEPTED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// A client socket after a handshake that offered permessage-deflate;
/// the `Sec-WebSocket-Extensions` answer.
async fn raw_client(addr: std::net::SocketAddr) -> (TcpStream, Option<String>) {
    raw_client_sending(addr, &[]).await
}

/// [`raw_client`], with `early` (frames) written in the same write as the
/// upgrade request, before any answer.
async fn raw_client_sending(
    addr: std::net::SocketAddr,
    early: &[u8],
) -> (TcpStream, Option<String>) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    tcp.write_all(&[request.as_bytes(), early].concat())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let ext = head
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-extensions: "))
        .map(str::to_string);
    (tcp, ext)
}

fn deflate(text: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(text.len() + 64);
    c.compress_vec(text, &mut out, FlushCompress::Sync).unwrap();
    out.truncate(out.len() - TAIL.len());
    out
}

fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend(TAIL);
    let mut out = Vec::with_capacity(1 << 22);
    Decompress::new(false)
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

/// A masked client frame: `b0` (FIN, RSV1, opcode), then `payload`.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![b0];
    if payload.len() < 126 {
        f.push(0x80 | payload.len() as u8);
    } else {
        f.push(0x80 | 126);
        f.extend((payload.len() as u16).to_be_bytes());
    }
    f.extend(key);
    f.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    f
}

/// One server frame: (RSV1, opcode, payload).
async fn read_frame(tcp: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    let (b0, b1) = (tcp.read_u8().await.unwrap(), tcp.read_u8().await.unwrap());
    assert_eq!(b1 & 0x80, 0, "server frames are not masked");
    let len = match b1 & 0x7f {
        126 => u64::from(tcp.read_u16().await.unwrap()),
        127 => tcp.read_u64().await.unwrap(),
        n => u64::from(n),
    };
    let mut payload = vec![0; len as usize];
    tcp.read_exact(&mut payload).await.unwrap();
    (b0 & 0x40 != 0, b0 & 0x0f, payload)
}

/// The code of the hub's Close frame, after whatever comes before it.
async fn close_code(tcp: &mut TcpStream) -> u16 {
    loop {
        let (_, opcode, payload) = read_frame(tcp).await;
        if opcode == 8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

/// Channel messages by (channel, type, seq).
type Stream = BTreeMap<(String, String, u64), Value>;

/// A message's key in a stream, (channel, type, seq), and the message
/// without `prev_seq`, which is per connection. A connection's first
/// message of a channel (`prev_seq` 0) is left out: it is the state sent
/// to that connection alone, whose `ts` is the pair's latest event's
/// (docs/PROTOCOL.md, "Sequence numbers and epochs"), so two clients that subscribed
/// a moment apart may differ there.
fn keyed(mut v: Value) -> Option<((String, String, u64), Value)> {
    let k = (
        v["channel"].as_str()?.to_string(),
        v["type"].as_str()?.to_string(),
        v["seq"].as_u64()?,
    );
    if v.as_object_mut()?.remove("prev_seq")?.as_u64()? == 0 {
        return None;
    }
    Some((k, v))
}

#[tokio::test]
async fn a_compressing_client_decodes_the_same_stream_as_a_plain_one() {
    within(Duration::from_secs(40), async {
        let hub = start_hub(|c| c.venue.events_per_sec = 200).await;
        let (mut raw, ext) = raw_client(hub.addr).await;
        assert_eq!(ext.as_deref(), Some(ACCEPTED));
        let mut plain = common::connect(&hub).await;
        let op = json!({"op": "subscribe", "id": 1, "channels": CHANNELS}).to_string();
        // The compressing client sends its op compressed, as browsers do.
        raw.write_all(&client_frame(0xc1, &deflate(op.as_bytes())))
            .await
            .unwrap();
        plain.send(Message::text(op)).await.unwrap();

        let (mut packed, mut wire, mut inflated) = (0usize, 0usize, 0usize);
        let mut compressed_stream = Stream::new();
        let mut subscribed = false;
        let until = tokio::time::Instant::now() + Duration::from_secs(4);
        while tokio::time::Instant::now() < until {
            let Ok((rsv1, opcode, payload)) =
                tokio::time::timeout_at(until, read_frame(&mut raw)).await
            else {
                break;
            };
            if opcode != 1 {
                continue;
            }
            let text = if rsv1 {
                packed += 1;
                wire += payload.len();
                let text = inflate(&payload);
                inflated += text.len();
                text
            } else {
                payload
            };
            let v: Value = serde_json::from_slice(&text).expect("JSON");
            subscribed |= v["type"] == "subscribed";
            if let Some((k, v)) = keyed(v) {
                compressed_stream.insert(k, v);
            }
        }
        assert!(subscribed, "the compressed subscribe was read");
        assert!(packed >= 10, "{packed} compressed frames");
        assert!(wire < inflated, "{wire} bytes on the wire for {inflated}");

        let mut plain_stream = Stream::new();
        // The plain client's share of the same time (it is read after).
        let until = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, plain.next()).await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if let Some((k, v)) = keyed(v) {
                    plain_stream.insert(k, v);
                }
            }
        }
        let common: Vec<_> = compressed_stream
            .keys()
            .filter(|k| plain_stream.contains_key(*k))
            .collect();
        assert!(common.len() >= 20, "{} messages in both", common.len());
        for k in common {
            assert_eq!(compressed_stream[k], plain_stream[k], "{k:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_frame_sent_with_the_upgrade_and_a_ping_are_both_answered() {
    within(Duration::from_secs(20), async {
        let hub = start_hub(|_| {}).await;
        let op = json!({"op": "subscribe", "id": 7, "channels": ["ticker.BTC-USD"]}).to_string();
        let early = client_frame(0xc1, &deflate(op.as_bytes()));
        let (mut raw, ext) = raw_client_sending(hub.addr, &early).await;
        assert_eq!(ext.as_deref(), Some(ACCEPTED));
        raw.write_all(&client_frame(0x89, b"are you there"))
            .await
            .unwrap();
        let (mut subscribed, mut pong) = (false, false);
        while !(subscribed && pong) {
            let (rsv1, opcode, payload) = read_frame(&mut raw).await;
            match opcode {
                0xa => {
                    assert_eq!(payload, b"are you there");
                    pong = true;
                }
                1 => {
                    let text = if rsv1 { inflate(&payload) } else { payload };
                    let v: Value = serde_json::from_slice(&text).unwrap();
                    subscribed |= v["type"] == "subscribed" && v["id"] == 7;
                }
                _ => {}
            }
        }
    })
    .await;
}

#[tokio::test]
async fn with_compression_off_the_offer_is_declined_and_rsv1_is_refused() {
    within(Duration::from_secs(20), async {
        let hub = start_hub(|c| c.limits.permessage_deflate = false).await;
        let (mut raw, ext) = raw_client(hub.addr).await;
        assert_eq!(ext, None);
        let op = json!({"op": "subscribe", "id": 1, "channels": ["book.BTC-USD"]}).to_string();
        raw.write_all(&client_frame(0xc1, &deflate(op.as_bytes())))
            .await
            .unwrap();
        assert_eq!(close_code(&mut raw).await, 1002);
    })
    .await;
}

#[tokio::test]
async fn a_message_that_inflates_past_the_frame_limit_is_closed_1009() {
    within(Duration::from_secs(20), async {
        let hub = start_hub(|_| {}).await;
        let (mut raw, ext) = raw_client(hub.addr).await;
        assert_eq!(ext.as_deref(), Some(ACCEPTED));
        // 1 MiB of spaces is ~1 KiB compressed; the frame limit is 16 KiB.
        let bomb = deflate(&vec![b' '; 1 << 20]);
        raw.write_all(&client_frame(0xc1, &bomb)).await.unwrap();
        assert_eq!(close_code(&mut raw).await, 1009);
    })
    .await;
}

#[tokio::test]
async fn python_websockets_with_and_without_compression_agree() {
    within(Duration::from_secs(60), async {
        let hub = start_hub(|c| c.venue.events_per_sec = 200).await;
        let python = std::env::var("NAX_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/deflate_client.py"
        );
        let out = tokio::process::Command::new(&python)
            .arg(script)
            .arg(format!("ws://{}/ws", hub.addr))
            .arg("4")
            .args(CHANNELS)
            .output()
            .await
            .unwrap_or_else(|e| panic!("{python} runs: {e}"));
        assert!(
            out.status.success(),
            "{python} with the `websockets` package (scripts/test.sh installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["deflate_extension"], ACCEPTED, "{report}");
        assert_eq!(report["plain_extension"], Value::Null, "{report}");
        assert_eq!(report["deflate_subscribed"], true, "{report}");
        assert!(report["common"].as_u64().unwrap() >= 20, "{report}");
        assert_eq!(report["mismatches"], json!([]), "{report}");
    })
    .await;
}
