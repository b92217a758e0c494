//! The embedded store's write-ahead log segments, read at every open
//! after a crash (`api/src/store/embedded/wal.rs`, through
//! `api::store::embedded::read_log_segment`).
//!
//! The first byte picks the shape: odd, the rest is the segment as is;
//! even, the rest is wrapped as one record of segment 1 whose checksum
//! holds and an end mark, so that the parsing of its writes is reached.
//!
//! Invariants: reading never panics; a refusal is corruption, never
//! anything else; a segment that reads as an older one reads the same as
//! the newest (being the newest only forgives a torn end).
#![no_main]

use api::store::embedded::read_log_segment;
use api::store::StoreError;
use libfuzzer_sys::fuzz_target;

fn crc32(bytes: &[u8]) -> u32 {
    // CRC-32 (IEEE), as the log's; bitwise, the fuzzer's inputs are small.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let segment = if shape % 2 == 1 {
        rest.to_vec()
    } else {
        let mut payload = 1u64.to_le_bytes().to_vec();
        payload.extend_from_slice(rest);
        let mut record = (payload.len() as u32).to_le_bytes().to_vec();
        record.extend_from_slice(&crc32(&payload).to_le_bytes());
        record.extend_from_slice(&payload);
        record.extend_from_slice(&[0; 8]);
        record
    };
    let newest = read_log_segment(&segment, 1, true);
    let older = read_log_segment(&segment, 1, false);
    for result in [&newest, &older] {
        if let Err(e) = result {
            assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
        }
    }
    if let Ok(writes) = older {
        assert_eq!(newest.ok(), Some(writes));
    }
});
