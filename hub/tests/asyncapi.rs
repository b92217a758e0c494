//! docs/asyncapi.yaml against the code: it documents exactly the message
//! types the hub sends, the ops it accepts and the error codes it uses
//! (the sets `hub::protocol` declares and the encoders and decoder are
//! written with), its examples are frames the decoder accepts and messages
//! its schemas admit, one message of every type as the encoders write it
//! fits its schema, and `GET /asyncapi.yaml` serves the file.

use crate::common;

use common::start_hub;
use hub::protocol::encode::{Encoder, Header, Ticker};
use hub::protocol::status::{MarketState, PairStatus};
use hub::protocol::{
    ops, replies, ErrorCode, MessageType, CLIENT_OPS, ERROR_CODES, SERVER_MESSAGE_TYPES,
};
use orderbook::{BookDelta, L2Book, MarketSpec, Price, Qty, Side};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The document, as JSON.
fn doc() -> Value {
    serde_norway::from_str(hub::server::ASYNCAPI_YAML).expect("docs/asyncapi.yaml is YAML")
}

/// Follows `$ref`s (local JSON pointers) until `v` is not a reference.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    while let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("non-local $ref {r}"));
        v = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    v
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The discriminating member of a message's payload: `type` for the hub's
/// messages, `op` for clients' frames.
fn discriminant(doc: &Value, message: &Value, member: &str) -> Option<String> {
    let payload = resolve(doc, &message["payload"]);
    let c = resolve(doc, &payload["properties"][member]);
    c.get("const").and_then(Value::as_str).map(str::to_owned)
}

/// (action, message) for every message of every operation.
fn operation_messages(doc: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, op) in doc["operations"].as_object().expect("operations") {
        let action = op["action"].as_str().expect("action").to_owned();
        assert_eq!(
            resolve(doc, &op["channel"])["address"],
            "/ws",
            "operation {name} is on /ws"
        );
        let messages = op["messages"].as_array().expect("messages");
        assert_eq!(messages.len(), 1, "operation {name}: one message each");
        out.push((action, resolve(doc, &messages[0]).clone()));
    }
    out
}

#[test]
fn every_type_the_hub_sends_and_every_op_it_accepts_is_documented_and_nothing_else() {
    let doc = doc();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let channels = doc["channels"].as_object().expect("channels");
    assert_eq!(channels.len(), 1, "one channel");
    let mut sent = Vec::new();
    let mut received = Vec::new();
    for (action, message) in operation_messages(&doc) {
        match action.as_str() {
            "send" => sent.push(discriminant(&doc, &message, "type").expect("type const")),
            "receive" => received.push(discriminant(&doc, &message, "op").expect("op const")),
            other => panic!("action {other}"),
        }
    }
    let (sent_set, received_set): (BTreeSet<_>, BTreeSet<_>) = (
        sent.iter().cloned().collect(),
        received.iter().cloned().collect(),
    );
    assert_eq!(sent_set.len(), sent.len(), "one send operation per type");
    assert_eq!(
        received_set.len(),
        received.len(),
        "one receive operation per op"
    );
    assert_eq!(sent_set, set(SERVER_MESSAGE_TYPES), "message types");
    assert_eq!(received_set, set(CLIENT_OPS), "ops");

    // The channel lists the same messages, and each under its wire name.
    let listed = channels["ws"]["messages"].as_object().expect("messages");
    let mut names = BTreeSet::new();
    for (key, message) in listed {
        let message = resolve(&doc, message);
        let name = discriminant(&doc, message, "type")
            .or_else(|| discriminant(&doc, message, "op"))
            .unwrap_or_else(|| panic!("{key}: no type or op"));
        assert_eq!(*key, name);
        names.insert(name);
    }
    let all: BTreeSet<_> = sent_set.union(&received_set).cloned().collect();
    assert_eq!(names, all, "channel messages");

    let error = &doc["components"]["messages"]["error"]["payload"]["properties"]["code"];
    let codes: BTreeSet<String> = error["enum"]
        .as_array()
        .expect("error codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(codes, set(ERROR_CODES), "error codes");
}

/// Checks `v` against `schema` (the JSON Schema subset the document uses);
/// `Err` names the first mismatch.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let s = resolve(doc, schema);
    let fail = |why: String| Err(format!("{at}: {why} (value {v})"));
    if let Some(options) = s.get("oneOf").and_then(Value::as_array) {
        let fits = options
            .iter()
            .filter(|o| check(doc, o, v, at).is_ok())
            .count();
        return if fits == 1 {
            Ok(())
        } else {
            fail(format!("fits {fits} of oneOf"))
        };
    }
    if let Some(c) = s.get("const") {
        if c != v {
            return fail(format!("not {c}"));
        }
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        if !options.contains(v) {
            return fail("not in enum".into());
        }
    }
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        if t != kind {
            return fail(format!("not a {t}"));
        }
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            return fail(format!("below {min}"));
        }
    }
    if let (Some(max), Some(n)) = (s.get("maximum").and_then(Value::as_f64), v.as_f64()) {
        if n > max {
            return fail(format!("above {max}"));
        }
    }
    if let Value::Array(items) = v {
        let len = items.len() as u64;
        if s.get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
            || s.get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
        {
            return fail("wrong number of items".into());
        }
        if let Some(item) = s.get("items") {
            for (i, x) in items.iter().enumerate() {
                check(doc, item, x, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let Value::Object(members) = v {
        for name in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().expect("required names");
            if !members.contains_key(name) {
                return fail(format!("missing {name}"));
            }
        }
        let properties = s.get("properties").and_then(Value::as_object);
        for (name, x) in members {
            let at = format!("{at}.{name}");
            match (
                properties.and_then(|p| p.get(name)),
                s.get("additionalProperties"),
            ) {
                (Some(p), _) => check(doc, p, x, &at)?,
                (None, Some(Value::Bool(false))) => return fail(format!("unknown member {name}")),
                (None, Some(extra)) if extra.is_object() => check(doc, extra, x, &at)?,
                (None, _) => {}
            }
        }
    }
    Ok(())
}

/// The message of the document whose payload has `member` = `name`.
fn message<'a>(doc: &'a Value, name: &str) -> &'a Value {
    resolve(doc, &doc["components"]["messages"][name])
}

