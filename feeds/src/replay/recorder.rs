//! Writing a recording: the [`Recorder`] and [`record`], which copies a
//! live stream into one.

use super::format::{write_line, Levels, Line, MarketLine, TradeLine, VERSION};
use super::ReplayError;
use crate::event::{MarketEvent, MarketStream};
use orderbook::{MarketSpec, Price, Qty, Side};
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes a stream to an NDJSON file. Each `write` is buffered; `finish`
/// flushes and syncs.
pub struct Recorder {
    out: BufWriter<std::fs::File>,
    specs: HashMap<String, MarketSpec>,
}

impl Recorder {
    /// Creates (truncates) `path` and writes the header.
    pub fn create(path: &Path, epoch: &str, markets: &[MarketSpec]) -> Result<Self, ReplayError> {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        let header = Line::Header {
            version: VERSION,
            epoch: epoch.to_string(),
            markets: markets
                .iter()
                .map(|m| MarketLine {
                    symbol: m.symbol.clone(),
                    price_scale: m.price_scale,
                    qty_scale: m.qty_scale,
                    min_qty: m.format_qty(m.min_qty),
                })
                .collect(),
        };
        write_line(&mut out, &header)?;
        let specs = markets
            .iter()
            .map(|m| (m.symbol.clone(), m.clone()))
            .collect();
        Ok(Recorder { out, specs })
    }

    /// Appends one event. Events of pairs not in the header are refused.
    pub fn write(&mut self, event: &MarketEvent) -> Result<(), ReplayError> {
        let spec = self
            .specs
            .get(&**event.pair())
            .ok_or_else(|| ReplayError::UnknownPair {
                line: 0,
                pair: event.pair().to_string(),
            })?;
        let levels = |ls: &[(Price, Qty)]| -> Levels {
            ls.iter()
                .map(|(p, q)| (spec.format_price(*p), spec.format_qty(*q)))
                .collect()
        };
        let line = match event {
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
        };
        write_line(&mut self.out, &line)
    }

    /// Flushes and fsyncs the file.
    pub fn finish(mut self) -> Result<(), ReplayError> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(())
    }
}

/// Copies `stream` into a recording at `path` until the stream ends.
pub async fn record(
    mut stream: MarketStream,
    markets: &[MarketSpec],
    path: &Path,
) -> Result<u64, ReplayError> {
    let mut rec = Recorder::create(path, &stream.epoch, markets)?;
    let mut n = 0;
    while let Some(event) = stream.events.recv().await {
        rec.write(&event)?;
        n += 1;
    }
    rec.finish()?;
    Ok(n)
}
