//! `GET /markets/{pair}/orderbook`: the cached book as docs/API.md
//! describes it (also the Redis book-cache snapshot, [`super::cache`]).

use orderbook::{L2Book, MarketSpec, Side};

/// The top levels of a pair's cached book.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderbookView {
    pub pair: String,
    pub seq: u64,
    pub epoch: String,
    pub ts: u64,
    pub bids: Vec<[String; 2]>,
    pub asks: Vec<[String; 2]>,
    pub checksum: u32,
}

impl OrderbookView {
    /// The top `depth` levels each side of `book`, as of `seq` in `epoch`
    /// (`ts`: hub ingest time of the last event).
    pub fn of(
        spec: &MarketSpec,
        book: &L2Book,
        depth: usize,
        (epoch, seq, ts): (&str, u64, u64),
    ) -> OrderbookView {
        let side = |s| {
            book.top_n(s, depth)
                .map(|l| [spec.format_price(l.price), spec.format_qty(l.qty)])
                .collect()
        };
        OrderbookView {
            pair: spec.symbol.clone(),
            seq,
            epoch: epoch.to_owned(),
            ts,
            bids: side(Side::Buy),
            asks: side(Side::Sell),
            checksum: book.checksum(),
        }
    }
}
