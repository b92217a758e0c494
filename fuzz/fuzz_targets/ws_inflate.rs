//! A compressing client's frames: `hub::session::inflate::Decoder`, which
//! inflates permessage-deflate messages before tungstenite reads them.
//!
//! Invariants: the output never holds a frame longer than the limit (plus
//! its header); whatever is refused is refused with a reason, never a
//! panic; input fed in two parts gives the same output as fed at once.
#![no_main]

use bytes::BytesMut;
use hub::session::inflate::Decoder;
use libfuzzer_sys::fuzz_target;

const MAX: usize = 16 * 1024;

fn run(parts: &[&[u8]]) -> (Result<(), hub::session::inflate::Refusal>, Vec<u8>) {
    let mut decoder = Decoder::new(MAX);
    let (mut raw, mut out) = (BytesMut::new(), BytesMut::new());
    for part in parts {
        raw.extend_from_slice(part);
        // Until it takes no more: a call inflates at most one message.
        loop {
            let before = raw.len();
            if let Err(e) = decoder.feed(&mut raw, &mut out) {
                return (Err(e), out.to_vec());
            }
            if raw.is_empty() || raw.len() == before {
                break;
            }
        }
    }
    (Ok(()), out.to_vec())
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 4 * MAX {
        return;
    }
    let (whole, out) = run(&[data]);
    // Every frame written out is within the limit.
    let mut rest = &out[..];
    while rest.len() >= 2 {
        let (ext, len) = match rest[1] & 0x7f {
            126 => (2, u16::from_be_bytes([rest[2], rest[3]]) as usize),
            127 => (
                8,
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
            ),
            n => (0, n as usize),
        };
        assert!(len <= MAX, "a frame of {len} bytes passed");
        let mask = if rest[1] & 0x80 != 0 { 4 } else { 0 };
        rest = &rest[(2 + ext + mask + len).min(rest.len())..];
    }
    // Split anywhere: the same result.
    let cut = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let (split, split_out) = run(&[&data[..cut], &data[cut..]]);
    assert_eq!(whole.is_ok(), split.is_ok());
    if whole.is_ok() {
        assert_eq!(out, split_out);
    }
});
