//! Each upstream's dispatcher: the task that reads the upstream's market
//! stream and routes its events to the pair tasks in order, subscribing
//! again when a venue's stream ends, until [`super::Markets::stop`].

use super::{Markets, PairInput, UpstreamOptions};
use crate::shutdown::Shutdown;
use feeds::{MarketEvent, MarketFeed, MarketStream};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What one upstream's dispatcher needs.
pub(super) struct Dispatcher {
    /// The upstream's name and place in `Inner::epochs`.
    pub(super) name: String,
    pub(super) index: usize,
    /// Every pair the upstream lists: its task, or `None` when not served.
    pub(super) routes: HashMap<String, Option<mpsc::Sender<PairInput>>>,
    pub(super) markets: Markets,
    pub(super) resubscribe: Option<Arc<dyn MarketFeed>>,
    pub(super) options: UpstreamOptions,
    /// Triggered by [`super::Markets::stop`].
    pub(super) stop: Shutdown,
}

/// Routes one upstream's events to its pair tasks, in order. When the
/// stream ends and `resubscribe` is given, subscribes again (jittered
/// exponential backoff); a stream with a new epoch first restarts the
/// numbering of this upstream's pairs, so each channel's next message is
/// the first of the new epoch.
///
/// Once `stop` is triggered it reads no more and returns; an event it has
/// read is routed first (a route is never cancelled halfway).
pub(super) async fn dispatch(d: Dispatcher, mut stream: MarketStream) {
    let stopped = d.stop.triggered();
    tokio::pin!(stopped);
    loop {
        loop {
            let event = tokio::select! {
                biased;
                () = &mut stopped => return,
                event = stream.events.recv() => event,
            };
            let Some(event) = event else { break };
            if !route(&d.routes, &d.name, event).await {
                return;
            }
        }
        let Some(feed) = &d.resubscribe else {
            tracing::warn!(venue = %d.name, "upstream market stream ended");
            return;
        };
        tracing::warn!(venue = %d.name, "upstream market stream ended; subscribing again");
        metrics::counter!(crate::metrics::UPSTREAM_RESUBSCRIBES_TOTAL).increment(1);
        stream = tokio::select! {
            () = &mut stopped => return,
            stream = subscribe(&d, feed) => stream,
        };
        let epoch: Arc<str> = Arc::from(stream.epoch.as_str());
        if d.markets.inner.epochs.read().per_upstream[d.index] != epoch {
            d.markets.inner.epochs.write().set(d.index, epoch.clone());
            for tx in d.routes.values().flatten() {
                if tx.send(PairInput::NewEpoch(epoch.clone())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Subscribes to `feed` again, with jittered exponential backoff until it
/// answers.
async fn subscribe(d: &Dispatcher, feed: &Arc<dyn MarketFeed>) -> MarketStream {
    let mut backoff = d.options.backoff_min;
    loop {
        match feed.subscribe().await {
            Ok(s) => return s,
            Err(e) => {
                let wait = backoff.mul_f64(rand::random::<f64>() * 0.5 + 0.5);
                tracing::warn!(venue = %d.name, error = %e, retry_in_ms = wait.as_millis() as u64, "upstream subscribe failed");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(d.options.backoff_max);
            }
        }
    }
}

/// Sends one event to its pair's task; false when the tasks are gone.
async fn route(
    routes: &HashMap<String, Option<mpsc::Sender<PairInput>>>,
    venue: &str,
    event: MarketEvent,
) -> bool {
    match routes.get(&**event.pair()) {
        Some(Some(tx)) => tx.send(PairInput::Event(event)).await.is_ok(),
        Some(None) => true,
        None => {
            tracing::warn!(venue, pair = %event.pair(), "event for a pair the venue does not list");
            true
        }
    }
}
