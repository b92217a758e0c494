//! Reading a recording back: the header, then one [`MarketEvent`] per
//! line with every number checked against its pair's scale.

use super::format::{read_line, Levels, Line, VERSION};
use super::ReplayError;
use crate::event::{MarketEvent, PublicTrade};
use orderbook::{BookDelta, MarketSpec, Price, Qty, Side};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

/// A recording's header.
#[derive(Debug, Clone)]
pub struct RecordingHeader {
    pub epoch: String,
    pub markets: Vec<MarketSpec>,
}

/// Reads a recording line by line, checking every number against its pair's scale.
pub struct RecordingReader<R> {
    reader: R,
    line_no: usize,
    specs: HashMap<String, (Arc<str>, MarketSpec)>,
    pub header: RecordingHeader,
}

impl RecordingReader<BufReader<std::fs::File>> {
    pub fn open(path: &Path) -> Result<Self, ReplayError> {
        Self::new(BufReader::new(std::fs::File::open(path)?))
    }
}

impl<R: BufRead> RecordingReader<R> {
    pub fn new(mut reader: R) -> Result<Self, ReplayError> {
        let first = read_line(&mut reader, 1)?.ok_or(ReplayError::NoHeader)?;
        let malformed = |e: serde_json::Error| ReplayError::Malformed {
            line: 1,
            message: e.to_string(),
        };
        let Line::Header {
            version,
            epoch,
            markets,
        } = serde_json::from_str(&first).map_err(malformed)?
        else {
            return Err(ReplayError::NoHeader);
        };
        if version != VERSION {
            return Err(ReplayError::Version(version));
        }
        let mut specs = HashMap::new();
        let mut list = Vec::new();
        for m in markets {
            let bad = |message: String| ReplayError::Malformed { line: 1, message };
            let min_qty = orderbook::decimal::parse_scaled(&m.min_qty, m.qty_scale)
                .map_err(|source| ReplayError::BadNumber { line: 1, source })?;
            let spec = MarketSpec::new(&m.symbol, m.price_scale, m.qty_scale, Qty(min_qty))
                .map_err(|e| bad(e.to_string()))?;
            specs.insert(
                m.symbol.clone(),
                (Arc::from(m.symbol.as_str()), spec.clone()),
            );
            list.push(spec);
        }
        Ok(RecordingReader {
            reader,
            line_no: 1,
            specs,
            header: RecordingHeader {
                epoch,
                markets: list,
            },
        })
    }

    /// The next event, `None` at the end of the file.
    pub fn next_event(&mut self) -> Result<Option<MarketEvent>, ReplayError> {
        let line = self.line_no + 1;
        let Some(text) = read_line(&mut self.reader, line)? else {
            return Ok(None);
        };
        self.line_no = line;
        let parsed: Line = serde_json::from_str(&text).map_err(|e| ReplayError::Malformed {
            line,
            message: e.to_string(),
        })?;
        let lookup = |pair: &str| {
            self.specs
                .get(pair)
                .ok_or_else(|| ReplayError::UnknownPair {
                    line,
                    pair: pair.to_string(),
                })
        };
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
        Ok(Some(match parsed {
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
        }))
    }
}
