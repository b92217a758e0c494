//! A channel message as the fan-out carries it: encoded once by
//! [`Encoder`](super::encode::Encoder) and shared by every subscriber,
//! together with the one variant a subscriber may need instead, its first
//! message on a channel, whose `prev_seq` is 0 (docs/PROTOCOL.md,
//! "Sequence numbers and epochs"). The encoder records where `prev_seq`'s
//! digits are, so the variant is made here without reading the JSON; the
//! fan-out only chooses which of the two it queues.

use axum::extract::ws::Utf8Bytes;
use bytes::{Bytes, BytesMut};
use std::ops::Range;

/// One encoded channel message (see the module doc).
#[derive(Debug, Clone)]
pub struct ChannelMessage {
    text: Utf8Bytes,
    /// Byte range of the `prev_seq` value in `text`.
    prev_seq: Range<usize>,
    /// `text` compressed with permessage-deflate, once some subscriber
    /// of its topic negotiated it and it is worth it
    /// (`fanout/deflate.rs`).
    deflated: Option<Bytes>,
}

impl ChannelMessage {
    /// `text` as the encoder wrote it, its `prev_seq` value at `prev_seq`.
    pub(super) fn new(text: Bytes, prev_seq: Range<usize>) -> ChannelMessage {
        debug_assert!(text
            .get(prev_seq.clone())
            .is_some_and(|d| !d.is_empty() && d.iter().all(u8::is_ascii_digit)));
        ChannelMessage {
            text: Utf8Bytes::try_from(text).expect("the encoder writes only UTF-8 JSON"),
            prev_seq,
            deflated: None,
        }
    }

    /// Compresses the message for the subscribers that negotiated
    /// permessage-deflate (once; a short or incompressible message stays
    /// without).
    pub fn deflate(&mut self) {
        if self.deflated.is_none() {
            self.deflated = crate::fanout::deflate::compress(self.text.as_bytes());
        }
    }

    /// The compressed form, if [`ChannelMessage::deflate`] made one.
    pub fn deflated(&self) -> Option<&Bytes> {
        self.deflated.as_ref()
    }

    /// The message as published.
    pub fn text(&self) -> &Utf8Bytes {
        &self.text
    }

    pub fn into_text(self) -> Utf8Bytes {
        self.text
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The same message in bytes of its own (one allocation and copy):
    /// each fan-out shard gets one, so the shards' workers, on different
    /// cores, count references on different cache lines instead of
    /// bouncing one between them.
    pub fn detached(&self) -> ChannelMessage {
        let text = Bytes::copy_from_slice(self.text.as_bytes());
        ChannelMessage {
            text: Utf8Bytes::try_from(text).expect("copied from UTF-8"),
            prev_seq: self.prev_seq.clone(),
            deflated: self.deflated.as_deref().map(Bytes::copy_from_slice),
        }
    }

    /// The same message as a client's first on its channel: `prev_seq` 0.
    pub fn first_on_channel(&self) -> Utf8Bytes {
        let bytes = self.text.as_bytes();
        let mut out = BytesMut::with_capacity(bytes.len());
        out.extend_from_slice(&bytes[..self.prev_seq.start]);
        out.extend_from_slice(b"0");
        out.extend_from_slice(&bytes[self.prev_seq.end..]);
        Utf8Bytes::try_from(out.freeze()).expect("digits replaced by a digit")
    }

    /// A message of arbitrary text whose `prev_seq` is at `prev_seq`, for
    /// the fan-out's unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(text: &str) -> ChannelMessage {
        let at = text.find("\"prev_seq\":").map_or(0, |at| at + 11);
        let end = at + text[at..].find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        ChannelMessage {
            text: Utf8Bytes::from(text.to_owned()),
            prev_seq: at..end,
            deflated: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::protocol::encode::{Encoder, Header};
    use orderbook::{MarketSpec, Qty};

    #[test]
    fn the_first_message_variant_has_prev_seq_zero_and_nothing_else_changes() {
        let spec = MarketSpec::new("BTC-USD", 2, 8, Qty(1)).unwrap();
        let h = Header {
            channel: "trades.BTC-USD",
            epoch: "9f2c",
            seq: 1043,
            prev_seq: 1042,
            ts: 1_763_940_000_124_001,
        };
        let mut enc = Encoder::new();
        let bytes = enc.trades(&spec, &h, &[]);
        let msg = enc.channel_message(bytes);
        assert_eq!(
            msg.first_on_channel().as_str(),
            msg.text()
                .as_str()
                .replace("\"prev_seq\":1042", "\"prev_seq\":0")
        );
    }
}
