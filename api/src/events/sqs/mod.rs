//! [`SqsPublisher`]: the production [`EventPublisher`], sending outbox
//! events to the three SQS queues of docs/ARCHITECTURE.md ("Defaults and production").
//!
//! Routing: every event goes to `audit-log-queue.fifo` (message group =
//! the acting user, or `system`; deduplication id = the event id, so a
//! batch the relay re-sends is dropped by SQS within its 5-minute window);
//! what the CRM sync reads (`user.*`, `kyc.status_changed`, `order.filled`,
//! deposit and withdrawal state changes: [`Queue::routes`]) also goes to
//! `hubspot-sync-queue`; `webhook.received` also goes to
//! `webhook-processing-queue`. The body is the event's versioned JSON.
//!
//! Messages are sent with `SendMessageBatch` (at most 10 entries and
//! 256 KiB per call); entries SQS reports as failed are re-sent a bounded
//! number of times. On the FIFO queue a call holds at most one message
//! per group, so a re-sent entry never lands after a later message of its
//! group: each group arrives in commit order. `publish` returns `Ok` only when every message was
//! accepted; otherwise the relay keeps the whole batch in the outbox and
//! retries later with backoff, so an SQS outage delays events, never drops
//! them. Queue URLs are resolved by name (`GetQueueUrl`) on first use and
//! cached.
//!
//! Local development against `moto_server`:
//! `SqsConfig { endpoint: Some("http://127.0.0.1:5000".into()), static_credentials: Some(StaticCredentials::test()), ..SqsConfig::default() }`,
//! then [`SqsPublisher::ensure_queues`] creates the queues and their
//! dead-letter queues as the Terraform in `infra/terraform/sqs.tf` does.

mod queues;

pub use queues::{Queue, SqsError};

use super::{Event, EventPublisher, PublishError};
pub use crate::aws::StaticCredentials;
use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use queues::call_error;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::OnceCell;

/// How to reach SQS (from `ApiConfig`'s `sqs_*` fields).
#[derive(Debug, Clone)]
pub struct SqsConfig {
    /// Endpoint override (e.g. `http://127.0.0.1:5000` for moto); `None`
    /// uses the region's AWS endpoint.
    pub endpoint: Option<String>,
    pub region: String,
    /// Prepended to every queue name (e.g. `staging-`); matches the
    /// Terraform variable `resource_prefix`.
    pub queue_prefix: String,
    /// Fixed credentials (tests, moto); `None` uses the default AWS
    /// provider chain (environment, ECS task role, ...).
    pub static_credentials: Option<StaticCredentials>,
}

impl Default for SqsConfig {
    fn default() -> Self {
        SqsConfig {
            endpoint: None,
            region: "us-east-1".to_owned(),
            queue_prefix: String::new(),
            static_credentials: None,
        }
    }
}

impl SqsConfig {
    /// The `sqs_*` fields of `config` (an empty endpoint: the region's AWS
    /// endpoint).
    pub fn from_api(config: &crate::ApiConfig) -> SqsConfig {
        SqsConfig {
            endpoint: (!config.sqs_endpoint.is_empty()).then(|| config.sqs_endpoint.clone()),
            region: config.sqs_region.clone(),
            queue_prefix: config.sqs_queue_prefix.clone(),
            static_credentials: config.aws_credentials(),
        }
    }
}

/// Entries and bytes per `SendMessageBatch` (SQS limits).
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 256 * 1024;
/// Sends of the entries SQS reports as failed, first one included.
const ENTRY_ATTEMPTS: u32 = 3;
const ENTRY_RETRY_DELAY: Duration = Duration::from_millis(100);

/// One message to send: the event body plus its FIFO keys.
#[derive(Debug, Clone)]
struct Message {
    event_id: String,
    group: String,
    body: String,
    /// The event's W3C trace context, sent as the `traceparent` message
    /// attribute (docs/OPERATIONS.md, "Traces").
    traceparent: Option<String>,
}

