//! What the HubSpot sync tests share: a minimal SQS [`Source`] of
//! `hubspot-sync-queue` (to be replaced by `worker::sqs::SqsSource`),
//! settings against a [`testkit::hubspot::HubspotServer`], and users and
//! events written as the API writes them.

#![allow(dead_code)]

use api::events::sqs::{Queue, SqsConfig, StaticCredentials};
use api::events::{now, Event, EventType};
use api::queue::{Delivery, Depth, Source, SourceError};
use api::secret::Secret;
use api::store::{KycStatus, Store, User, Write};
use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;
use inbound::JsonBounds;
use std::time::Duration;
use testkit::hubspot::HubspotServer;
use worker::hubspot::HubspotSettings;

/// Settings for `server` with a short window and quick retries.
pub fn settings(server: &HubspotServer, limit: usize, window: Duration) -> HubspotSettings {
    HubspotSettings {
        base_url: server.url(),
        token: Secret::new(server.token()),
        requests_per_window: limit,
        window,
        batch_max: 100,
        batch_wait: Duration::from_millis(300),
        max_attempts: 4,
        backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
    }
}

/// An SQS config on the shared moto with a fresh queue prefix.
pub fn sqs_config() -> SqsConfig {
    SqsConfig {
        endpoint: Some(testkit::shared_moto_endpoint()),
        region: "us-east-1".to_owned(),
        queue_prefix: format!("hs{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(StaticCredentials::test()),
    }
}

const BODY_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 256 * 1024,
    max_depth: 32,
    max_elements: 100_000,
};

/// `hubspot-sync-queue` as a [`Source`]: `ReceiveMessage` (with
/// `ApproximateReceiveCount` and `SentTimestamp`), `DeleteMessageBatch`,
/// `ChangeMessageVisibilityBatch`.
pub struct SqsSource {
    client: Client,
    url: String,
    dlq_url: String,
    visibility: Duration,
}

