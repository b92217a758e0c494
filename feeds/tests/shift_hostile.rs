//! The Shift adapter against a hostile or broken upstream: messages over
//! `UPSTREAM_BOUNDS` (too deep, too large) on the subscription connection
//! are refused before parsing, and the adapter reconnects and resyncs as
//! for any unreadable message; an HTTP answer over the bounds is refused
//! with an error naming the limit, without being read whole.

use crate::shift_common;

use feeds::shift::{ConnectError, ShiftVenue, UPSTREAM_BOUNDS};
use feeds::{MarketEvent, MarketFeed, SnapshotReason};
use serde_json::json;
use shift_common::*;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

const PAIRS: usize = 4;

/// Reads `stream` into `mirror` until every pair has had `n` resync
/// snapshots; panics after [`WAIT`].
async fn until_resynced(stream: &mut feeds::MarketStream, mirror: &mut Mirror, n: usize) {
    let resyncs = |m: &Mirror, pair: &str| {
        m.reasons(pair)
            .iter()
            .filter(|r| **r == SnapshotReason::Resync)
            .count()
    };
    let resynced = async {
        loop {
            let event = next_event(stream).await;
            mirror.apply(&event);
            if mirror.books.len() == PAIRS && mirror.books.keys().all(|p| resyncs(mirror, p) >= n) {
                return;
            }
        }
    };
    tokio::time::timeout(WAIT, resynced)
        .await
        .unwrap_or_else(|_| panic!("every pair resynced {n} times within {WAIT:?}"));
}

#[tokio::test]
async fn frames_over_the_bounds_drop_the_connection_and_every_pair_resyncs() {
    let server = start_venue("127.0.0.1:0".parse().unwrap(), 200).await;
    let proxy = InjectingProxy::start(server.addr()).await;
    let shift = ShiftVenue::connect(config(proxy.addr)).await.unwrap();
    let mut stream = shift.subscribe().await.unwrap();
    let mut mirror = Mirror::default();
    loop {
        let event = next_event(&mut stream).await;
        mirror.apply(&event);
        if mirror.books.len() == PAIRS {
            break;
        }
    }

    // 100,000 `[`: the shape of the attack that once aborted the hub.
    proxy.inject(vec![Message::text("[".repeat(100_000))]);
    until_resynced(&mut stream, &mut mirror, 1).await;
    assert_eq!(shift.stats().reconnects, 1, "{:?}", shift.stats());

    // Deeper than the bound, yet within serde_json's own recursion limit
    // and in a field the adapter would ignore: refused all the same.
    let junk = format!("{}{}", "[".repeat(20), "]".repeat(20));
    let deep = format!(r#"{{"type":"next","id":"1","payload":{{"data":{{"x":{junk}}}}}}}"#);
    proxy.inject(vec![Message::text(deep)]);
    until_resynced(&mut stream, &mut mirror, 2).await;
    assert_eq!(shift.stats().reconnects, 2, "{:?}", shift.stats());

    // A valid message one byte over the size bound, in two frames each
    // well under it: the WebSocket layer refuses it before it is whole.
    let padding = "x".repeat(UPSTREAM_BOUNDS.max_bytes);
    let large = json!({"type": "pong", "payload": padding}).to_string();
    assert!(large.len() > UPSTREAM_BOUNDS.max_bytes);
    let (first, second) = large.as_bytes().split_at(large.len() / 2);
    proxy.inject(vec![
        Message::Frame(Frame::message(
            first.to_vec(),
            OpCode::Data(Data::Text),
            false,
        )),
        Message::Frame(Frame::message(
            second.to_vec(),
            OpCode::Data(Data::Continue),
            true,
        )),
    ]);
    until_resynced(&mut stream, &mut mirror, 3).await;
    assert_eq!(shift.stats().reconnects, 3, "{:?}", shift.stats());

    // The stream carries on: contiguous deltas after the last resync (the
    // mirror checks seq + 1 on each).
    loop {
        let event = next_event(&mut stream).await;
        mirror.apply(&event);
        if matches!(event, MarketEvent::Delta { .. }) {
            break;
        }
    }
    assert!(shift.problem().is_none());
    server.stop().await.unwrap();
}

/// A valid catalog answer padded with `extra` (a JSON value) in
/// `extensions`.
fn catalog_answer(extra: &str) -> Vec<u8> {
    let catalog = json!({"data": {
        "markets": [{"pair": "BTC-USD", "base": "BTC", "quote": "USD",
                     "priceScale": 2, "qtyScale": 6, "minQty": "0.000010"}],
        "assets": [{"symbol": "BTC", "scale": 8}, {"symbol": "USD", "scale": 2}],
    }});
    let text = catalog.to_string();
    format!(
        "{},\"extensions\":{{\"x\":{extra}}}}}",
        &text[..text.len() - 1]
    )
    .into_bytes()
}

#[tokio::test]
async fn http_answers_over_the_bounds_are_refused_with_the_limit_named() {
    // The fake answers correctly: only its padding is hostile.
    let fine = fake_http(Arc::new(catalog_answer("1")), true).await;
    let shift = ShiftVenue::connect(config(fine)).await.unwrap();
    assert_eq!(shift.markets()[0].symbol, "BTC-USD");

    let padding = format!("\"{}\"", "x".repeat(UPSTREAM_BOUNDS.max_bytes));
    let large = Arc::new(catalog_answer(&padding));
    for announce_length in [true, false] {
        let addr = fake_http(large.clone(), announce_length).await;
        let refused = ShiftVenue::connect(config(addr)).await.unwrap_err();
        let ConnectError::Upstream(message) = refused else {
            panic!("{refused:?}");
        };
        assert!(
            message.contains("Shift's answer is larger than 16777216 bytes"),
            "{message}"
        );
    }

    let junk = format!("{}{}", "[".repeat(20), "]".repeat(20));
    let addr = fake_http(Arc::new(catalog_answer(&junk)), true).await;
    let refused = ShiftVenue::connect(config(addr)).await.unwrap_err();
    let ConnectError::Upstream(message) = refused else {
        panic!("{refused:?}");
    };
    assert!(
        message.contains("Shift's answer refused: input nests deeper than 16 levels"),
        "{message}"
    );
}
