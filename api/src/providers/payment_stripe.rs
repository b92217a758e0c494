//! Stripe as the payment provider of `stripe` deposits, through its
//! PaymentIntents API (docs/API.md, "Routes" and "Webhooks"; selected by
//! `stripe_api_url`).
//!
//! A deposit is a PaymentIntent: `POST /v1/payment_intents` (form-encoded:
//! `amount` in minor units, `currency` lowercase,
//! `automatic_payment_methods[enabled]`, `metadata[user_id]`,
//! `metadata[transaction_id]`) answers `{id, client_secret, status}`; the
//! id is the provider reference, and the client secret goes to the client,
//! which confirms the payment with Stripe.js (`confirmPayment`). The
//! balance is credited when Stripe's signed `payment_intent.succeeded`
//! names the transaction in its metadata ([`crate::webhooks::stripe`]).
//! `GET /v1/payment_intents/{id}` answers reconciliation.
//!
//! Every request carries `Authorization: Bearer {secret key}`,
//! `Stripe-Version: {API_VERSION}` (pinned: the shapes read here and in
//! the webhooks are that version's), and a create carries
//! `Idempotency-Key: nax-deposit-{transaction_id}`, so a retry after an
//! unknown outcome returns the first intent instead of making another.
//!
//! Payouts to a user's bank account are Stripe Connect's (Stripe's own
//! payouts go to the platform's account): not built, so a payout asked of
//! this adapter is refused at once (the funds go back). Answers are read
//! in chunks and refused over [`ANSWER_BOUNDS`] before they are parsed.

use super::payment::{DepositStart, NextStep, PaymentOrder, PaymentProvider, ProviderError};
use super::{answer, ProviderContext, RemoteStatus, SetupError};
use crate::secrets::LiveSecret;
use crate::webhooks::stripe::MINOR_UNIT_SCALE;
use async_trait::async_trait;
use inbound::JsonBounds;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The Stripe API version every request names (`Stripe-Version`).
pub const API_VERSION: &str = "2024-06-20";

/// Bounds of an answer of Stripe's, checked before it is parsed.
pub const ANSWER_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 256 * 1024,
    max_depth: 16,
    max_elements: 10_000,
};

/// The Stripe adapter for `ctx` (the `stripe` fiat provider only).
pub fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn PaymentProvider>, SetupError> {
    let config = ctx.config;
    let secret_key = ctx.secrets.setting(config.stripe_api_key.as_ref());
    let secret_key = secret_key.ok_or(SetupError::Missing {
        setting: "stripe_api_key",
        because: "api.stripe_api_url is set",
    })?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.upstream_timeout_ms))
        .build()
        .map_err(|e| SetupError::Client(e.to_string()))?;
    Ok(Arc::new(StripePayments {
        http,
        base: config.stripe_api_url.trim_end_matches('/').to_owned(),
        secret_key,
    }))
}

/// Stripe's PaymentIntents API.
pub struct StripePayments {
    http: reqwest::Client,
    base: String,
    /// Read at each request: rotated without a restart.
    secret_key: LiveSecret,
}

/// The form body creating the PaymentIntent of `order`: its amount in
/// minor units (refused when it has more decimals than the currency).
pub fn create_form(order: &PaymentOrder) -> Result<String, ProviderError> {
    let minor = orderbook::decimal::parse_scaled(&order.amount, MINOR_UNIT_SCALE)
        .ok()
        .filter(|m| *m > 0)
        .ok_or_else(|| {
            ProviderError::Rejected(format!(
                "{} is not a positive amount in minor units",
                order.amount
            ))
        })?;
    Ok(form_urlencoded::Serializer::new(String::new())
        .append_pair("amount", &minor.to_string())
        .append_pair("currency", &order.currency.to_ascii_lowercase())
        .append_pair("automatic_payment_methods[enabled]", "true")
        .append_pair("metadata[user_id]", &order.user_id)
        .append_pair("metadata[transaction_id]", &order.transaction_id)
        .finish())
}

/// The idempotency key of the create call of `transaction_id`.
pub fn idempotency_key(transaction_id: &str) -> String {
    format!("nax-deposit-{transaction_id}")
}

impl StripePayments {
    /// One request; `Ok` holds the status and the bounded, parsed answer.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<(u16, Value), String> {
        let response = request
            .bearer_auth(self.secret_key.current().expose())
            .header("stripe-version", API_VERSION)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        answer::read(response, &ANSWER_BOUNDS).await
    }
}

/// The error an answer of status `status` means. Stripe's error body:
/// `{"error": {"type", "code", "message", "param", "decline_code"}}`.
pub fn refusal(status: u16, body: &Value) -> ProviderError {
    let word = |field: &str| answer::text_at(body, &format!("/error/{field}"));
    let what = word("code")
        .or_else(|| word("type"))
        .unwrap_or_else(|| "no detail".to_owned());
    let message: String = word("message")
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let said = format!("stripe {status} {what}: {message}");
    match status {
        // 409: the same idempotency key in flight; 424: a dependency of
        // Stripe's failed; 429: rate limited. All worth another try.
        409 | 424 | 429 | 500..=599 => ProviderError::Unavailable(said),
        // Our key or its permissions, not the request: an operator's
        // matter, not a refusal to show the user.
        401 | 403 => {
            tracing::error!(status, code = %what,
                "stripe refused our authentication; check api.stripe_api_key");
            ProviderError::Unavailable(said)
        }
        _ => ProviderError::Rejected(said),
    }
}

