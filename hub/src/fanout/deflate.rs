//! permessage-deflate (RFC 7692) for what the hub sends, one compression
//! per message for every subscriber that negotiated it
//! (docs/PROTOCOL.md, "Compression").
//!
//! The hub answers every offer with `server_no_context_takeover`: each
//! message is compressed on its own, from an empty window, so its bytes do
//! not depend on what a connection was sent before, and one compressed
//! frame serves every subscriber of a topic.

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};
use std::cell::RefCell;

/// zlib level 1, on flate2's default backend (miniz_oxide). The
/// compression runs on the pair task, once per message, and most of a
/// small message's cost is clearing the compressor's tables for the next
/// one, at every level; level 6 saves a few percent more bytes on the
/// usual messages. zlib-rs clears in half the time but its level 1 is a
/// cruder encoder (a depth message 0.70 of plain where miniz_oxide makes
/// 0.58), and the bytes are saved once per subscriber, the time spent
/// once per topic (docs/BENCHMARKS.md, "Compression").
const LEVEL: u32 = 1;

/// Messages shorter than this are sent as they are: a short JSON message
/// gains a few bytes at best, and a receiver pays an inflate for each.
pub const MIN_BYTES: usize = 128;

/// The empty stored block a sync flush ends with, which RFC 7692 §7.2.1
/// removes from the frame (and the receiver appends again).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

thread_local! {
    static COMPRESSOR: RefCell<Compress> =
        RefCell::new(Compress::new(Compression::new(LEVEL), false));
}

/// `text` compressed as one permessage-deflate message (the payload of a
/// frame with RSV1 set), or `None` when it is short or does not shrink.
pub fn compress(text: &[u8]) -> Option<Bytes> {
    if text.len() < MIN_BYTES {
        return None;
    }
    COMPRESSOR.with(|c| packed(&mut c.borrow_mut(), text))
}

/// [`compress`] at another zlib level (a compressor of its own per call):
/// what the benches compare the hub's level with.
pub fn compress_at_level(text: &[u8], level: u32) -> Option<Bytes> {
    packed(&mut Compress::new(Compression::new(level), false), text)
}

fn packed(c: &mut Compress, text: &[u8]) -> Option<Bytes> {
    {
        c.reset();
        let mut out = Vec::with_capacity(text.len() / 2 + 64);
        let start = c.total_in();
        loop {
            let consumed = (c.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity());
            }
            let status = c
                .compress_vec(&text[consumed..], &mut out, FlushCompress::Sync)
                .ok()?;
            let done = (c.total_in() - start) as usize == text.len();
            // The flush is complete once all input is in and the output
            // did not fill up.
            if done && out.len() < out.capacity() || status == Status::StreamEnd {
                break;
            }
        }
        if !out.ends_with(&TAIL) {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        (out.len() < text.len()).then(|| Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate(payload: &[u8]) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut input = payload.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(1 << 20);
        d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .expect("inflates");
        out
    }

    #[test]
    fn a_message_inflates_to_itself_and_is_smaller() {
        let text: String = (0..200)
            .map(|i| format!("[\"{}.{:02}\",\"0.5\"],", 67_000 + i, i % 100))
            .collect();
        let packed = compress(text.as_bytes()).expect("compresses");
        assert!(
            packed.len() < text.len() / 2,
            "{} of {}",
            packed.len(),
            text.len()
        );
        assert_eq!(inflate(&packed), text.as_bytes());
    }

    #[test]
    fn every_message_stands_alone() {
        // The same message twice compresses to the same bytes: nothing of
        // the first is referenced by the second (no context takeover).
        let text =
            "{\"channel\":\"book.BTC-USD\",\"type\":\"update\",\"bids\":[[\"1\",\"2\"]]}".repeat(4);
        let a = compress(text.as_bytes()).expect("compresses");
        let b = compress(text.as_bytes()).expect("compresses");
        assert_eq!(a, b);
        assert_eq!(inflate(&b), text.as_bytes());
    }

    #[test]
    fn short_or_incompressible_messages_stay_plain() {
        assert_eq!(compress(b"{\"type\":\"heartbeat\"}"), None);
        // xorshift64: bytes with nothing for LZ77 or Huffman to use.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..512)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        assert_eq!(compress(&noise), None);
    }
}
