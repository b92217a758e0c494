//! `/fiat` routes (docs/API.md "Routes"): deposits through a payment provider
//! (credited only when the provider's signed webhook confirms them),
//! payouts (debited at once, like crypto withdrawals) and their history,
//! over the [`PaymentProvider`] boundary (Stripe, Banxa, BCB Group;
//! sandboxes by default).

pub mod deposit;
pub mod handlers;
pub mod payout;
pub mod upstream;

use crate::providers::payment::{FiatProvider, PaymentProvider};

use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::money::Ledger;
use crate::resilience::Upstream;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Fiat currencies (the venue must also hold them to be accepted).
pub const FIAT_CURRENCIES: &[&str] = &["USD", "EUR", "GBP"];

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
    /// The configured `providers` (one per [`FiatProvider`]), each behind
    /// its own breaker.
    pub fn new(
        config: &ApiConfig,
        providers: Vec<(FiatProvider, Arc<dyn PaymentProvider>)>,
    ) -> Fiat {
        let slots = providers
            .into_iter()
            .map(|(p, provider)| {
                let upstream = Upstream::new(p.as_str(), crate::resilience::policy(config));
                (p, ProviderSlot { provider, upstream })
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

    /// Every provider's breaker, in registry order (for `GET /ready`).
    pub fn upstreams(&self) -> impl Iterator<Item = &Upstream> {
        FiatProvider::all().filter_map(|p| self.slots.get(&p).map(|s| &s.upstream))
    }
}

/// What the fiat routes use: money movement and the payment providers.
#[derive(Clone)]
pub struct FiatState {
    pub ledger: Ledger,
    pub fiat: Arc<Fiat>,
}

/// The routes of this module.
pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FiatState: axum::extract::FromRef<S>,
    crate::auth::AuthUser: axum::extract::FromRequestParts<S, Rejection = ApiError>,
{
    OpenApiRouter::new()
        .routes(routes!(handlers::deposit))
        .routes(routes!(handlers::withdraw))
        .routes(routes!(handlers::transactions))
}
