//! docs/PROTOCOL.md on the wire: channel names (`channel`), the public
//! topic kinds described once (`kinds`), server messages encoded once into
//! shared bytes (`encode`, carried as a `message::ChannelMessage` and
//! framed for the socket by `frame`) or per connection (`replies`), client
//! frames decoded and validated (`ops`), and the names each may use
//! (`names`); the `status` channel's message and its vocabulary of market
//! states (`status`); the candle series and 24 h figures the candle and
//! ticker channels are made of (`series`). Nothing outside this module
//! writes, parses or edits a frame.

pub mod channel;
pub mod encode;
pub(crate) mod frame;
pub mod kinds;
pub mod message;
#[macro_use]
pub mod names;
pub mod ops;
pub mod replies;
pub mod series;
pub mod status;

pub use names::{ErrorCode, MessageType, OpName};

/// Every `type` the hub sends (docs/asyncapi.yaml documents exactly these).
pub const SERVER_MESSAGE_TYPES: &[&str] = MessageType::NAMES;
/// Every `op` the hub accepts.
pub const CLIENT_OPS: &[&str] = OpName::NAMES;
/// Every `code` an `error` message may carry.
pub const ERROR_CODES: &[&str] = ErrorCode::NAMES;
