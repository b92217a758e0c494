//! The public topic kinds of docs/PROTOCOL.md ("Channels"), each described
//! once: [`KINDS`] is the table, and each entry's [`Kind`] implementation
//! (one file per kind beside this one) says everything about it: its
//! name, its cadences, its overflow policy, its numbering, which upstream
//! changes it publishes (raw) or notes for the next tick (conflated), and
//! its state message (the snapshot rule). The pair task
//! (`hub/src/market/pair/`), the conflation tick and the subscribe path
//! only walk the table; adding a kind is docs/ARCHITECTURE.md, "Adding a
//! public channel kind".

mod book;
mod candles;
mod depth;
mod ticker;
mod trades;

use super::channel::Cadence;
use super::encode::{Encoder, Header, Ticker};
use crate::fanout::OnOverflow;
use crate::protocol::series::Candles;
use bytes::Bytes;
use feeds::PublicTrade;
use orderbook::candle::{Candle, Interval};
use orderbook::{BookDelta, L2Book, MarketSpec, Price, Side};
use std::collections::HashSet;
use std::sync::LazyLock;

/// Every public topic kind, in channel-id order.
pub static KINDS: &[&dyn Kind] = &[
    &book::Book,
    &depth::DEPTH1,
    &depth::DEPTH5,
    &depth::DEPTH10,
    &depth::DEPTH20,
    &depth::DEPTH50,
    &trades::Trades,
    &ticker::TickerKind,
    &candles::CANDLES1M,
    &candles::CANDLES5M,
    &candles::CANDLES15M,
    &candles::CANDLES1H,
    &candles::CANDLES4H,
    &candles::CANDLES1D,
];

/// What happened to a pair, as its topics see it (in upstream order; a
/// `Ticker` change follows the change that moved the ticker).
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// The book was replaced by an upstream snapshot.
    Book,
    /// These levels changed (absolute quantities, already applied).
    Levels(&'a [BookDelta]),
    /// A batch of executions.
    Trades(&'a [PublicTrade]),
    /// The ticker values changed.
    Ticker,
    /// A candle of this interval closed (the series already holds its
    /// successor, so the numbering is the closed message's).
    CandleClosed(Interval, &'a Candle),
    /// More candles of this interval closed at once than a state message
    /// holds ([`crate::protocol::series::SNAPSHOT_CANDLES`]): instead of
    /// their closed messages, subscribers get the state again.
    CandlesReplaced(Interval),
}

/// The pair as a kind reads it: the book, the ticker values and the two
/// upstream counters.
#[derive(Debug, Clone, Copy)]
pub struct PairView<'a> {
    pub spec: &'a MarketSpec,
    pub book: &'a L2Book,
    pub ticker: &'a Ticker,
    pub candles: &'a Candles,
    /// Seq of the last book change applied.
    pub seq: u64,
    /// Seq of the last trade batch.
    pub trade_seq: u64,
}

/// Which counter numbers a kind's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// The upstream book seq.
    Book,
    /// The upstream trade seq.
    Trades,
    /// Their sum: both only grow, so it numbers changes of state derived
    /// from both identically on every node.
    BookAndTrades,
    /// The open candle's index (its start / the interval's length) plus
    /// the trade seq: both only grow and every message moves at least one
    /// (an update follows a trade batch, a close moves the index), so
    /// every node numbers a candle channel the same way.
    Candles(Interval),
}

impl Numbering {
    /// The seq the kind's numbering is at now.
    pub fn seq(self, pair: &PairView) -> u64 {
        match self {
            Numbering::Book => pair.seq,
            Numbering::Trades => pair.trade_seq,
            Numbering::BookAndTrades => pair.seq + pair.trade_seq,
            Numbering::Candles(i) => pair.candles.series(i).open_index() + pair.trade_seq,
        }
    }
}

/// What a conflated topic noted since its last message (each kind uses
/// the parts it needs).
#[derive(Debug, Default)]
pub struct Pending {
    /// Changed levels.
    pub changed: HashSet<(Side, Price)>,
    /// The message would differ from the last one.
    pub dirty: bool,
    /// The book was replaced: send it whole.
    pub resync: bool,
    pub trades: Vec<PublicTrade>,
}

/// What a kind writes a message with: the encoder, the pair, and the
/// message's header (its seq follows the kind's [`Numbering`]).
pub struct Cx<'c, 'a> {
    pub enc: &'c mut Encoder,
    pub pair: &'c PairView<'a>,
    pub h: &'c Header<'a>,
}