#[test]
fn examples_are_frames_the_decoder_accepts_and_messages_the_schemas_admit() {
    let doc = doc();
    for (action, message) in operation_messages(&doc) {
        let examples = message["examples"].as_array().expect("examples");
        assert!(!examples.is_empty(), "{}: no example", message["name"]);
        for example in examples {
            let payload = &example["payload"];
            let name = message["name"].as_str().unwrap_or_default();
            check(&doc, &message["payload"], payload, name)
                .unwrap_or_else(|e| panic!("example does not fit its schema: {e}"));
            if action == "receive" {
                let op = ops::decode(&payload.to_string())
                    .unwrap_or_else(|e| panic!("example {payload} refused: {e:?}"));
                assert_eq!(op.name(), payload["op"].as_str().unwrap_or_default());
            }
        }
    }
    // The schemas refuse what the decoder refuses.
    let subscribe = &message(&doc, "subscribe")["payload"];
    for bad in [
        json!({"op": "subscribe", "id": 1, "channels": ["book.BTC-USD"], "extra": 1}),
        json!({"op": "subscribe", "id": 1}),
        json!({"op": "subscribe", "id": "1", "channels": ["book.BTC-USD"]}),
    ] {
        assert!(ops::decode(&bad.to_string()).is_err(), "{bad}");
        assert!(check(&doc, subscribe, &bad, "subscribe").is_err(), "{bad}");
    }
}

