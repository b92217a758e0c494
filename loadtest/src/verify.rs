//! Per-channel integrity checks of one client: the `prev_seq` chain of
//! every channel message, and, on verifying clients, the client-side book
//! rebuilt from snapshots, updates and depth messages, whose checksum must
//! equal the one the hub sent (docs/PROTOCOL.md, "Books and the checksum").
//!
//! A [`ChannelChecker`] lives as long as its client, across reconnects, so
//! a resumed channel is checked to continue exactly where it stopped.

use crate::channel::{ChannelInfo, ChannelKind};
use crate::wire::{Header, Levels};
use orderbook::checksum::checksum_top;
use orderbook::{BookDelta, L2Book, MarketSpec, Price, Qty, Side};

/// What the next message of a channel must chain from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A fresh subscription: the first message should have `prev_seq` 0.
    Fresh,
    /// A resume from `seq` was asked; the `subscribed` reply says whether
    /// the hub recovered it.
    Pending(u64),
    /// Recovered: the next message must have `prev_seq` == this seq.
    ResumedFrom(u64),
    /// Not recovered: the next message starts a new chain, any `prev_seq`.
    Gap,
    /// Every message must have `prev_seq` == the last seq.
    Chained,
}

/// The outcome of the chain check of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    Ok,
    /// The first message of a fresh subscription had a non-zero
    /// `prev_seq` (docs/PROTOCOL.md says 0); not a lost message.
    FirstNotZero,
    /// A message arrived for a channel whose resume was still pending (it
    /// came before the `subscribed` reply).
    BeforeSubscribed,
    /// The epoch changed: seq numbering restarted, the chain restarts.
    EpochChanged,
    /// A message was missed or repeated; the text says how.
    Broken(String),
}

/// The outcome of the checksum check of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookCheck {
    /// Not a verifying client, or not a book/depth message.
    NotApplicable,
    /// The rebuilt book's checksum equals the message's.
    Match,
    /// An update arrived while the rebuilt book was known to be wrong
    /// (after a chain break, before the next snapshot).
    Skipped,
    /// The checksum differs, or the levels could not be applied.
    Mismatch(String),
}

/// The chain (and optionally book) state of one subscribed channel.
#[derive(Debug)]
pub struct ChannelChecker {
    info: ChannelInfo,
    /// The pair's scales, on verifying clients for book/depth channels.
    spec: Option<MarketSpec>,
    /// The rebuilt book; present exactly when `spec` is.
    book: Option<L2Book>,
    book_valid: bool,
    epoch: String,
    last_seq: Option<u64>,
    expect: Expect,
}

impl ChannelChecker {
    /// A checker for `name`; pass the pair's `spec` to rebuild and verify
    /// its book (ignored for channels without a book).
    pub fn new(name: &str, spec: Option<MarketSpec>) -> ChannelChecker {
        let info = ChannelInfo::parse(name);
        let spec = spec.filter(|_| info.has_book());
        ChannelChecker {
            info,
            book: spec.as_ref().map(|_| L2Book::new()),
            spec,
            book_valid: false,
            epoch: String::new(),
            last_seq: None,
            expect: Expect::Fresh,
        }
    }

    pub fn info(&self) -> &ChannelInfo {
        &self.info
    }

    /// The `(epoch, seq)` of the last message received, if any and if the
    /// channel can be resumed.
    pub fn resume_point(&self) -> Option<(&str, u64)> {
        match self.last_seq {
            Some(seq) if self.info.resumable() => Some((self.epoch.as_str(), seq)),
            _ => None,
        }
    }

    /// A subscribe for this channel is being sent, resuming from
    /// `resume_from` or fresh.
    pub fn subscribing(&mut self, resume_from: Option<u64>) {
        self.expect = match resume_from {
            Some(seq) => Expect::Pending(seq),
            None => {
                self.last_seq = None;
                self.book_valid = false;
                Expect::Fresh
            }
        };
    }

    /// The `subscribed` reply listed this channel under `recovered`
    /// (`true`) or `not_recovered` (`false`).
    pub fn settle(&mut self, recovered: bool) {
        if let Expect::Pending(seq) = self.expect {
            self.expect = if recovered {
                Expect::ResumedFrom(seq)
            } else {
                self.book_valid = false;
                Expect::Gap
            };
        }
    }

