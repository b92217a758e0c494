//! The hub → client messages written for one connection rather than
//! encoded once per channel: the answers to ops (`subscribed`,
//! `unsubscribed`, `authed`, `pong`, `error`), the per-connection
//! `heartbeat`, the `shutdown` notice, and the private channels' `order`
//! and `balance` (docs/PROTOCOL.md). These are rare next to channel
//! messages, so they are built with `serde_json` rather than by hand.

use super::encode::Header;
use super::names::{ErrorCode, MessageType};
use serde_json::{json, Value};

/// `subscribed`: the channels of the request (deduplicated, in order),
/// and which of those that asked to `resume` were recovered.
pub fn subscribed(
    id: i64,
    channels: &[String],
    recovered: &[String],
    not_recovered: &[String],
) -> String {
    json!({"type": MessageType::Subscribed.as_str(), "id": id, "channels": channels,
           "recovered": recovered, "not_recovered": not_recovered})
    .to_string()
}

/// `unsubscribed`: the channels actually removed.
pub fn unsubscribed(id: i64, channels: &[String]) -> String {
    json!({"type": MessageType::Unsubscribed.as_str(), "id": id, "channels": channels}).to_string()
}

/// `authed`: the user the token names, and whether the connection is
/// attached to cancel_on_disconnect (docs/PROTOCOL.md "Order entry").
pub fn authed(id: i64, user_id: &str, cancel_on_disconnect: bool) -> String {
    json!({"type": MessageType::Authed.as_str(), "id": id, "user_id": user_id,
           "cancel_on_disconnect": cancel_on_disconnect})
    .to_string()
}

/// `pong` with the hub's time (µs since the Unix epoch).
pub fn pong(id: i64, ts: u64) -> String {
    json!({"type": MessageType::Pong.as_str(), "id": id, "ts": ts}).to_string()
}

/// `error`; `id` is the refused op's, `null` when the frame had no usable
/// one or the error answers no op.
pub fn error(id: Option<i64>, code: ErrorCode, message: &str) -> String {
    json!({"type": MessageType::Error.as_str(), "id": id, "code": code.as_str(),
           "message": message})
    .to_string()
}

/// `heartbeat` number `seq` of this connection (`prev_seq` is `seq - 1`).
pub fn heartbeat(epoch: &str, seq: u64, ts: u64) -> String {
    json!({"type": MessageType::Heartbeat.as_str(), "channel": "heartbeat", "epoch": epoch,
           "seq": seq, "prev_seq": seq.saturating_sub(1), "ts": ts})
    .to_string()
}

/// `shutdown`: the hub is going away; reconnect after this long.
pub fn shutdown(reconnect_after_ms: u64) -> String {
    json!({"type": MessageType::Shutdown.as_str(), "reconnect_after_ms": reconnect_after_ms})
        .to_string()
}

/// `order` on the `orders` channel: `order` is the REST API's Order.
pub fn order(h: &Header, order: &Value) -> String {
    private(MessageType::Order, h, "order", order)
}

/// `balance` on the `balances` channel: `balance` is one entry of
/// `GET /wallets/balances`.
pub fn balance(h: &Header, balance: &Value) -> String {
    private(MessageType::Balance, h, "balance", balance)
}

// Order entry (docs/PROTOCOL.md "Order entry").

/// `order` answering `order.place` / `order.cancel`: `order` is the REST
/// API's Order; `created` is false when `order.place` replayed an earlier
/// request with the same `client_order_id` (REST's 200 rather than 201).
pub fn order_reply(id: i64, order: &Value, created: Option<bool>) -> String {
    let mut msg = json!({"type": MessageType::Order.as_str(), "id": id, "order": order});
    if let Some(created) = created {
        msg["created"] = Value::Bool(created);
    }
    msg.to_string()
}

/// `cancelled` answering `order.cancel_all`: the orders it cancelled.
pub fn cancelled_reply(id: i64, order_ids: &[String]) -> String {
    json!({"type": MessageType::Cancelled.as_str(), "id": id, "order_ids": order_ids}).to_string()
}

/// `cancelled` on the `orders` channel: a dead-man's switch fired;
/// `notice` is `{"trigger", "order_ids"}`.
pub fn cancelled(h: &Header, notice: &Value) -> String {
    let mut msg = json!({"type": MessageType::Cancelled.as_str(), "channel": h.channel,
                         "epoch": h.epoch, "seq": h.seq, "prev_seq": h.prev_seq, "ts": h.ts});
    msg["trigger"] = notice["trigger"].clone();
    msg["order_ids"] = notice["order_ids"].clone();
    msg.to_string()
}

/// `cancel_after_set` answering `cancel_after`: the trigger time (µs since
/// the Unix epoch), `null` when `timeout_ms` 0 disarmed it.
pub fn cancel_after_set(id: i64, timeout_ms: u64, trigger_ts: Option<u64>) -> String {
    json!({"type": MessageType::CancelAfterSet.as_str(), "id": id, "timeout_ms": timeout_ms,
           "trigger_ts": trigger_ts})
    .to_string()
}

fn private(kind: MessageType, h: &Header, field: &str, payload: &Value) -> String {
    let mut msg = json!({"type": kind.as_str(), "channel": h.channel, "epoch": h.epoch,
                         "seq": h.seq, "prev_seq": h.prev_seq, "ts": h.ts});
    msg[field] = payload.clone();
    msg.to_string()
}
