//! Test support for the real provider adapters (`api/tests/{banxa,stripe,
//! bcb,fireblocks}.rs`): what an adapter is built from when a test calls
//! it directly, and the payout every deposit-only adapter refuses.

use super::TestApi;
use api::config::ApiConfig;
use api::providers::ProviderContext;
use api::secrets::ProviderSecrets;
use api::webhooks::keys::WebhookKeys;
use feeds::Venue;
use serde_json::{json, Value};

/// The keys, secrets and data directory an adapter is built with.
pub struct AdapterParts {
    dir: tempfile::TempDir,
    keys: WebhookKeys,
    secrets: ProviderSecrets,
}

impl AdapterParts {
    /// The keys of `config` in a fresh data directory (its secrets plain
    /// values).
    pub async fn open(config: &ApiConfig) -> AdapterParts {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = ProviderSecrets::default();
        let keys = WebhookKeys::open(config, dir.path(), &secrets)
            .await
            .expect("keys");
        AdapterParts { dir, keys, secrets }
    }

    /// The context to build an adapter of `config` in.
    pub fn ctx<'a>(&'a self, config: &'a ApiConfig) -> ProviderContext<'a> {
        ProviderContext {
            config,
            data_dir: self.dir.path(),
            keys: &self.keys,
            secrets: &self.secrets,
            callback_base: "http://127.0.0.1:9",
        }
    }
}

impl TestApi {
    /// Credits `user` 100 USD and asks `provider` for a 5 USD payout: the
    /// adapter refuses at once, so the withdrawal is `failed` with the
    /// funds back.
    pub async fn assert_payout_refused(&self, user: &str, token: &str, provider: &str) {
        self.venue
            .credit(user, "USD", 100 * 100_000_000)
            .await
            .expect("credit");
        let (s, body, _) = self
            .post(
                "/fiat/withdraw",
                Some(token),
                json!({"currency": "USD", "amount": "5", "provider": provider,
                       "destination": "GB33BUKB20201555555555", "idempotency_key": "w1"}),
            )
            .await;
        assert_eq!((s, &body["status"]), (202, &json!("failed")), "{body}");
        assert_eq!(self.balance(token, "USD").await.0, "100.00000000");
    }
}

/// A provider server's webhook delivery, as `(status, word)`: the
/// answer's `status` (`accepted`, `duplicate`) or its error code.
pub fn ack(answer: Option<(u16, Value)>) -> (u16, String) {
    let (status, body) = answer.expect("a webhook was sent");
    let word = body["status"]
        .as_str()
        .or_else(|| body["error"]["code"].as_str())
        .unwrap_or_default()
        .to_owned();
    (status, word)
}
