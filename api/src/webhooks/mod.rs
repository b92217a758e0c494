//! `POST /webhooks/{provider}` (docs/API.md "Webhooks"): signed notices from
//! Stripe, Banxa, BCB Group and Fireblocks. Each provider's own signature
//! scheme is checked over the exact raw body before anything is read
//! ([`stripe`], [`banxa`], [`bcb`], [`fireblocks`] document theirs); a bad
//! or missing signature is 401 `invalid_signature` and changes nothing.
//! A verified notice is stored with its receipt and queued in one commit
//! ([`accept`]), and the provider answered `accepted` at once; the
//! applier ([`worker`]) applies it exactly once ([`process`]).
//!
//! Signing material: [`keys`]. The sandbox custody and payment providers
//! sign with the same schemes and deliver through [`delivery`].

pub mod accept;
pub mod banxa;
pub mod bcb;
pub mod delivery;
pub mod fireblocks;
pub mod incoming;
pub mod jwks;
pub mod keys;
pub mod notice;
pub mod process;
pub mod provider;
pub mod refund;
pub mod signing;
pub mod stripe;
pub mod sumsub;
pub mod worker;

use crate::config::ApiConfig;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::ApiPath;
use crate::http::RawBody;
use crate::money::Ledger;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use keys::{KeyError, WebhookKeys};
use notice::{Notice, PayloadError, Provider, SignatureError};
use process::WebhookAck;
use provider::WebhookProvider;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the webhook route uses: the keys it verifies with, money
/// movement (settlement), and custody (deposit addresses).
#[derive(Clone)]
pub struct WebhooksState {
    pub keys: Arc<WebhookKeys>,
    pub ledger: Ledger,
    pub custody: Arc<crate::providers::custody::CustodyAccess>,
}

/// Where sandbox providers send their webhooks: the configured
/// `webhook_base_url`, else this process's own address.
pub fn callback_base(config: &ApiConfig, self_url: &str) -> String {
    if config.webhook_base_url.is_empty() {
        self_url.to_owned()
    } else {
        config.webhook_base_url.clone()
    }
}

/// Every webhook provider, in path order: adding one is its file (a
/// [`WebhookProvider`]) and its line here (and its `mod` line above).
pub static PROVIDERS: &[&dyn WebhookProvider] = &[
    &stripe::PROVIDER,
    &banxa::PROVIDER,
    &bcb::PROVIDER,
    &fireblocks::Fireblocks,
    &sumsub::Sumsub,
];

/// Checks `provider`'s signature of `body`. The outer error is a key that
/// could not be loaded (ours, not the sender's fault).
pub async fn verify(
    keys: &WebhookKeys,
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Result<(), SignatureError>, KeyError> {
    let now = signing::unix_now();
    provider.get().verify(keys, headers, body, now).await
}

/// Reads a verified body of `provider`.
pub fn read(provider: Provider, body: &[u8]) -> Result<Notice, PayloadError> {
    provider.get().read(body)
}

/// The registry's names, as in "a, b and c".
fn known_providers() -> String {
    let names: Vec<&str> = Provider::all().map(Provider::as_str).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// Receives a provider's signed webhook.
#[utoipa::path(post, path = "/webhooks/{provider}", tag = "webhooks",
    params(("provider" = String, Path, description = "`stripe`, `banxa`, `bcb`, `fireblocks` or `sumsub`")),
    request_body(content = Object, content_type = "application/json",
        description = "The provider's event, signed over the exact bytes: Stripe `Stripe-Signature: t=…,v1=…` (HMAC-SHA256 of `{t}.{body}`, 5-minute tolerance); Banxa `Authorization: Bearer {key}:{hex HMAC-SHA256 of \"POST\\n{path}\\n{nonce}\\n{body}\"}:{nonce}` (path: the registered webhook URL's; nonce: Unix seconds, milliseconds or microseconds, 5-minute tolerance); BCB `X-BCB-Signature: {hex HMAC-SHA256 of body}`; Fireblocks `Fireblocks-Webhook-Signature: {detached JWS, RS512, key from its JWKS}` or `Fireblocks-Signature: {base64 RSA-SHA512 of body}`; Sumsub `X-Payload-Digest: {hex HMAC-SHA256 or -SHA512 of body}` with `X-Payload-Digest-Alg`."),
    responses(
        (status = 200, description = "`accepted` (verified, stored and queued; applied shortly, exactly once, by the webhook applier: see the receipt's status) or `duplicate` (this delivery id was received before; nothing new stored)", body = WebhookAck),
        (status = 400, description = "`invalid_payload`", body = ErrorBody),
        (status = 401, description = "`invalid_signature`: nothing changed", body = ErrorBody),
        (status = 404, description = "`unknown_provider`", body = ErrorBody),
        (status = 422, description = "custody deposits: `invalid_payload` (from a payment provider), `missing_tx_hash` (a completed incoming deposit without `txHash`); nothing stored", body = ErrorBody),
        (status = 503, description = "`store_unavailable`: nothing stored; deliver again", body = ErrorBody),
    ))]
pub async fn receive(
    State(state): State<WebhooksState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<WebhookAck>> {
    let provider = Provider::parse(&provider).ok_or_else(|| {
        ApiError::not_found(
            "unknown_provider",
            format!("webhooks are for {}", known_providers()),
        )
    })?;
    verify(&state.keys, provider, &headers, &body)
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            tracing::warn!(provider = provider.as_str(), reason = %e, "webhook signature refused");
            metrics::counter!(VERIFICATION_FAILURES_TOTAL, "provider" => provider.as_str())
                .increment(1);
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "the webhook signature is missing or does not verify",
            )
        })?;
    let notice = read(provider, &body)
        .map_err(|e| ApiError::bad_request("invalid_payload", e.to_string()))?;
    incoming::check_shape(provider, &notice)?;
    accept::accept(&state, provider, &notice).await.map(Json)
}

/// Counter: webhooks refused for a missing or bad signature, by
/// `provider` (docs/OPERATIONS.md, "Metrics").
pub const VERIFICATION_FAILURES_TOTAL: &str = "nax_webhook_verification_failures_total";

/// The routes of this module.
pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    WebhooksState: axum::extract::FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(receive))
}
