//! Test support for the wallet, fiat and webhook routes: a server whose
//! sandbox custody key is pre-made (a 2048-bit RSA key takes seconds to
//! generate in a debug build), verified users, balances, signed webhooks.

use super::{test_config, TestApi};
use api::store::Store;
use api::webhooks::signing::WebhookSigner;
use api::ApiConfig;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A small RSA key, made once per test binary, in PKCS#8 PEM.
fn fireblocks_test_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 1024).expect("rsa key");
        rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, rsa::pkcs8::LineEnding::LF)
            .expect("pem")
            .to_string()
    })
}

/// [`start_money_with`] the test config.
pub async fn start_money() -> TestApi {
    start_money_with(test_config()).await
}

/// A server whose data directory already holds the sandbox custody key.
pub async fn start_money_with(config: ApiConfig) -> TestApi {
    super::start_in(config, dir_with_custody_key()).await
}

/// [`start_money_with`] on `store` (a DynamoDB store, say) instead of an
/// embedded store in the data directory.
pub async fn start_money_on(config: ApiConfig, store: Arc<dyn Store>) -> TestApi {
    super::start_on(config, dir_with_custody_key(), store).await
}

/// [`start_money_with`] `config` on DynamoDB tables of the test's own
/// (a random prefix) on the shared moto (`NAX_TEST_MOTO_PORT`).
pub async fn start_money_on_dynamodb(config: ApiConfig) -> TestApi {
    let store = dynamodb_tables(&random_prefix()).await;
    start_money_on(config, Arc::new(store) as Arc<dyn Store>).await
}

/// A table or queue prefix of a test's own.
pub fn random_prefix() -> String {
    format!("t{}-", uuid::Uuid::new_v4().simple())
}

/// The DynamoDB store on the tables under `prefix` on the shared moto
/// (`NAX_TEST_MOTO_PORT`), made when missing.
pub async fn dynamodb_tables(prefix: &str) -> api::store::dynamo::DynamoStore {
    use api::store::dynamo::{DynamoConfig, DynamoStore};
    let store = DynamoStore::new(&DynamoConfig {
        endpoint: Some(testkit::shared_moto_endpoint()),
        region: "us-east-1".to_owned(),
        table_prefix: prefix.to_owned(),
        static_credentials: Some(api::aws::StaticCredentials::test()),
    })
    .await;
    store.ensure_tables().await.expect("create tables on moto");
    store
}

/// [`start_money_with`], publishing events to SQS as `config` says
/// (`events_to_sqs`; the queues are made first).
pub async fn start_money_on_sqs(config: ApiConfig) -> TestApi {
    let dir = dir_with_custody_key();
    let store = Arc::new(api::store::embedded::EmbeddedStore::open(dir.path()).expect("store"));
    let publisher = sqs_publisher(&config).await;
    super::start_publishing(config, dir, store, publisher).await
}

/// [`start_money_on`] `store` (DynamoDB, say), publishing events to SQS
/// as `config` says (`events_to_sqs`; the queues are made first).
pub async fn start_money_on_sqs_and(config: ApiConfig, store: Arc<dyn Store>) -> TestApi {
    let publisher = sqs_publisher(&config).await;
    super::start_publishing(config, dir_with_custody_key(), store, publisher).await
}

/// The SQS publisher `config` names, its queues made first.
async fn sqs_publisher(config: &ApiConfig) -> Arc<dyn api::events::EventPublisher> {
    let sqs = api::events::sqs::SqsConfig::from_api(config);
    let client = api::events::sqs::SqsPublisher::client(&sqs).await;
    api::events::sqs::SqsPublisher::ensure_queues(&client, &sqs.queue_prefix)
        .await
        .expect("queues on moto");
    Arc::new(api::events::sqs::SqsPublisher::new(&sqs).await)
}

