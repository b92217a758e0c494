//! Client → hub frames (docs/PROTOCOL.md, "Client → hub"), decoded and
//! validated. Anything that is not a well-formed op becomes an [`OpError`]
//! with the protocol's code and a short message that names the offending
//! field, never parser internals.
//!
//! A frame is checked against [`FRAME_BOUNDS`] before it is parsed: depth
//! and element count are bounded so that no frame under the size limit can
//! exhaust the parser's stack or the heap (a frame of 4,000 `[` once
//! aborted the process).

use super::names::{ErrorCode, OpName};
use inbound::JsonBounds;
use simd_json::prelude::*;
use simd_json::BorrowedValue as Value;
use std::collections::HashMap;

/// Bounds of a client frame, checked before parsing. The deepest valid op
/// is a `subscribe` with `resume` (depth 3); the most elements, a
/// `subscribe` of `max_subscriptions` (200) channels each with a resume
/// point (about 4 per channel). The frame size itself is bounded by the
/// WebSocket codec (`limits.max_frame_bytes`) before this runs.
pub const FRAME_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 64 * 1024,
    max_depth: 8,
    max_elements: 2048,
};

/// Longest piece of client input echoed in an error message.
const ECHO_MAX: usize = 40;

/// A resume point: the last `(epoch, seq)` the client saw on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    pub epoch: String,
    pub seq: u64,
}

/// A valid client op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Subscribe {
        id: i64,
        channels: Vec<String>,
        resume: HashMap<String, ResumePoint>,
    },
    Unsubscribe {
        id: i64,
        channels: Vec<String>,
    },
    Auth {
        id: i64,
        token: String,
        /// Cancel the orders placed on this connection when the user's
        /// last such connection is gone (docs/PROTOCOL.md "Order entry").
        cancel_on_disconnect: bool,
    },
    Ping {
        id: i64,
    },
    /// `order.place`: `order` is the JSON text of the `POST /orders` body,
    /// decoded by the REST API.
    OrderPlace {
        id: i64,
        order: String,
    },
    OrderCancel {
        id: i64,
        order_id: String,
    },
    OrderCancelAll {
        id: i64,
        pair: Option<String>,
    },
    /// `cancel_after`: 0, or [`CANCEL_AFTER_MS`].
    CancelAfter {
        id: i64,
        timeout_ms: u64,
    },
}

/// The non-zero `timeout_ms` values `cancel_after` takes (1 s to 24 h),
/// the dead-man's switch's own bounds.
pub const CANCEL_AFTER_MS: std::ops::RangeInclusive<u64> =
    api::trading::deadman::MIN_TIMEOUT_MS..=api::trading::deadman::MAX_TIMEOUT_MS;

impl Op {
    /// The op's name on the wire.
    pub fn name(&self) -> OpName {
        match self {
            Op::Subscribe { .. } => OpName::Subscribe,
            Op::Unsubscribe { .. } => OpName::Unsubscribe,
            Op::Auth { .. } => OpName::Auth,
            Op::Ping { .. } => OpName::Ping,
            Op::OrderPlace { .. } => OpName::OrderPlace,
            Op::OrderCancel { .. } => OpName::OrderCancel,
            Op::OrderCancelAll { .. } => OpName::OrderCancelAll,
            Op::CancelAfter { .. } => OpName::CancelAfter,
        }
    }

    /// The `id` the client gave the op (echoed in its answer).
    pub fn id(&self) -> i64 {
        match self {
            Op::Subscribe { id, .. }
            | Op::Unsubscribe { id, .. }
            | Op::Auth { id, .. }
            | Op::Ping { id }
            | Op::OrderPlace { id, .. }
            | Op::OrderCancel { id, .. }
            | Op::OrderCancelAll { id, .. }
            | Op::CancelAfter { id, .. } => *id,
        }
    }
}

/// Why a frame was refused; `id` is echoed when the frame had a usable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    pub id: Option<i64>,
    pub code: ErrorCode,
    pub message: String,
}

impl OpError {
    pub fn new(id: Option<i64>, code: ErrorCode, message: impl Into<String>) -> Self {
        OpError {
            id,
            code,
            message: message.into(),
        }
    }
}

