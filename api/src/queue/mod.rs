//! Consuming the event queues: the same consumer code over SQS in
//! production and over the embedded event log by default
//! (docs/ARCHITECTURE.md, "After the queues").
//!
//! A [`Source`] hands out [`Delivery`]s of one queue (SQS: `ReceiveMessage`;
//! embedded: [`log::LogSource`], which reads `events.ndjson`). A
//! [`Consumer`] handles a batch and says, per delivery, whether it is
//! [`Outcome::Done`] (deleted from the queue) or [`Outcome::Retry`] (left to
//! come back after the visibility timeout; after the queue's maximum
//! receives it moves to the dead-letter queue). [`run`] is the loop that
//! joins the two, with batching, visibility heartbeats, metrics and a
//! graceful stop: the batch in hand is finished and deleted, what was
//! received and not handled is released at once.
//!
//! Delivery is at least once: a consumer makes its effect idempotent
//! (the audit archive by its chain state, the CRM sync by its checkpoints,
//! the webhook applier by the receipt's state).

pub mod log;
mod run;
pub mod sqs;

pub use run::{run, RunOptions};

use crate::events::{sqs::Queue, Event, Timestamp};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// One received message.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Shared with the embedded log's copy, kept for a redelivery.
    pub event: Arc<Event>,
    /// The event's JSON exactly as the queue holds it, one line, where
    /// the source keeps it (the embedded log's line; `None` from SQS,
    /// whose bodies other senders may format otherwise).
    pub json: Option<Arc<str>>,
    /// What [`Source::delete`] and [`Source::release`] take (an SQS receipt
    /// handle; an offset in the embedded log).
    pub handle: String,
    /// How many times this message was received, this one included.
    pub receives: u32,
    /// When the queue got the message (SQS `SentTimestamp`; the event's
    /// own time in the embedded log).
    pub enqueued_at: Timestamp,
    /// The W3C trace context the message carries, which the consumer's
    /// `worker.handle` span joins (docs/OPERATIONS.md, "Traces"): on SQS
    /// the `traceparent` message attribute, which wins; else (the
    /// embedded log has no attributes, or a message was sent without it)
    /// the event body's own `traceparent` field.
    pub traceparent: Option<String>,
}

/// What a queue looks like now (gauges of `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Messages waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted.
    pub in_flight: u64,
    /// Messages in the dead-letter queue.
    pub dead_letters: u64,
}

/// Why a queue call failed; the loop backs off and tries again.
#[derive(Debug, Clone, Error)]
#[error("queue {queue}: {cause}")]
pub struct SourceError {
    pub queue: String,
    pub cause: String,
}

/// One queue, as a consumer sees it.
#[async_trait]
pub trait Source: Send + Sync + 'static {
    /// Which queue.
    fn queue(&self) -> Queue;

    /// Up to `max` messages, waiting up to `wait` for the first.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, SourceError>;

    /// The most messages one receive hands out (SQS: 10).
    fn receive_limit(&self) -> usize {
        10
    }

    /// A receive after the first of a batch ([`run`] gathers a batch until
    /// one answers nothing): like [`Source::receive`], but a source that
    /// can tell that every waiting message is held back until the batch in
    /// hand is settled (its FIFO group is in flight) answers empty at
    /// once instead of waiting.
    async fn receive_more(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, SourceError> {
        self.receive(max, wait).await
    }

    /// Removes handled messages.
    async fn delete(&self, handles: &[String]) -> Result<(), SourceError>;

    /// Makes messages visible again at once (a graceful stop gives back
    /// what it did not handle).
    async fn release(&self, handles: &[String]) -> Result<(), SourceError>;

    /// Keeps messages invisible for `by` from now (a long batch's
    /// heartbeat).
    async fn extend(&self, handles: &[String], by: Duration) -> Result<(), SourceError>;

    /// The queue's counts.
    async fn depth(&self) -> Result<Depth, SourceError>;

    /// When the oldest message waiting or in flight was enqueued, as far
    /// as this source can tell (`None`: none it knows of). [`run`] reads
    /// it after every receive, empty ones too, into
    /// `nax_worker_oldest_message_age_seconds` (docs/OPERATIONS.md,
    /// "Metrics"). Cheap: no call to the queue.
    async fn oldest(&self) -> Option<Timestamp>;

    /// How long a received message stays invisible.
    fn visibility(&self) -> Duration;
}

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled (or seen before): delete it.
    Done,
    /// Not handled: leave it to come back (and, after the queue's
    /// maximum receives, to go to its dead-letter queue). The reason is
    /// logged and counted.
    Retry(String),
}

/// How many deliveries a consumer takes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// At most this many deliveries per batch.
    pub max: usize,
    /// Gather for up to this long after the first delivery of a batch.
    pub wait: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            max: 10,
            wait: Duration::ZERO,
        }
    }
}

/// A queue's consumer (audit archive, CRM sync, webhook applier).
#[async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// Its name in logs and metrics (`audit`, `hubspot`, `webhooks`).
    fn name(&self) -> &'static str;

    /// How it batches.
    fn batching(&self) -> Batching {
        Batching::default()
    }

    /// Runs once before the first batch (e.g. the audit archive rolls its
    /// state forward after a crash); an error is retried with backoff.
    async fn recover(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Handles `batch`; returns one outcome per delivery, in order.
    async fn handle(&self, batch: &[Delivery]) -> Vec<Outcome>;
}
