//! `/wallets` routes (docs/API.md "Routes"): balances, deposit addresses,
//! crypto withdrawals and the deposit/withdrawal history, over the
//! [`Custody`] boundary (Fireblocks in production, [`SandboxCustody`] by
//! default). The money-moving pieces here ([`outflow`], [`settle`],
//! [`idempotency`], [`amount`], [`movement`]) are shared with the fiat
//! routes and the webhooks.

pub mod address;
pub mod amount;
pub mod chain;
pub mod custody;
pub mod handlers;
pub mod history;
pub mod idempotency;
pub mod movement;
pub mod outflow;
pub mod settle;
pub mod upstream;

pub use custody::{Custody, CustodyError, SandboxCustody};

use crate::config::ApiConfig;
use crate::resilience::Upstream;
use crate::state::Api;
use crate::webhooks::delivery::WebhookSender;
use crate::webhooks::keys::{self, KeyError, WebhookKeys};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Wallet state: the custody and the breaker in front of it.
pub struct Wallets {
    pub custody: Arc<dyn Custody>,
    /// Timeout, retry and breaker policy of custody calls.
    pub custody_upstream: Upstream,
}

impl Wallets {
    /// The default wallets: a [`SandboxCustody`] whose address key lives in
    /// `<data_dir>/keys/` and whose withdrawals complete after
    /// `fiat_confirm_delay_ms` through `{callback_base}/webhooks/fireblocks`.
    pub fn sandbox(
        config: &ApiConfig,
        data_dir: &Path,
        keys: &WebhookKeys,
        callback_base: &str,
    ) -> Result<Wallets, KeyError> {
        let dir = data_dir.join(keys::KEYS_DIR);
        let address_key = keys::load_or_create(&dir, SandboxCustody::ADDRESS_KEY_FILE, || {
            Ok(hex::encode(rand::random::<[u8; 32]>()))
        })?;
        let custody = SandboxCustody::new(
            crate::secret::Secret::new(address_key),
            keys.sandbox_fireblocks.clone(),
            WebhookSender::new(callback_base),
            Duration::from_millis(config.fiat_confirm_delay_ms),
        );
        Ok(Wallets {
            custody: Arc::new(custody),
            custody_upstream: Upstream::new("custody", crate::resilience::policy(config)),
        })
    }
}

/// The routes of this module.
pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(handlers::balances))
        .routes(routes!(handlers::deposit_address))
        .routes(routes!(handlers::withdraw))
        .routes(routes!(handlers::transactions))
}
