//! PROTOCOL.md on the wire: channel names, server messages encoded once
//! into shared bytes, client frames decoded and validated.

pub mod channel;
pub mod encode;
pub mod ops;
