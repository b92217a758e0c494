//! NDJSON recordings of a market-data stream: a [`Recorder`] that writes
//! one, and a [`ReplayFeed`] that plays one back at recorded or maximum
//! speed through the same [`MarketFeed`] boundary as a live venue.
//!
//! Format, one JSON object per line; prices and quantities are decimal
//! strings in the pair's scale, exactly as on the wire:
//!
//! ```text
//! {"type":"header","version":1,"epoch":"9f2c","markets":[{"symbol":"BTC-USD","price_scale":2,"qty_scale":6,"min_qty":"0.000010"}]}
//! {"type":"snapshot","pair":"BTC-USD","reason":"subscribe","seq":80,"trade_seq":0,"venue_ts":1763940000123456,"bids":[["63999.90","0.500000"]],"asks":[]}
//! {"type":"delta","pair":"BTC-USD","seq":81,"venue_ts":1763940000124001,"bids":[["63999.90","0.000000"]],"asks":[]}
//! {"type":"trades","pair":"BTC-USD","seq":1,"venue_ts":1763940000124001,"trades":[{"id":7,"price":"64000.20","qty":"0.010000","side":"buy"}]}
//! ```

use crate::event::{MarketEvent, MarketStream, PublicTrade, SnapshotReason};
use crate::venue::{MarketFeed, VenueError};
use async_trait::async_trait;
use inbound::JsonBounds;
use orderbook::{BookDelta, DecimalError, MarketSpec, Price, Qty, Side};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const VERSION: u32 = 1;

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

/// Bounds of one recording line, checked before it is parsed: the largest
/// line is a full-depth book snapshot (`[["price","qty"],...]`, depth 3).
pub const LINE_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 16 * 1024 * 1024,
    max_depth: 8,
    max_elements: 4_000_000,
};

/// The next line of `reader` without its line ending, refused before it is
/// read whole when it is over [`LINE_BOUNDS`]; `None` at the end.
fn read_line(reader: &mut impl BufRead, line: usize) -> Result<Option<String>, ReplayError> {
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
struct MarketLine {
    symbol: String,
    price_scale: u8,
    qty_scale: u8,
    min_qty: String,
}

type Levels = Vec<(String, String)>;

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
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
struct TradeLine {
    id: u64,
    price: String,
    qty: String,
    side: Side,
}

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

fn write_line(out: &mut impl Write, line: &Line) -> Result<(), ReplayError> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
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

/// How fast a [`ReplayFeed`] plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaySpeed {
    /// Keeps the recorded gaps between `venue_ts`.
    Recorded,
    /// As fast as the consumer takes events.
    Max,
}

/// A [`MarketFeed`] that plays a recording. Each `subscribe` plays it from
/// the start; the stream ends at the end of the file (or at the first bad
/// line, which is logged with its line number).
pub struct ReplayFeed {
    path: PathBuf,
    header: RecordingHeader,
    speed: ReplaySpeed,
}

impl ReplayFeed {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path, speed: ReplaySpeed) -> Result<Self, ReplayError> {
        let header = RecordingReader::open(path)?.header;
        Ok(ReplayFeed {
            path: path.to_path_buf(),
            header,
            speed,
        })
    }
}

#[async_trait]
impl MarketFeed for ReplayFeed {
    fn markets(&self) -> Vec<MarketSpec> {
        self.header.markets.clone()
    }

    async fn subscribe(&self) -> Result<MarketStream, VenueError> {
        let mut reader = RecordingReader::open(&self.path)
            .map_err(|e| VenueError::Unavailable(e.to_string()))?;
        let (tx, rx) = mpsc::channel(4096);
        let speed = self.speed;
        // File reads block: run the player on a blocking thread.
        tokio::task::spawn_blocking(move || {
            let mut last_ts: Option<u64> = None;
            loop {
                let event = match reader.next_event() {
                    Ok(Some(e)) => e,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "replay stopped at a bad line");
                        return;
                    }
                };
                if speed == ReplaySpeed::Recorded {
                    let ts = event.venue_ts();
                    if let Some(prev) = last_ts {
                        std::thread::sleep(Duration::from_micros(ts.saturating_sub(prev)));
                    }
                    last_ts = Some(ts);
                }
                if tx.blocking_send(event).is_err() {
                    return;
                }
            }
        });
        Ok(MarketStream {
            epoch: self.header.epoch.clone(),
            events: rx,
        })
    }
}
