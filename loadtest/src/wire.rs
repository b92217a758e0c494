//! The hub → client message fields the harness reads (docs/PROTOCOL.md,
//! "Hub → client"), borrowed from the frame text without copying.
//! Everything else in a frame is skipped.

use serde::Deserialize;

/// The envelope of every hub message. Channel messages have `channel`,
/// `epoch`, `seq`, `prev_seq` and `ts`; replies have `id`.
#[derive(Debug, Deserialize)]
pub struct Header<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    #[serde(borrow)]
    pub channel: Option<&'a str>,
    #[serde(borrow)]
    pub epoch: Option<&'a str>,
    pub seq: Option<u64>,
    pub prev_seq: Option<u64>,
    /// Hub ingest time, µs since the Unix epoch.
    pub ts: Option<u64>,
    /// Why a snapshot (or depth/ticker state message) was sent.
    #[serde(borrow)]
    pub reason: Option<&'a str>,
    pub checksum: Option<u32>,
    /// Echoed request id of a reply.
    pub id: Option<i64>,
    /// Error code of an `error` reply.
    #[serde(borrow)]
    pub code: Option<&'a str>,
    /// `subscribed`: channels resumed from history.
    #[serde(default, borrow)]
    pub recovered: Vec<&'a str>,
    /// `subscribed`: channels whose resume point was not held.
    #[serde(default, borrow)]
    pub not_recovered: Vec<&'a str>,
}

/// The levels of a `snapshot`, `update` or `depth` message, as the
/// decimal strings they were sent as.
#[derive(Debug, Deserialize)]
pub struct Levels<'a> {
    #[serde(default, borrow)]
    pub bids: Vec<(&'a str, &'a str)>,
    #[serde(default, borrow)]
    pub asks: Vec<(&'a str, &'a str)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_protocol_examples() {
        let text = r#"{"type":"snapshot","channel":"book.BTC-USD","epoch":"9f2c","seq":1042,"prev_seq":0,"reason":"subscribe","ts":1763940000123456,
 "bids":[["64000.10","1.50000000"]],"asks":[["64000.20","0.25000000"]],"checksum":3421987761}"#;
        let h: Header = serde_json::from_str(text).unwrap();
        assert_eq!(
            (h.kind, h.channel, h.seq, h.prev_seq),
            ("snapshot", Some("book.BTC-USD"), Some(1042), Some(0))
        );
        assert_eq!(h.checksum, Some(3421987761));
        let l: Levels = serde_json::from_str(text).unwrap();
        assert_eq!(l.bids, vec![("64000.10", "1.50000000")]);

        let sub = r#"{"type":"subscribed","id":1,"channels":["book.BTC-USD"],"recovered":["a"],"not_recovered":[]}"#;
        let h: Header = serde_json::from_str(sub).unwrap();
        assert_eq!((h.id, h.recovered), (Some(1), vec!["a"]));

        let err =
            r#"{"type":"error","id":1,"code":"unknown_channel","message":"no \"such\" channel"}"#;
        let h: Header = serde_json::from_str(err).unwrap();
        assert_eq!(h.code, Some("unknown_channel"));
    }
}
