//! Bytes on the wire per message, by channel kind and message type, with
//! and without permessage-deflate: one connection that offers the
//! extension reads the hub's frames off the socket for a while, inflates
//! the compressed ones, and counts each message's frame as sent and as it
//! would be sent plain (docs/BENCHMARKS.md, "Compression").
//!
//! ```sh
//! cargo run --profile production -p loadtest --bin wire_bytes -- 127.0.0.1:8080 30 \
//!     book.BTC-USD depth10.BTC-USD trades.BTC-USD ticker.BTC-USD candles1m.BTC-USD status
//! ```

use flate2::{Decompress, FlushDecompress};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest message read (a snapshot of a deep book is well under it).
const MAX_MESSAGE: usize = 4 << 20;

#[derive(Default)]
struct Kind {
    messages: u64,
    compressed: u64,
    plain_bytes: u64,
    wire_bytes: u64,
}

fn header_len(payload: usize) -> u64 {
    match payload {
        n if n < 126 => 2,
        n if n <= 65_535 => 4,
        _ => 10,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, seconds, channels @ ..] = args.as_slice() else {
        eprintln!("usage: wire_bytes HOST:PORT SECONDS CHANNEL...");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse().expect("SECONDS is a number");
    // It never answers the hub's pings: the hub's patience (60 s by
    // default) bounds a run.
    assert!((1..=55).contains(&seconds), "SECONDS must be 1..55");
    let mut tcp = TcpStream::connect(addr).await.expect("connects");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        head.push(tcp.read_u8().await.expect("an answer"));
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("permessage-deflate"),
        "no compression: {head}"
    );
    // One client frame with the mask key 0 (the payload as it is): the
    // subscribe op.
    let op = serde_json::json!({"op": "subscribe", "id": 1, "channels": channels}).to_string();
    let mut frame = vec![0x81];
    if op.len() < 126 {
        frame.push(0x80 | op.len() as u8);
    } else {
        frame.push(0x80 | 126);
        frame.extend((op.len() as u16).to_be_bytes());
    }
    frame.extend([0, 0, 0, 0]);
    frame.extend(op.as_bytes());
    tcp.write_all(&frame).await.unwrap();

    let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
    let mut inflater = Decompress::new(false);
    let until = Instant::now() + Duration::from_secs(seconds);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        let Ok(frame) = tokio::time::timeout(left, read_frame(&mut tcp)).await else {
            break;
        };
        let (rsv1, opcode, payload) = frame.expect("a frame");
        if opcode != 1 {
            continue;
        }
        let text = if rsv1 {
            inflater.reset(false);
            let mut input = payload.clone();
            input.extend([0, 0, 0xff, 0xff]);
            let mut out = Vec::with_capacity(MAX_MESSAGE);
            inflater
                .decompress_vec(&input, &mut out, FlushDecompress::Sync)
                .expect("inflates");
            out
        } else {
            payload.clone()
        };
        let v: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
        let channel = v["channel"].as_str().unwrap_or("(reply)");
        let kind = channel.split(['.', '@']).next().unwrap_or("-");
        let name = format!("{kind} {}", v["type"].as_str().unwrap_or("-"));
        let k = kinds.entry(name).or_default();
        k.messages += 1;
        k.compressed += u64::from(rsv1);
        k.plain_bytes += header_len(text.len()) + text.len() as u64;
        k.wire_bytes += header_len(payload.len()) + payload.len() as u64;
    }
    println!(
        "{:<22}{:>9}{:>12}{:>13}{:>12}{:>12}",
        "kind type", "messages", "compressed", "plain B/msg", "wire B/msg", "wire/plain"
    );
    for (name, k) in &kinds {
        println!(
            "{name:<22}{:>9}{:>12}{:>13.0}{:>12.0}{:>12.2}",
            k.messages,
            k.compressed,
            k.plain_bytes as f64 / k.messages as f64,
            k.wire_bytes as f64 / k.messages as f64,
            k.wire_bytes as f64 / k.plain_bytes as f64,
        );
    }
}

/// One server frame: (RSV1, opcode, payload).
async fn read_frame(tcp: &mut TcpStream) -> std::io::Result<(bool, u8, Vec<u8>)> {
    let (b0, b1) = (tcp.read_u8().await?, tcp.read_u8().await?);
    let len = match b1 & 0x7f {
        126 => u64::from(tcp.read_u16().await?),
        127 => tcp.read_u64().await?,
        n => u64::from(n),
    };
    if len as usize > MAX_MESSAGE {
        return Err(std::io::Error::other("a frame over the read limit"));
    }
    let mut payload = vec![0; len as usize];
    tcp.read_exact(&mut payload).await?;
    Ok((b0 & 0x40 != 0, b0 & 0x0f, payload))
}
