//! [`SqsSource`]: one of the SQS queues of [`Queue`], as a [`Source`].
//!
//! `ReceiveMessage` with long polling (whole seconds, at most 20),
//! `DeleteMessageBatch`, `ChangeMessageVisibilityBatch` (0 to release, the
//! visibility timeout again for a heartbeat). SQS itself moves a message
//! received more than the queue's `maxReceiveCount` times to the
//! dead-letter queue (the redrive policy of `infra/terraform/sqs.tf`). A
//! message whose body is not an event (over the bounds, or not one) is
//! never handed out and never deleted: it reaches the dead-letter queue.
//!
//! Each receive asks for the `traceparent` message attribute the
//! publisher sets ([`Delivery::traceparent`]). SQS cannot say how old its
//! oldest waiting message is (CloudWatch's `ApproximateAgeOfOldestMessage`
//! is not an SQS call), so [`Source::oldest`] answers from what this
//! source holds: the `SentTimestamp` of the messages it received and has
//! not deleted ([`InHand`]).

use super::{Delivery, Depth, Source, SourceError};
use crate::events::log::LINE_BOUNDS;
use crate::events::sqs::{Queue, SqsConfig, SqsPublisher};
use crate::events::trace::TRACEPARENT;
use crate::events::{Event, Timestamp};
use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Entries per batch call (an SQS limit).
const BATCH: usize = 10;
/// The longest wait of one `ReceiveMessage` (an SQS limit).
const LONGEST_RECEIVE: Duration = Duration::from_secs(20);

/// The messages a [`SqsSource`] received and has not deleted, by message
/// id: in flight, or (retried, released) waiting to come back. One not
/// received again within twice the visibility timeout plus the longest
/// receive is forgotten: it went to the dead-letter queue or to another
/// worker.
#[derive(Default)]
struct InHand(parking_lot::Mutex<HashMap<String, Held>>);

struct Held {
    sent: Timestamp,
    handle: String,
    /// When it was last received or its visibility extended.
    seen: Instant,
}

impl InHand {
    fn received(&self, id: &str, sent: Timestamp, handle: &str) {
        let held = Held {
            sent,
            handle: handle.to_owned(),
            seen: Instant::now(),
        };
        self.0.lock().insert(id.to_owned(), held);
    }

    fn deleted(&self, handles: &[String]) {
        self.0.lock().retain(|_, h| !handles.contains(&h.handle));
    }

    fn extended(&self, handles: &[String]) {
        let now = Instant::now();
        for held in self.0.lock().values_mut() {
            if handles.contains(&held.handle) {
                held.seen = now;
            }
        }
    }

    /// The oldest `SentTimestamp` held, after forgetting what was not seen
    /// within `forget_after`.
    fn oldest(&self, forget_after: Duration) -> Option<Timestamp> {
        let mut held = self.0.lock();
        held.retain(|_, h| h.seen.elapsed() < forget_after);
        held.values().map(|h| h.sent).min()
    }
}

/// One SQS queue as a [`Source`].
pub struct SqsSource {
    client: Client,
    queue: Queue,
    url: String,
    dead_letter_url: Option<String>,
    visibility: Duration,
    in_hand: InHand,
}

