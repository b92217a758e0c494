//! What the peers of a comparison send (`publish` through nchan, the
//! `floor` sender): a frame shaped like the hub's `update`
//! (docs/PROTOCOL.md) with a `seq`/`prev_seq` chain and a `ts` taken as
//! it is built, padded with levels to about `bytes` long.

use std::time::{SystemTime, UNIX_EPOCH};

/// A hub-like `update` of `channel` in `epoch`, about `bytes` long.
pub fn message(channel: &str, epoch: &str, seq: u64, prev: u64, bytes: usize) -> String {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let head = format!(
        r#"{{"type":"update","channel":"{channel}","epoch":"{epoch}","seq":{seq},"prev_seq":{prev},"ts":{ts},"bids":[["64000.10","1.500000"]"#
    );
    let mut s = head;
    let tail = r#"],"asks":[["64000.20","0.250000"]],"checksum":0}"#;
    let level = r#",["63999.00","0.010000"]"#;
    while s.len() + level.len() + tail.len() <= bytes {
        s.push_str(level);
    }
    s.push_str(tail);
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_is_about_the_asked_size_and_valid_json() {
        for bytes in [100, 200, 1_000] {
            let m = super::message("book.BTC-USD", "e", 7, 6, bytes);
            assert!(
                m.len() <= bytes.max(180) && m.len() + 30 > bytes,
                "{bytes}: {}",
                m.len()
            );
            let v: serde_json::Value = serde_json::from_str(&m).unwrap();
            assert_eq!(
                (v["seq"].as_u64(), v["prev_seq"].as_u64()),
                (Some(7), Some(6))
            );
        }
    }
}
