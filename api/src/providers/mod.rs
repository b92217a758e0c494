//! The outside services money and KYC depend on, each behind a trait with
//! one file per implementation, chosen by configuration
//! (docs/ARCHITECTURE.md):
//!
//! | kind | trait | setting | table |
//! |---|---|---|---|
//! | custody | [`custody::Custody`] | `custody_provider` | [`CUSTODY`] |
//! | payments | [`payment::PaymentProvider`] | `payment_provider` | [`PAYMENTS`] |
//! | KYC review | [`kyc::KycProvider`] | `kyc_provider` | [`KYC`] |
//!
//! Every kind defaults to its sandbox (`"sandbox"`). A fiat provider with
//! an adapter of its own is served by it once its settings are given,
//! the others by `payment_provider`'s implementation: Banxa
//! ([`payment_banxa`], `banxa_api_url`) and Stripe ([`payment_stripe`],
//! `stripe_api_url`). A real adapter is its
//! file, its `mod` line and one entry in its kind's table here, and the
//! setting naming it. An unknown name stops the start with an error
//! naming the setting and the known names. The webhooks those providers
//! send are [`crate::webhooks`]'s registry.

pub(crate) mod answer;
pub mod custody;
pub mod custody_fireblocks;
pub mod custody_sandbox;
pub mod kyc;
pub mod kyc_sandbox;
pub mod kyc_sumsub;
pub mod payment;
pub mod payment_banxa;
pub mod payment_bcb;
pub mod payment_sandbox;
pub mod payment_stripe;

use crate::config::ApiConfig;
use crate::webhooks::keys::{KeyError, WebhookKeys};
use payment::FiatProvider;
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

/// What a provider says about one of its transactions when asked
/// (reconciliation, docs/RECONCILIATION.md): its status by the provider's
/// reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteStatus {
    /// Not final yet.
    Pending,
    Completed,
    /// Final, with the provider's reason.
    Failed(String),
    /// The provider knows no transaction by that reference.
    NotFound,
}

impl RemoteStatus {
    /// True for `Completed` and `Failed`.
    pub fn is_final(&self) -> bool {
        matches!(self, RemoteStatus::Completed | RemoteStatus::Failed(_))
    }

    /// `pending`, `completed`, `failed` or `not_found`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RemoteStatus::Pending => "pending",
            RemoteStatus::Completed => "completed",
            RemoteStatus::Failed(_) => "failed",
            RemoteStatus::NotFound => "not_found",
        }
    }
}

/// What an implementation is built from.
pub struct ProviderContext<'a> {
    pub config: &'a ApiConfig,
    /// Where generated keys live (`<data_dir>/keys/`).
    pub data_dir: &'a Path,
    pub keys: &'a WebhookKeys,
    /// The settings' live values (Secrets Manager references resolved):
    /// an adapter reads one at each use, so a rotation needs no restart.
    pub secrets: &'a crate::secrets::ProviderSecrets,
    /// Where sandbox providers deliver their webhooks
    /// (`{callback_base}/webhooks/{provider}`).
    pub callback_base: &'a str,
}

/// One implementation of a provider kind: the name its setting takes and
/// how it is built.
pub struct Adapter<B> {
    pub name: &'static str,
    pub build: B,
}

/// Why the configured providers could not be built; the API does not
/// start.
#[derive(Debug, Error)]
pub enum SetupError {
    #[error("api.{setting} = {value:?} names no provider (known: {known})")]
    Unknown {
        setting: &'static str,
        value: String,
        known: String,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("api.{setting} must be set when {because}")]
    Missing {
        setting: &'static str,
        because: &'static str,
    },
    #[error("building an HTTP client: {0}")]
    Client(String),
}

/// The custody implementations `custody_provider` may name.
pub const CUSTODY: &[Adapter<custody::BuildCustody>] = &[
    Adapter {
        name: "sandbox",
        build: custody_sandbox::build,
    },
    Adapter {
        name: "fireblocks",
        build: custody_fireblocks::build,
    },
];

/// The payment implementations `payment_provider` may name.
pub const PAYMENTS: &[Adapter<payment::BuildPayments>] = &[Adapter {
    name: "sandbox",
    build: payment_sandbox::build,
}];

