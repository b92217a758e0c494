//! Records the text frames a Shift-shaped venue sends on one
//! `graphql-transport-ws` connection carrying the book and trade
//! subscriptions of every pair, as the hub's adapter opens it, one frame
//! per line: the input of `benches/benches/ingest.rs`.
//!
//! ```sh
//! cargo run -p sandbox-venue --bin nax-venue -- --port 9191 --token dev --events-per-sec 400 --seed 7 &
//! cargo run -p benches --example record_shift -- ws://127.0.0.1:9191/graphql dev 4000 benches/data/shift_frames.ndjson
//! ```

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::io::Write;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, token, count, out] = args.as_slice() else {
        eprintln!("usage: record_shift URL TOKEN FRAMES OUT");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("FRAMES is a number");
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: serde_json::Value| Message::text(v.to_string());
    ws.send(send(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
    ))
    .await
    .unwrap();
    let mut id = 0;
    for pair in ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC"] {
        for query in [feeds::shift::BOOK_UPDATES, feeds::shift::TRADES] {
            id += 1;
            ws.send(send(json!({"id": id.to_string(), "type": "subscribe",
                "payload": {"query": query, "variables": {"pair": pair}}})))
                .await
                .unwrap();
        }
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut kept = 0;
    while kept < count {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                if text.as_str().contains("\"next\"") {
                    writeln!(file, "{}", text.as_str()).unwrap();
                    kept += 1;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the venue closed: {other:?}"),
        }
    }
    file.flush().unwrap();
    eprintln!("{kept} frames written to {out}");
}