impl SqsSource {
    pub async fn new(client: Client, prefix: &str, visibility: Duration) -> SqsSource {
        let url = |name: String| {
            let client = client.clone();
            async move {
                client
                    .get_queue_url()
                    .queue_name(&name)
                    .send()
                    .await
                    .expect("GetQueueUrl")
                    .queue_url()
                    .expect("queue url")
                    .to_owned()
            }
        };
        let queue = Queue::HubspotSync;
        SqsSource {
            url: url(format!("{prefix}{}", queue.name())).await,
            dlq_url: url(format!("{prefix}{}", queue.dead_letter_name())).await,
            client,
            visibility,
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> SourceError {
        SourceError {
            queue: Queue::HubspotSync.name().to_owned(),
            cause: e.to_string(),
        }
    }

    async fn visibility_of(&self, handles: &[String], seconds: i32) -> Result<(), SourceError> {
        for chunk in handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .visibility_timeout(seconds)
                        .build()
                        .map_err(|e| self.error(e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
        Ok(())
    }

    async fn count(&self, url: &str, names: &[QueueAttributeName]) -> Result<u64, SourceError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| self.error(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let attrs = out.attributes();
        Ok(names
            .iter()
            .filter_map(|n| attrs.and_then(|a| a.get(n)))
            .filter_map(|v| v.parse::<u64>().ok())
            .sum())
    }
}

#[async_trait]
impl Source for SqsSource {
    fn queue(&self) -> Queue {
        Queue::HubspotSync
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
            .map_err(|e| self.error(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let mut deliveries = Vec::new();
        for m in out.messages() {
            let (Some(body), Some(handle)) = (m.body(), m.receipt_handle()) else {
                continue;
            };
            let event: Event = match BODY_BOUNDS.check(body.as_bytes()) {
                Ok(()) => match serde_json::from_str(body) {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::warn!(error = %e, "not an event; left for the dead-letter queue");
                        continue;
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "oversized message; left for the dead-letter queue");
                    continue;
                }
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
                handle: handle.to_owned(),
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
                        .map_err(|e| self.error(e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
        Ok(())
    }

    async fn release(&self, handles: &[String]) -> Result<(), SourceError> {
        self.visibility_of(handles, 0).await
    }

    async fn extend(&self, handles: &[String], by: Duration) -> Result<(), SourceError> {
        self.visibility_of(handles, by.as_secs().max(1) as i32)
            .await
    }

    async fn depth(&self) -> Result<Depth, SourceError> {
        Ok(Depth {
            visible: self
                .count(
                    &self.url,
                    &[QueueAttributeName::ApproximateNumberOfMessages],
                )
                .await?,
            in_flight: self
                .count(
                    &self.url,
                    &[QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
                )
                .await?,
            dead_letters: self
                .count(
                    &self.dlq_url,
                    &[QueueAttributeName::ApproximateNumberOfMessages],
                )
                .await?,
        })
    }

    fn visibility(&self) -> Duration {
        self.visibility
    }
}

/// A new account as `auth::account` writes it (KYC `NONE`, no profile).
pub fn new_user(user_id: &str, email: &str) -> User {
    let at = now();
    User {
        user_id: user_id.to_owned(),
        email: email.to_owned(),
        password_hash: Secret::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        first_name: None,
        last_name: None,
        phone: None,
        country: None,
        kyc_status: KycStatus::None,
        kyc_updated_at: at,
        mfa_secret: None,
        mfa_enabled: false,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

/// Registers `user_id` as `auth::account` does: the user and its
/// `user.registered` in one commit. Returns the event.
pub async fn register(store: &dyn Store, user_id: &str, email: &str) -> Event {
    let event = Event::new(
        EventType::UserRegistered,
        Some(user_id),
        serde_json::json!({"user_id": user_id, "email": email}),
    );
    store
        .commit(vec![
            Write::CreateUser(new_user(user_id, email)),
            Write::Emit(event.clone()),
        ])
        .await
        .expect("register");
    event
}

/// Applies `change` to the stored user (next version) and commits it
/// with `event`, as `users::profile` and `users::kyc` do.
pub async fn update(
    store: &dyn Store,
    user_id: &str,
    change: impl FnOnce(&mut User),
    event: Event,
) -> Event {
    let stored = store.user(user_id).await.expect("read").expect("user");
    let mut user = stored.clone();
    change(&mut user);
    user.version = stored.version + 1;
    user.updated_at = now();
    store
        .commit(vec![
            Write::UpdateUser {
                user,
                expected_version: stored.version,
            },
            Write::Emit(event.clone()),
        ])
        .await
        .expect("update user");
    event
}

/// Sends `events` to `hubspot-sync-queue` in order, as `SqsPublisher`
/// does (`SendMessageBatch` of ten, the body the event's JSON), but to
/// that queue only: the publisher also writes the FIFO audit queue, whose
/// sends slow down on moto as it fills (thousands of messages here).
pub async fn publish(client: &Client, prefix: &str, events: &[Event]) {
    let url = client
        .get_queue_url()
        .queue_name(format!("{prefix}{}", Queue::HubspotSync.name()))
        .send()
        .await
        .expect("GetQueueUrl")
        .queue_url()
        .expect("queue url")
        .to_owned();
    for chunk in events.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, e)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(serde_json::to_string(e).expect("event json"))
                    .build()
                    .expect("entry")
            })
            .collect::<Vec<_>>();
        // A loaded moto can time out; a send that landed anyway is a
        // duplicate, which the consumer absorbs (at least once).
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = client
                .send_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries.clone()))
                .send()
                .await;
            match sent {
                Ok(out) => {
                    assert!(out.failed().is_empty(), "rejected: {:?}", out.failed());
                    break;
                }
                Err(e) if attempt < 4 => {
                    eprintln!("SendMessageBatch failed (attempt {attempt}): {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("SendMessageBatch: {e:?}"),
            }
        }
    }
}
