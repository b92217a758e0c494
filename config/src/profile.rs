//! [`Profile`]: whether stand-ins are allowed. `development` (the
//! default) runs with every embedded default and sandbox; `production`
//! refuses to start while any part is a stand-in ([`Config::stand_ins`]),
//! so a deployment never runs a sandbox without saying so
//! (docs/ARCHITECTURE.md, "Configuration").

use super::{Config, VenueKind};
use api::config::StoreKind;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// What the configuration is for (`profile`, `NAX_PROFILE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Stand-ins allowed: the sandbox venue and providers, keys generated
    /// into the data directory, the embedded store and event log.
    #[default]
    Development,
    /// No stand-in: the start fails naming each one.
    Production,
}

impl Config {
    /// The parts of this configuration that are stand-ins for the real
    /// thing, each with the setting that replaces it; empty when none is.
    pub fn stand_ins(&self) -> Vec<String> {
        let api = &self.api;
        let mut out = Vec::new();
        let mut flag = |standing_in: bool, what: &str| {
            if standing_in {
                out.push(what.to_owned());
            }
        };
        flag(
            self.venue.kind == VenueKind::Sandbox && self.venues.is_empty(),
            "the venue is the in-process sandbox (venue.kind = \"graphql\", NAX_VENUE)",
        );
        // Stripe and Banxa have adapters of their own (their API URLs);
        // the other fiat providers are served by api.payment_provider.
        let own = [
            ("stripe", &api.stripe_api_url, "api.stripe_api_url"),
            ("banxa", &api.banxa_api_url, "api.banxa_api_url"),
            ("bcb", &api.bcb_api_url, "api.bcb_api_url"),
        ];
        let sandboxed: Vec<&str> = ["stripe", "banxa", "bcb"]
            .into_iter()
            .filter(|p| {
                !own.iter()
                    .any(|(name, url, _)| name == p && !url.is_empty())
            })
            .collect();
        let hints: String = own
            .iter()
            .filter(|(_, url, _)| url.is_empty())
            .map(|(name, _, key)| format!("; {key} for {name}"))
            .collect();
        flag(
            api.payment_provider == "sandbox" && !sandboxed.is_empty(),
            &format!(
                "the payment provider is the sandbox for {} (api.payment_provider{hints})",
                sandboxed.join(", "),
            ),
        );
        flag(
            api.custody_provider == "sandbox",
            "the custody provider is the sandbox (api.custody_provider)",
        );
        flag(
            api.kyc_provider == "sandbox",
            "the KYC provider is the sandbox (api.kyc_provider)",
        );
        flag(
            api.jwt_secret.is_none(),
            "the access-token key would be generated (api.jwt_secret, NAX_JWT_SECRET)",
        );
        flag(
            api.kms_key_id.is_empty(),
            "the data key would be a generated file (api.kms_key_id, NAX_KMS_KEY_ID)",
        );
        for (secret, key) in [
            (&api.stripe_webhook_secret, "api.stripe_webhook_secret"),
            (&api.banxa_webhook_secret, "api.banxa_webhook_secret"),
            (&api.bcb_webhook_secret, "api.bcb_webhook_secret"),
        ] {
            flag(
                secret.is_none(),
                &format!("a webhook signing secret would be generated ({key})"),
            );
        }
        flag(
            api.kyc_provider == "sumsub" && api.sumsub_webhook_secret.is_none(),
            "a webhook signing secret would be generated (api.sumsub_webhook_secret)",
        );
        flag(
            api.fireblocks_public_key_file.is_none() && api.fireblocks_jwks_url.is_empty(),
            "the Fireblocks webhook key would be generated (api.fireblocks_jwks_url or \
             api.fireblocks_public_key_file)",
        );
        flag(
            api.store == StoreKind::Embedded,
            "the store is the embedded file (api.store = \"dynamodb\", NAX_STORE)",
        );
        flag(
            !api.events_to_sqs,
            "events go to the embedded log (api.events_to_sqs, NAX_EVENTS_TO_SQS)",
        );
        out
    }
}
