//! [`EventBridgePublisher`]: the domain events on an EventBridge bus, for
//! consumers downstream of the queues (notifications, analytics; see
//! docs/ARCHITECTURE.md "Defaults and production" and
//! `infra/terraform/eventbridge.tf`), and [`Both`], which publishes a
//! batch to two publishers (SQS, then the bus).
//!
//! Which events: [`is_domain_event`] — `order.filled`, `kyc.status_changed`,
//! and `deposit.state_changed` / `withdrawal.state_changed` whose new
//! `status` is `completed`. Every other event is skipped (it still goes to
//! SQS). Each entry: source [`SOURCE`], detail-type the event type, detail
//! the event's versioned JSON (the same body SQS carries, so consumers
//! deduplicate by its `id`), on the configured bus.
//!
//! Guarantees: `PutEvents` takes at most 10 entries (and 256 KiB) per call;
//! entries the bus reports as failed (`FailedEntryCount`) are re-sent a
//! bounded number of times, and if some still fail (or a call fails)
//! `publish` returns `Err`, so the relay keeps the whole batch in the
//! outbox and sends it again: at least once, never dropped; a batch sent
//! again may deliver an event twice. The bus keeps no order.

use super::{Event, EventPublisher, PublishError};
use crate::aws::StaticCredentials;
use async_trait::async_trait;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use std::sync::Arc;
use std::time::Duration;

/// The `source` of every entry (what the Terraform rules match).
pub const SOURCE: &str = "nax.stream";

/// Entries and bytes per `PutEvents` (EventBridge limits).
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 256 * 1024;
/// Sends of the entries the bus reports as failed, first one included.
const ENTRY_ATTEMPTS: u32 = 3;
const ENTRY_RETRY_DELAY: Duration = Duration::from_millis(100);

/// How to reach the bus (from `ApiConfig`'s `eventbridge_*` fields).
#[derive(Debug, Clone)]
pub struct EventBridgeConfig {
    /// The bus name or ARN (`eventbridge_bus`).
    pub bus: String,
    /// Endpoint override (e.g. `http://127.0.0.1:5000` for moto); `None`
    /// uses the region's AWS endpoint.
    pub endpoint: Option<String>,
    pub region: String,
    /// Fixed credentials (tests, moto); `None`: the default provider chain.
    pub static_credentials: Option<StaticCredentials>,
}

/// True for the events that go to the bus (see the module doc).
pub fn is_domain_event(event: &Event) -> bool {
    let completed = || event.data.get("status").and_then(|s| s.as_str()) == Some("completed");
    match event.event_type.as_str() {
        "order.filled" | "kyc.status_changed" => true,
        "deposit.state_changed" | "withdrawal.state_changed" => completed(),
        _ => false,
    }
}

/// Publishes the domain events of each batch to an EventBridge bus (see
/// the module doc). Cheap to share behind an `Arc`.
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    /// Builds the client; makes no call.
    pub async fn new(config: &EventBridgeConfig) -> EventBridgePublisher {
        let sdk = crate::aws::sdk_config(
            &config.region,
            config.endpoint.as_deref(),
            config.static_credentials.as_ref(),
        )
        .await;
        EventBridgePublisher {
            client: Client::new(&sdk),
            bus: config.bus.clone(),
        }
    }

    /// One `PutEvents`; returns the indexes (into `chunk`) the bus
    /// rejected, with the first reason.
    async fn put(&self, chunk: &[Entry]) -> Result<(Vec<usize>, String), PublishError> {
        let entries = chunk
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(SOURCE)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .build()
            })
            .collect::<Vec<_>>();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                PublishError::Unavailable(format!(
                    "eventbridge PutEvents on {}: {}",
                    self.bus,
                    DisplayErrorContext(&e)
                ))
            })?;
        if out.failed_entry_count() == 0 {
            return Ok((Vec::new(), String::new()));
        }
        let mut failed = Vec::new();
        let mut first = String::new();
        // Result entries are in request order; a failed one has an error code.
        for (i, result) in out.entries().iter().enumerate() {
            if let Some(code) = result.error_code() {
                if first.is_empty() {
                    first = format!("{code}: {}", result.error_message().unwrap_or(""));
                }
                if let Some(entry) = chunk.get(i) {
                    tracing::warn!(bus = %self.bus, event_id = %entry.event_id, error = %code,
                        "eventbridge rejected an entry");
                }
                failed.push(i);
            }
        }
        if failed.is_empty() {
            // A count without per-entry errors: treat the whole call as failed.
            failed = (0..chunk.len()).collect();
            first = format!("{} entries failed", out.failed_entry_count());
        }
        Ok((failed, first))
    }
}

