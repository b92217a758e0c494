//! Provider secrets from AWS Secrets Manager (`aws-sm:` references,
//! `api::secrets`) against a real `moto_server` and the Stripe-shaped
//! server of `testkit::stripe`: references resolve at start (whole and by
//! JSON key), a missing secret stops the start naming it and no value, a
//! rotation reaches the Stripe adapter within one TTL without a restart,
//! webhook verifiers accept the previous secret for the grace period only,
//! and a failed refresh keeps the last value and is counted. Every log
//! line written meanwhile (TRACE, every target) is checked for values.
//!
//! The shared moto comes from `scripts/test.sh` (`NAX_TEST_MOTO_PORT`);
//! tests fail loudly when it is missing, they never skip.

use crate::common;

use api::config::ApiConfig;
use api::secret::Secret;
use api::secrets::{ProviderSecrets, REFRESH_FAILURES};
use api::webhooks::keys::WebhookKeys;
use api::webhooks::provider::WebhookProvider;
use api::webhooks::stripe;
use aws_sdk_secretsmanager::Client;
use axum::http::HeaderMap;
use common::money::{config_with_delay, start_money_with};
use serde_json::json;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use testkit::stripe::{StripeConfig, StripeServer};

/// Every value a test puts in Secrets Manager: none may be logged.
const VALUES: &[&str] = &[
    "sk_test_whole_value_1",
    "sk_test_json_value_2",
    "whsec_json_value_3",
    "sk_test_rotation_old",
    "sk_test_rotation_new",
    "whsec_rotation_old",
    "whsec_rotation_new",
    "whsec_grace_old",
    "whsec_grace_new",
    "sumsub_refresh_value",
];

/// The log of this test binary (TRACE, every target), kept in memory.
fn log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        buffer
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Fails when any of [`VALUES`] was logged; returns the log.
fn assert_no_value_logged() -> String {
    let text = String::from_utf8_lossy(&log().lock().unwrap()).into_owned();
    for value in VALUES {
        assert!(!text.contains(value), "{value} was logged");
    }
    text
}

/// The Prometheus text of this test binary's metrics.
fn metrics() -> String {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .expect("one recorder")
        })
        .render()
}

/// Moto's Secrets Manager, with its test credentials.
async fn moto() -> Client {
    let endpoint = testkit::shared_moto_endpoint();
    let creds = api::aws::StaticCredentials::test();
    Client::new(&api::aws::sdk_config("us-east-1", Some(&endpoint), Some(&creds)).await)
}

/// A secret of its own for each test: `nax-test/{name}-{random}`.
async fn create(client: &Client, name: &str, value: &str) -> String {
    let id = format!("nax-test/{name}-{}", uuid::Uuid::new_v4().simple());
    let made = client.create_secret().name(&id).secret_string(value);
    made.send().await.expect("CreateSecret on moto");
    id
}

async fn put(client: &Client, id: &str, value: &str) {
    let put = client.put_secret_value().secret_id(id).secret_string(value);
    put.send().await.expect("PutSecretValue on moto");
}

/// The API config reading Secrets Manager on moto, refreshing every 200 ms.
fn config() -> ApiConfig {
    log();
    ApiConfig {
        secrets_endpoint: testkit::shared_moto_endpoint(),
        secrets_ttl_ms: 200,
        aws_access_key_id: "test".into(),
        aws_secret_access_key: Some(Secret::new("test")),
        // The payment sandbox (serving the other providers) never reports.
        ..config_with_delay(600_000)
    }
}

/// Waits (up to 10 s) until `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn reference(id: &str, key: Option<&str>) -> Option<Secret> {
    let key = key.map(|k| format!("#{k}")).unwrap_or_default();
    Some(Secret::new(format!("aws-sm:{id}{key}")))
}

