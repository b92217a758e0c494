//! How the sandbox custody and payment providers deliver webhooks, the
//! way real providers do: the body is signed with the provider's scheme
//! and POSTed to `{base}/webhooks/{provider}`; a failed or non-2xx
//! delivery is retried with exponential backoff (re-signed each time, so
//! timestamped schemes stay fresh), a bounded number of times.

use super::notice::{Direction, Outcome};
use super::signing::WebhookSigner;
use std::time::Duration;

/// What a sandbox provider reports about one of our fiat transactions.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub direction: Direction,
    pub outcome: Outcome,
    pub user_id: &'a str,
    pub transaction_id: &'a str,
    /// The provider's id of the payment or payout.
    pub provider_ref: &'a str,
    pub currency: &'a str,
    /// Decimal string in the currency's minor units (`"10.50"`).
    pub amount: &'a str,
}

/// Deliveries tried per webhook before giving up.
pub const ATTEMPTS: u32 = 8;
/// Wait before the first retry; doubles each time up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Timeout of one delivery.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends signed webhooks to this service.
#[derive(Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
    base_url: String,
}

impl WebhookSender {
    /// Deliveries go to `{base_url}/webhooks/{provider}`.
    pub fn new(base_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .unwrap_or_default();
        WebhookSender {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Delivers `body` after `delay`, in the background.
    pub fn send_later(&self, signer: WebhookSigner, body: Vec<u8>, delay: Duration) {
        let sender = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(last) = sender.send(&signer, &body).await {
                tracing::warn!(
                    provider = signer.provider_name(),
                    last = %last,
                    "sandbox webhook not accepted after {ATTEMPTS} attempts"
                );
            }
        });
    }

    /// Delivers `body`, retrying until a 2xx answer or [`ATTEMPTS`] tries;
    /// returns the accepting status, or the last failure.
    pub async fn send(&self, signer: &WebhookSigner, body: &[u8]) -> Result<u16, String> {
        let url = format!("{}/webhooks/{}", self.base_url, signer.provider_name());
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let mut request = self
                .http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
            for (name, value) in signer.headers(body) {
                request = request.header(name, value);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return Ok(response.status().as_u16())
                }
                Ok(response) => last = format!("HTTP {}", response.status()),
                Err(e) => last = e.to_string(),
            }
            tracing::debug!(attempt, last = %last, url = %url, "sandbox webhook delivery failed");
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        Err(last)
    }
}
