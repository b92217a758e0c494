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
#[path = "ops_tests.rs"]
mod tests;
