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
        Op::Auth { id, token } => json!({"op": "auth", "id": id, "token": token}),
        Op::Ping { id } => json!({"op": "ping", "id": id}),
    };
    frame.to_string()
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
            assert_eq!(decode(&again).as_ref(), Ok(&op), "re-encoded: {again}");
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
