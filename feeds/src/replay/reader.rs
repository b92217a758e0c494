//! Reading a recording back: the header, then one [`MarketEvent`] per
//! line with every number checked against its pair's scale.

use super::format::{read_line, Line, VERSION};
use super::ReplayError;
use crate::event::MarketEvent;
use orderbook::{MarketSpec, Qty};
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
        let specs = &self.specs;
        let lookup = |pair: &str| {
            specs.get(pair).ok_or_else(|| ReplayError::UnknownPair {
                line,
                pair: pair.to_string(),
            })
        };
        parsed.into_event(line, lookup).map(Some)
    }
}
