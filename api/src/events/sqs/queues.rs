//! The destination queues (names, dead-letter queues, redrive counts, as
//! in docs/ARCHITECTURE.md and `infra/terraform/sqs.tf`), which events go where, and
//! creating them for tests and local development.

use crate::events::PublishError;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use thiserror::Error;

/// One of the three destination queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    AuditLog,
    HubspotSync,
    WebhookProcessing,
}

impl Queue {
    pub const ALL: [Queue; 3] = [
        Queue::AuditLog,
        Queue::HubspotSync,
        Queue::WebhookProcessing,
    ];

    /// The queue's name without prefix (as in docs/ARCHITECTURE.md and sqs.tf).
    pub fn name(self) -> &'static str {
        match self {
            Queue::AuditLog => "audit-log-queue.fifo",
            Queue::HubspotSync => "hubspot-sync-queue",
            Queue::WebhookProcessing => "webhook-processing-queue",
        }
    }

    /// Its dead-letter queue's name without prefix.
    pub fn dead_letter_name(self) -> &'static str {
        match self {
            Queue::AuditLog => "audit-log-queue-dlq.fifo",
            Queue::HubspotSync => "hubspot-sync-queue-dlq",
            Queue::WebhookProcessing => "webhook-processing-queue-dlq",
        }
    }

    /// Receives after which a message moves to the dead-letter queue.
    pub fn max_receive_count(self) -> u32 {
        match self {
            Queue::AuditLog => 2,
            Queue::HubspotSync => 5,
            Queue::WebhookProcessing => 3,
        }
    }

    pub fn is_fifo(self) -> bool {
        self == Queue::AuditLog
    }

    /// The queues an event goes to; the audit log always comes first.
    pub fn routes(event_type: &str) -> Vec<Queue> {
        let mut queues = vec![Queue::AuditLog];
        match event_type {
            // What the CRM sync maps to contact properties and lifecycle
            // stages (worker/src/hubspot).
            "user.registered"
            | "user.profile_updated"
            | "kyc.status_changed"
            | "order.filled"
            | "deposit.state_changed"
            | "withdrawal.state_changed" => queues.push(Queue::HubspotSync),
            "webhook.received" => queues.push(Queue::WebhookProcessing),
            _ => {}
        }
        queues
    }
}

/// Why an SQS call failed.
#[derive(Debug, Error)]
pub enum SqsError {
    #[error("sqs {operation} on {queue}: {cause}")]
    Call {
        operation: &'static str,
        queue: String,
        cause: String,
    },
    #[error("sqs rejected {count} message(s) on {queue} after {attempts} attempts: {first}")]
    Rejected {
        queue: String,
        count: usize,
        attempts: u32,
        first: String,
    },
    #[error("event {id} cannot be encoded: {cause}")]
    Encode { id: String, cause: String },
}

impl From<SqsError> for PublishError {
    fn from(e: SqsError) -> Self {
        PublishError::Unavailable(e.to_string())
    }
}

/// Creates every queue of [`Queue::ALL`] and its dead-letter queue under
/// `prefix`; idempotent (`CreateQueue` with the same attributes).
pub(super) async fn create_all(client: &Client, prefix: &str) -> Result<(), SqsError> {
    for queue in Queue::ALL {
        let dlq_name = format!("{prefix}{}", queue.dead_letter_name());
        let dlq_url = create_queue(client, &dlq_name, queue.is_fifo(), None).await?;
        let arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| call_error("GetQueueAttributes", &dlq_name, e))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| SqsError::Call {
                operation: "GetQueueAttributes",
                queue: dlq_name.clone(),
                cause: "no QueueArn in the answer".to_owned(),
            })?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": queue.max_receive_count().to_string(),
        })
        .to_string();
        let name = format!("{prefix}{}", queue.name());
        create_queue(client, &name, queue.is_fifo(), Some(redrive)).await?;
    }
    Ok(())
}

/// The URL of the queue named `name`.
pub(super) async fn url(client: &Client, name: &str) -> Result<String, SqsError> {
    let out = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| call_error("GetQueueUrl", name, e))?;
    out.queue_url()
        .map(str::to_owned)
        .ok_or_else(|| SqsError::Call {
            operation: "GetQueueUrl",
            queue: name.to_owned(),
            cause: "no QueueUrl in the answer".to_owned(),
        })
}

async fn create_queue(
    client: &Client,
    name: &str,
    fifo: bool,
    redrive_policy: Option<String>,
) -> Result<String, SqsError> {
    let mut request = client.create_queue().queue_name(name);
    if fifo {
        request = request
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "false");
    }
    if let Some(policy) = redrive_policy {
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let out = request
        .send()
        .await
        .map_err(|e| call_error("CreateQueue", name, e))?;
    out.queue_url()
        .map(str::to_owned)
        .ok_or_else(|| SqsError::Call {
            operation: "CreateQueue",
            queue: name.to_owned(),
            cause: "no QueueUrl in the answer".to_owned(),
        })
}

pub(super) fn call_error<E: std::error::Error>(
    operation: &'static str,
    queue: &str,
    e: E,
) -> SqsError {
    SqsError::Call {
        operation,
        queue: queue.to_owned(),
        cause: DisplayErrorContext(&e).to_string(),
    }
}
