//! The webhooks of [`super::FireblocksServer`]: transaction events
//! (v2 bodies, developers.fireblocks.com/reference/transaction-webhooks-v2
//! and webhooks-structures-notificationstructure), signed v2 with the
//! current key and, when asked, v1 with key 1; raw and forged deliveries.

use super::{api, auth, FireblocksServer, KIDS, STATUSES};
use super::{V1_SIGNATURE_HEADER, V2_SIGNATURE_HEADER};
use serde_json::{json, Value};

impl FireblocksServer {
    /// Moves transaction `tx_id` to `status` (one of [`STATUSES`]), with
    /// the sub-status Fireblocks names for it (COMPLETED: `CONFIRMED`,
    /// CONFIRMING: `PENDING_BLOCKCHAIN_CONFIRMATIONS`, CANCELLED:
    /// `CANCELLED_BY_USER`, BLOCKED: `BLOCKED_BY_POLICY`, REJECTED:
    /// `REJECTED_AML_SCREENING`; others `""`) and `tx_hash` when given,
    /// and POSTs the `transaction.status.updated` webhook: its answer
    /// (status, JSON; `None`: no webhook URL). Panics on an unknown
    /// transaction or status, or when the webhook cannot be sent.
    pub async fn set_status(
        &self,
        tx_id: &str,
        status: &str,
        tx_hash: Option<&str>,
    ) -> Option<(u16, Value)> {
        let sub_status = match status {
            "COMPLETED" => "CONFIRMED",
            "CONFIRMING" => "PENDING_BLOCKCHAIN_CONFIRMATIONS",
            "CANCELLED" => "CANCELLED_BY_USER",
            "BLOCKED" => "BLOCKED_BY_POLICY",
            "REJECTED" => "REJECTED_AML_SCREENING",
            _ => "",
        };
        self.set_status_with(tx_id, status, sub_status, tx_hash)
            .await
    }

    /// [`Self::set_status`] with the sub-status given.
    pub async fn set_status_with(
        &self,
        tx_id: &str,
        status: &str,
        sub_status: &str,
        tx_hash: Option<&str>,
    ) -> Option<(u16, Value)> {
        let known = STATUSES.split_whitespace().any(|s| s == status);
        assert!(known, "`{status}` is not a Fireblocks status ({STATUSES})");
        let data = {
            let mut inner = self.shared.inner.lock();
            let found = inner.transactions.iter_mut().find(|t| t["id"] == tx_id);
            let tx = found.unwrap_or_else(|| panic!("the Fireblocks test server has no {tx_id}"));
            let fields = json!({ "status": status, "subStatus": sub_status,
                                 "lastUpdated": chrono::Utc::now().timestamp_millis() });
            fields.as_object().into_iter().flatten().for_each(|(k, v)| {
                tx[k] = v.clone();
            });
            if let Some(hash) = tx_hash {
                tx["txHash"] = json!(hash);
            }
            tx.clone()
        };
        self.notify("transaction.status.updated", data).await
    }

    /// An incoming deposit: a COMPLETED (`CONFIRMED`) transaction of
    /// `amount` (decimal string) `asset` from an unknown source to vault
    /// `vault` at `address`, no `externalTxId`, then its
    /// `transaction.status.updated` webhook. Its id, and the webhook's
    /// answer (`None`: no webhook URL).
    pub async fn incoming_deposit(
        &self,
        vault: &str,
        asset: &str,
        amount: &str,
        address: &str,
        customer_ref_id: Option<&str>,
        tx_hash: &str,
    ) -> (String, Option<(u16, Value)>) {
        assert!(api::is_amount(amount), "{amount} is not a decimal amount");
        let tx = {
            let mut inner = self.shared.inner.lock();
            let id = api::new_uuid(&mut inner, &self.shared.url);
            let now = chrono::Utc::now().timestamp_millis();
            let tx = json!({
                "id": id, "externalTxId": null, "status": "COMPLETED", "subStatus": "CONFIRMED",
                "txHash": tx_hash, "operation": "TRANSFER", "assetId": asset,
                "amount": amount.parse::<f64>().unwrap_or(0.0),
                "amountInfo": { "amount": amount, "requestedAmount": amount, "netAmount": amount },
                "source": { "type": "UNKNOWN", "id": "" },
                "destination": { "type": "VAULT_ACCOUNT", "id": vault },
                "destinationAddress": address, "destinationTag": "",
                "customerRefId": customer_ref_id, "note": "", "createdAt": now, "lastUpdated": now,
            });
            inner.transactions.push(tx.clone());
            tx
        };
        let id = tx["id"].as_str().unwrap_or_default().to_owned();
        (id, self.notify("transaction.status.updated", tx).await)
    }

