//! WebSocket abuse: malformed-frame senders and subscribe flippers.
//!
//! A **malformed-frame sender** opens a connection, sends one [`Case`]
//! (after each other in turn), reads until the hub's error reply or close,
//! records what came back, and starts over on a new connection. What the
//! hub must answer (docs/PROTOCOL.md, "Limits and close codes" and
//! "Errors"):
//! - a frame over `limits.max_frame_bytes` (16 KiB by default), such as
//!   `[` × 100,000: close 1009 (a 1 MiB frame may meet a reset instead:
//!   the hub closes while it is still being written, see [`Case::accepts`]);
//! - a text frame that is not UTF-8: close 1007;
//! - reserved bits or a reserved opcode: close 1002;
//! - nesting deeper than the frame bounds within the size limit, garbage
//!   JSON, a binary frame, an unknown op: `error` `bad_request` /
//!   `unknown_op`; a bad token: `error` `unauthorized`; an unknown channel:
//!   `error` `unknown_channel`;
//! - `limits.max_invalid_frames` (100) rejected frames: close 1008.
//!
//! A **flipper** subscribes to one of its channels, waits for
//! `subscribed`, unsubscribes, waits for `unsubscribed`, and again, every
//! [`FLIP_EVERY`] (two frames per flip, under the hub's 20 frames/s per
//! connection), reading the channel messages in between; it reconnects
//! after [`FLIPS_PER_CONNECTION`] flips.

use super::net::{ws_error, Block, Target, Ws};
use super::Tally;
use crate::wire::Header;
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// Longest wait for a connection or for the hub's reaction.
const WAIT: Duration = Duration::from_secs(5);
/// Pause of a malformed-frame sender between two connections.
const CASE_PAUSE: Duration = Duration::from_millis(50);
/// One subscribe/unsubscribe pair per this long, per flipper.
pub const FLIP_EVERY: Duration = Duration::from_millis(125);
/// Flips on one connection before a flipper reconnects.
pub const FLIPS_PER_CONNECTION: u32 = 200;
/// Pause after a failed connect.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Invalid frames sent by [`Case::InvalidFlood`]: more than the hub's
/// default `limits.max_invalid_frames` (100).
const FLOOD_FRAMES: usize = 120;

/// One kind of malformed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `[` × 100,000: over the frame size limit.
    Deep100k,
    /// `[` × 8,000: within the size limit, over the depth bound.
    DeepUnderLimit,
    /// A 1 MiB text frame.
    Oversized,
    /// A text frame that is not UTF-8.
    InvalidUtf8,
    /// A binary frame.
    Binary,
    /// `{"op":"frobnicate"}`.
    UnknownOp,
    /// Truncated JSON.
    GarbageJson,
    /// `auth` with a token that is not one.
    BadToken,
    /// `subscribe` to a channel that does not exist.
    UnknownChannel,
    /// A text frame with RSV1 set and no extension agreed.
    ReservedBits,
    /// A frame with reserved opcode 0x3.
    ReservedOpcode,
    /// [`FLOOD_FRAMES`] garbage frames at once.
    InvalidFlood,
}

impl Case {
    pub const ALL: [Case; 12] = [
        Case::Deep100k,
        Case::DeepUnderLimit,
        Case::Oversized,
        Case::InvalidUtf8,
        Case::Binary,
        Case::UnknownOp,
        Case::GarbageJson,
        Case::BadToken,
        Case::UnknownChannel,
        Case::ReservedBits,
        Case::ReservedOpcode,
        Case::InvalidFlood,
    ];

