//! Test support for the webhook contract: the route answers `accepted`
//! and the applier (in process by default) applies shortly after, so
//! tests deliver, then poll the receipt or the state until it shows.

use super::TestApi;
use api::store::{ReceiptStatus, WebhookReceipt};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a test waits for the applier.
pub const DEADLINE: Duration = Duration::from_secs(30);

impl TestApi {
    /// The stored receipt of `webhook_id` from `provider`, if any.
    pub async fn receipt(&self, provider: &str, webhook_id: &str) -> Option<WebhookReceipt> {
        self.api
            .store
            .webhook_receipt(provider, webhook_id)
            .await
            .expect("read receipt")
    }

    /// Waits (up to [`DEADLINE`]) until the applier moved the receipt of
    /// `webhook_id` out of `received`, and returns it.
    pub async fn handled_receipt(&self, provider: &str, webhook_id: &str) -> WebhookReceipt {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let receipt = self.receipt(provider, webhook_id).await;
            if let Some(r) = &receipt {
                if r.status != ReceiptStatus::Received {
                    return r.clone();
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{provider} {webhook_id} never left received: {receipt:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Delivers `body` signed, expects `accepted`, and waits for the
    /// applier to handle it: its receipt.
    pub async fn deliver_handled(
        &self,
        provider: &str,
        body: &[u8],
        webhook_id: &str,
    ) -> WebhookReceipt {
        let (s, ack) = self.signed_webhook(provider, body).await;
        assert_eq!((s, &ack), (200, &json!({"status": "accepted"})));
        self.handled_receipt(provider, webhook_id).await
    }

    /// Delivers `body` signed, expects `accepted`, and waits until it is
    /// rejected with `code` (nothing changed).
    pub async fn deliver_rejected(
        &self,
        provider: &str,
        body: &[u8],
        webhook_id: &str,
        code: &str,
    ) -> WebhookReceipt {
        let receipt = self.deliver_handled(provider, body, webhook_id).await;
        assert_eq!(receipt.status, ReceiptStatus::Rejected, "{receipt:?}");
        let error = receipt.error.clone().unwrap_or_default();
        assert!(
            error.starts_with(&format!("{code}: ")),
            "{webhook_id}: rejected with {error:?}, not {code}"
        );
        receipt
    }

    /// Waits (up to [`DEADLINE`], polling gently: the routes are rate
    /// limited) until `asset`'s available balance is `want`.
    pub async fn wait_available(&self, token: &str, asset: &str, want: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (available, _, _) = self.balance(token, asset).await;
            if available == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{asset} available stayed {available}, not {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `webhook.applied` / `webhook.rejected` events logged for
    /// `webhook_id`.
    pub fn webhook_outcomes(&self, webhook_id: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e.event_type == "webhook.applied" || e.event_type == "webhook.rejected")
            .filter(|e| e.data["webhook_id"] == webhook_id)
            .map(|e| json!({"type": e.event_type, "data": e.data}))
            .collect()
    }

    /// [`webhook_outcomes`](Self::webhook_outcomes) once the relay logged
    /// at least one (up to [`DEADLINE`]).
    pub async fn wait_webhook_outcomes(&self, webhook_id: &str) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let outcomes = self.webhook_outcomes(webhook_id);
            if !outcomes.is_empty() {
                return outcomes;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no webhook.applied or webhook.rejected for {webhook_id}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
