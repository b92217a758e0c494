//! The recording's line format: one JSON object per line, a header then
//! snapshots, deltas and trade batches with decimal strings (see the
//! module docs of `replay`); how a line is read within its bounds and
//! written; and how a line maps to and from a [`MarketEvent`] at its
//! pair's scales.

use super::ReplayError;
use crate::event::{MarketEvent, PublicTrade, SnapshotReason, TradingStatus};
use inbound::JsonBounds;
use orderbook::{BookDelta, MarketSpec, Price, Qty, Side};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::sync::Arc;

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
    /// `MarketEvent::Status`: `reason` is set exactly when `halted`.
    Status {
        pair: String,
        venue_ts: u64,
        halted: bool,
        #[serde(default)]
        reason: Option<String>,
    },
    /// `MarketEvent::Resyncing`.
    Resyncing {
        pair: String,
        venue_ts: u64,
        reason: String,
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

impl Line {
    /// The line of `event`, its numbers written at `spec`'s scales.
    pub(super) fn from_event(event: &MarketEvent, spec: &MarketSpec) -> Line {
        let levels = |ls: &[(Price, Qty)]| -> Levels {
            ls.iter()
                .map(|(p, q)| (spec.format_price(*p), spec.format_qty(*q)))
                .collect()
        };
        match event {
            MarketEvent::Snapshot {
                pair,
                reason,
                seq,
                trade_seq,
                venue_ts,
                bids,
                asks,
            } => Line::Snapshot {
                pair: pair.to_string(),
                reason: *reason,
                seq: *seq,
                trade_seq: *trade_seq,
                venue_ts: *venue_ts,
                bids: levels(bids),
                asks: levels(asks),
            },
            MarketEvent::Delta {
                pair,
                seq,
                venue_ts,
                deltas,
            } => {
                let side = |s: Side| -> Levels {
                    deltas
                        .iter()
                        .filter(|d| d.side == s)
                        .map(|d| (spec.format_price(d.price), spec.format_qty(d.qty)))
                        .collect()
                };
                Line::Delta {
                    pair: pair.to_string(),
                    seq: *seq,
                    venue_ts: *venue_ts,
                    bids: side(Side::Buy),
                    asks: side(Side::Sell),
                }
            }
            MarketEvent::Trades {
                pair,
                seq,
                venue_ts,
                trades,
            } => Line::Trades {
                pair: pair.to_string(),
                seq: *seq,
                venue_ts: *venue_ts,
                trades: trades
                    .iter()
                    .map(|t| TradeLine {
                        id: t.trade_id,
                        price: spec.format_price(t.price),
                        qty: spec.format_qty(t.qty),
                        side: t.side,
                    })
                    .collect(),
            },
            MarketEvent::Status {
                pair,
                venue_ts,
                status,
            } => Line::Status {
                pair: pair.to_string(),
                venue_ts: *venue_ts,
                halted: matches!(status, TradingStatus::Halted { .. }),
                reason: match status {
                    TradingStatus::Open => None,
                    TradingStatus::Halted { reason } => Some(reason.clone()),
                },
            },
            MarketEvent::Resyncing {
                pair,
                venue_ts,
                reason,
            } => Line::Resyncing {
                pair: pair.to_string(),
                venue_ts: *venue_ts,
                reason: reason.clone(),
            },
        }
    }

    /// The event of this line (number `line` of the file), its numbers
    /// parsed at the pair's scales; `lookup` gives a pair's shared name and
    /// spec. A header is malformed here: it is only the first line.
    pub(super) fn into_event<'a>(
        self,
        line: usize,
        lookup: impl Fn(&str) -> Result<&'a (Arc<str>, MarketSpec), ReplayError>,
    ) -> Result<MarketEvent, ReplayError> {
        let num = |source| ReplayError::BadNumber { line, source };
        let levels = |spec: &MarketSpec, ls: &Levels| -> Result<Vec<(Price, Qty)>, ReplayError> {
            ls.iter()
                .map(|(p, q)| {
                    Ok((
                        spec.parse_price(p).map_err(num)?,
                        spec.parse_qty(q).map_err(num)?,
                    ))
                })
                .collect()
        };
        Ok(match self {
            Line::Header { .. } => {
                return Err(ReplayError::Malformed {
                    line,
                    message: "second header".into(),
                });
            }
            Line::Snapshot {
                pair,
                reason,
                seq,
                trade_seq,
                venue_ts,
                bids,
                asks,
            } => {
                let (name, spec) = lookup(&pair)?;
                MarketEvent::Snapshot {
                    pair: name.clone(),
                    reason,
                    seq,
                    trade_seq,
                    venue_ts,
                    bids: levels(spec, &bids)?,
                    asks: levels(spec, &asks)?,
                }
            }
            Line::Delta {
                pair,
                seq,
                venue_ts,
                bids,
                asks,
            } => {
                let (name, spec) = lookup(&pair)?;
                let mut deltas = Vec::with_capacity(bids.len() + asks.len());
                for (side, ls) in [(Side::Buy, &bids), (Side::Sell, &asks)] {
                    for (price, qty) in levels(spec, ls)? {
                        deltas.push(BookDelta { side, price, qty });
                    }
                }
                MarketEvent::Delta {
                    pair: name.clone(),
                    seq,
                    venue_ts,
                    deltas,
                }
            }
            Line::Trades {
                pair,
                seq,
                venue_ts,
                trades,
            } => {
                let (name, spec) = lookup(&pair)?;
                let trades = trades
                    .into_iter()
                    .map(|t| {
                        Ok(PublicTrade {
                            trade_id: t.id,
                            price: spec.parse_price(&t.price).map_err(num)?,
                            qty: spec.parse_qty(&t.qty).map_err(num)?,
                            side: t.side,
                            venue_ts,
                        })
                    })
                    .collect::<Result<_, ReplayError>>()?;
                MarketEvent::Trades {
                    pair: name.clone(),
                    seq,
                    venue_ts,
                    trades,
                }
            }
            Line::Status {
                pair,
                venue_ts,
                halted,
                reason,
            } => {
                let (name, _) = lookup(&pair)?;
                let status = match (halted, reason) {
                    (false, None) => TradingStatus::Open,
                    (true, Some(reason)) => TradingStatus::Halted { reason },
                    _ => {
                        return Err(ReplayError::Malformed {
                            line,
                            message: "status: reason must be given exactly when halted".into(),
                        })
                    }
                };
                MarketEvent::Status {
                    pair: name.clone(),
                    venue_ts,
                    status,
                }
            }
            Line::Resyncing {
                pair,
                venue_ts,
                reason,
            } => {
                let (name, _) = lookup(&pair)?;
                MarketEvent::Resyncing {
                    pair: name.clone(),
                    venue_ts,
                    reason,
                }
            }
        })
    }
}
