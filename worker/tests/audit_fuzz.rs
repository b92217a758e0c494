//! Property-based fuzzing of the archive's reader (the bytes of an object
//! are outside input when `audit verify` reads them back): arbitrary bytes
//! never panic it, and flipping any one byte of a real object — gzip
//! header, compressed data or trailer — is always reported.

use proptest::prelude::*;
use worker::audit::record::{chain_hash, decode_exact, encode_object, write_line};

/// A real object: `n` chained records of one stream, as the archiver
/// writes them.
fn object(n: u64) -> Vec<u8> {
    let mut prev = "0".repeat(64);
    let mut lines = Vec::new();
    for seq in 1..=n {
        let event = format!(
            r#"{{"id":"01a2-{seq}","type":"order.accepted","version":1,"time":"2026-12-03T10:00:00Z","user_id":"u","correlation_id":"c","data":{{"i":{seq}}}}}"#
        );
        let hash = chain_hash(&prev, "u", seq, event.as_bytes());
        lines.push(write_line("u", seq, &prev, &hash, &event));
        prev = hash;
    }
    encode_object(&lines)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = decode_exact(&bytes);
    }

    #[test]
    fn any_flipped_byte_is_caught(n in 1u64..20, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = object(n);
        prop_assert!(decode_exact(&bytes).is_ok());
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let caught = match decode_exact(&bytes) {
            Err(_) => true,
            Ok(records) => records.iter().any(|r| !r.hash_holds()),
        };
        prop_assert!(caught, "a flip at byte {} of {} went unseen", i, bytes.len());
    }
}