    /// Checks `prev_seq` against the channel's history and advances it.
    /// After a break the chain continues from the message that broke it
    /// (and the rebuilt book is invalid until the next snapshot).
    pub fn check_chain(&mut self, h: &Header) -> ChainCheck {
        let (Some(seq), Some(prev)) = (h.seq, h.prev_seq) else {
            return ChainCheck::Broken(format!("{} message without seq/prev_seq", h.kind));
        };
        let epoch = h.epoch.unwrap_or("");
        let epoch_changed = self.last_seq.is_some() && epoch != self.epoch;
        let verdict = if epoch_changed {
            ChainCheck::EpochChanged
        } else {
            match self.expect {
                Expect::Fresh if prev == 0 => ChainCheck::Ok,
                Expect::Fresh => ChainCheck::FirstNotZero,
                Expect::Pending(_) => ChainCheck::BeforeSubscribed,
                Expect::Gap => ChainCheck::Ok,
                Expect::ResumedFrom(from) if prev == from => ChainCheck::Ok,
                Expect::ResumedFrom(from) => ChainCheck::Broken(format!(
                    "resumed from {from} but first message has prev_seq {prev} (seq {seq})"
                )),
                Expect::Chained => match self.last_seq {
                    Some(last) if prev != last => ChainCheck::Broken(format!(
                        "prev_seq {prev} != last seq {last} (seq {seq}, {})",
                        h.kind
                    )),
                    _ if self.steps_by_one(h) && seq != prev + 1 => {
                        ChainCheck::Broken(format!("raw update seq {seq} != prev_seq {prev} + 1"))
                    }
                    _ => ChainCheck::Ok,
                },
            }
        };
        if matches!(verdict, ChainCheck::Broken(_)) {
            self.book_valid = false;
        }
        if epoch != self.epoch {
            self.epoch = epoch.to_string();
        }
        self.last_seq = Some(seq);
        self.expect = Expect::Chained;
        verdict
    }

    /// Raw `update`s of `book.PAIR` advance seq by exactly one.
    fn steps_by_one(&self, h: &Header) -> bool {
        h.kind == "update" && self.info.kind == ChannelKind::Book && !self.info.conflated
    }

    /// Applies a book/depth message to the rebuilt book and compares
    /// checksums. Call after [`ChannelChecker::check_chain`].
    pub fn check_book(&mut self, h: &Header, text: &str) -> BookCheck {
        let (Some(spec), Some(book)) = (&self.spec, &mut self.book) else {
            return BookCheck::NotApplicable;
        };
        let kind = h.kind;
        if !matches!(kind, "snapshot" | "update" | "depth") {
            return BookCheck::NotApplicable;
        }
        let Some(expected) = h.checksum else {
            return BookCheck::Mismatch(format!("{kind} without checksum"));
        };
        if kind == "update" && !self.book_valid {
            return BookCheck::Skipped;
        }
        let levels: Levels = match serde_json::from_str(text) {
            Ok(l) => l,
            Err(e) => return self.invalid(format!("{kind} levels unreadable: {e}")),
        };
        let applied = if kind == "update" {
            apply_update(book, spec, &levels)
        } else {
            replace_book(book, spec, &levels)
        };
        if let Err(e) = applied {
            return self.invalid(format!("{kind} seq {:?}: {e}", h.seq));
        }
        self.book_valid = true;
        let actual = match self.info.kind {
            ChannelKind::Depth(n) => checksum_top(book, n),
            _ => book.checksum(),
        };
        if actual == expected {
            BookCheck::Match
        } else {
            self.invalid(format!(
                "{kind} seq {:?}: checksum {expected} sent, {actual} rebuilt",
                h.seq
            ))
        }
    }

    fn invalid(&mut self, why: String) -> BookCheck {
        self.book_valid = false;
        BookCheck::Mismatch(why)
    }
}

fn parse_level(spec: &MarketSpec, (p, q): (&str, &str)) -> Result<(Price, Qty), String> {
    let price = spec
        .parse_price(p)
        .map_err(|e| format!("price {p:?}: {e}"))?;
    let qty = spec.parse_qty(q).map_err(|e| format!("qty {q:?}: {e}"))?;
    Ok((price, qty))
}

