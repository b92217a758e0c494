//! Client → hub frames of PROTOCOL.md, decoded and validated. Anything that
//! is not a well-formed op becomes a [`OpError`] with the protocol's code.

use serde::Deserialize;
use std::collections::HashMap;

/// A resume point: the last `(epoch, seq)` the client saw on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
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
    },
    Ping {
        id: i64,
    },
}

/// Why a frame was refused; `id` is echoed when the frame had a usable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    pub id: Option<i64>,
    pub code: &'static str,
    pub message: String,
}

impl OpError {
    pub fn new(id: Option<i64>, code: &'static str, message: impl Into<String>) -> Self {
        OpError {
            id,
            code,
            message: message.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeFrame {
    #[allow(dead_code)]
    op: String,
    id: i64,
    channels: Vec<String>,
    #[serde(default)]
    resume: HashMap<String, ResumePoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsubscribeFrame {
    #[allow(dead_code)]
    op: String,
    id: i64,
    channels: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFrame {
    #[allow(dead_code)]
    op: String,
    id: i64,
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PingFrame {
    #[allow(dead_code)]
    op: String,
    id: i64,
}

/// Decodes one text frame (SIMD JSON parse of a private copy).
pub fn decode(text: &str) -> Result<Op, OpError> {
    let mut bytes = text.as_bytes().to_vec();
    let value: simd_json::OwnedValue = simd_json::to_owned_value(&mut bytes)
        .map_err(|_| OpError::new(None, "bad_request", "frame is not valid JSON"))?;
    use simd_json::prelude::*;
    let Some(obj) = value.as_object() else {
        return Err(OpError::new(
            None,
            "bad_request",
            "frame must be a JSON object",
        ));
    };
    let id = obj.get("id").and_then(|v| v.as_i64());
    let op = match obj.get("op") {
        Some(v) => v
            .as_str()
            .ok_or_else(|| OpError::new(id, "bad_request", "op must be a string"))?,
        None => return Err(OpError::new(id, "bad_request", "missing op")),
    };
    let bad = |e: simd_json::Error| OpError::new(id, "bad_request", format!("invalid {op}: {e}"));
    let mut bytes = text.as_bytes().to_vec();
    Ok(match op {
        "subscribe" => {
            let f: SubscribeFrame = simd_json::serde::from_slice(&mut bytes).map_err(bad)?;
            Op::Subscribe {
                id: f.id,
                channels: f.channels,
                resume: f.resume,
            }
        }
        "unsubscribe" => {
            let f: UnsubscribeFrame = simd_json::serde::from_slice(&mut bytes).map_err(bad)?;
            Op::Unsubscribe {
                id: f.id,
                channels: f.channels,
            }
        }
        "auth" => {
            let f: AuthFrame = simd_json::serde::from_slice(&mut bytes).map_err(bad)?;
            Op::Auth {
                id: f.id,
                token: f.token,
            }
        }
        "ping" => {
            let f: PingFrame = simd_json::serde::from_slice(&mut bytes).map_err(bad)?;
            Op::Ping { id: f.id }
        }
        other => {
            return Err(OpError::new(
                id,
                "unknown_op",
                format!("unknown op: {other}"),
            ))
        }
    })
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
                token: "t".into()
            })
        );
    }

    #[test]
    fn refuses_bad_frames_with_the_protocol_codes() {
        let code = |s: &str| decode(s).unwrap_err();
        assert_eq!(code("not json").code, "bad_request");
        assert_eq!(code("[1]").code, "bad_request");
        assert_eq!(
            code(r#"{"id":1}"#),
            OpError::new(Some(1), "bad_request", "missing op")
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
}