#[tokio::test]
async fn references_resolve_at_start_whole_and_by_json_key_and_plain_values_stay() {
    let client = moto().await;
    let whole = create(&client, "whole", "sk_test_whole_value_1").await;
    let json = json!({"api_key": "sk_test_json_value_2", "webhook": "whsec_json_value_3"});
    let keyed = create(&client, "keyed", &json.to_string()).await;
    let config = ApiConfig {
        stripe_api_key: reference(&whole, None),
        banxa_api_key: reference(&keyed, Some("api_key")),
        bcb_webhook_secret: reference(&keyed, Some("webhook")),
        sumsub_app_token: Some(Secret::new("plain-app-token")),
        ..config()
    };
    let secrets = ProviderSecrets::resolve(&config).await.expect("resolved");
    let value = |s: &Option<Secret>| secrets.live(s.as_ref().unwrap()).current();
    assert_eq!(
        value(&config.stripe_api_key).expose(),
        "sk_test_whole_value_1"
    );
    assert_eq!(
        value(&config.banxa_api_key).expose(),
        "sk_test_json_value_2"
    );
    assert_eq!(
        value(&config.bcb_webhook_secret).expose(),
        "whsec_json_value_3"
    );
    assert_eq!(value(&config.sumsub_app_token).expose(), "plain-app-token");
    let live = secrets.live(config.banxa_api_key.as_ref().unwrap());
    assert_eq!(format!("{live:?}"), "<redacted>");
    // A webhook secret that is a reference is what the verifier holds.
    let dir = tempfile::tempdir().unwrap();
    let keys = WebhookKeys::open(&config, dir.path(), &secrets)
        .await
        .unwrap();
    assert_eq!(keys.bcb.current().expose(), "whsec_json_value_3");
    assert_no_value_logged();
}