/// One message of every type the hub sends, as the code writes it.
fn samples() -> BTreeMap<&'static str, Value> {
    let spec = MarketSpec::new("BTC-USD", 2, 6, Qty(1)).expect("spec");
    let mut book = L2Book::new();
    book.apply_snapshot(
        &[
            (Price(6_400_010), Qty(1_500_000)),
            (Price(6_399_990), Qty(250_000)),
        ],
        &[(Price(6_400_020), Qty(250_000))],
    )
    .expect("book");
    let header = |channel| Header {
        channel,
        epoch: "d3d40a2e",
        seq: 1043,
        prev_seq: 1042,
        ts: 1_796_273_612_004_001,
    };
    let order: Value = {
        let doc = doc();
        let example = &message(&doc, "order")["examples"][0]["payload"]["order"];
        let view: api::trading::model::OrderView =
            serde_json::from_value(example.clone()).expect("the example is an Order");
        serde_json::to_value(view).expect("Order serializes")
    };
    let balance = api::trading::sync::balance_json(
        "USD",
        8,
        feeds::venue::Balance {
            available: 935_999_800_000,
            locked: 0,
        },
    );
    let parse = |text: &[u8]| -> Value { serde_json::from_slice(text).expect("JSON") };
    let mut enc = Encoder::new();
    let mut out = BTreeMap::new();
    for kind in MessageType::ALL {
        let text: Vec<u8> = match kind {
            MessageType::Subscribed => {
                replies::subscribed(1, &["book.BTC-USD".into()], &[], &["book.BTC-USD".into()])
                    .into()
            }
            MessageType::Unsubscribed => replies::unsubscribed(2, &["book.BTC-USD".into()]).into(),
            MessageType::Authed => replies::authed(3, "u-1", true).into(),
            MessageType::Pong => replies::pong(4, 1_796_273_612_345_678).into(),
            MessageType::Error => {
                replies::error(None, ErrorCode::BadRequest, "frame is not valid JSON").into()
            }
            MessageType::Snapshot => enc
                .book_snapshot(&spec, &header("book.BTC-USD"), "resync", &book, usize::MAX)
                .to_vec(),
            MessageType::Update => {
                let deltas = [BookDelta {
                    side: Side::Buy,
                    price: Price(6_400_010),
                    qty: Qty(0),
                }];
                enc.book_update(&spec, &header("book.BTC-USD"), &deltas, 7)
                    .to_vec()
            }
            MessageType::Depth => enc
                .depth(
                    &spec,
                    &header("depth1.BTC-USD"),
                    &book,
                    1,
                    7,
                    Some("slow_consumer"),
                )
                .to_vec(),
            MessageType::Trades => {
                let trade = feeds::PublicTrade {
                    trade_id: 77,
                    price: Price(6_400_020),
                    qty: Qty(10_000),
                    side: Side::Sell,
                    venue_ts: 1_796_273_612_005_002,
                };
                enc.trades(&spec, &header("trades.BTC-USD@100ms"), &[trade])
                    .to_vec()
            }
            MessageType::Ticker => {
                let ticker = Ticker {
                    bid: Some(Price(6_399_990)),
                    bid_qty: Some(Qty(250_000)),
                    last: Some(Price(6_400_020)),
                    open_24h: Some(Price(6_500_000)),
                    high_24h: Some(Price(6_512_000)),
                    low_24h: Some(Price(6_390_000)),
                    volume_24h: Qty(1_234_560_000),
                    quote_volume_24h: 79_012_345_678_900_000,
                    ..Ticker::default()
                };
                enc.ticker(&spec, &header("ticker.BTC-USD"), &ticker, None)
                    .to_vec()
            }
            MessageType::Candles | MessageType::Candle => {
                let closed = orderbook::candle::Candle {
                    start: 1_796_273_520_000_000,
                    open: Price(6_400_010),
                    high: Price(6_400_500),
                    low: Price(6_399_000),
                    close: Price(6_400_020),
                    volume: Qty(1_260_000),
                    quote_volume: 8_064_025_200_000,
                    trades: 3,
                };
                let open = orderbook::candle::Candle::flat(1_796_273_580_000_000, Price(6_400_020));
                if *kind == MessageType::Candle {
                    enc.candle_update(&spec, &header("candles1m.BTC-USD"), &closed, true)
                        .to_vec()
                } else {
                    enc.candles(
                        &spec,
                        &header("candles1m.BTC-USD"),
                        "subscribe",
                        [closed, open].iter(),
                        Some(open.start),
                    )
                    .to_vec()
                }
            }
            MessageType::Heartbeat => {
                replies::heartbeat("d3d40a2e", 1, 1_796_273_617_000_042).into()
            }
            MessageType::Order => replies::order(&header("orders"), &order).into(),
            MessageType::Balance => replies::balance(&header("balances"), &balance).into(),
            MessageType::Shutdown => replies::shutdown(1000).into(),
            MessageType::Status => {
                let pair = |pair: &str, state, reason: Option<&str>| PairStatus {
                    pair: pair.into(),
                    state,
                    reason: reason.map(str::to_owned),
                    since: 1_796_273_600_000_000,
                };
                let pairs = [
                    pair("BTC-USD", MarketState::Online, None),
                    pair("ETH-USD", MarketState::Halted, Some("circuit breaker")),
                    pair(
                        "SOL-USD",
                        MarketState::Stale,
                        Some("no upstream data for 5000 ms"),
                    ),
                    pair("ETH-BTC", MarketState::Resyncing, Some("upstream seq gap")),
                ];
                enc.status(&header("status"), None, &pairs).to_vec()
            }
            // Order entry: the channel forms; the answers are checked in
            // `order_entry_answers_fit_their_schemas`.
            MessageType::Cancelled => replies::cancelled(
                &header("orders"),
                &json!({"trigger": "cancel_on_disconnect", "order_ids": ["o-1", "o-2"]}),
            )
            .into(),
            MessageType::CancelAfterSet => {
                replies::cancel_after_set(10, 60_000, Some(1_796_273_672_100_000)).into()
            }
        };
        out.insert(kind.as_str(), parse(&text));
    }
    out
}