    /// The outcome kind, `frame <case>`.
    pub fn kind(self) -> &'static str {
        match self {
            Case::Deep100k => "frame deep_100k",
            Case::DeepUnderLimit => "frame deep_under_limit",
            Case::Oversized => "frame oversized_1mib",
            Case::InvalidUtf8 => "frame invalid_utf8",
            Case::Binary => "frame binary",
            Case::UnknownOp => "frame unknown_op",
            Case::GarbageJson => "frame garbage_json",
            Case::BadToken => "frame bad_token",
            Case::UnknownChannel => "frame unknown_channel",
            Case::ReservedBits => "frame reserved_bits",
            Case::ReservedOpcode => "frame reserved_opcode",
            Case::InvalidFlood => "frame invalid_flood",
        }
    }

    /// What the hub must answer.
    pub fn expected(self) -> &'static str {
        match self {
            Case::Deep100k | Case::Oversized => "close 1009",
            Case::InvalidUtf8 => "close 1007",
            Case::ReservedBits | Case::ReservedOpcode => "close 1002",
            Case::InvalidFlood => "close 1008",
            Case::DeepUnderLimit | Case::Binary | Case::GarbageJson => "error bad_request",
            Case::UnknownOp => "error unknown_op",
            Case::BadToken => "error unauthorized",
            Case::UnknownChannel => "error unknown_channel",
        }
    }

    /// Whether `outcome` is an acceptable reaction. The hub refuses an
    /// oversized frame on its header and closes with the rest unread, so
    /// while a 1 MiB frame is still being written the close may arrive
    /// as a reset instead of a 1009.
    pub fn accepts(self, outcome: &str) -> bool {
        outcome == self.expected()
            || (self == Case::Oversized && matches!(outcome, "send: reset" | "reset"))
    }

    fn frames(self) -> Vec<Message> {
        let text = |s: String| vec![Message::text(s)];
        let raw = |payload: &'static [u8], opcode: OpCode, rsv1: bool| {
            let mut frame = Frame::message(payload, opcode, true);
            frame.header_mut().rsv1 = rsv1;
            vec![Message::Frame(frame)]
        };
        match self {
            Case::Deep100k => text("[".repeat(100_000)),
            Case::DeepUnderLimit => text("[".repeat(8_000)),
            Case::Oversized => text(format!(
                r#"{{"op":"ping","id":1,"pad":"{}"}}"#,
                "a".repeat(1 << 20)
            )),
            Case::InvalidUtf8 => raw(
                b"{\"op\":\"ping\",\"id\":\xff\xfe}",
                OpCode::Data(Data::Text),
                false,
            ),
            Case::Binary => vec![Message::binary(b"\x00\x01{\"op\":\"ping\"}".to_vec())],
            Case::UnknownOp => text(json!({"op": "frobnicate", "id": 7}).to_string()),
            Case::GarbageJson => text(r#"{"op":"subscribe","channels":["book.BTC-USD",,"#.into()),
            Case::BadToken => text(
                json!({"op": "auth", "id": 8, "token": "eyJhbGciOiJub25lIn0.e30."}).to_string(),
            ),
            Case::UnknownChannel => {
                text(json!({"op": "subscribe", "id": 9, "channels": ["book.NOPE-USD"]}).to_string())
            }
            Case::ReservedBits => raw(
                b"{\"op\":\"ping\",\"id\":10}",
                OpCode::Data(Data::Text),
                true,
            ),
            Case::ReservedOpcode => raw(
                b"{\"op\":\"ping\",\"id\":11}",
                OpCode::Data(Data::Reserved(3)),
                false,
            ),
            Case::InvalidFlood => (0..FLOOD_FRAMES)
                .map(|i| Message::text(format!("garbage {i}")))
                .collect(),
        }
    }
}

/// Runs `workers` malformed-frame senders until dropped.
pub async fn malformed(target: Target, tally: Arc<Tally>, workers: u32) {
    join_all((0..workers as usize).map(|w| sender(&target, &tally, w))).await;
}