impl Message {
    /// What SQS counts against a call's size limit: the body and the
    /// message attribute (its name, type and value).
    fn size(&self) -> usize {
        self.body.len()
            + self.traceparent.as_ref().map_or(0, |t| {
                crate::events::trace::TRACEPARENT.len() + "String".len() + t.len()
            })
    }
}

/// Publishes outbox events to SQS (see the module docs for routing and
/// guarantees). Cheap to share behind an `Arc`.
pub struct SqsPublisher {
    client: Client,
    prefix: String,
    urls: OnceCell<HashMap<Queue, String>>,
}

impl SqsPublisher {
    /// Builds the client; makes no call (queue URLs are resolved on the
    /// first publish, so start-up does not depend on SQS being up).
    pub async fn new(config: &SqsConfig) -> SqsPublisher {
        SqsPublisher {
            client: Self::client(config).await,
            prefix: config.queue_prefix.clone(),
            urls: OnceCell::new(),
        }
    }

    /// An SQS client for `config` with short connect/operation timeouts
    /// and the SDK's standard retries (tests use it to read queues back).
    pub async fn client(config: &SqsConfig) -> Client {
        let sdk = crate::aws::sdk_config(
            &config.region,
            config.endpoint.as_deref(),
            config.static_credentials.as_ref(),
        )
        .await;
        Client::new(&sdk)
    }

    /// Creates the three queues and their dead-letter queues (redrive
    /// after 2 / 5 / 3 receives, as in docs/ARCHITECTURE.md and sqs.tf) under
    /// `prefix`. Idempotent. For tests and local development; production
    /// queues come from Terraform.
    pub async fn ensure_queues(client: &Client, prefix: &str) -> Result<(), SqsError> {
        queues::create_all(client, prefix).await
    }

    /// The URL of `queue` under `prefix`.
    pub async fn queue_url(
        client: &Client,
        prefix: &str,
        queue: Queue,
    ) -> Result<String, SqsError> {
        queues::url(client, &format!("{prefix}{}", queue.name())).await
    }

    /// The queue URLs, resolved by name once.
    async fn urls(&self) -> Result<&HashMap<Queue, String>, SqsError> {
        self.urls
            .get_or_try_init(|| async {
                let mut urls = HashMap::new();
                for queue in Queue::ALL {
                    let url = Self::queue_url(&self.client, &self.prefix, queue).await?;
                    urls.insert(queue, url);
                }
                Ok(urls)
            })
            .await
    }

