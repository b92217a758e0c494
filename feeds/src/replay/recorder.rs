//! Writing a recording: the [`Recorder`] and [`record`], which copies a
//! live stream into one.

use super::format::{write_line, Line, MarketLine, VERSION};
use super::ReplayError;
use crate::event::{MarketEvent, MarketStream};
use orderbook::MarketSpec;
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
        write_line(&mut self.out, &Line::from_event(event, spec))
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