async fn sender(target: &Target, tally: &Tally, index: usize) {
    let source = target.source(Block::Frames, index);
    // Workers start at different cases.
    for case in Case::ALL.iter().cycle().skip(index) {
        match target.websocket(source, WAIT).await {
            Ok(mut ws) => {
                let outcome = attempt(&mut ws, *case).await;
                tally.outcome(case.kind(), &outcome, case.accepts(&outcome));
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                tokio::time::sleep(CASE_PAUSE).await;
            }
            Err(e) => {
                tally.outcome(case.kind(), &format!("connect: {e}"), false);
                handshake_status(tally, &e);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// Counts a 5xx handshake answer as a server error.
fn handshake_status(tally: &Tally, error: &str) {
    if let Some(status) = error.strip_prefix("http ").and_then(|s| s.parse().ok()) {
        tally.status(status);
    }
}

/// Sends `case` and returns the hub's reaction: `error CODE`,
/// `close CODE`, or what went wrong.
async fn attempt(ws: &mut Ws, case: Case) -> String {
    for frame in case.frames() {
        if let Err(e) = ws.feed(frame).await {
            return format!("send: {}", ws_error(&e));
        }
    }
    if let Err(e) = ws.flush().await {
        return format!("send: {}", ws_error(&e));
    }
    let flood = case == Case::InvalidFlood;
    let deadline = Instant::now() + WAIT;
    loop {
        let next = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(next) => next,
            Err(_) => return "no answer".into(),
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                let Ok(h) = serde_json::from_str::<Header>(text.as_str()) else {
                    return "unreadable reply".into();
                };
                // A flood is answered frame by frame until the close.
                if h.kind == "error" && !flood {
                    return format!("error {}", h.code.unwrap_or("?"));
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return format!("close {}", frame.map_or(1005, |f| u16::from(f.code)));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return ws_error(&e),
            None => return "closed without close frame".into(),
        }
    }
}

/// Runs `flippers` subscribe flippers over `channels` until dropped.
pub async fn flippers(target: Target, tally: Arc<Tally>, flippers: u32, channels: Vec<String>) {
    join_all((0..flippers as usize).map(|i| flipper(&target, &tally, &channels, i))).await;
}

async fn flipper(target: &Target, tally: &Tally, channels: &[String], index: usize) {
    let source = target.source(Block::Flip, index);
    let mut turn = index;
    loop {
        let mut ws = match target.websocket(source, WAIT).await {
            Ok(ws) => ws,
            Err(e) => {
                tally.outcome("flip", &format!("connect: {e}"), false);
                handshake_status(tally, &e);
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        let mut tick = tokio::time::interval(FLIP_EVERY);
        let mut id = 0i64;
        for _ in 0..FLIPS_PER_CONNECTION {
            tick.tick().await;
            let channel = &channels[turn % channels.len()];
            turn += 1;
            let started = Instant::now();
            let sub = json!({"op": "subscribe", "id": id + 1, "channels": [channel]});
            let unsub = json!({"op": "unsubscribe", "id": id + 2, "channels": [channel]});
            id += 2;
            let flip = async {
                request(&mut ws, sub, id - 1, "subscribed").await?;
                tally.time("flip subscribe", started.elapsed());
                request(&mut ws, unsub, id, "unsubscribed").await
            };
            match flip.await {
                Ok(()) => tally.outcome("flip", "subscribed + unsubscribed", true),
                Err(e) => {
                    tally.outcome("flip", &e, false);
                    break;
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    }
}

/// Sends `op` and reads (skipping channel messages) until the reply of
/// type `want` with `id`; `Err` describes any other reaction.
async fn request(ws: &mut Ws, op: serde_json::Value, id: i64, want: &str) -> Result<(), String> {
    ws.send(Message::text(op.to_string()))
        .await
        .map_err(|e| format!("send: {}", ws_error(&e)))?;
    let deadline = Instant::now() + WAIT;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("no {want} reply"))?;
        match next {
            Some(Ok(Message::Text(text))) => {
                let Ok(h) = serde_json::from_str::<Header>(text.as_str()) else {
                    return Err("unreadable frame".into());
                };
                if h.id != Some(id) {
                    continue;
                }
                if h.kind == want {
                    return Ok(());
                }
                return Err(format!("{} {}", h.kind, h.code.unwrap_or(""))
                    .trim()
                    .to_string());
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(format!(
                    "close {}",
                    frame.map_or(1005, |f| u16::from(f.code))
                ));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ws_error(&e)),
            None => return Err("closed without close frame".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_distinct_and_framed() {
        let mut kinds: Vec<_> = Case::ALL.iter().map(|c| c.kind()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), Case::ALL.len());
        for case in Case::ALL {
            assert!(!case.frames().is_empty(), "{case:?}");
        }
        assert_eq!(Case::InvalidFlood.frames().len(), FLOOD_FRAMES);
        assert!(Case::Oversized.accepts("send: reset"));
        assert!(Case::Oversized.accepts("close 1009"));
        assert!(!Case::Deep100k.accepts("send: reset"));
        assert!(!Case::Binary.accepts("close 1009"));
        match &Case::InvalidUtf8.frames()[0] {
            Message::Frame(f) => assert!(std::str::from_utf8(f.payload()).is_err()),
            other => panic!("{other:?}"),
        }
    }
}
