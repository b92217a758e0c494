//! Server frames of RFC 6455 as the hub writes them: unmasked and final,
//! so a channel message's frame is the same bytes for every subscriber
//! (docs/ARCHITECTURE.md, "Writes"). The header is all that is made per
//! write; the payload is the shared message as it is.

/// Opcodes of RFC 6455 §5.2 the hub writes or looks for.
pub(crate) const OP_TEXT: u8 = 0x1;
/// The first frame of a compressed message has RSV1 set (RFC 7692 §6).
pub(crate) const RSV1: u8 = 0x40;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

/// A Ping with no payload.
pub(crate) const PING: [u8; 2] = [0x80 | OP_PING, 0];

/// The header of an unmasked, final frame of `opcode` (with [`RSV1`]
/// for a compressed one) with `len` payload bytes (RFC 6455 §5.2),
/// written into `out`; returns its length (2, 4 or 10).
pub(crate) fn header(opcode: u8, len: usize, out: &mut [u8; 10]) -> usize {
    out[0] = 0x80 | opcode;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= usize::from(u16::MAX) {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// A Close frame with `code` and `reason` (at most 123 bytes, as the
/// protocol's reasons are).
pub(crate) fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let reason = &reason.as_bytes()[..reason.len().min(123)];
    let mut out = Vec::with_capacity(4 + reason.len());
    out.push(0x80 | OP_CLOSE);
    out.push((2 + reason.len()) as u8);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason);
    out
}

/// Whether `frames`, whole server frames back to back, hold a Close.
pub(crate) fn holds_close(mut frames: &[u8]) -> bool {
    while frames.len() >= 2 {
        if frames[0] & 0x0f == OP_CLOSE {
            return true;
        }
        let (head, len): (usize, usize) = match frames[1] & 0x7f {
            126 if frames.len() >= 4 => {
                (4, usize::from(u16::from_be_bytes([frames[2], frames[3]])))
            }
            127 if frames.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&frames[2..10]);
                (10, u64::from_be_bytes(n) as usize)
            }
            126 | 127 => return false,
            n => (2, usize::from(n)),
        };
        frames = frames.get(head.saturating_add(len)..).unwrap_or_default();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_take_the_short_form_that_fits() {
        let mut h = [0u8; 10];
        assert_eq!(header(OP_TEXT, 125, &mut h), 2);
        assert_eq!(&h[..2], &[0x81, 125]);
        assert_eq!(header(OP_TEXT, 126, &mut h), 4);
        assert_eq!(&h[..4], &[0x81, 126, 0, 126]);
        assert_eq!(header(OP_TEXT, 65_535, &mut h), 4);
        assert_eq!(&h[..4], &[0x81, 126, 0xff, 0xff]);
        assert_eq!(header(OP_TEXT, 65_536, &mut h), 10);
        assert_eq!(&h[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn a_close_is_found_behind_other_frames() {
        let mut frames = vec![0x8a, 3, b'a', b'b', b'c'];
        assert!(!holds_close(&frames));
        frames.extend(close_frame(1000, "bye"));
        assert!(holds_close(&frames));
        assert!(holds_close(&close_frame(4008, "slow consumer")));
        assert!(!holds_close(&PING));
    }
}
