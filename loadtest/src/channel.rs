//! What the harness needs to know about a channel name to check its
//! messages: which kind of stream it is, which pair, whether it is
//! conflated (`@100ms`, `@1000ms`).

use orderbook::candle::Interval;

/// The kinds of docs/PROTOCOL.md channels, as far as checking goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// `book.PAIR`: snapshot then updates; raw updates step seq by 1.
    Book,
    /// `depthN.PAIR`: self-contained top-N messages.
    Depth(usize),
    Trades,
    Ticker,
    /// `candles1m.PAIR` ... `candles1d.PAIR`: a `candles` snapshot, then
    /// `candle` messages; checked like the ticker (chained `prev_seq`, no
    /// checksum).
    Candles(Interval),
    /// The per-connection `heartbeat` counter.
    Heartbeat,
    /// Anything else (private channels, names the hub will refuse).
    Other,
}

/// A parsed channel name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    pub kind: ChannelKind,
    /// `BASE-QUOTE` for market channels.
    pub pair: Option<String>,
    /// True for `@100ms` / `@1000ms` channels: seq may jump by more than 1.
    pub conflated: bool,
}

impl ChannelInfo {
    /// Classifies a channel name; never fails (unknown names are `Other`).
    pub fn parse(name: &str) -> ChannelInfo {
        let (base, conflated) = match name.rsplit_once('@') {
            Some((base, _)) => (base, true),
            None => (name, false),
        };
        let other = ChannelInfo {
            kind: ChannelKind::Other,
            pair: None,
            conflated,
        };
        let Some((prefix, pair)) = base.split_once('.') else {
            return match base {
                "heartbeat" => ChannelInfo {
                    kind: ChannelKind::Heartbeat,
                    ..other
                },
                _ => other,
            };
        };
        let kind = match prefix {
            "book" => ChannelKind::Book,
            "trades" => ChannelKind::Trades,
            "ticker" => ChannelKind::Ticker,
            p => {
                if let Some(n) = p.strip_prefix("depth").and_then(|n| n.parse().ok()) {
                    ChannelKind::Depth(n)
                } else if let Some(i) = p.strip_prefix("candles").and_then(Interval::parse) {
                    ChannelKind::Candles(i)
                } else {
                    return other;
                }
            }
        };
        ChannelInfo {
            kind,
            pair: Some(pair.to_string()),
            conflated,
        }
    }

    /// Whether a client may ask to `resume` this channel (market channels
    /// only: the heartbeat counter is per connection).
    pub fn resumable(&self) -> bool {
        !matches!(self.kind, ChannelKind::Heartbeat | ChannelKind::Other)
    }

    /// Whether a client can rebuild this channel's book and check its
    /// checksums.
    pub fn has_book(&self) -> bool {
        matches!(self.kind, ChannelKind::Book | ChannelKind::Depth(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_kind() {
        let c = ChannelInfo::parse("book.BTC-USD");
        assert_eq!(
            (c.kind, c.pair.as_deref(), c.conflated),
            (ChannelKind::Book, Some("BTC-USD"), false)
        );
        assert_eq!(
            ChannelInfo::parse("depth10.ETH-USD@100ms").kind,
            ChannelKind::Depth(10)
        );
        assert!(ChannelInfo::parse("depth10.ETH-USD@100ms").conflated);
        assert_eq!(
            ChannelInfo::parse("trades.SOL-USD").kind,
            ChannelKind::Trades
        );
        assert_eq!(
            ChannelInfo::parse("ticker.SOL-USD@1000ms").kind,
            ChannelKind::Ticker
        );
        assert_eq!(ChannelInfo::parse("heartbeat").kind, ChannelKind::Heartbeat);
        assert_eq!(ChannelInfo::parse("orders").kind, ChannelKind::Other);
        assert_eq!(
            ChannelInfo::parse("depthx.BTC-USD").kind,
            ChannelKind::Other
        );
        assert!(!ChannelInfo::parse("heartbeat").resumable());
        assert!(ChannelInfo::parse("depth5.BTC-USD").has_book());
    }

    #[test]
    fn candle_channels_are_resumable_market_channels_without_a_book() {
        for i in Interval::ALL {
            let c = ChannelInfo::parse(&format!("candles{}.ETH-BTC", i.as_str()));
            assert_eq!(
                (c.kind, c.pair.as_deref(), c.conflated),
                (ChannelKind::Candles(i), Some("ETH-BTC"), false)
            );
            assert!(c.resumable() && !c.has_book());
        }
        for name in ["candles.BTC-USD", "candles2m.BTC-USD", "candles1m"] {
            assert_eq!(ChannelInfo::parse(name).kind, ChannelKind::Other, "{name}");
        }
    }
}
