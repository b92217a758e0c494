//! Banxa as the payment provider of `banxa` deposits, through its merchant
//! API (docs/API.md, "Routes" and "Webhooks"; selected by `banxa_api_url`).
//!
//! A deposit is a Banxa buy order: the user pays the amount in the
//! deposit's currency at Banxa's checkout, Banxa delivers `banxa_coin` to
//! the exchange's `banxa_wallet_address`, and the user's fiat balance is
//! credited when Banxa's signed webhook says the order is `complete`
//! ([`crate::webhooks::banxa`]; the order is found through the reference
//! recorded with the deposit). Requests:
//! - `POST /api/orders` `{account_reference, source, target,
//!   source_amount, wallet_address, return_url_on_success, meta_data}` →
//!   `data.order.{id, checkout_url}`: the order id is the provider
//!   reference, the checkout URL the deposit's `payment_url`;
//! - `GET /api/orders/{id}` → `data.order.status` (reconciliation).
//!
//! Every request carries `Authorization: Bearer {api_key}:{signature}:{nonce}`:
//! the hex HMAC-SHA256, keyed with the API secret (the one Banxa's
//! webhooks are signed with too), over `"GET\n{path}\n{nonce}"` or
//! `"POST\n{path}\n{nonce}\n{body}"`, with a microsecond nonce that never
//! repeats within this process (Banxa refuses a reused nonce).
//!
//! Payouts are not Banxa's: its sell orders start at Banxa with the user's
//! crypto, so a payout asked of it is refused at once (the funds go back).
//! Banxa's create call has no idempotency key: a retry after an unknown
//! outcome can leave an order nobody pays, which expires at Banxa.
//! Answers are read in chunks and refused over [`ANSWER_BOUNDS`] before
//! they are parsed.

use super::payment::{DepositStart, NextStep, PaymentOrder, PaymentProvider, ProviderError};
use super::{answer, ProviderContext, RemoteStatus, SetupError};
use crate::secret::Secret;
use crate::secrets::LiveSecret;
use crate::webhooks::banxa;
use async_trait::async_trait;
use inbound::JsonBounds;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bounds of an answer of Banxa's, checked before it is parsed.
pub const ANSWER_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 256 * 1024,
    max_depth: 16,
    max_elements: 10_000,
};

/// The Banxa adapter for `ctx` (the `banxa` fiat provider only).
pub fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn PaymentProvider>, SetupError> {
    let config = ctx.config;
    let missing = |setting: &'static str| SetupError::Missing {
        setting,
        because: "api.banxa_api_url is set",
    };
    let api_key = ctx
        .secrets
        .setting(config.banxa_api_key.as_ref())
        .ok_or(missing("banxa_api_key"))?;
    if config.banxa_wallet_address.is_empty() {
        return Err(missing("banxa_wallet_address"));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.upstream_timeout_ms))
        .build()
        .map_err(|e| SetupError::Client(e.to_string()))?;
    Ok(Arc::new(BanxaPayments {
        http,
        base: config.banxa_api_url.trim_end_matches('/').to_owned(),
        api_key,
        secret: ctx.keys.hmac("banxa")?.clone(),
        coin: config.banxa_coin.clone(),
        wallet: config.banxa_wallet_address.clone(),
        return_url: format!("{}/", ctx.callback_base.trim_end_matches('/')),
        last_nonce: AtomicI64::new(0),
    }))
}

/// Banxa's merchant API.
pub struct BanxaPayments {
    http: reqwest::Client,
    base: String,
    /// Read at each request: rotated without a restart.
    api_key: LiveSecret,
    secret: LiveSecret,
    coin: String,
    wallet: String,
    return_url: String,
    last_nonce: AtomicI64,
}

/// The `Authorization` value of a request to `path` (with its query) at
/// `nonce`: a POST signs its body, a GET (`body` `None`) does not.
pub fn authorization(
    api_key: &str,
    secret: &Secret,
    path: &str,
    nonce: i64,
    body: Option<&[u8]>,
) -> String {
    let method = if body.is_some() { "POST" } else { "GET" };
    let signature = banxa::signature(secret, method, path, &nonce.to_string(), body);
    format!("Bearer {api_key}:{signature}:{nonce}")
}