    /// Sends `messages` to `url`; failed entries are re-sent up to
    /// [`ENTRY_ATTEMPTS`] times in all. FIFO queues keep each group's
    /// order ([`send_fifo`](Self::send_fifo)).
    async fn send_all(
        &self,
        queue: Queue,
        url: &str,
        messages: Vec<Message>,
    ) -> Result<(), SqsError> {
        if queue.is_fifo() {
            return self.send_fifo(queue, url, messages).await;
        }
        let mut pending = messages;
        let mut first_failure = String::new();
        for attempt in 1..=ENTRY_ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(ENTRY_RETRY_DELAY * 2u32.pow(attempt - 2)).await;
            }
            let mut failed = Vec::new();
            for chunk in chunks(&pending) {
                let rejected = self.send_chunk(queue, url, chunk).await?;
                if first_failure.is_empty() {
                    if let Some((_, why)) = rejected.first() {
                        first_failure = why.clone();
                    }
                }
                failed.extend(rejected.into_iter().map(|(m, _)| m));
            }
            if failed.is_empty() {
                return Ok(());
            }
            metrics::counter!("nax_sqs_entry_failures_total").increment(failed.len() as u64);
            pending = failed;
        }
        Err(SqsError::Rejected {
            queue: queue.name().to_owned(),
            count: pending.len(),
            attempts: ENTRY_ATTEMPTS,
            first: first_failure,
        })
    }

    /// Sends `messages` to a FIFO queue so that no message is accepted
    /// before an earlier one of its group: each call carries at most one
    /// message per group, the oldest not yet accepted. SQS reports each
    /// entry of a call on its own and does not refuse the later entries
    /// of a rejected one's group, so two messages of one group in one
    /// call would let the second overtake the first whenever the first is
    /// rejected and re-sent. A rejected message is re-sent (up to
    /// [`ENTRY_ATTEMPTS`] times in all) before anything after it in its
    /// group; other groups go on. Cost: one call per message of a group
    /// (a burst of one user's events is sent one call at a time).
    async fn send_fifo(
        &self,
        queue: Queue,
        url: &str,
        messages: Vec<Message>,
    ) -> Result<(), SqsError> {
        let mut pending = messages;
        let mut rejections: HashMap<String, u32> = HashMap::new();
        let mut first_failure = String::new();
        while !pending.is_empty() {
            let picked = group_heads(&pending);
            let call: Vec<Message> = picked.iter().map(|&i| pending[i].clone()).collect();
            let rejected = self.send_chunk(queue, url, &call).await?;
            let rejected_ids: std::collections::HashSet<String> =
                rejected.iter().map(|(m, _)| m.event_id.clone()).collect();
            let mut worst = 0;
            for (message, why) in &rejected {
                if first_failure.is_empty() {
                    first_failure = why.clone();
                }
                let n = rejections.entry(message.event_id.clone()).or_default();
                *n += 1;
                worst = worst.max(*n);
            }
            metrics::counter!("nax_sqs_entry_failures_total").increment(rejected.len() as u64);
            if worst >= ENTRY_ATTEMPTS {
                return Err(SqsError::Rejected {
                    queue: queue.name().to_owned(),
                    count: pending.len(),
                    attempts: ENTRY_ATTEMPTS,
                    first: first_failure,
                });
            }
            let accepted: std::collections::HashSet<usize> = picked
                .into_iter()
                .filter(|&i| !rejected_ids.contains(&pending[i].event_id))
                .collect();
            let mut index = 0;
            pending.retain(|_| {
                let keep = !accepted.contains(&index);
                index += 1;
                keep
            });
            if worst > 0 {
                tokio::time::sleep(ENTRY_RETRY_DELAY * 2u32.pow(worst - 1)).await;
            }
        }
        Ok(())
    }

    /// One `SendMessageBatch`; returns the entries SQS rejected, with why.
    async fn send_chunk(
        &self,
        queue: Queue,
        url: &str,
        chunk: &[Message],
    ) -> Result<Vec<(Message, String)>, SqsError> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body);
                let entry = match &m.traceparent {
                    Some(value) => entry.message_attributes(
                        crate::events::trace::TRACEPARENT,
                        MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value(value)
                            .build()
                            .map_err(|e| SqsError::Encode {
                                id: m.event_id.clone(),
                                cause: e.to_string(),
                            })?,
                    ),
                    None => entry,
                };
                let entry = if queue.is_fifo() {
                    entry
                        .message_group_id(&m.group)
                        .message_deduplication_id(&m.event_id)
                } else {
                    entry
                };
                entry.build().map_err(|e| SqsError::Encode {
                    id: m.event_id.clone(),
                    cause: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| call_error("SendMessageBatch", queue.name(), e))?;
        Ok(out
            .failed()
            .iter()
            .filter_map(|f| {
                let message = chunk.get(f.id().parse::<usize>().ok()?)?.clone();
                let why = format!("{}: {}", f.code(), f.message().unwrap_or(""));
                tracing::warn!(queue = queue.name(), event_id = %message.event_id, sender_fault = f.sender_fault(), error = %why, "sqs rejected a message");
                Some((message, why))
            })
            .collect())
    }
}

#[async_trait]
impl EventPublisher for SqsPublisher {
    async fn publish(&self, events: &[std::sync::Arc<Event>]) -> Result<(), PublishError> {
        if events.is_empty() {
            return Ok(());
        }
        let urls = self.urls().await?;
        let mut by_queue: HashMap<Queue, Vec<Message>> = HashMap::new();
        for event in events {
            let body = serde_json::to_string(&**event).map_err(|e| SqsError::Encode {
                id: event.id.clone(),
                cause: e.to_string(),
            })?;
            let message = Message {
                event_id: event.id.clone(),
                group: event.user_id.clone().unwrap_or_else(|| "system".to_owned()),
                body,
                traceparent: event.traceparent.clone(),
            };
            for queue in Queue::routes(&event.event_type) {
                by_queue.entry(queue).or_default().push(message.clone());
            }
        }
        // The audit log first: it receives every event, in commit order.
        for queue in Queue::ALL {
            if let Some(messages) = by_queue.remove(&queue) {
                let url = urls
                    .get(&queue)
                    .expect("invariant: urls() resolves every queue of Queue::ALL");
                self.send_all(queue, url, messages).await?;
            }
        }
        Ok(())
    }
}