/// What a PaymentIntent's `status` says: `succeeded` is final and paid,
/// `canceled` final and unpaid; every other status (`requires_*`,
/// `processing`) can still change, a failed attempt included
/// (`requires_payment_method` after a decline: the user may try again).
pub fn remote_status(status: &str) -> RemoteStatus {
    match status {
        "succeeded" => RemoteStatus::Completed,
        "canceled" => RemoteStatus::Failed(status.to_owned()),
        _ => RemoteStatus::Pending,
    }
}

#[async_trait]
impl PaymentProvider for StripePayments {
    async fn start_deposit(&self, order: &PaymentOrder) -> Result<DepositStart, ProviderError> {
        let form = create_form(order)?;
        let request = self
            .http
            .post(format!("{}/v1/payment_intents", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("idempotency-key", idempotency_key(&order.transaction_id))
            .body(form);
        let (status, answer) = self
            .call(request)
            .await
            .map_err(ProviderError::Unavailable)?;
        if !(200..300).contains(&status) {
            return Err(refusal(status, &answer));
        }
        let field = |name: &str| {
            answer::text_at(&answer, &format!("/{name}"))
                .ok_or_else(|| ProviderError::Unavailable(format!("stripe answer without {name}")))
        };
        let id = field("id")?;
        if id.len() > crate::webhooks::notice::MAX_ID_LEN {
            return Err(ProviderError::Unavailable(
                "stripe intent id too long".into(),
            ));
        }
        Ok(DepositStart {
            provider_ref: id,
            next_step: NextStep::ClientSecret(field("client_secret")?),
        })
    }

    async fn start_payout(
        &self,
        _order: &PaymentOrder,
        _destination: &str,
    ) -> Result<String, ProviderError> {
        Err(ProviderError::Rejected(
            "payouts to users' bank accounts need Stripe Connect, which is not built".to_owned(),
        ))
    }

    async fn payment_status(&self, provider_ref: &str) -> Result<RemoteStatus, ProviderError> {
        let safe = provider_ref.starts_with("pi_")
            && provider_ref.len() <= 255
            && provider_ref
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !safe {
            return Ok(RemoteStatus::NotFound);
        }
        let request = self
            .http
            .get(format!("{}/v1/payment_intents/{provider_ref}", self.base));
        let (status, answer) = self
            .call(request)
            .await
            .map_err(ProviderError::Unavailable)?;
        match status {
            200..=299 => {}
            404 => return Ok(RemoteStatus::NotFound),
            _ => return Err(refusal(status, &answer)),
        }
        let word = answer::text_at(&answer, "/status")
            .ok_or_else(|| ProviderError::Unavailable("stripe answer without status".into()))?;
        Ok(remote_status(&word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(amount: &str) -> PaymentOrder {
        PaymentOrder {
            transaction_id: "0193-tx".into(),
            user_id: "u 1".into(),
            currency: "USD".into(),
            amount: amount.into(),
        }
    }

    #[test]
    fn the_create_form_is_stripes_bracket_notation_in_minor_units() {
        assert_eq!(
            create_form(&order("10.50")).unwrap(),
            "amount=1050&currency=usd&automatic_payment_methods%5Benabled%5D=true\
             &metadata%5Buser_id%5D=u+1&metadata%5Btransaction_id%5D=0193-tx"
        );
        assert_eq!(idempotency_key("t1"), "nax-deposit-t1");
        for bad in ["10.505", "0", "-1", "abc", ""] {
            assert!(
                matches!(create_form(&order(bad)), Err(ProviderError::Rejected(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn errors_say_whether_to_retry() {
        let declined = json!({"error": {"type": "card_error", "code": "card_declined",
            "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}});
        assert_eq!(
            refusal(402, &declined),
            ProviderError::Rejected(
                "stripe 402 card_declined: Your card has insufficient funds.".into()
            )
        );
        let limited = json!({"error": {"type": "invalid_request_error", "code": "rate_limit",
            "message": "Too many requests"}});
        for (status, body) in [(429, &limited), (503, &Value::Null), (409, &Value::Null)] {
            assert!(
                matches!(refusal(status, body), ProviderError::Unavailable(_)),
                "{status}"
            );
        }
        // Our key: unavailable (an operator's matter), never shown as a
        // refusal of the user's request.
        assert!(matches!(
            refusal(401, &json!({"error": {"type": "invalid_request_error"}})),
            ProviderError::Unavailable(_)
        ));
    }

    #[test]
    fn only_succeeded_and_canceled_are_final() {
        assert_eq!(remote_status("succeeded"), RemoteStatus::Completed);
        assert_eq!(
            remote_status("canceled"),
            RemoteStatus::Failed("canceled".into())
        );
        for open in [
            "requires_payment_method",
            "requires_confirmation",
            "requires_action",
            "processing",
            "requires_capture",
        ] {
            assert_eq!(remote_status(open), RemoteStatus::Pending, "{open}");
        }
    }

    proptest::proptest! {
        /// Any bytes Stripe could send: parsing never panics and the
        /// error read from it stays bounded.
        #[test]
        fn arbitrary_answers_never_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(value) = answer::parse(&raw, &ANSWER_BOUNDS) {
                let said = refusal(400, &value).to_string();
                proptest::prop_assert!(said.len() < 2048 + 300);
            }
        }
    }
}