/// Client text shortened for an error message (at most [`ECHO_MAX`]
/// characters, then `…`).
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(ECHO_MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Decodes one text frame.
pub fn decode(text: &str) -> Result<Op, OpError> {
    FRAME_BOUNDS
        .check(text.as_bytes())
        .map_err(|e| OpError::new(None, ErrorCode::BadRequest, format!("frame refused: {e}")))?;
    // simd-json parses in place: it needs a private, mutable copy.
    let mut bytes = text.as_bytes().to_vec();
    let value = simd_json::to_borrowed_value(&mut bytes)
        .map_err(|_| OpError::new(None, ErrorCode::BadRequest, "frame is not valid JSON"))?;
    let Some(fields) = value.as_object() else {
        return Err(OpError::new(
            None,
            ErrorCode::BadRequest,
            "frame must be a JSON object",
        ));
    };
    let frame = Frame {
        fields,
        id: fields.get("id").and_then(|v| v.as_i64()),
    };
    let op = match fields.get("op") {
        Some(v) => v.as_str().ok_or_else(|| frame.bad("op must be a string"))?,
        None => return Err(frame.bad("missing field: op")),
    };
    let Some(name) = OpName::parse(op) else {
        return Err(OpError::new(
            frame.id,
            ErrorCode::UnknownOp,
            format!("unknown op: {}", clip(op)),
        ));
    };
    match name {
        OpName::Subscribe => {
            frame.only(&["op", "id", "channels", "resume"])?;
            Ok(Op::Subscribe {
                id: frame.id()?,
                channels: frame.channels()?,
                resume: frame.resume()?,
            })
        }
        OpName::Unsubscribe => {
            frame.only(&["op", "id", "channels"])?;
            Ok(Op::Unsubscribe {
                id: frame.id()?,
                channels: frame.channels()?,
            })
        }
        OpName::Auth => {
            frame.only(&["op", "id", "token", "cancel_on_disconnect"])?;
            Ok(Op::Auth {
                id: frame.id()?,
                token: frame.string("token")?,
                cancel_on_disconnect: frame.flag("cancel_on_disconnect")?,
            })
        }
        OpName::Ping => {
            frame.only(&["op", "id"])?;
            Ok(Op::Ping { id: frame.id()? })
        }
        OpName::OrderPlace => {
            frame.only(&["op", "id", "order"])?;
            let id = frame.id()?;
            let order = frame.required("order")?;
            if order.as_object().is_none() {
                return Err(frame.bad("order must be an object"));
            }
            Ok(Op::OrderPlace {
                id,
                order: order.encode(),
            })
        }
        OpName::OrderCancel => {
            frame.only(&["op", "id", "order_id"])?;
            Ok(Op::OrderCancel {
                id: frame.id()?,
                order_id: frame.string("order_id")?,
            })
        }
        OpName::OrderCancelAll => {
            frame.only(&["op", "id", "pair"])?;
            let id = frame.id()?;
            let pair = match frame.fields.get("pair") {
                None => None,
                Some(_) => Some(frame.string("pair")?),
            };
            Ok(Op::OrderCancelAll { id, pair })
        }
        OpName::CancelAfter => {
            frame.only(&["op", "id", "timeout_ms"])?;
            let id = frame.id()?;
            let wrong = || frame.bad("timeout_ms must be 0 or 1000..=86400000");
            let timeout_ms = frame.required("timeout_ms")?.as_u64().ok_or_else(wrong)?;
            if timeout_ms != 0 && !CANCEL_AFTER_MS.contains(&timeout_ms) {
                return Err(wrong());
            }
            Ok(Op::CancelAfter { id, timeout_ms })
        }
    }
}

/// The members of a frame object, with its `id` when it has a usable one.
struct Frame<'f, 'v> {
    fields: &'f simd_json::borrowed::Object<'v>,
    id: Option<i64>,
}

impl Frame<'_, '_> {
    fn bad(&self, message: impl Into<String>) -> OpError {
        OpError::new(self.id, ErrorCode::BadRequest, message)
    }

    /// Refuses any member not in `known`.
    fn only(&self, known: &[&str]) -> Result<(), OpError> {
        match self.fields.keys().find(|k| !known.contains(&k.as_ref())) {
            Some(unknown) => Err(self.bad(format!("unknown field: {}", clip(unknown)))),
            None => Ok(()),
        }
    }

    fn required(&self, name: &str) -> Result<&Value<'_>, OpError> {
        self.fields
            .get(name)
            .ok_or_else(|| self.bad(format!("missing field: {name}")))
    }

    fn id(&self) -> Result<i64, OpError> {
        self.required("id")?;
        self.id.ok_or_else(|| self.bad("id must be an integer"))
    }

    fn string(&self, name: &str) -> Result<String, OpError> {
        self.required(name)?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.bad(format!("{name} must be a string")))
    }

    /// An optional boolean member (absent: false).
    fn flag(&self, name: &str) -> Result<bool, OpError> {
        match self.fields.get(name) {
            None => Ok(false),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.bad(format!("{name} must be a boolean"))),
        }
    }

    fn channels(&self) -> Result<Vec<String>, OpError> {
        let wrong = || self.bad("channels must be an array of strings");
        let items = self.required("channels")?.as_array().ok_or_else(wrong)?;
        items
            .iter()
            .map(|c| c.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect()
    }

    fn resume(&self) -> Result<HashMap<String, ResumePoint>, OpError> {
        let Some(resume) = self.fields.get("resume") else {
            return Ok(HashMap::new());
        };
        let wrong =
            || self.bad("resume must map channel names to {\"epoch\": string, \"seq\": integer}");
        let points = resume.as_object().ok_or_else(wrong)?;
        points
            .iter()
            .map(|(channel, point)| {
                let point = point.as_object().ok_or_else(wrong)?;
                if point.len() != 2 {
                    return Err(wrong());
                }
                let epoch = point
                    .get("epoch")
                    .and_then(|v| v.as_str())
                    .ok_or_else(wrong)?;
                let seq = point
                    .get("seq")
                    .and_then(|v| v.as_u64())
                    .ok_or_else(wrong)?;
                let point = ResumePoint {
                    epoch: epoch.to_owned(),
                    seq,
                };
                Ok((channel.to_string(), point))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_op() {
        assert_eq!(decode(r#"{"op":"ping","id":3}"#), Ok(Op::Ping { id: 3 }));
        let sub = decode(r#"{"op":"subscribe","id":1,"channels":["book.BTC-USD"],"resume":{"book.BTC-USD":{"epoch":"9f","seq":7}}}"#)
            .unwrap();
        let Op::Subscribe {
            id,
            channels,
            resume,
        } = sub
        else {
            panic!("not a subscribe")
        };
        assert_eq!((id, channels), (1, vec!["book.BTC-USD".to_string()]));
        assert_eq!(
            resume["book.BTC-USD"],
            ResumePoint {
                epoch: "9f".into(),
                seq: 7
            }
        );
        assert_eq!(
            decode(r#"{"op":"unsubscribe","id":2,"channels":[]}"#),
            Ok(Op::Unsubscribe {
                id: 2,
                channels: vec![]
            })
        );
        assert_eq!(
            decode(r#"{"op":"auth","id":4,"token":"t"}"#),
            Ok(Op::Auth {
                id: 4,
                token: "t".into(),
                cancel_on_disconnect: false,
            })
        );
        assert_eq!(
            decode(r#"{"op":"auth","id":4,"token":"t","cancel_on_disconnect":true}"#),
            Ok(Op::Auth {
                id: 4,
                token: "t".into(),
                cancel_on_disconnect: true,
            })
        );
        let Ok(Op::OrderPlace { id: 5, order }) = decode(
            r#"{"op":"order.place","id":5,"order":{"client_order_id":"c1","pair":"BTC-USD","side":"buy","type":"limit","qty":"0.01","price":"1000.00"}}"#,
        ) else {
            panic!("an order.place")
        };
        let order: serde_json::Value = serde_json::from_str(&order).unwrap();
        assert_eq!(order["price"], "1000.00");
        assert_eq!(order["type"], "limit");
        assert_eq!(
            decode(r#"{"op":"order.cancel","id":6,"order_id":"o"}"#),
            Ok(Op::OrderCancel {
                id: 6,
                order_id: "o".into()
            })
        );
        assert_eq!(
            decode(r#"{"op":"order.cancel_all","id":7}"#),
            Ok(Op::OrderCancelAll { id: 7, pair: None })
        );
        assert_eq!(
            decode(r#"{"op":"cancel_after","id":8,"timeout_ms":0}"#),
            Ok(Op::CancelAfter {
                id: 8,
                timeout_ms: 0
            })
        );
    }

    #[test]
    fn order_entry_frames_are_bounded() {
        let code = |s: &str| decode(s).unwrap_err();
        for bad in [
            r#"{"op":"cancel_after","id":1,"timeout_ms":999}"#,
            r#"{"op":"cancel_after","id":1,"timeout_ms":86400001}"#,
            r#"{"op":"cancel_after","id":1,"timeout_ms":-1}"#,
            r#"{"op":"cancel_after","id":1,"timeout_ms":"5000"}"#,
            r#"{"op":"cancel_after","id":1}"#,
            r#"{"op":"order.place","id":1,"order":"x"}"#,
            r#"{"op":"order.place","id":1,"order":{},"x":1}"#,
            r#"{"op":"order.cancel","id":1,"order_id":7}"#,
            r#"{"op":"order.cancel_all","id":1,"pair":null}"#,
            r#"{"op":"auth","id":1,"token":"t","cancel_on_disconnect":"yes"}"#,
        ] {
            let e = code(bad);
            assert_eq!((e.code, e.id), (ErrorCode::BadRequest, Some(1)), "{bad}");
        }
    }

    #[test]
    fn every_op_name_decodes_to_its_op() {
        for name in OpName::ALL {
            let frame = match name {
                OpName::Subscribe => r#"{"op":"subscribe","id":1,"channels":["heartbeat"]}"#,
                OpName::Unsubscribe => r#"{"op":"unsubscribe","id":1,"channels":["heartbeat"]}"#,
                OpName::Auth => r#"{"op":"auth","id":1,"token":"t"}"#,
                OpName::Ping => r#"{"op":"ping","id":1}"#,
                OpName::OrderPlace => r#"{"op":"order.place","id":1,"order":{}}"#,
                OpName::OrderCancel => r#"{"op":"order.cancel","id":1,"order_id":"o"}"#,
                OpName::OrderCancelAll => r#"{"op":"order.cancel_all","id":1,"pair":"BTC-USD"}"#,
                OpName::CancelAfter => r#"{"op":"cancel_after","id":1,"timeout_ms":5000}"#,
            };
            let op = decode(frame).unwrap();
            assert_eq!(op.name(), *name, "{frame}");
        }
    }

    #[test]
    fn refuses_bad_frames_with_the_protocol_codes() {
        let code = |s: &str| decode(s).unwrap_err();
        assert_eq!(code("not json").code, "bad_request");
        assert_eq!(code("[1]").code, "bad_request");
        assert_eq!(
            code(r#"{"id":1}"#),
            OpError::new(Some(1), ErrorCode::BadRequest, "missing field: op")
        );
        assert_eq!(code(r#"{"op":"dance","id":5}"#).code, "unknown_op");
        assert_eq!(code(r#"{"op":"dance","id":5}"#).id, Some(5));
        assert_eq!(code(r#"{"op":"ping"}"#).code, "bad_request");
        assert_eq!(code(r#"{"op":"ping","id":"x"}"#).code, "bad_request");
        assert_eq!(
            code(r#"{"op":"subscribe","id":1,"channels":"book.BTC-USD"}"#).code,
            "bad_request"
        );
        assert_eq!(
            code(r#"{"op":"subscribe","id":1,"channels":[],"extra":1}"#).code,
            "bad_request"
        );
        assert_eq!(code(r#"{"op":7,"id":1}"#).code, "bad_request");
    }

    #[test]
    fn deeply_nested_frames_are_refused_before_parsing() {
        for depth in [9, 4_000, 8_000] {
            let frame = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let e = decode(&frame).unwrap_err();
            assert_eq!(e.code, "bad_request");
            assert_eq!(e.message, "frame refused: input nests deeper than 8 levels");
        }
        let nested = format!(
            r#"{{"op":"subscribe","id":1,"channels":{}{}}}"#,
            "[".repeat(6000),
            "]".repeat(6000)
        );
        assert_eq!(decode(&nested).unwrap_err().id, None);
    }

    #[test]
    fn error_messages_name_the_field_not_the_parser() {
        let e = decode(r#"{"op":"ping","id":1,"pad":"xxxx"}"#).unwrap_err();
        assert_eq!(
            e,
            OpError::new(Some(1), ErrorCode::BadRequest, "unknown field: pad")
        );
        let e = decode(r#"{"op":"subscribe","id":1}"#).unwrap_err();
        assert_eq!(e.message, "missing field: channels");
        let e = decode(r#"{"op":"subscribe","id":1,"channels":[1]}"#).unwrap_err();
        assert_eq!(e.message, "channels must be an array of strings");
        let e =
            decode(r#"{"op":"subscribe","id":1,"channels":[],"resume":{"x":{"epoch":1,"seq":2}}}"#)
                .unwrap_err();
        assert!(e.message.starts_with("resume must map"), "{}", e.message);
        let e = decode(r#"{"op":"auth","id":1,"token":7}"#).unwrap_err();
        assert_eq!(e.message, "token must be a string");
        for e in [e, decode("{").unwrap_err()] {
            for internal in ["Serde", "character", "simd", "at line"] {
                assert!(!e.message.contains(internal), "{}", e.message);
            }
        }
    }

    #[test]
    fn echoed_client_text_is_clipped() {
        let long = "x".repeat(10_000);
        let e = decode(&format!(r#"{{"op":"{long}","id":1}}"#)).unwrap_err();
        assert_eq!(e.code, "unknown_op");
        assert!(e.message.chars().count() < 60, "{}", e.message);
        let e = decode(&format!(r#"{{"op":"ping","id":1,"{long}":1}}"#)).unwrap_err();
        assert!(e.message.chars().count() < 60, "{}", e.message);
    }
}