/// Splits `messages` into `SendMessageBatch` calls, in order, within the
/// entry and byte limits (a single oversized message gets a call of its
/// own, which SQS rejects and the caller reports).
fn chunks(messages: &[Message]) -> Vec<&[Message]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, m) in messages.iter().enumerate() {
        let full = i - start == BATCH_ENTRIES || (i > start && bytes + m.size() > BATCH_BYTES);
        if full {
            out.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += m.size();
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

/// Indexes of the messages of one FIFO call: the first message of each
/// group in `pending` (in order), at most [`BATCH_ENTRIES`] of them and
/// [`BATCH_BYTES`] in all (a group whose head does not fit waits for the
/// next call; the first head always goes, so an oversized message gets a
/// call of its own, which SQS rejects and the caller reports).
fn group_heads(pending: &[Message]) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    let mut picked = Vec::new();
    let mut bytes = 0;
    for (i, m) in pending.iter().enumerate() {
        if picked.len() == BATCH_ENTRIES {
            break;
        }
        if !seen.insert(m.group.as_str()) {
            continue;
        }
        if !picked.is_empty() && bytes + m.size() > BATCH_BYTES {
            continue;
        }
        bytes += m.size();
        picked.push(i);
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Message {
        Message {
            event_id: "e".to_owned(),
            group: "g".to_owned(),
            body: "x".repeat(len),
            traceparent: None,
        }
    }

    #[test]
    fn chunks_hold_at_most_ten_entries_in_order() {
        let messages: Vec<_> = (0..23).map(|_| message(10)).collect();
        let sizes: Vec<_> = chunks(&messages).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
    }

    #[test]
    fn chunks_stay_under_the_byte_limit() {
        let messages: Vec<_> = (0..4).map(|_| message(100 * 1024)).collect();
        let sizes: Vec<_> = chunks(&messages).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![2, 2]);
        assert!(chunks(&[]).is_empty());
    }

    fn in_group(group: &str, len: usize) -> Message {
        Message {
            group: group.to_owned(),
            ..message(len)
        }
    }

    #[test]
    fn a_fifo_call_carries_one_message_per_group_oldest_first() {
        let pending = vec![
            in_group("a", 10),
            in_group("a", 10),
            in_group("b", 10),
            in_group("a", 10),
            in_group("c", 10),
            in_group("b", 10),
        ];
        assert_eq!(group_heads(&pending), vec![0, 2, 4]);
        let many: Vec<_> = (0..15).map(|i| in_group(&i.to_string(), 10)).collect();
        assert_eq!(group_heads(&many), (0..10).collect::<Vec<_>>());
        // A head that does not fit waits; its group's later ones too.
        let big = vec![
            in_group("a", 200 * 1024),
            in_group("b", 100 * 1024),
            in_group("b", 1),
            in_group("c", 1),
        ];
        assert_eq!(group_heads(&big), vec![0, 3]);
        assert!(group_heads(&[]).is_empty());
    }

    #[test]
    fn routes_follow_design() {
        assert_eq!(Queue::routes("order.accepted"), vec![Queue::AuditLog]);
        assert_eq!(
            Queue::routes("order.filled"),
            vec![Queue::AuditLog, Queue::HubspotSync]
        );
        assert_eq!(
            Queue::routes("kyc.status_changed"),
            vec![Queue::AuditLog, Queue::HubspotSync]
        );
        assert_eq!(
            Queue::routes("webhook.received"),
            vec![Queue::AuditLog, Queue::WebhookProcessing]
        );
    }
}
