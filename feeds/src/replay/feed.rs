//! Playing a recording as a [`MarketFeed`], at recorded or maximum speed.

use super::{RecordingHeader, RecordingReader, ReplayError};
use crate::event::MarketStream;
use crate::venue::{MarketFeed, VenueError};
use async_trait::async_trait;
use orderbook::MarketSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

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