impl<'c, 'a> Cx<'c, 'a> {
    pub fn new(enc: &'c mut Encoder, pair: &'c PairView<'a>, h: &'c Header<'a>) -> Self {
        Cx { enc, pair, h }
    }
}

/// One public topic kind (see the module doc).
pub trait Kind: Sync {
    /// The channel name's prefix: `NAME.PAIR`.
    fn name(&self) -> &'static str;

    /// The cadences a client may ask for.
    fn cadences(&self) -> &'static [Cadence] {
        &Cadence::ALL
    }

    /// What a subscriber's queue does when a message does not fit
    /// (docs/PROTOCOL.md, "Slow consumers").
    fn on_overflow(&self) -> OnOverflow {
        OnOverflow::Resync
    }

    /// Which counter numbers its messages.
    fn numbering(&self) -> Numbering {
        Numbering::Book
    }

    /// Whether a subscriber starts from a state message; without one the
    /// first message it gets carries `prev_seq` 0.
    fn has_state(&self) -> bool {
        true
    }

    /// Whether its netted messages wait for the pair's book (before the
    /// first snapshot, or a new epoch's, there is nothing to say). Kinds
    /// made of trades alone (candles) do not wait.
    fn needs_book(&self) -> bool {
        true
    }

    /// When set, the raw cadence is netted too, to at most one message
    /// per this many ms (its subscribers wait for that flush like a
    /// conflated topic's when something is pending).
    fn raw_every_ms(&self) -> Option<u64> {
        None
    }

    /// Raw topic: the message `change` causes, if any.
    fn publish(&self, cx: Cx, change: &Change) -> Option<Bytes>;

    /// Netted topic (conflated, or raw with [`Kind::raw_every_ms`]): a
    /// message `change` sends at once rather than at the next flush (a
    /// candle closing), before `note` sees the change.
    fn publish_now(&self, cx: Cx, change: &Change) -> Option<Bytes> {
        let _ = (cx, change);
        None
    }

    /// Conflated topic: notes `change` for the next tick.
    fn note(&self, pair: &PairView, change: &Change, pending: &mut Pending);

    /// Conflated topic: the tick's message from what was noted, if any.
    fn flush(&self, cx: Cx, pending: &Pending) -> Option<Bytes>;

    /// The message that replaces a client's state of the topic (`reason`:
    /// `subscribe`, `resync` or `slow_consumer`); `None` for a kind
    /// without state.
    fn state(&self, cx: Cx, reason: &str) -> Option<Bytes>;
}

/// A kind: its position in [`KINDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KindId(u8);

impl KindId {
    /// The kind whose name is `name`.
    pub fn named(name: &str) -> Option<KindId> {
        let i = KINDS.iter().position(|k| k.name() == name)?;
        u8::try_from(i).ok().map(KindId)
    }

    pub fn kind(self) -> &'static dyn Kind {
        KINDS[usize::from(self.0)]
    }
}

/// One topic of a pair: a kind at one of its cadences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicDef {
    pub kind: KindId,
    pub cadence: Cadence,
}

/// Every topic of a pair in channel-id order: each kind of [`KINDS`] at
/// each of its cadences.
pub fn pair_topics() -> &'static [TopicDef] {
    static TOPICS: LazyLock<Vec<TopicDef>> = LazyLock::new(|| {
        (0..KINDS.len())
            .filter_map(|i| u8::try_from(i).ok().map(KindId))
            .flat_map(|kind| {
                kind.kind()
                    .cadences()
                    .iter()
                    .map(move |&cadence| TopicDef { kind, cadence })
            })
            .collect()
    });
    &TOPICS
}

/// The position of a topic in [`pair_topics`].
pub fn topic_index(kind: KindId, cadence: Cadence) -> Option<usize> {
    pair_topics()
        .iter()
        .position(|t| t.kind == kind && t.cadence == cadence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::channel::{Channel, ChannelKind};

    #[test]
    fn every_topic_round_trips_through_its_channel_name() {
        assert_eq!(pair_topics().len(), 42);
        for (i, t) in pair_topics().iter().enumerate() {
            let name = Channel {
                kind: ChannelKind::Topic(t.kind),
                pair: Some("BTC-USD".into()),
                cadence: t.cadence,
            }
            .to_string();
            let back = Channel::parse(&name).unwrap();
            let ChannelKind::Topic(kind) = back.kind else {
                panic!("{name} is a topic")
            };
            assert_eq!(topic_index(kind, back.cadence), Some(i), "{name}");
        }
        let names: HashSet<&str> = KINDS.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), KINDS.len(), "kind names are unique");
    }
}
