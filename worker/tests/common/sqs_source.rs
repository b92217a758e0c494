//! A minimal SQS [`Source`] for the acceptance test (the worker's own
//! `worker::sqs::SqsSource` replaces it when merged).

use api::events::sqs::Queue;
use api::events::Event;
use api::queue::{Delivery, Depth, Source, SourceError};
use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;
use std::time::Duration;

pub struct TestSqsSource {
    pub client: Client,
    pub url: String,
    pub visibility: Duration,
}

fn err(e: impl std::fmt::Display) -> SourceError {
    SourceError {
        queue: Queue::AuditLog.name().to_owned(),
        cause: e.to_string(),
    }
}

impl TestSqsSource {
    async fn visibility_of(&self, handles: &[String], secs: i32) -> Result<(), SourceError> {
        for chunk in handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .visibility_timeout(secs)
                        .build()
                        .map_err(err)
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| err(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Source for TestSqsSource {
    fn queue(&self) -> Queue {
        Queue::AuditLog
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, SourceError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .visibility_timeout(self.visibility.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| err(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let mut deliveries = Vec::new();
        for m in out.messages() {
            let body = m.body().unwrap_or_default();
            if api::events::log::LINE_BOUNDS
                .check(body.as_bytes())
                .is_err()
            {
                continue;
            }
            let Ok(event) = serde_json::from_str::<Event>(body) else {
                continue;
            };
            let attr = |name| m.attributes().and_then(|a| a.get(&name)).cloned();
            let receives = attr(MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let enqueued_at = attr(MessageSystemAttributeName::SentTimestamp)
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(chrono::DateTime::from_timestamp_millis)
                .unwrap_or(event.time);
            deliveries.push(Delivery {
                event,
                handle: m.receipt_handle().unwrap_or_default().to_owned(),
                receives,
                enqueued_at,
            });
        }
        Ok(deliveries)
    }

    async fn delete(&self, handles: &[String]) -> Result<(), SourceError> {
        for chunk in handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .build()
                        .map_err(err)
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| err(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
        Ok(())
    }

    async fn release(&self, handles: &[String]) -> Result<(), SourceError> {
        self.visibility_of(handles, 0).await
    }

    async fn extend(&self, handles: &[String], by: Duration) -> Result<(), SourceError> {
        self.visibility_of(handles, by.as_secs() as i32).await
    }

    async fn depth(&self) -> Result<Depth, SourceError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| err(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let n = |name| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(Depth {
            visible: n(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            dead_letters: 0,
        })
    }

    fn visibility(&self) -> Duration {
        self.visibility
    }
}
