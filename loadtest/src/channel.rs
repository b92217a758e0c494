//! What the harness needs to know about a channel name to check its
//! messages: which kind of stream it is, which pair, whether it is
//! conflated (`@100ms`, `@1000ms`).

/// The kinds of docs/PROTOCOL.md channels, as far as checking goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// `book.PAIR`: snapshot then updates; raw updates step seq by 1.
    Book,
    /// `depthN.PAIR`: self-contained top-N messages.
    Depth(usize),
    Trades,
    Ticker,
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
            p => match p.strip_prefix("depth").and_then(|n| n.parse().ok()) {
                Some(n) => ChannelKind::Depth(n),
                None => return other,
            },
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
}