#[tokio::test]
async fn a_missing_secret_or_key_stops_the_start_naming_it_and_no_value() {
    let client = moto().await;
    let there = create(&client, "there", r#"{"api_key":"sk_test_json_value_2"}"#).await;
    let missing = format!("nax-test/missing-{}", uuid::Uuid::new_v4().simple());
    let server = StripeServer::start(StripeConfig::default()).await;
    let config = ApiConfig {
        stripe_api_url: server.url(),
        stripe_api_key: reference(&there, Some("api_key")),
        stripe_webhook_secret: reference(&missing, None),
        ..config()
    };
    let e = start_error(config.clone()).await;
    assert!(e.contains("api.stripe_webhook_secret"), "{e}");
    assert!(e.contains(&missing), "{e}");
    assert!(!e.contains("sk_test_json_value_2"), "{e}");
    // A key the JSON lacks: named too, without the JSON's values.
    let config = ApiConfig {
        stripe_webhook_secret: reference(&there, Some("webhook")),
        ..config
    };
    let e = start_error(config).await;
    assert!(e.contains("api.stripe_webhook_secret"), "{e}");
    assert!(e.contains(&there) && e.contains("\"webhook\""), "{e}");
    assert!(!e.contains("sk_test_json_value_2"), "{e}");
    assert_no_value_logged();
}

/// The error `Api::start` stops with, with its causes.
async fn start_error(config: ApiConfig) -> String {
    use api::{Api, ApiParts};
    let dir = tempfile::tempdir().unwrap();
    let store = api::store::embedded::EmbeddedStore::open(dir.path()).unwrap();
    let log = api::events::log::EventLog::open(dir.path()).unwrap();
    let venue = feeds::SandboxVenue::start(feeds::SandboxConfig::default()).unwrap();
    let parts = ApiParts {
        config,
        data_dir: dir.path().to_path_buf(),
        store: Arc::new(store),
        publisher: Arc::new(log),
        venue: Arc::new(venue),
        self_url: "http://127.0.0.1:9".into(),
    };
    match Api::start(parts).await {
        Ok(_) => panic!("the API started without its secret"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn a_rotated_stripe_key_is_used_within_one_ttl_without_a_restart() {
    let client = moto().await;
    let old = json!({"api_key": "sk_test_rotation_old", "webhook": "whsec_rotation_old"});
    let id = create(&client, "stripe", &old.to_string()).await;
    let server = StripeServer::start(StripeConfig {
        secret_key: "sk_test_rotation_old".into(),
        // Stripe goes on signing with the old endpoint secret for a while.
        webhook_secret: "whsec_rotation_old".into(),
        api_version: api::providers::payment_stripe::API_VERSION.into(),
        webhook_url: None,
    })
    .await;
    let config = ApiConfig {
        stripe_api_url: server.url(),
        stripe_api_key: reference(&id, Some("api_key")),
        stripe_webhook_secret: reference(&id, Some("webhook")),
        ..config()
    };
    let t = start_money_with(config).await;
    server.set_webhook_url(&format!("http://{}/webhooks/stripe", t.addr));
    let (_, token) = t.verified_user("rotation@example.com").await;
    let deposit = |key: &str| json!({"currency": "USD", "amount": "10", "provider": "stripe", "idempotency_key": key});
    let (s, body, _) = t.post("/fiat/deposit", Some(&token), deposit("r1")).await;
    assert_eq!(s, 201, "{body}");

    // The key is rolled: the new one in Secrets Manager, the old refused.
    let new = json!({"api_key": "sk_test_rotation_new", "webhook": "whsec_rotation_new"});
    put(&client, &id, &new.to_string()).await;
    server.set_secret_key("sk_test_rotation_new");
    // A refresh reads the secret once and sets the API key, then the
    // webhook secret (the order of `api::secrets::SETTINGS`): once the
    // latter shows, both are in. (When each setting was read on its own, a
    // put between the two reads left the old key for one more TTL.)
    let keys = t.api.webhook_keys.clone();
    until("the refresh", || {
        keys.stripe.current().expose() == "whsec_rotation_new"
    })
    .await;
    let (s, body, _) = t.post("/fiat/deposit", Some(&token), deposit("r2")).await;
    assert_eq!(s, 201, "{body}");
    let intents = server.intents();
    assert_eq!(intents.len(), 2, "{intents:?}");
    // Its webhook, signed with the previous secret, is still accepted.
    let pi = intents[1]["id"].as_str().unwrap().to_owned();
    let (status, _) = common::adapters::ack(server.succeed(&pi).await);
    assert_eq!(status, 200);
    let text = assert_no_value_logged();
    assert!(text.contains("secret rotated"), "no rotation logged");
}

/// A Stripe delivery of `body` signed with `secret` now, as headers.
fn stripe_headers(secret: &str, body: &[u8], now: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let signature = stripe::sign(&Secret::new(secret), now, body);
    headers.insert(stripe::HEADER, signature.parse().unwrap());
    headers
}

#[tokio::test]
async fn webhooks_verify_with_the_previous_secret_for_the_grace_period_only() {
    let client = moto().await;
    let id = create(&client, "grace", "whsec_grace_old").await;
    let config = ApiConfig {
        stripe_webhook_secret: reference(&id, None),
        secrets_ttl_ms: 100,
        ..config()
    };
    let grace = Duration::from_millis(1500);
    let secrets = ProviderSecrets::resolve_with_grace(&config, grace)
        .await
        .unwrap();
    let refresh = tokio::spawn(secrets.refresh_task().expect("a reference to refresh"));
    let dir = tempfile::tempdir().unwrap();
    let keys = WebhookKeys::open(&config, dir.path(), &secrets)
        .await
        .unwrap();
    let body = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    let verify = |secret: &str| {
        let now = chrono::Utc::now().timestamp();
        let headers = stripe_headers(secret, body, now);
        let keys = &keys;
        async move {
            let verified = stripe::PROVIDER.verify(keys, &headers, body, now).await;
            verified.expect("keys").is_ok()
        }
    };
    assert!(verify("whsec_grace_old").await);
    assert!(!verify("whsec_grace_new").await, "not yet the new one");

    put(&client, &id, "whsec_grace_new").await;
    let rotated = Instant::now();
    until("the refresh", || {
        keys.stripe.current().expose() == "whsec_grace_new"
    })
    .await;
    assert!(verify("whsec_grace_new").await, "the new secret");
    assert!(
        rotated.elapsed() < grace / 2,
        "the refresh took too long to test the grace"
    );
    assert!(
        verify("whsec_grace_old").await,
        "the previous one, within the grace"
    );
    tokio::time::sleep(grace + Duration::from_millis(100)).await;
    assert!(
        !verify("whsec_grace_old").await,
        "the previous one after the grace"
    );
    assert!(verify("whsec_grace_new").await);
    refresh.abort();
    assert_no_value_logged();
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_value_warns_and_is_counted() {
    let counted = || {
        metrics()
            .lines()
            .filter(|l| l.starts_with(REFRESH_FAILURES))
            .filter(|l| l.contains("setting=\"api.sumsub_secret_key\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    let client = moto().await;
    let id = create(&client, "refresh", "sumsub_refresh_value").await;
    let config = ApiConfig {
        sumsub_secret_key: reference(&id, None),
        secrets_ttl_ms: 100,
        ..config()
    };
    let secrets = ProviderSecrets::resolve(&config).await.unwrap();
    let live = secrets.live(config.sumsub_secret_key.as_ref().unwrap());
    let refresh = tokio::spawn(secrets.refresh_task().expect("a reference to refresh"));
    let before = counted();
    let delete = client.delete_secret().secret_id(&id);
    let delete = delete.force_delete_without_recovery(true).send().await;
    delete.expect("DeleteSecret on moto");
    until("a failure is counted", || counted() >= before + 2).await;
    assert_eq!(live.current().expose(), "sumsub_refresh_value");
    refresh.abort();
    let text = assert_no_value_logged();
    let warning = text
        .lines()
        .find(|l| l.contains("secret refresh failed") && l.contains(&id))
        .expect("a warning naming the secret");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("api.sumsub_secret_key"), "{warning}");
}