#[test]
fn one_message_of_every_type_as_the_code_writes_it_fits_its_schema() {
    let doc = doc();
    let samples = samples();
    let types: BTreeSet<String> = samples.keys().map(|k| k.to_string()).collect();
    assert_eq!(types, set(SERVER_MESSAGE_TYPES));
    for (kind, sample) in &samples {
        assert_eq!(sample["type"], *kind, "{sample}");
        check(&doc, &message(&doc, kind)["payload"], sample, kind)
            .unwrap_or_else(|e| panic!("the code writes what the document refuses: {e}"));
    }
    // Members the schema allows but the sample above left out still fit.
    let ticker = &message(&doc, "ticker")["payload"];
    let mut full = samples["ticker"].clone();
    full["reason"] = json!("slow_consumer");
    check(&doc, ticker, &full, "ticker").expect("ticker with reason");
}

/// The answers of the order-entry ops, which share their types with
/// channel messages (`order`, `cancelled`), fit their schemas too.
#[test]
fn order_entry_answers_fit_their_schemas() {
    let doc = doc();
    let order = samples()["order"]["order"].clone();
    for (kind, text) in [
        ("order", replies::order_reply(7, &order, Some(true))),
        ("order", replies::order_reply(8, &order, None)),
        ("cancelled", replies::cancelled_reply(9, &["o-1".into()])),
        ("cancelled", replies::cancelled_reply(9, &[])),
        ("cancel_after_set", replies::cancel_after_set(10, 0, None)),
    ] {
        let v: Value = serde_json::from_str(&text).expect("JSON");
        check(&doc, &message(&doc, kind)["payload"], &v, kind)
            .unwrap_or_else(|e| panic!("the code writes what the document refuses: {e}"));
    }
    // A reply that claims a channel fits neither form.
    let mut wrong: Value = serde_json::from_str(&replies::cancelled_reply(9, &[])).unwrap();
    wrong["channel"] = json!("orders");
    assert!(check(&doc, &message(&doc, "cancelled")["payload"], &wrong, "x").is_err());
}

/// Every message is written by `hub::protocol` with a [`MessageType`]; a
/// JSON `"type"` member built anywhere else in the hub would be a message
/// neither the sets above nor the document know.
#[test]
fn no_message_is_written_outside_hub_protocol() {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("hub/src") {
            let path = entry.expect("entry").path();
            if path.ends_with("protocol") {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                for (n, line) in text.lines().enumerate() {
                    let code = line.trim_start();
                    if !code.starts_with("//") && code.contains(r#""type""#) {
                        out.push(format!("{}:{}: {code}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(
        found.is_empty(),
        "messages written outside hub::protocol: {found:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_serves_the_document_and_lists_it_in_openapi() {
    let hub = start_hub(|_| {}).await;
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("http://{}/asyncapi.yaml", hub.addr))
        .send()
        .await
        .expect("GET /asyncapi.yaml");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/yaml")
    );
    let body = resp.text().await.expect("body");
    let on_disk = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/asyncapi.yaml"
    ))
    .expect("docs/asyncapi.yaml");
    assert_eq!(body, on_disk);

    let openapi: Value = http
        .get(format!("http://{}/openapi.json", hub.addr))
        .send()
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("JSON");
    assert!(
        openapi["paths"]["/asyncapi.yaml"]["get"].is_object(),
        "/asyncapi.yaml in /openapi.json"
    );
    // The private channels carry the REST API's Order: the same members.
    let rest: BTreeSet<&String> = openapi["components"]["schemas"]["OrderView"]["properties"]
        .as_object()
        .expect("OrderView in /openapi.json")
        .keys()
        .collect();
    let doc = doc();
    let ours: BTreeSet<&String> = doc["components"]["schemas"]["Order"]["properties"]
        .as_object()
        .expect("Order")
        .keys()
        .collect();
    assert_eq!(ours, rest, "asyncapi Order = REST OrderView");
    hub.stop().await;
}
