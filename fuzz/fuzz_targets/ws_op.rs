//! Client WebSocket frames: `hub::protocol::ops::decode`.
//!
//! Invariants: a frame over `FRAME_BOUNDS` is refused; a decoded op
//! re-encodes to a frame that decodes to the same op; a refusal has a
//! protocol code and a terse message that echoes little of the frame.
#![no_main]

use hub::protocol::ops::{decode, Op, FRAME_BOUNDS};
use hub::protocol::ErrorCode;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

fn encode(op: &Op) -> String {
    let frame = match op {
        Op::Subscribe {
            id,
            channels,
            resume,
        } => {
            let mut frame = json!({"op": "subscribe", "id": id, "channels": channels});
            if !resume.is_empty() {
                let points: Map<String, Value> = resume
                    .iter()
                    .map(|(ch, p)| (ch.clone(), json!({"epoch": p.epoch, "seq": p.seq})))
                    .collect();
                frame["resume"] = Value::Object(points);
            }
            frame
        }
        Op::Unsubscribe { id, channels } => {
            json!({"op": "unsubscribe", "id": id, "channels": channels})
        }
        Op::Auth {
            id,
            token,
            cancel_on_disconnect,
        } => json!({"op": "auth", "id": id, "token": token,
                    "cancel_on_disconnect": cancel_on_disconnect}),
        Op::Ping { id } => json!({"op": "ping", "id": id}),
        Op::OrderPlace { id, order } => json!({"op": "order.place", "id": id,
                                              "order": parsed(order)}),
        Op::OrderCancel { id, order_id } => {
            json!({"op": "order.cancel", "id": id, "order_id": order_id})
        }
        Op::OrderCancelAll { id, pair } => match pair {
            Some(pair) => json!({"op": "order.cancel_all", "id": id, "pair": pair}),
            None => json!({"op": "order.cancel_all", "id": id}),
        },
        Op::CancelAfter { id, timeout_ms } => {
            json!({"op": "cancel_after", "id": id, "timeout_ms": timeout_ms})
        }
    };
    frame.to_string()
}

/// The JSON text `order.place` carries, as a value.
fn parsed(order: &str) -> Value {
    serde_json::from_str(order).expect("order.place carries a JSON object")
}

/// `op` with an `order.place` body compared as JSON, not as text (member
/// order and number spelling may differ after a round trip).
fn normalized(op: &Op) -> (Op, Option<Value>) {
    match op {
        Op::OrderPlace { id, order } => (
            Op::OrderPlace {
                id: *id,
                order: String::new(),
            },
            Some(parsed(order)),
        ),
        other => (other.clone(), None),
    }
}

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 (the WebSocket codec checks before this).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode(text) {
        Ok(op) => {
            assert!(
                FRAME_BOUNDS.check(data).is_ok(),
                "decoded a frame over the bounds"
            );
            let again = encode(&op);
            let back = decode(&again).expect("a re-encoded op decodes");
            assert_eq!(normalized(&back), normalized(&op), "re-encoded: {again}");
        }
        Err(e) => {
            assert!(
                matches!(e.code, ErrorCode::BadRequest | ErrorCode::UnknownOp),
                "code {}",
                e.code.as_str()
            );
            nax_fuzz::assert_terse(&e.message, data);
        }
    }
});
