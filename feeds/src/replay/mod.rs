//! NDJSON recordings of a market-data stream: a [`Recorder`] that writes
//! one, and a [`ReplayFeed`] that plays one back at recorded or maximum
//! speed through the same [`MarketFeed`](crate::venue::MarketFeed) boundary as a live venue.
//!
//! Format, one JSON object per line; prices and quantities are decimal
//! strings in the pair's scale, exactly as on the wire:
//!
//! ```text
//! {"type":"header","version":1,"epoch":"9f2c","markets":[{"symbol":"BTC-USD","price_scale":2,"qty_scale":6,"min_qty":"0.000010"}]}
//! {"type":"snapshot","pair":"BTC-USD","reason":"subscribe","seq":80,"trade_seq":0,"venue_ts":1763940000123456,"bids":[["63999.90","0.500000"]],"asks":[]}
//! {"type":"delta","pair":"BTC-USD","seq":81,"venue_ts":1763940000124001,"bids":[["63999.90","0.000000"]],"asks":[]}
//! {"type":"trades","pair":"BTC-USD","seq":1,"venue_ts":1763940000124001,"trades":[{"id":7,"price":"64000.20","qty":"0.010000","side":"buy"}]}
//! {"type":"status","pair":"BTC-USD","venue_ts":1763940000125000,"halted":true,"reason":"circuit breaker"}
//! {"type":"resyncing","pair":"BTC-USD","venue_ts":1763940000126000,"reason":"upstream seq gap"}
//! ```
//!
//! `status` (the venue halted or resumed the pair; `reason` only when
//! halted) and `resyncing` (the feed lost the pair's sequence) lines are
//! optional: a recording without them is one in which trading stayed open.
//!
//! [`Recorder`] (and [`record`]) write a recording, [`RecordingReader`]
//! reads one back event by event, and [`ReplayFeed`] plays one; the line
//! format itself is in `format.rs`.

use orderbook::DecimalError;

mod feed;
mod format;
mod reader;
mod recorder;

pub use feed::{ReplayFeed, ReplaySpeed};
pub use format::LINE_BOUNDS;
pub use reader::{RecordingHeader, RecordingReader};
pub use recorder::{record, Recorder};

/// Why a recording could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: {message}")]
    Malformed { line: usize, message: String },
    #[error("line {line}: bad number: {source}")]
    BadNumber { line: usize, source: DecimalError },
    #[error("line {line}: unknown pair {pair}")]
    UnknownPair { line: usize, pair: String },
    #[error("recording has no header line")]
    NoHeader,
    #[error("unsupported recording version {0}")]
    Version(u32),
}
