//! Channel names of docs/PROTOCOL.md: `KIND.PAIR` for every public topic
//! kind of [`super::kinds::KINDS`] (`book`, `depthN`, `trades`,
//! `ticker`), `heartbeat`, and the private `orders` and `balances`, each
//! optionally ending in `@100ms` or `@1000ms`; and `status`, which takes
//! no suffix.

use super::kinds::KindId;
use api::private::PrivateChannel;
use std::fmt;

/// What a channel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    /// A public topic of a pair.
    Topic(KindId),
    Heartbeat,
    /// `status`: every pair's market state (one channel, no pair).
    Status,
    /// `orders` or `balances` (needs `auth`).
    Private(PrivateChannel),
}

/// How often a channel may send: every change, or netted per interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cadence {
    Raw,
    Every100ms,
    Every1000ms,
}

impl Cadence {
    /// Every cadence, raw first.
    pub const ALL: [Cadence; 3] = [Cadence::Raw, Cadence::Every100ms, Cadence::Every1000ms];

    pub fn interval_ms(self) -> Option<u64> {
        match self {
            Cadence::Raw => None,
            Cadence::Every100ms => Some(100),
            Cadence::Every1000ms => Some(1000),
        }
    }
}

/// A parsed channel name. `pair` is set for the market channels only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel {
    pub kind: ChannelKind,
    pub pair: Option<String>,
    pub cadence: Cadence,
}

/// Why a channel name is not one of docs/PROTOCOL.md's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("no such channel: {0}")]
    Unknown(String),
}

impl Channel {
    /// Parses a channel name; the pair is checked for form only (upper-case
    /// `BASE-QUOTE`), not against the configured markets.
    pub fn parse(name: &str) -> Result<Channel, ChannelError> {
        let unknown = || ChannelError::Unknown(super::ops::clip(name));
        if name.len() > 64 {
            return Err(unknown());
        }
        let (base, cadence) = match name.rsplit_once('@') {
            Some((b, "100ms")) => (b, Cadence::Every100ms),
            Some((b, "1000ms")) => (b, Cadence::Every1000ms),
            Some(_) => return Err(unknown()),
            None => (name, Cadence::Raw),
        };
        let (kind, pair) = match base.split_once('.') {
            None => match base {
                "heartbeat" => (ChannelKind::Heartbeat, None),
                // Changes are rare and each message is the whole table:
                // nothing to conflate.
                "status" if cadence == Cadence::Raw => (ChannelKind::Status, None),
                "status" => return Err(unknown()),
                _ => (
                    ChannelKind::Private(PrivateChannel::parse(base).ok_or_else(unknown)?),
                    None,
                ),
            },
            Some((prefix, pair)) => {
                if !valid_pair(pair) {
                    return Err(unknown());
                }
                let kind = KindId::named(prefix).ok_or_else(unknown)?;
                if !kind.kind().cadences().contains(&cadence) {
                    return Err(unknown());
                }
                (ChannelKind::Topic(kind), Some(pair.to_string()))
            }
        };
        Ok(Channel {
            kind,
            pair,
            cadence,
        })
    }

    /// Private channels need an authenticated connection.
    pub fn is_private(&self) -> bool {
        matches!(self.kind, ChannelKind::Private(_))
    }
}

fn valid_pair(pair: &str) -> bool {
    match pair.split_once('-') {
        Some((b, q)) => [b, q].iter().all(|s| {
            !s.is_empty()
                && s.len() <= 10
                && s.bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        }),
        None => false,
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.pair) {
            (ChannelKind::Topic(kind), Some(p)) => write!(f, "{}.{p}", kind.kind().name())?,
            (ChannelKind::Heartbeat, _) => f.write_str("heartbeat")?,
            (ChannelKind::Status, _) => f.write_str("status")?,
            (ChannelKind::Private(channel), _) => f.write_str(channel.name())?,
            (ChannelKind::Topic(_), None) => {
                unreachable!("topic channels always carry a pair (Channel::parse)")
            }
        }
        match self.cadence {
            Cadence::Raw => Ok(()),
            Cadence::Every100ms => f.write_str("@100ms"),
            Cadence::Every1000ms => f.write_str("@1000ms"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_channel_form_and_round_trips() {
        for name in [
            "book.BTC-USD",
            "depth1.ETH-BTC",
            "depth50.SOL-USD",
            "trades.BTC-USD@100ms",
            "ticker.BTC-USD@1000ms",
            "heartbeat",
            "status",
            "orders",
            "balances",
            "book.BTC-USD@100ms",
        ] {
            let c = Channel::parse(name).unwrap();
            assert_eq!(c.to_string(), name);
        }
        let c = Channel::parse("depth10.BTC-USD@100ms").unwrap();
        assert_eq!(
            c.kind,
            ChannelKind::Topic(KindId::named("depth10").unwrap())
        );
        assert_eq!(c.cadence, Cadence::Every100ms);
        assert!(Channel::parse("orders").unwrap().is_private());
    }

    #[test]
    fn refuses_names_not_in_the_protocol() {
        for name in [
            "",
            "book",
            "book.btc-usd",
            "book.BTCUSD",
            "depth3.BTC-USD",
            "depth010.BTC-USD",
            "depth.BTC-USD",
            "book.BTC-USD@10ms",
            "book.BTC-USD@",
            "candles.BTC-USD",
            "heartbeat.BTC-USD",
            "status@100ms",
            "status.BTC-USD",
            "Status",
            "book.BTC-USD.X",
        ] {
            assert_eq!(
                Channel::parse(name),
                Err(ChannelError::Unknown(name.to_string())),
                "{name}"
            );
        }
    }
}