impl BanxaPayments {
    /// Microseconds now, above every nonce handed out before.
    fn nonce(&self) -> i64 {
        let now = chrono::Utc::now().timestamp_micros();
        let mut last = self.last_nonce.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.last_nonce.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// One signed request; `Ok` holds the status and the bounded, parsed
    /// answer.
    async fn call(&self, path: &str, body: Option<Vec<u8>>) -> Result<(u16, Value), String> {
        let auth = authorization(
            self.api_key.current().expose(),
            &self.secret.current(),
            path,
            self.nonce(),
            body.as_deref(),
        );
        let url = format!("{}{path}", self.base);
        let request = match body {
            Some(body) => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body),
            None => self.http.get(url),
        };
        let response = request
            .header("authorization", auth)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        answer::read(response, &ANSWER_BOUNDS).await
    }
}

/// An answer's body, parsed once within [`ANSWER_BOUNDS`] (empty: `null`).
pub fn parse_answer(raw: &[u8]) -> Result<Value, String> {
    answer::parse(raw, &ANSWER_BOUNDS)
}

/// The error an answer of status `status` means.
fn refusal(status: u16, body: &Value) -> ProviderError {
    // Banxa's error body: `{"errors": [{"status", "code", "title",
    // "description"}]}` (an object instead of the array is read too).
    let title = ["/errors/0/title", "/errors/0/description", "/errors/title"]
        .iter()
        .find_map(|p| body.pointer(p))
        .and_then(Value::as_str)
        .unwrap_or("no detail")
        .chars()
        .take(200)
        .collect::<String>();
    match status {
        429 | 500..=599 => ProviderError::Unavailable(format!("banxa {status}: {title}")),
        // Our credentials or clock, not the request: an operator's matter
        // (a wrong key or secret, a nonce refused for skew or reuse).
        401 | 403 => {
            tracing::error!(status, reason = %title,
                "banxa refused our authentication; check the API key, secret and clock");
            ProviderError::Unavailable(format!("banxa {status}: {title}"))
        }
        _ => ProviderError::Rejected(format!("banxa {status}: {title}")),
    }
}

/// A string field of `data.order`, bounded like the ids of webhooks.
fn order_field(body: &Value, field: &'static str) -> Result<String, ProviderError> {
    answer::text_at(body, &format!("/data/order/{field}")).ok_or_else(|| {
        ProviderError::Unavailable(format!("banxa answer without data.order.{field}"))
    })
}

#[async_trait]
impl PaymentProvider for BanxaPayments {
    async fn start_deposit(&self, order: &PaymentOrder) -> Result<DepositStart, ProviderError> {
        let body = json!({
            "account_reference": order.user_id,
            "source": order.currency,
            "target": self.coin,
            "source_amount": order.amount,
            "wallet_address": self.wallet,
            "return_url_on_success": self.return_url,
            "meta_data": order.transaction_id,
        })
        .to_string()
        .into_bytes();
        let (status, answer) = self
            .call("/api/orders", Some(body))
            .await
            .map_err(ProviderError::Unavailable)?;
        if !(200..300).contains(&status) {
            return Err(refusal(status, &answer));
        }
        let id = order_field(&answer, "id")?;
        if id.len() > crate::webhooks::notice::MAX_ID_LEN {
            return Err(ProviderError::Unavailable("banxa order id too long".into()));
        }
        Ok(DepositStart {
            provider_ref: id,
            next_step: NextStep::PaymentUrl(order_field(&answer, "checkout_url")?),
        })
    }

    async fn start_payout(
        &self,
        _order: &PaymentOrder,
        _destination: &str,
    ) -> Result<String, ProviderError> {
        Err(ProviderError::Rejected(
            "Banxa pays out through sell orders the user starts at Banxa".to_owned(),
        ))
    }

