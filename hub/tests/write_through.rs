//! Write-through (docs/ARCHITECTURE.md, "Writes") when the socket fills:
//! a client with a small receive buffer stops reading, so pushes find the
//! socket full or take it in part and the writer finishes what they
//! started. Once the client reads again every frame is whole, nothing
//! closes the connection, and every book chain holds or restarts with a
//! snapshot (docs/PROTOCOL.md, "Sequence numbers and epochs").

use crate::common;

use common::{start_hub, within};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_gets_whole_frames_and_unbroken_chains_after() {
    within(Duration::from_secs(60), async {
        let hub = start_hub(|c| c.venue.events_per_sec = 2_000).await;
        let channels: Vec<String> = feeds::sandbox_pairs::default_pairs()
            .iter()
            .map(|p| format!("book.{}", p.spec.symbol))
            .collect();
        // A 4 KiB receive buffer: the hub's socket fills within moments of
        // a pause of the client.
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(4_096).expect("SO_RCVBUF");
        socket.connect(&hub.addr.into()).expect("connect");
        socket.set_nonblocking(true).expect("non-blocking");
        let tcp = TcpStream::from_std(socket.into()).expect("tokio socket");
        let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", hub.addr), tcp)
            .await
            .expect("handshake");
        ws.send(Message::text(
            json!({"op": "subscribe", "id": 1, "channels": channels}).to_string(),
        ))
        .await
        .unwrap();

        // Per channel: the seq of the last message, checked against the
        // next one's prev_seq.
        let mut last: HashMap<String, u64> = HashMap::new();
        let mut check = |text: &str| -> bool {
            let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
            let (Some(channel), Some(seq)) = (v["channel"].as_str(), v["seq"].as_u64()) else {
                return false;
            };
            match v["type"].as_str() {
                Some("snapshot") => {}
                Some("update") => {
                    if let Some(prev) = last.get(channel) {
                        assert_eq!(v["prev_seq"].as_u64(), Some(*prev), "{text}");
                    }
                }
                other => panic!("{other:?} on {channel}: {text}"),
            }
            last.insert(channel.to_string(), seq);
            true
        };
        let mut read = async |until: tokio::time::Instant| -> usize {
            let mut messages = 0;
            while let Ok(next) = tokio::time::timeout_at(until, ws.next()).await {
                match next
                    .expect("the connection stays open")
                    .expect("a whole frame")
                {
                    Message::Text(text) => messages += usize::from(check(&text)),
                    Message::Close(frame) => panic!("closed: {frame:?}"),
                    _ => {}
                }
            }
            messages
        };
        let now = tokio::time::Instant::now;
        assert!(
            read(now() + Duration::from_secs(1)).await > 0,
            "messages before"
        );
        // Three pauses long enough to fill the hub's socket buffer too
        // (about one frame taken in part each; the exact bytes of such a
        // rest are checked in `hub/src/session/writer.rs`'s tests).
        let mut after = 0;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            after += read(now() + Duration::from_millis(500)).await;
        }
        after += read(now() + Duration::from_secs(1)).await;
        assert!(after >= 100, "{after} messages after the pauses");
    })
    .await;
}
