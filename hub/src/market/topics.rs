//! The fixed set of topics of one pair and their numbering: 8 kinds
//! (book, depth 1/5/10/20/50, trades, ticker) × 3 cadences (raw, @100ms,
//! @1000ms). A pair owns a contiguous range of channel ids, so finding a
//! topic from a channel id is a subtraction.

use crate::protocol::channel::{Cadence, Channel, ChannelKind, DEPTHS};

/// What a pair topic carries (the market subset of [`ChannelKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    Book,
    Depth(u16),
    Trades,
    Ticker,
}

const KINDS: usize = 8;
const CADENCES: [Cadence; 3] = [Cadence::Raw, Cadence::Every100ms, Cadence::Every1000ms];

/// Topics per pair.
pub const TOPICS_PER_PAIR: usize = KINDS * CADENCES.len();

pub fn kind_of(i: usize) -> TopicKind {
    match i / CADENCES.len() {
        0 => TopicKind::Book,
        k @ 1..=5 => TopicKind::Depth(DEPTHS[k - 1]),
        6 => TopicKind::Trades,
        _ => TopicKind::Ticker,
    }
}

pub fn cadence_of(i: usize) -> Cadence {
    CADENCES[i % CADENCES.len()]
}

/// The topic index of a parsed market channel, `None` for the other channels.
pub fn index_of(channel: &Channel) -> Option<usize> {
    let k = match channel.kind {
        ChannelKind::Book => 0,
        ChannelKind::Depth(n) => 1 + DEPTHS.iter().position(|d| *d == n)?,
        ChannelKind::Trades => 6,
        ChannelKind::Ticker => 7,
        _ => return None,
    };
    let c = CADENCES.iter().position(|c| *c == channel.cadence)?;
    Some(k * CADENCES.len() + c)
}

/// The channel name of topic `i` of `pair`.
pub fn channel_name(pair: &str, i: usize) -> String {
    let kind = match kind_of(i) {
        TopicKind::Book => ChannelKind::Book,
        TopicKind::Depth(n) => ChannelKind::Depth(n),
        TopicKind::Trades => ChannelKind::Trades,
        TopicKind::Ticker => ChannelKind::Ticker,
    };
    Channel {
        kind,
        pair: Some(pair.to_string()),
        cadence: cadence_of(i),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_round_trips_through_its_name() {
        for i in 0..TOPICS_PER_PAIR {
            let name = channel_name("BTC-USD", i);
            assert_eq!(index_of(&Channel::parse(&name).unwrap()), Some(i), "{name}");
        }
        assert_eq!(channel_name("BTC-USD", 0), "book.BTC-USD");
        assert_eq!(index_of(&Channel::parse("heartbeat").unwrap()), None);
    }
}
