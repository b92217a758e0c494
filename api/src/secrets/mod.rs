//! Provider credentials that may live in AWS Secrets Manager and change
//! while the service runs (docs/OPERATIONS.md, "Secret rotation").
//!
//! A provider setting ([`SETTINGS`]) holds either its value (from the
//! environment, a file or TOML: unchanged behaviour) or a reference,
//! `aws-sm:<secret-id>` or `aws-sm:<secret-id>#<json-key>` (the key of a
//! JSON `SecretString`, as AWS rotation templates store them). At start
//! every reference is fetched ([`ProviderSecrets::resolve`]; a secret
//! that cannot be read stops the start, naming the setting and the secret
//! id), then refreshed every `secrets_ttl_ms` by one background task
//! ([`refresh`]). The adapters hold a [`LiveSecret`] and read it at each
//! use, so a rotated value is used within one TTL, without a restart.
//!
//! - `reference.rs`: the `aws-sm:` syntax, checked at config validation.
//! - `live.rs`: [`LiveSecret`], and [`Derived`] for what is parsed from one.
//! - `fetch.rs`: one bounded `GetSecretValue`.
//! - `refresh.rs`: [`ProviderSecrets`] and the refresh loop.
//!
//! No value is ever logged: errors name the setting and the secret id.

mod fetch;
mod live;
mod reference;
mod refresh;

pub use fetch::{SecretError, MAX_SECRET_BYTES};
pub use live::{Derived, LiveSecret, ROTATION_GRACE};
pub use reference::{Reference, ReferenceError, PREFIX};
pub use refresh::{ProviderSecrets, REFRESH_FAILURES};

use crate::config::ApiConfig;
use crate::secret::Secret;

/// A setting that may hold a secret, by its TOML path (`api.…`).
pub type SettingOf = (&'static str, fn(&ApiConfig) -> Option<&Secret>);

/// The provider credentials that may be `aws-sm:` references (every other
/// secret setting refuses one: see [`NOT_REFERENCES`]).
pub const SETTINGS: &[SettingOf] = &[
    ("api.stripe_api_key", |c| c.stripe_api_key.as_ref()),
    ("api.stripe_webhook_secret", |c| {
        c.stripe_webhook_secret.as_ref()
    }),
    ("api.banxa_api_key", |c| c.banxa_api_key.as_ref()),
    ("api.banxa_webhook_secret", |c| {
        c.banxa_webhook_secret.as_ref()
    }),
    ("api.bcb_client_secret", |c| c.bcb_client_secret.as_ref()),
    ("api.bcb_webhook_secret", |c| c.bcb_webhook_secret.as_ref()),
    ("api.sumsub_app_token", |c| c.sumsub_app_token.as_ref()),
    ("api.sumsub_secret_key", |c| c.sumsub_secret_key.as_ref()),
    ("api.sumsub_webhook_secret", |c| {
        c.sumsub_webhook_secret.as_ref()
    }),
    ("api.fireblocks_api_key", |c| c.fireblocks_api_key.as_ref()),
    ("api.fireblocks_api_secret", |c| {
        c.fireblocks_api_secret.as_ref()
    }),
];

/// Secret settings read once, before Secrets Manager can be reached or
/// where a change needs a restart anyway: a reference there is refused.
pub const NOT_REFERENCES: &[SettingOf] = &[
    ("api.jwt_secret", |c| c.jwt_secret.as_ref()),
    ("api.redis_url", |c| c.redis_url.as_ref()),
    ("api.aws_secret_access_key", |c| {
        c.aws_secret_access_key.as_ref()
    }),
];

/// Checks every secret setting of `config`: a malformed reference, or a
/// reference where none is read, is an error naming the setting (config
/// validation calls this).
pub fn check_references(config: &ApiConfig) -> Result<(), (&'static str, String)> {
    for (setting, get) in SETTINGS {
        if let Some(Err(e)) = get(config).and_then(|s| Reference::parse(s.expose())) {
            return Err((setting, e.to_string()));
        }
    }
    for (setting, get) in NOT_REFERENCES {
        if get(config).is_some_and(|s| s.expose().starts_with(PREFIX)) {
            return Err((
                setting,
                "cannot be an aws-sm: reference (only provider credentials can)".to_owned(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_or_misplaced_references_name_their_setting() {
        let good = ApiConfig {
            stripe_api_key: Some(Secret::new("aws-sm:nax/stripe#api_key")),
            banxa_api_key: Some(Secret::new("plain-value")),
            ..ApiConfig::default()
        };
        assert_eq!(check_references(&good), Ok(()));
        let bad = ApiConfig {
            bcb_client_secret: Some(Secret::new("aws-sm:")),
            ..ApiConfig::default()
        };
        assert_eq!(
            check_references(&bad).map_err(|e| e.0),
            Err("api.bcb_client_secret")
        );
        let misplaced = ApiConfig {
            jwt_secret: Some(Secret::new("aws-sm:nax/jwt")),
            ..ApiConfig::default()
        };
        assert_eq!(
            check_references(&misplaced).map_err(|e| e.0),
            Err("api.jwt_secret")
        );
    }
}