/// One entry to put: the event id (for logs), its type and its JSON.
#[derive(Debug, Clone)]
struct Entry {
    event_id: String,
    detail_type: String,
    detail: String,
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[Arc<Event>]) -> Result<(), PublishError> {
        let mut pending = Vec::new();
        for event in events.iter().filter(|e| is_domain_event(e)) {
            let detail = serde_json::to_string(&**event).map_err(|e| {
                PublishError::Unavailable(format!("event {} cannot be encoded: {e}", event.id))
            })?;
            pending.push(Entry {
                event_id: event.id.clone(),
                detail_type: event.event_type.clone(),
                detail,
            });
        }
        let mut first_failure = String::new();
        for attempt in 1..=ENTRY_ATTEMPTS {
            if pending.is_empty() {
                return Ok(());
            }
            if attempt > 1 {
                tokio::time::sleep(ENTRY_RETRY_DELAY * 2u32.pow(attempt - 2)).await;
            }
            let mut failed = Vec::new();
            for chunk in chunks(&pending) {
                let (rejected, why) = self.put(chunk).await?;
                if first_failure.is_empty() && !why.is_empty() {
                    first_failure = why;
                }
                failed.extend(rejected.into_iter().filter_map(|i| chunk.get(i).cloned()));
            }
            if !failed.is_empty() {
                metrics::counter!("nax_eventbridge_entry_failures_total")
                    .increment(failed.len() as u64);
            }
            pending = failed;
        }
        if pending.is_empty() {
            return Ok(());
        }
        Err(PublishError::Unavailable(format!(
            "eventbridge rejected {} entr(y/ies) on {} after {ENTRY_ATTEMPTS} attempts: {first_failure}",
            pending.len(),
            self.bus
        )))
    }
}

/// Splits `entries` into `PutEvents` calls within the entry and byte
/// limits (an oversized entry gets a call of its own, which the bus
/// rejects and the caller reports).
fn chunks(entries: &[Entry]) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, e) in entries.iter().enumerate() {
        let size = e.detail.len() + e.detail_type.len() + SOURCE.len();
        if i - start == BATCH_ENTRIES || (i > start && bytes + size > BATCH_BYTES) {
            out.push(&entries[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// Publishes each batch to `first`, then to `second`; `Ok` only when both
/// accepted it. On `Err` the relay sends the batch to both again, so the
/// one that had accepted it may deliver it twice (consumers deduplicate
/// by event id).
pub struct Both {
    pub first: Arc<dyn EventPublisher>,
    pub second: Arc<dyn EventPublisher>,
}

#[async_trait]
impl EventPublisher for Both {
    async fn publish(&self, events: &[Arc<Event>]) -> Result<(), PublishError> {
        self.first.publish(events).await?;
        self.second.publish(events).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;
    use serde_json::json;

    #[test]
    fn only_the_domain_events_go_to_the_bus() {
        let e = |t, data| Event::new(t, Some("u"), data);
        assert!(is_domain_event(&e(EventType::OrderFilled, json!({}))));
        assert!(is_domain_event(&e(EventType::KycStatusChanged, json!({}))));
        let done = json!({"status": "completed"});
        let pending = json!({"status": "processing"});
        assert!(is_domain_event(&e(
            EventType::DepositStateChanged,
            done.clone()
        )));
        assert!(is_domain_event(&e(EventType::WithdrawalStateChanged, done)));
        assert!(!is_domain_event(&e(
            EventType::DepositStateChanged,
            pending.clone()
        )));
        assert!(!is_domain_event(&e(
            EventType::WithdrawalStateChanged,
            pending
        )));
        assert!(!is_domain_event(&e(EventType::OrderAccepted, json!({}))));
        assert!(!is_domain_event(&e(EventType::UserRegistered, json!({}))));
    }

    #[test]
    fn chunks_hold_at_most_ten_entries() {
        let entry = Entry {
            event_id: "e".into(),
            detail_type: "order.filled".into(),
            detail: "{}".into(),
        };
        let entries = vec![entry; 23];
        let sizes: Vec<_> = chunks(&entries).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
    }
}
