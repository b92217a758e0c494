//! What a connection's outbound queue holds (frames, each a channel
//! message, a reply or bytes already framed) and what a push answers.

use crate::fanout::ChannelId;
use axum::extract::ws::Utf8Bytes;

/// One queued frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// `None` for replies and per-connection messages.
    pub channel: Option<ChannelId>,
    /// The channel message's seq (0 for replies).
    pub seq: u64,
    pub body: Body,
    /// Hub ingest time (µs) of the event behind a channel message, for the
    /// publish-to-write latency histogram; 0 for replies.
    pub ts: u64,
}

/// What a queued frame carries.
#[derive(Debug, Clone)]
pub enum Body {
    /// A text message: the writer frames it.
    Text(Utf8Bytes),
    /// A text message compressed with permessage-deflate
    /// (`fanout/deflate.rs`): the writer frames it with RSV1 set.
    Deflated(bytes::Bytes),
    /// A text message the connection's writer compresses, on its own
    /// thread, if it is worth it: a snapshot, which is one connection's
    /// own (compressing it where it is queued would load the pair task
    /// with one compression per subscriber in a subscribe storm).
    ToCompress(Utf8Bytes),
    /// Whole frames, already framed by the protocol layer (a Pong, the
    /// reply to a Close).
    Framed(bytes::Bytes),
    /// The rest of a frame a push wrote in part (`through.rs`): raw bytes
    /// that continue a frame already counted as sent, so never read as
    /// frames of their own (a payload byte could look like a Close).
    Rest(bytes::Bytes),
}

impl Body {
    /// Bytes it holds (what the queue's bound counts).
    pub fn len(&self) -> usize {
        match self {
            Body::Text(t) | Body::ToCompress(t) => t.len(),
            Body::Deflated(b) | Body::Framed(b) | Body::Rest(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text message, if it is one.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Body::Text(t) | Body::ToCompress(t) => Some(t.as_str()),
            Body::Deflated(_) | Body::Framed(_) | Body::Rest(_) => None,
        }
    }
}

/// Why the queue asks its connection to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    SlowConsumer,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for writing.
    Queued,
    /// Written to the socket at once (`through.rs`), this many payload
    /// bytes.
    Written(usize),
    /// Not for this connection (not subscribed, or already in its snapshot).
    Filtered,
    /// Did not fit; the channel's queued messages were dropped and the
    /// caller must arrange a fresh snapshot for this channel.
    NeedsResync,
    /// Did not fit and cannot be conflated: the connection is closing 4008.
    Closing,
}