impl SqsSource {
    /// Resolves `queue` (and its dead-letter queue) under the configured
    /// prefix and reads its visibility timeout.
    pub async fn connect(config: &SqsConfig, queue: Queue) -> Result<SqsSource, SourceError> {
        let client = SqsPublisher::client(config).await;
        let error = |cause: String| SourceError {
            queue: queue.name().to_owned(),
            cause,
        };
        let url_of = |name: String| {
            let client = client.clone();
            async move {
                client
                    .get_queue_url()
                    .queue_name(&name)
                    .send()
                    .await
                    .map_err(|e| format!("GetQueueUrl {name}: {}", DisplayErrorContext(e)))?
                    .queue_url()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("GetQueueUrl {name}: no QueueUrl"))
            }
        };
        let url = url_of(format!("{}{}", config.queue_prefix, queue.name()))
            .await
            .map_err(error)?;
        let dead_letter_url = url_of(format!(
            "{}{}",
            config.queue_prefix,
            queue.dead_letter_name()
        ))
        .await
        .ok();
        let attributes = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| error(format!("GetQueueAttributes: {}", DisplayErrorContext(e))))?;
        let seconds = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(30);
        Ok(SqsSource {
            client,
            queue,
            url,
            dead_letter_url,
            visibility: Duration::from_secs(seconds.max(1)),
            in_hand: InHand::default(),
        })
    }

    /// Receives with this visibility timeout instead of the queue's own
    /// (whole seconds, at least 1).
    pub fn with_visibility(mut self, visibility: Duration) -> Self {
        self.visibility = visibility.max(Duration::from_secs(1));
        self
    }

    fn error(&self, operation: &str, e: impl std::fmt::Display) -> SourceError {
        SourceError {
            queue: self.queue.name().to_owned(),
            cause: format!("{operation}: {e}"),
        }
    }

    /// Sets the visibility timeout of `handles` to `seconds`.
    async fn set_visibility(&self, handles: &[String], seconds: i32) -> Result<(), SourceError> {
        for chunk in handles.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .visibility_timeout(seconds)
                        .build()
                        .map_err(|e| self.error("ChangeMessageVisibilityBatch", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error("ChangeMessageVisibilityBatch", DisplayErrorContext(e)))?;
            if let Some(failed) = out.failed().first() {
                return Err(self.error(
                    "ChangeMessageVisibilityBatch",
                    format!("{}: {}", failed.code(), failed.message().unwrap_or("")),
                ));
            }
        }
        Ok(())
    }

    /// `ApproximateNumberOfMessages` (and `...NotVisible`) of `url`.
    async fn counts(&self, url: &str) -> Result<(u64, u64), SourceError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| self.error("GetQueueAttributes", DisplayErrorContext(e)))?;
        let read = |name: &QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok((
            read(&QueueAttributeName::ApproximateNumberOfMessages),
            read(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }
}

#[async_trait]
impl Source for SqsSource {
    fn queue(&self) -> Queue {
        self.queue
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, SourceError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, BATCH) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .visibility_timeout(self.visibility.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names(TRACEPARENT)
            .send()
            .await
            .map_err(|e| self.error("ReceiveMessage", DisplayErrorContext(e)))?;
        let mut deliveries = Vec::new();
        for message in out.messages() {
            let (Some(handle), Some(body)) = (message.receipt_handle(), message.body()) else {
                continue;
            };
            let attribute = |name: MessageSystemAttributeName| {
                message
                    .attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse::<i64>().ok())
            };
            let event: Event = match LINE_BOUNDS
                .check(body.as_bytes())
                .map_err(|e| e.to_string())
                .and_then(|()| serde_json::from_str(body).map_err(|e| e.to_string()))
            {
                Ok(event) => event,
                Err(e) => {
                    metrics::counter!("nax_worker_unreadable_messages_total", "queue" => self.queue.name())
                        .increment(1);
                    tracing::warn!(queue = self.queue.name(), message_id = message.message_id().unwrap_or(""),
                        error = %e, "a message that is not an event; left for the dead-letter queue");
                    continue;
                }
            };
            let enqueued_at = attribute(MessageSystemAttributeName::SentTimestamp)
                .and_then(chrono::DateTime::from_timestamp_millis)
                .unwrap_or(event.time);
            let traceparent = message
                .message_attributes()
                .and_then(|a| a.get(TRACEPARENT))
                .and_then(|v| v.string_value())
                .map(str::to_owned)
                .or_else(|| event.traceparent.clone());
            self.in_hand
                .received(message.message_id().unwrap_or(handle), enqueued_at, handle);
            deliveries.push(Delivery {
                event: Arc::new(event),
                json: None,
                handle: handle.to_owned(),
                receives: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                    .unwrap_or(1)
                    .max(1) as u32,
                enqueued_at,
                traceparent,
            });
        }
        Ok(deliveries)
    }

    async fn delete(&self, handles: &[String]) -> Result<(), SourceError> {
        for chunk in handles.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .build()
                        .map_err(|e| self.error("DeleteMessageBatch", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error("DeleteMessageBatch", DisplayErrorContext(e)))?;
            let failed: Vec<String> = out.failed().iter().map(|f| f.id().to_owned()).collect();
            let gone: Vec<String> = chunk
                .iter()
                .enumerate()
                .filter(|(i, _)| !failed.contains(&i.to_string()))
                .map(|(_, h)| h.clone())
                .collect();
            self.in_hand.deleted(&gone);
            if let Some(failed) = out.failed().first() {
                return Err(self.error(
                    "DeleteMessageBatch",
                    format!("{}: {}", failed.code(), failed.message().unwrap_or("")),
                ));
            }
        }
        Ok(())
    }

    async fn release(&self, handles: &[String]) -> Result<(), SourceError> {
        self.set_visibility(handles, 0).await
    }

    async fn extend(&self, handles: &[String], by: Duration) -> Result<(), SourceError> {
        self.set_visibility(handles, by.as_secs().clamp(1, 43_200) as i32)
            .await?;
        self.in_hand.extended(handles);
        Ok(())
    }

    async fn depth(&self) -> Result<Depth, SourceError> {
        let (visible, in_flight) = self.counts(&self.url).await?;
        let dead_letters = match &self.dead_letter_url {
            Some(url) => self.counts(url).await?.0,
            None => 0,
        };
        Ok(Depth {
            visible,
            in_flight,
            dead_letters,
        })
    }

    /// The oldest message received and not deleted ([`InHand`]); `None`
    /// once every one received was deleted.
    async fn oldest(&self) -> Option<Timestamp> {
        self.in_hand.oldest(self.visibility * 2 + LONGEST_RECEIVE)
    }

    fn visibility(&self) -> Duration {
        self.visibility
    }
}
