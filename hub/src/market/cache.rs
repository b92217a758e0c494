//! Keeps the Redis `market:{pair}:orderbook` snapshots
//! ([`api::cluster::book_cache`]) fresh: every [`REFRESH`], each pair
//! whose book is loaded and not stale is written with the
//! `GET /markets/{pair}/orderbook` body at [`DEPTH`]. A pair that goes
//! stale or cold is no longer written, so its key expires. Redis down:
//! skipped (metric `nax_book_cache_failures_total`, a warning at most
//! every 30 s).

use super::Markets;
use crate::shutdown::Shutdown;
use api::cluster::book_cache::BookCache;
use std::time::{Duration, Instant};

/// How often snapshots are written (well inside their 5 s TTL).
pub const REFRESH: Duration = Duration::from_millis(1000);
/// Levels per side in a snapshot (the REST default).
pub const DEPTH: usize = 50;
const WARN_EVERY: Duration = Duration::from_secs(30);

/// Writes snapshots until `shutdown`.
pub async fn run(markets: Markets, cache: BookCache, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_warn: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.triggered() => return,
        }
        let skip: Vec<String> = markets
            .stale_pairs()
            .into_iter()
            .chain(markets.cold_pairs())
            .collect();
        for spec in markets.specs() {
            if skip.contains(&spec.symbol) {
                continue;
            }
            let Some(view) = markets.orderbook(&spec.symbol, DEPTH).await else {
                continue;
            };
            let Ok(body) = serde_json::to_string(&view) else {
                continue;
            };
            if let Err(e) = cache.put(&spec.symbol, body).await {
                metrics::counter!("nax_book_cache_failures_total").increment(1);
                if last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    last_warn = Some(Instant::now());
                    tracing::warn!(error = %e, "book cache: cannot write snapshots to redis");
                }
                break;
            }
        }
    }
}