/// A snapshot or depth message replaces the whole book.
fn replace_book(book: &mut L2Book, spec: &MarketSpec, levels: &Levels) -> Result<(), String> {
    let side = |list: &[(&str, &str)]| -> Result<Vec<(Price, Qty)>, String> {
        list.iter().map(|l| parse_level(spec, *l)).collect()
    };
    book.apply_snapshot(&side(&levels.bids)?, &side(&levels.asks)?)
        .map_err(|e| e.to_string())
}

/// An update sets absolute quantities; zero deletes the level.
fn apply_update(book: &mut L2Book, spec: &MarketSpec, levels: &Levels) -> Result<(), String> {
    for (side, list) in [(Side::Buy, &levels.bids), (Side::Sell, &levels.asks)] {
        for level in list {
            let (price, qty) = parse_level(spec, *level)?;
            book.apply_delta(BookDelta { side, price, qty });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MarketSpec {
        MarketSpec::new("BTC-USD", 2, 6, Qty(1)).unwrap()
    }

    fn header(text: &str) -> Header<'_> {
        serde_json::from_str(text).unwrap()
    }

    /// A message text for `kind` on book.BTC-USD with the real checksum of
    /// `book` after applying it.
    fn msg(kind: &str, seq: u64, prev: u64, bids: &str, asks: &str, checksum: u32) -> String {
        format!(
            r#"{{"type":"{kind}","channel":"book.BTC-USD","epoch":"e","seq":{seq},"prev_seq":{prev},"ts":1,"bids":[{bids}],"asks":[{asks}],"checksum":{checksum}}}"#
        )
    }

    fn check(c: &mut ChannelChecker, text: &str) -> (ChainCheck, BookCheck) {
        let h = header(text);
        (c.check_chain(&h), c.check_book(&h, text))
    }

    #[test]
    fn snapshot_then_updates_verify_and_chain() {
        let mut expected = L2Book::new();
        expected
            .apply_snapshot(
                &[(Price(10_000), Qty(1_500_000))],
                &[(Price(10_010), Qty(250_000))],
            )
            .unwrap();
        let mut c = ChannelChecker::new("book.BTC-USD", Some(spec()));
        let snap = msg(
            "snapshot",
            5,
            0,
            r#"["100.00","1.500000"]"#,
            r#"["100.10","0.250000"]"#,
            expected.checksum(),
        );
        assert_eq!(check(&mut c, &snap), (ChainCheck::Ok, BookCheck::Match));

        expected.apply_delta(BookDelta {
            side: Side::Buy,
            price: Price(10_000),
            qty: Qty(0),
        });
        let upd = msg(
            "update",
            6,
            5,
            r#"["100.00","0.000000"]"#,
            "",
            expected.checksum(),
        );
        assert_eq!(check(&mut c, &upd), (ChainCheck::Ok, BookCheck::Match));

        // a wrong checksum is caught; the next update is skipped until a snapshot
        let bad = msg("update", 7, 6, r#"["99.00","1.000000"]"#, "", 12345);
        assert!(matches!(check(&mut c, &bad).1, BookCheck::Mismatch(_)));
        let next = msg("update", 8, 7, "", "", 0);
        assert_eq!(check(&mut c, &next), (ChainCheck::Ok, BookCheck::Skipped));
    }

    #[test]
    fn gaps_and_seq_jumps_break_the_chain() {
        let mut c = ChannelChecker::new("book.BTC-USD", None);
        assert_eq!(
            check(&mut c, &msg("snapshot", 5, 0, "", "", 0)).0,
            ChainCheck::Ok
        );
        assert!(matches!(
            check(&mut c, &msg("update", 7, 6, "", "", 0)).0,
            ChainCheck::Broken(_)
        ));
        // continues from the break
        assert_eq!(
            check(&mut c, &msg("update", 8, 7, "", "", 0)).0,
            ChainCheck::Ok
        );
        // raw updates step by one
        assert!(matches!(
            check(&mut c, &msg("update", 10, 8, "", "", 0)).0,
            ChainCheck::Broken(_)
        ));
        // conflated updates may jump
        let mut c = ChannelChecker::new("book.BTC-USD@100ms", None);
        let jump =
            |s, p| msg("update", s, p, "", "", 0).replace("book.BTC-USD", "book.BTC-USD@100ms");
        check(&mut c, &msg("snapshot", 5, 0, "", "", 0));
        assert_eq!(check(&mut c, &jump(9, 5)).0, ChainCheck::Ok);
    }

    /// Candle channels are checked like the ticker: a `candles` snapshot,
    /// then `candle` messages (any number of seqs apart), chained by
    /// `prev_seq`, never a checksum, even on a verifying client.
    #[test]
    fn candle_messages_are_chain_checked_without_a_book() {
        let mut c = ChannelChecker::new("candles1m.BTC-USD", Some(spec()));
        let m = |kind: &str, s: u64, p: u64| {
            format!(
                r#"{{"type":"{kind}","channel":"candles1m.BTC-USD","epoch":"e","seq":{s},"prev_seq":{p},"ts":1,"candles":[{{"start":0,"open":"1.00"}}],"closed":true}}"#
            )
        };
        c.subscribing(None);
        assert_eq!(
            check(&mut c, &m("candles", 40, 0)),
            (ChainCheck::Ok, BookCheck::NotApplicable)
        );
        assert_eq!(
            check(&mut c, &m("candle", 47, 40)),
            (ChainCheck::Ok, BookCheck::NotApplicable)
        );
        assert!(matches!(
            check(&mut c, &m("candle", 50, 48)).0,
            ChainCheck::Broken(_)
        ));
        assert_eq!(c.resume_point(), Some(("e", 50)), "resumable");
    }

    #[test]
    fn first_message_should_start_at_zero() {
        let mut c = ChannelChecker::new("trades.BTC-USD", None);
        let t = r#"{"type":"trades","channel":"trades.BTC-USD","epoch":"e","seq":77,"prev_seq":76,"ts":1,"trades":[]}"#;
        assert_eq!(c.check_chain(&header(t)), ChainCheck::FirstNotZero);
    }

    #[test]
    fn resume_is_checked_against_the_resume_point() {
        let mut c = ChannelChecker::new("trades.BTC-USD", None);
        let t = |s: u64, p: u64| {
            format!(
                r#"{{"type":"trades","channel":"trades.BTC-USD","epoch":"e","seq":{s},"prev_seq":{p},"ts":1}}"#
            )
        };
        c.subscribing(None);
        assert_eq!(c.check_chain(&header(&t(3, 0))), ChainCheck::Ok);
        assert_eq!(c.resume_point(), Some(("e", 3)));

        c.subscribing(Some(3));
        c.settle(true);
        assert!(matches!(
            c.check_chain(&header(&t(9, 8))),
            ChainCheck::Broken(_)
        ));

        c.subscribing(Some(9));
        c.settle(true);
        assert_eq!(c.check_chain(&header(&t(10, 9))), ChainCheck::Ok);

        c.subscribing(Some(10));
        c.settle(false);
        assert_eq!(c.check_chain(&header(&t(50, 49))), ChainCheck::Ok);

        c.subscribing(Some(50));
        assert_eq!(
            c.check_chain(&header(&t(51, 50))),
            ChainCheck::BeforeSubscribed
        );

        let other_epoch = t(1, 0).replace("\"e\"", "\"f\"");
        assert_eq!(
            c.check_chain(&header(&other_epoch)),
            ChainCheck::EpochChanged
        );
    }

    #[test]
    fn depth_messages_use_the_top_n_checksum() {
        let mut book = L2Book::new();
        book.apply_snapshot(
            &[(Price(10_000), Qty(1)), (Price(9_900), Qty(2))],
            &[(Price(10_100), Qty(3))],
        )
        .unwrap();
        let text = format!(
            r#"{{"type":"depth","channel":"depth1.BTC-USD","epoch":"e","seq":1,"prev_seq":0,"ts":1,"bids":[["100.00","0.000001"]],"asks":[["101.00","0.000003"]],"checksum":{}}}"#,
            checksum_top(&book, 1)
        );
        let mut c = ChannelChecker::new("depth1.BTC-USD", Some(spec()));
        assert_eq!(check(&mut c, &text), (ChainCheck::Ok, BookCheck::Match));
    }
}