/// The KYC implementations `kyc_provider` may name.
pub const KYC: &[Adapter<kyc::BuildKyc>] = &[
    Adapter {
        name: "sandbox",
        build: kyc_sandbox::build,
    },
    Adapter {
        name: "sumsub",
        build: kyc_sumsub::build,
    },
];

/// The builder of the adapter `value` (setting `setting`) in `table`.
pub fn choose<B: Copy>(
    setting: &'static str,
    value: &str,
    table: &[Adapter<B>],
) -> Result<B, SetupError> {
    table
        .iter()
        .find(|a| a.name == value)
        .map(|a| a.build)
        .ok_or_else(|| SetupError::Unknown {
            setting,
            value: value.to_owned(),
            known: table.iter().map(|a| a.name).collect::<Vec<_>>().join(", "),
        })
}

/// The configured providers of every kind.
pub struct Providers {
    pub custody: Arc<dyn custody::Custody>,
    /// One per fiat provider, in registry order.
    pub payments: Vec<(FiatProvider, Arc<dyn payment::PaymentProvider>)>,
    pub kyc: Arc<dyn kyc::KycProvider>,
}

impl Providers {
    /// Builds the implementations the configuration names.
    pub fn build(ctx: &ProviderContext<'_>) -> Result<Providers, SetupError> {
        let config = ctx.config;
        let custody = choose("custody_provider", &config.custody_provider, CUSTODY)?;
        let payments = choose("payment_provider", &config.payment_provider, PAYMENTS)?;
        let kyc = choose("kyc_provider", &config.kyc_provider, KYC)?;
        Ok(Providers {
            custody: custody(ctx)?,
            payments: FiatProvider::all()
                .map(|p| {
                    // A provider with an adapter of its own, when configured.
                    if p.as_str() == "banxa" && !config.banxa_api_url.is_empty() {
                        return Ok((p, payment_banxa::build(ctx)?));
                    }
                    if p.as_str() == "stripe" && !config.stripe_api_url.is_empty() {
                        return Ok((p, payment_stripe::build(ctx)?));
                    }
                    if p.as_str() == "bcb" && !config.bcb_api_url.is_empty() {
                        return Ok((p, payment_bcb::build(ctx)?));
                    }
                    Ok((p, payments(ctx, p)?))
                })
                .collect::<Result<_, SetupError>>()?,
            kyc: kyc(ctx)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_a_clear_error() {
        let e = choose("payment_provider", "stripe-live", PAYMENTS)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(r#"api.payment_provider = "stripe-live" names no provider (known: sandbox)"#)
        );
        assert!(choose("kyc_provider", "sandbox", KYC).is_ok());
    }

    #[tokio::test]
    async fn the_defaults_are_the_sandboxes() {
        let dir = tempfile::tempdir().unwrap();
        let config = ApiConfig::default();
        let secrets = crate::secrets::ProviderSecrets::default();
        let keys = WebhookKeys::open(&config, dir.path(), &secrets)
            .await
            .unwrap();
        let ctx = ProviderContext {
            config: &config,
            data_dir: dir.path(),
            keys: &keys,
            secrets: &secrets,
            callback_base: "http://127.0.0.1:9",
        };
        let built = Providers::build(&ctx).unwrap();
        let names: Vec<&str> = built.payments.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["stripe", "banxa", "bcb"]);
        let bad = ApiConfig {
            custody_provider: "fireblocks-live".into(),
            ..ApiConfig::default()
        };
        let unknown = ProviderContext {
            config: &bad,
            ..ctx
        };
        assert!(matches!(
            Providers::build(&unknown),
            Err(SetupError::Unknown {
                setting: "custody_provider",
                ..
            })
        ));
        // A real adapter without its settings names the first missing one.
        let half = ApiConfig {
            custody_provider: "fireblocks".into(),
            ..ApiConfig::default()
        };
        let half = ProviderContext {
            config: &half,
            ..ctx
        };
        assert!(matches!(
            Providers::build(&half),
            Err(SetupError::Missing {
                setting: "fireblocks_api_url",
                ..
            })
        ));
    }
}
