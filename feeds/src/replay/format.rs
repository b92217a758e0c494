//! The recording's line format: one JSON object per line, a header then
//! snapshots, deltas and trade batches with decimal strings (see the
//! module docs of `replay`), and how a line is read within its bounds and
//! written.

use super::ReplayError;
use crate::event::SnapshotReason;
use inbound::JsonBounds;
use orderbook::Side;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

pub(super) const VERSION: u32 = 1;

/// Bounds of one recording line, checked before it is parsed: the largest
/// line is a full-depth book snapshot (`[["price","qty"],...]`, depth 3).
pub const LINE_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 16 * 1024 * 1024,
    max_depth: 8,
    max_elements: 4_000_000,
};

/// The next line of `reader` without its line ending, refused before it is
/// read whole when it is over [`LINE_BOUNDS`]; `None` at the end.
pub(super) fn read_line(
    reader: &mut impl BufRead,
    line: usize,
) -> Result<Option<String>, ReplayError> {
    let malformed = |message: String| ReplayError::Malformed { line, message };
    let mut buf = Vec::new();
    let limit = LINE_BOUNDS.max_bytes as u64 + 1;
    if std::io::Read::take(&mut *reader, limit).read_until(b'\n', &mut buf)? == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    LINE_BOUNDS
        .check(&buf)
        .map_err(|e| malformed(e.to_string()))?;
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| malformed("line is not UTF-8".into()))
}

#[derive(Serialize, Deserialize)]
pub(super) struct MarketLine {
    pub(super) symbol: String,
    pub(super) price_scale: u8,
    pub(super) qty_scale: u8,
    pub(super) min_qty: String,
}

pub(super) type Levels = Vec<(String, String)>;

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Line {
    Header {
        version: u32,
        epoch: String,
        markets: Vec<MarketLine>,
    },
    Snapshot {
        pair: String,
        reason: SnapshotReason,
        seq: u64,
        trade_seq: u64,
        venue_ts: u64,
        bids: Levels,
        asks: Levels,
    },
    Delta {
        pair: String,
        seq: u64,
        venue_ts: u64,
        bids: Levels,
        asks: Levels,
    },
    Trades {
        pair: String,
        seq: u64,
        venue_ts: u64,
        trades: Vec<TradeLine>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TradeLine {
    pub(super) id: u64,
    pub(super) price: String,
    pub(super) qty: String,
    pub(super) side: Side,
}

pub(super) fn write_line(out: &mut impl Write, line: &Line) -> Result<(), ReplayError> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}
