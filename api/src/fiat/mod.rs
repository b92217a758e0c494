//! `/fiat` routes (docs/API.md "Routes"): deposits through a payment provider
//! (credited only when the provider's signed webhook confirms them),
//! payouts (debited at once, like crypto withdrawals) and their history,
//! over the [`PaymentProvider`] boundary (Stripe, Banxa, BCB Group;
//! sandboxes by default).

pub mod deposit;
pub mod handlers;
pub mod payout;
pub mod provider;
pub mod sandbox;
pub mod upstream;

pub use provider::{BankInstructions, FiatProvider, PaymentProvider, ProviderError};

use crate::config::ApiConfig;
use crate::resilience::Upstream;
use crate::state::Api;
use crate::webhooks::delivery::WebhookSender;
use crate::webhooks::keys::WebhookKeys;
use crate::webhooks::signing::WebhookSigner;
use sandbox::SandboxPaymentProvider;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Fiat currencies (the venue must also hold them to be accepted).
pub const FIAT_CURRENCIES: &[&str] = &["USD", "EUR", "GBP"];

/// Banxa merchant key the sandbox signs with (the HMAC secret is what
/// authenticates).
pub const SANDBOX_BANXA_API_KEY: &str = "nax-sandbox";

/// One provider and the breaker in front of it.
pub struct ProviderSlot {
    pub provider: Arc<dyn PaymentProvider>,
    /// Timeout, retry and breaker policy of this provider's calls.
    pub upstream: Upstream,
}

/// Fiat state: every provider.
pub struct Fiat {
    slots: HashMap<FiatProvider, ProviderSlot>,
}

impl Fiat {
    /// Sandbox providers that report after `fiat_confirm_delay_ms` through
    /// `{callback_base}/webhooks/{provider}`, signed with `keys`.
    pub fn sandbox(config: &ApiConfig, keys: &WebhookKeys, callback_base: &str) -> Fiat {
        let sender = WebhookSender::new(callback_base);
        let delay = Duration::from_millis(config.fiat_confirm_delay_ms);
        let slots = FiatProvider::ALL
            .into_iter()
            .map(|p| {
                let signer = match p {
                    FiatProvider::Stripe => WebhookSigner::Stripe(keys.stripe.clone()),
                    FiatProvider::Banxa => WebhookSigner::Banxa {
                        api_key: SANDBOX_BANXA_API_KEY.to_owned(),
                        secret: keys.banxa.clone(),
                    },
                    FiatProvider::Bcb => WebhookSigner::Bcb(keys.bcb.clone()),
                };
                let provider = SandboxPaymentProvider::new(p, signer, sender.clone(), delay);
                let slot = ProviderSlot {
                    provider: Arc::new(provider),
                    upstream: Upstream::new(p.as_str(), crate::resilience::policy(config)),
                };
                (p, slot)
            })
            .collect();
        Fiat { slots }
    }

    /// The slot of `provider` (every provider has one).
    pub fn slot(&self, provider: FiatProvider) -> &ProviderSlot {
        self.slots
            .get(&provider)
            .expect("invariant: Fiat is built with a slot for every FiatProvider")
    }
}

/// The routes of this module.
pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(handlers::deposit))
        .routes(routes!(handlers::withdraw))
        .routes(routes!(handlers::transactions))
}
