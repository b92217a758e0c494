//! [`run`]: the loop that feeds one [`Source`] to one [`Consumer`].

use super::{Consumer, Delivery, Outcome, Source};
use rand::Rng as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Longest wait of one receive call (SQS long polling allows 20 s; a
/// shorter one notices a stop sooner).
const RECEIVE_WAIT: Duration = Duration::from_secs(1);
/// How often the queue's depth is read for the gauges.
const DEPTH_EVERY: Duration = Duration::from_secs(10);

/// How [`run`] runs.
#[derive(Clone)]
pub struct RunOptions {
    /// Becomes `true` to stop: the batch in hand is finished, the rest
    /// released.
    pub stop: watch::Receiver<bool>,
    /// Set once the consumer recovered and the queue answered; cleared
    /// while the queue does not answer (`/ready`).
    pub ready: Arc<AtomicBool>,
}

/// Receives from `source` and hands batches to `consumer` until stopped.
pub async fn run(source: Arc<dyn Source>, consumer: Arc<dyn Consumer>, options: RunOptions) {
    let RunOptions { mut stop, ready } = options;
    let name = consumer.name();
    let queue = source.queue().name();
    // The counters exist (at 0) from the start, so dashboards and alarms
    // on them see a series before the first message or failure.
    metrics::counter!("nax_worker_processed_total", "consumer" => name).increment(0);
    metrics::counter!("nax_worker_failed_total", "consumer" => name).increment(0);
    let mut backoff = BACKOFF_MIN;
    while let Err(e) = consumer.recover().await {
        tracing::warn!(consumer = name, error = %format!("{e:#}"), "recovery failed; retrying");
        if pause(&mut stop, &mut backoff).await {
            return;
        }
    }
    backoff = BACKOFF_MIN;
    let mut depth_read = tokio::time::Instant::now() - DEPTH_EVERY;
    loop {
        if *stop.borrow() {
            return;
        }
        if depth_read.elapsed() >= DEPTH_EVERY {
            depth_read = tokio::time::Instant::now();
            record_depth(&*source).await;
        }
        let batch = match gather(&*source, &*consumer, &mut stop).await {
            Ok(batch) => {
                ready.store(true, Ordering::Relaxed);
                backoff = BACKOFF_MIN;
                batch
            }
            Err(e) => {
                ready.store(false, Ordering::Relaxed);
                tracing::warn!(consumer = name, queue, error = %e, "receive failed");
                if pause(&mut stop, &mut backoff).await {
                    return;
                }
                continue;
            }
        };
        record_oldest(&*source).await;
        if batch.is_empty() {
            continue;
        }
        let mut outcomes = handle_with_heartbeat(&*source, &*consumer, &batch).await;
        if source.queue().is_fifo() {
            keep_group_order(&batch, &mut outcomes);
        }
        settle(&*source, name, &batch, &outcomes).await;
    }
}

/// Sleeps the backoff (jittered, then doubled); `true` when stopped.
async fn pause(stop: &mut watch::Receiver<bool>, backoff: &mut Duration) -> bool {
    let jitter = rand::thread_rng().gen_range(0.5..1.0);
    tokio::select! {
        _ = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
        _ = stop.changed() => {}
    }
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    *stop.borrow()
}

/// One batch: the first receive waits for messages; more are gathered
/// for up to the consumer's batching wait, up to its maximum, until a
/// receive answers nothing (no message within its wait, or none can be
/// handed out before this batch is settled: [`Source::receive_more`]). A
/// stop while gathering releases what was received and returns nothing.
async fn gather(
    source: &dyn Source,
    consumer: &dyn Consumer,
    stop: &mut watch::Receiver<bool>,
) -> Result<Vec<Delivery>, super::SourceError> {
    let batching = consumer.batching();
    let max = batching.max.max(1);
    let limit = source.receive_limit().max(1);
    let mut batch = tokio::select! {
        got = source.receive(max.min(limit), RECEIVE_WAIT) => got?,
        _ = stop.changed() => return Ok(Vec::new()),
    };
    if batch.is_empty() {
        return Ok(batch);
    }
    let deadline = tokio::time::Instant::now() + batching.wait;
    while batch.len() < max {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let more = tokio::select! {
            got = source.receive_more((max - batch.len()).min(limit), left.min(RECEIVE_WAIT)) => got,
            _ = stop.changed() => break,
        };
        match more {
            Ok(more) if more.is_empty() => break,
            Ok(more) => batch.extend(more),
            // Handle what we have; the next receive reports the failure.
            Err(_) => break,
        }
    }
    if *stop.borrow() {
        let handles: Vec<String> = batch.iter().map(|d| d.handle.clone()).collect();
        let _ = source.release(&handles).await;
        return Ok(Vec::new());
    }
    Ok(batch)
}

/// Runs the consumer on `batch`, keeping its messages invisible while it
/// works (an extension every half visibility timeout).
async fn handle_with_heartbeat(
    source: &dyn Source,
    consumer: &dyn Consumer,
    batch: &[Delivery],
) -> Vec<Outcome> {
    let handles: Vec<String> = batch.iter().map(|d| d.handle.clone()).collect();
    let visibility = source.visibility();
    let beat = (visibility / 2).max(Duration::from_millis(100));
    // One span per message, in the trace of the request that made the
    // event, open while the consumer works on the batch.
    let spans: Vec<tracing::Span> = batch
        .iter()
        .map(|d| {
            let span = tracing::info_span!(
                target: crate::events::trace::TRACE_ONLY,
                "worker.handle",
                consumer = consumer.name(),
                event_type = %d.event.event_type,
                event_id = %d.event.id,
            );
            crate::events::trace::join(&span, d.traceparent.as_deref());
            span
        })
        .collect();
    let _spans = spans;
    let work = consumer.handle(batch);
    tokio::pin!(work);
    loop {
        tokio::select! {
            outcomes = &mut work => return outcomes,
            _ = tokio::time::sleep(beat) => {
                if let Err(e) = source.extend(&handles, visibility).await {
                    tracing::warn!(consumer = consumer.name(), error = %e, "visibility heartbeat failed");
                }
                // A batch stuck in its consumer shows as a rising age.
                record_oldest(source).await;
            }
        }
    }
}

/// On a FIFO queue a message is deleted only when every earlier one of
/// its group in the batch was: SQS may hand out several messages of a
/// group at once, and deleting a later one while an earlier one comes
/// back would reorder the group. The later ones come back after it.
fn keep_group_order(batch: &[Delivery], outcomes: &mut [Outcome]) {
    let mut failed: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (delivery, outcome) in batch.iter().zip(outcomes.iter_mut()) {
        let group = delivery.event.user_id.as_deref().unwrap_or("system");
        match outcome {
            Outcome::Retry(_) => {
                failed.insert(group);
            }
            Outcome::Done if failed.contains(group) => {
                *outcome = Outcome::Retry("an earlier message of its group was not handled".into());
            }
            Outcome::Done => {}
        }
    }
}

/// Deletes what is done (retrying a failed delete a few times: a message
/// not deleted comes back, and the consumer sees it again as a duplicate);
/// counts the rest.
async fn settle(source: &dyn Source, name: &'static str, batch: &[Delivery], outcomes: &[Outcome]) {
    let mut done = Vec::new();
    for (delivery, outcome) in batch.iter().zip(outcomes) {
        match outcome {
            Outcome::Done => {
                done.push(delivery.handle.clone());
                let lag = (crate::events::now() - delivery.event.time)
                    .num_milliseconds()
                    .max(0) as f64
                    / 1e3;
                metrics::gauge!("nax_worker_lag_seconds", "consumer" => name).set(lag);
            }
            Outcome::Retry(why) => {
                metrics::counter!("nax_worker_failed_total", "consumer" => name).increment(1);
                tracing::warn!(consumer = name, event_id = %delivery.event.id,
                    event_type = %delivery.event.event_type, receives = delivery.receives,
                    reason = %why, "not handled; it comes back after the visibility timeout");
            }
        }
    }
    if outcomes.len() < batch.len() {
        tracing::error!(
            consumer = name,
            "consumer returned fewer outcomes than deliveries"
        );
    }
    metrics::counter!("nax_worker_processed_total", "consumer" => name)
        .increment(done.len() as u64);
    if done.is_empty() {
        return;
    }
    for attempt in 0..3u32 {
        match source.delete(&done).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(consumer = name, error = %e, attempt, "delete failed");
                tokio::time::sleep(BACKOFF_MIN * 2u32.pow(attempt)).await;
            }
        }
    }
}

/// The age of the oldest message waiting or in flight ([`Source::oldest`];
/// 0 when there is none) into its gauge. Called after every receive and
/// on every heartbeat of a batch in hand, so it keeps rising while a
/// message waits to come back or a batch is stuck, and reads 0 once the
/// queue drained.
async fn record_oldest(source: &dyn Source) {
    let age = source.oldest().await.map_or(0.0, |oldest| {
        (crate::events::now() - oldest).num_milliseconds().max(0) as f64 / 1e3
    });
    metrics::gauge!("nax_worker_oldest_message_age_seconds", "queue" => source.queue().name())
        .set(age);
}

/// Reads the queue's counts into the gauges.
async fn record_depth(source: &dyn Source) {
    let queue = source.queue().name();
    match source.depth().await {
        Ok(depth) => {
            metrics::gauge!("nax_worker_queue_visible", "queue" => queue).set(depth.visible as f64);
            metrics::gauge!("nax_worker_queue_in_flight", "queue" => queue)
                .set(depth.in_flight as f64);
            metrics::gauge!("nax_worker_dlq_depth", "queue" => queue)
                .set(depth.dead_letters as f64);
        }
        Err(e) => tracing::debug!(queue, error = %e, "reading the queue depth failed"),
    }
}
