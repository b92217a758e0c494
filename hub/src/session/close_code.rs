//! Close codes of docs/PROTOCOL.md ("Limits and close codes"), and the
//! code for a client stream that broke.

pub const GOING_AWAY: u16 = 1001;
/// A frame that breaks the WebSocket protocol (RFC 6455 §7.4.1).
pub const PROTOCOL_ERROR: u16 = 1002;
/// A text frame that is not UTF-8.
pub const INVALID_DATA: u16 = 1007;
pub const POLICY: u16 = 1008;
pub const TOO_BIG: u16 = 1009;
pub const SLOW_CONSUMER: u16 = 4008;

/// The close code for a client stream that broke: 1009 for a frame over
/// the size limit, 1007 for a text frame that is not UTF-8, 1002 for any
/// other protocol violation (unmasked frame, reserved bits, bad opcode,
/// fragmentation errors); `None` when the peer is simply gone.
pub(super) fn close_for(e: tungstenite::Error) -> Option<(u16, &'static str)> {
    use super::inflate::Refusal;
    use tungstenite::Error;
    if let Error::Io(io) = &e {
        return match io.get_ref()?.downcast_ref::<Refusal>()? {
            Refusal::TooBig => Some((TOO_BIG, "frame too large")),
            Refusal::Protocol => Some((PROTOCOL_ERROR, "protocol error")),
        };
    }
    match e {
        Error::Capacity(_) => Some((TOO_BIG, "frame too large")),
        Error::Utf8(_) => Some((INVALID_DATA, "text frame is not UTF-8")),
        Error::Protocol(_) | Error::AttackAttempt => Some((PROTOCOL_ERROR, "protocol error")),
        _ => None,
    }
}
