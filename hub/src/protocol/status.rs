//! The `status` channel's message (docs/PROTOCOL.md, "Market status"):
//! every pair's market state, its reason and since when, in one small
//! message sent on subscribe and whenever a pair's state changes. The
//! states themselves are decided in `market/status.rs`; this file only
//! names them and writes the message.

use super::encode::{write_json_str, write_u64, Encoder, Header};
use super::names::MessageType;
use bytes::Bytes;

wire_names! {
    /// A pair's market state, as `state` of the `status` message and
    /// `status` of `GET /markets`. When several causes hold at once, the
    /// first in this order wins: `halted`, `resyncing`, `stale`, `online`.
    pub enum MarketState {
        /// The book is live and trading is open.
        Online = "online",
        /// No upstream message for the pair for `stale_after_ms`: the book
        /// may be out of date.
        Stale = "stale",
        /// The venue halted trading in the pair: it refuses new orders.
        Halted = "halted",
        /// The book is not trustworthy until the upstream's next snapshot
        /// (not loaded yet, a seq gap, a new upstream epoch).
        Resyncing = "resyncing",
    }
}

/// One pair's entry of a `status` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairStatus {
    pub pair: String,
    pub state: MarketState,
    /// Why, for people; `None` for `online`.
    pub reason: Option<String>,
    /// When the pair entered `state` on this node, µs since the Unix epoch.
    pub since: u64,
}

impl Encoder {
    /// `status`: the header, `reason` only on a replacement after an
    /// overflow, `ts`, then `pairs` in the order given.
    pub fn status(&mut self, h: &Header, reason: Option<&str>, pairs: &[PairStatus]) -> Bytes {
        self.start(MessageType::Status, h);
        self.reason(reason);
        self.ts(h.ts);
        let b = self.out();
        b.extend_from_slice(b",\"pairs\":[");
        for (i, p) in pairs.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            b.extend_from_slice(b"{\"pair\":\"");
            b.extend_from_slice(p.pair.as_bytes());
            b.extend_from_slice(b"\",\"state\":\"");
            b.extend_from_slice(p.state.as_str().as_bytes());
            b.extend_from_slice(b"\",\"reason\":");
            match &p.reason {
                Some(r) => write_json_str(b, r),
                None => b.extend_from_slice(b"null"),
            }
            b.extend_from_slice(b",\"since\":");
            write_u64(b, p.since);
            b.push(b'}');
        }
        b.extend_from_slice(b"]}");
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_lists_every_pair_and_escapes_the_venue_reason() {
        let h = Header {
            channel: "status",
            epoch: "5b1e0c2d",
            seq: 4,
            prev_seq: 3,
            ts: 1_796_273_612_000_123,
        };
        let pairs = [
            PairStatus {
                pair: "BTC-USD".into(),
                state: MarketState::Online,
                reason: None,
                since: 1,
            },
            PairStatus {
                pair: "ETH-USD".into(),
                state: MarketState::Halted,
                reason: Some("a \"quoted\"\nreason".into()),
                since: 2,
            },
        ];
        let msg = Encoder::new().status(&h, None, &pairs);
        let v: serde_json::Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(
            v,
            json!({"type":"status","channel":"status","epoch":"5b1e0c2d","seq":4,"prev_seq":3,
                   "ts":1_796_273_612_000_123_u64,"pairs":[
                       {"pair":"BTC-USD","state":"online","reason":null,"since":1},
                       {"pair":"ETH-USD","state":"halted","reason":"a \"quoted\"\nreason","since":2}]})
        );
        let replaced = Encoder::new().status(&h, Some("slow_consumer"), &pairs);
        let v: serde_json::Value = serde_json::from_slice(&replaced).unwrap();
        assert_eq!(v["reason"], "slow_consumer");
    }

    #[test]
    fn states_round_trip() {
        for state in MarketState::ALL {
            assert_eq!(MarketState::parse(state.as_str()), Some(*state));
        }
    }
}