/// A temporary data directory holding the sandbox custody key.
fn dir_with_custody_key() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join(api::webhooks::keys::KEYS_DIR);
    std::fs::create_dir_all(&keys).expect("keys dir");
    std::fs::write(
        keys.join(api::webhooks::keys::FIREBLOCKS_SANDBOX_KEY_FILE),
        fireblocks_test_pem(),
    )
    .expect("key file");
    dir
}

/// The test config with sandbox providers that take `ms` to report.
pub fn config_with_delay(ms: u64) -> ApiConfig {
    ApiConfig {
        fiat_confirm_delay_ms: ms,
        ..test_config()
    }
}

impl TestApi {
    /// Signs up `email` and has its KYC verified: (user_id, access token).
    pub async fn verified_user(&self, email: &str) -> (String, String) {
        let (user_id, access, _) = self.signup(email).await;
        self.verify_kyc(&access).await;
        (user_id, access)
    }

    /// `(available, locked, total)` of `asset` from `GET /wallets/balances`.
    pub async fn balance(&self, token: &str, asset: &str) -> (String, String, String) {
        let (s, body, _) = self.get("/wallets/balances", Some(token)).await;
        assert_eq!(s, 200, "balances: {body}");
        let row = body
            .as_array()
            .expect("balances array")
            .iter()
            .find(|b| b["asset"] == asset)
            .unwrap_or_else(|| panic!("no {asset} in {body}"));
        let text = |k: &str| row[k].as_str().expect("decimal string").to_owned();
        (text("available"), text("locked"), text("total"))
    }

    /// POSTs raw bytes to `/webhooks/{provider}` with `headers`.
    pub async fn post_webhook(
        &self,
        provider: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url(&format!("/webhooks/{provider}")))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.expect("webhook request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The signer a provider of this server signs with.
    pub async fn signer(&self, provider: &str) -> WebhookSigner {
        let keys = &self.api.webhook_keys;
        match provider {
            "stripe" => WebhookSigner::Stripe(keys.stripe.current()),
            "banxa" => WebhookSigner::Banxa {
                api_key: "test-merchant".into(),
                secret: keys.banxa.current(),
                path: keys.signed_path("banxa"),
            },
            "bcb" => WebhookSigner::Bcb(keys.bcb.current()),
            "sumsub" => {
                WebhookSigner::Sumsub(keys.hmac("sumsub").expect("sumsub secret").current())
            }
            "fireblocks" => WebhookSigner::Fireblocks(Box::new(
                keys.sandbox_fireblocks
                    .get()
                    .await
                    .expect("sandbox key")
                    .clone(),
            )),
            other => panic!("no signer for {other}"),
        }
    }

    /// POSTs `body` to `/webhooks/{provider}`, correctly signed.
    pub async fn signed_webhook(&self, provider: &str, body: &[u8]) -> (u16, Value) {
        let headers = self.signer(provider).await.headers(body);
        self.post_webhook(provider, &headers, body).await
    }

    /// The transaction `id` in the list at `list_path` (`/wallets/transactions`
    /// or `/fiat/transactions`), if listed.
    pub async fn listed(&self, list_path: &str, token: &str, id: &str) -> Option<Value> {
        let (s, body, _) = self
            .get(&format!("{list_path}?limit=100"), Some(token))
            .await;
        assert_eq!(s, 200, "{list_path}: {body}");
        body["transactions"]
            .as_array()
            .expect("transactions")
            .iter()
            .find(|t| t["transaction_id"] == id)
            .cloned()
    }

    /// Waits (up to 30 s, polling gently: the routes are rate limited)
    /// until transaction `id` has `status` in `list_path`.
    pub async fn wait_status(&self, list_path: &str, token: &str, id: &str, status: &str) -> Value {
        for _ in 0..300 {
            if let Some(t) = self.listed(list_path, token, id).await {
                if t["status"] == status {
                    return t;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{id} never reached {status}: {:?}",
            self.listed(list_path, token, id).await
        );
    }

    /// Types of the events logged so far.
    pub fn event_types(&self) -> Vec<String> {
        self.events().into_iter().map(|e| e.event_type).collect()
    }
}