    async fn payment_status(&self, provider_ref: &str) -> Result<RemoteStatus, ProviderError> {
        let safe = !provider_ref.is_empty()
            && provider_ref
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !safe {
            return Ok(RemoteStatus::NotFound);
        }
        let path = format!("/api/orders/{provider_ref}");
        let (status, answer) = self
            .call(&path, None)
            .await
            .map_err(ProviderError::Unavailable)?;
        match status {
            200..=299 => {}
            404 => return Ok(RemoteStatus::NotFound),
            _ => return Err(refusal(status, &answer)),
        }
        let word = order_field(&answer, "status")?;
        Ok(match banxa::outcome_of(&banxa::status_word(&word)) {
            Some(crate::money::movement::Outcome::Completed) => RemoteStatus::Completed,
            Some(crate::money::movement::Outcome::Failed) => RemoteStatus::Failed(word),
            None => RemoteStatus::Pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors made with openssl, not with our HMAC code:
    /// `printf 'GET\n/api/orders/abc123\n1700000000123456' | openssl dgst -sha256 -hmac test-secret`
    /// and `printf 'POST\n/api/orders\n1700000000123456\n{"source":"USD"}' | openssl dgst -sha256 -hmac test-secret`.
    #[test]
    fn requests_are_signed_as_banxa_documents() {
        let secret = Secret::new("test-secret");
        assert_eq!(
            authorization("k", &secret, "/api/orders/abc123", 1_700_000_000_123_456, None),
            "Bearer k:1200727b0c065981ee9e1174be01184253e2736dc894e6d5a273f7a58a6fcb6c:1700000000123456"
        );
        assert_eq!(
            authorization(
                "k",
                &secret,
                "/api/orders",
                1_700_000_000_123_456,
                Some(br#"{"source":"USD"}"#)
            ),
            "Bearer k:3bf995a9eb98da496de454f51e22e0dd3a9faeb3634c8c42cb8ea8d729f5729e:1700000000123456"
        );
    }

    proptest::proptest! {
        /// Any bytes Banxa could send: parsing never panics, and what
        /// parses yields bounded fields or a clear error.
        #[test]
        fn arbitrary_answers_never_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(value) = parse_answer(&raw) {
                let _ = refusal(400, &value);
                if let Ok(id) = order_field(&value, "id") {
                    proptest::prop_assert!(id.len() <= 2048);
                }
            }
        }

        #[test]
        fn json_shaped_answers_never_panic(text in r#"\{("data":\{"order":\{("id"|"status"|"checkout_url"):("[a-z0-9]{0,40}"|[1-9][0-9]{0,4}|null|\[\]|\{\})\}\}|"errors":\[\{"title":"[ !#-\[\]-~]{0,30}"\}\])?\}"#) {
            let value = parse_answer(text.as_bytes());
            proptest::prop_assert!(value.is_ok(), "{text}");
            let value = value.unwrap();
            let _ = refusal(422, &value);
            for field in ["id", "status", "checkout_url"] {
                let _ = order_field(&value, field);
            }
        }
    }

    #[test]
    fn answers_past_the_bounds_are_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_answer(deep.as_bytes())
            .unwrap_err()
            .starts_with("answer refused"));
        let big = vec![b' '; ANSWER_BOUNDS.max_bytes + 1];
        assert!(parse_answer(&big)
            .unwrap_err()
            .starts_with("answer refused"));
        assert_eq!(parse_answer(b""), Ok(Value::Null));
    }

    #[test]
    fn errors_say_whether_to_retry() {
        let body = json!({"errors": [{"status": "422", "code": "4002", "title": "Validation error", "description": "source_amount is invalid"}]});
        assert_eq!(
            refusal(422, &body),
            ProviderError::Rejected("banxa 422: Validation error".into())
        );
        assert!(matches!(
            refusal(503, &Value::Null),
            ProviderError::Unavailable(_)
        ));
        assert!(matches!(
            refusal(429, &Value::Null),
            ProviderError::Unavailable(_)
        ));
    }
}