    /// POSTs the last webhook body again, byte for byte (same `id`), signed
    /// afresh: a redelivery. Panics when there was none.
    pub async fn resend_last(&self) -> Option<(u16, Value)> {
        let last = self.shared.inner.lock().events.last().cloned();
        self.deliver(last.expect("no webhook to resend").into_bytes())
            .await
    }

    /// POSTs `body` with exactly `headers` to the webhook URL (`None`:
    /// none set): forged, tampered or unsigned deliveries.
    pub async fn send_raw(&self, body: &[u8], headers: &[(&str, &str)]) -> Option<(u16, Value)> {
        let url = self.webhook_url()?;
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Some(post(&url, body.to_vec(), headers.collect()).await)
    }

    /// A `Fireblocks-Webhook-Signature` value for `body` under `kid`, signed
    /// with webhook key `key_no` (1 or 2) whatever the key set says.
    pub fn sign_v2_with(&self, kid: &str, key_no: usize, body: &[u8]) -> String {
        assert!(matches!(key_no, 1 | 2), "webhook keys are 1 and 2");
        auth::sign_v2(kid, &self.shared.webhook_keys[key_no - 1], body)
    }

    /// A v1 `Fireblocks-Signature` value for `body`, signed with webhook
    /// key `key_no` (1 or 2).
    pub fn sign_v1_with(&self, key_no: usize, body: &[u8]) -> String {
        assert!(matches!(key_no, 1 | 2), "webhook keys are 1 and 2");
        auth::sign_v1(&self.shared.webhook_keys[key_no - 1], body)
    }

    fn webhook_url(&self) -> Option<String> {
        let set = self.shared.inner.lock().webhook_url.clone();
        set.or_else(|| self.shared.config.webhook_url.clone())
    }

    /// Saves and delivers the v2 event `event_type` about `data`.
    async fn notify(&self, event_type: &str, data: Value) -> Option<(u16, Value)> {
        let body = {
            let mut inner = self.shared.inner.lock();
            let id = api::new_uuid(&mut inner, &self.shared.url);
            let event = json!({
                "id": id, "eventType": event_type, "eventVersion": 1,
                "resourceId": data["id"], "workspaceId": self.shared.config.workspace_id,
                "createdAt": chrono::Utc::now().timestamp_millis(), "data": data,
            });
            inner.events.push(event.to_string());
            event.to_string()
        };
        self.deliver(body.into_bytes()).await
    }

    /// POSTs `body` signed v2 with the current key (and v1 with key 1 when
    /// the legacy signature is on).
    async fn deliver(&self, body: Vec<u8>) -> Option<(u16, Value)> {
        let url = self.webhook_url()?;
        let (signing, legacy) = {
            let inner = self.shared.inner.lock();
            (inner.signing, inner.legacy)
        };
        let keys = &self.shared.webhook_keys;
        let v2 = auth::sign_v2(KIDS[signing], &keys[signing], &body);
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (V2_SIGNATURE_HEADER.to_owned(), v2),
        ];
        if legacy {
            let v1 = auth::sign_v1(&keys[0], &body);
            headers.push((V1_SIGNATURE_HEADER.to_owned(), v1));
        }
        Some(post(&url, body, headers).await)
    }
}

/// POSTs `body` with `headers` to `url`: the answer's status and JSON
/// (`Null` when not JSON). Panics when it cannot be sent.
async fn post(url: &str, body: Vec<u8>, headers: Vec<(String, String)>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    crate::served::post_webhook("Fireblocks", url, body, &headers).await
}
