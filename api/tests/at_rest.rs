//! Secrets at rest, over a real socket: TOTP seeds and password hashes
//! are sealed in the embedded store's file and in DynamoDB items (read
//! raw), TOTP login keeps working, legacy plaintext records are still
//! read and sealed by their next write, a ciphertext moved into another
//! user's record does not open, and two nodes on one DynamoDB share the
//! KMS data key.
//!
//! The DynamoDB and KMS cases run on the shared moto
//! (`NAX_TEST_MOTO_PORT`); without it they fail, they never skip.

use crate::common;

use api::store::dynamo::{DynamoConfig, DynamoStore, TABLES};
use api::store::embedded::EmbeddedStore;
use api::store::{Store, StoreError, Write};
use aws_sdk_dynamodb::types::AttributeValue;
use common::{assert_error, TestApi, PASSWORD};
use serde_json::{json, Value};
use std::sync::Arc;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn totp_code(seed: &str, at: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(seed.to_owned())
        .to_bytes()
        .expect("base32 seed");
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .expect("totp")
        .generate(at)
}

fn fresh_email() -> String {
    format!("{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Registers `email`, sets up and enables TOTP; returns (user id, access
/// token, seed).
async fn with_mfa(t: &TestApi, email: &str) -> (String, String, String) {
    let (user_id, access, _) = t.signup(email).await;
    let (s, setup, _) = t.post("/auth/mfa/setup", Some(&access), json!({})).await;
    assert_eq!(s, 200, "{setup}");
    let seed = setup["secret"].as_str().expect("secret").to_owned();
    let code = totp_code(&seed, unix_now());
    let (s, body, _) = t
        .post("/auth/mfa/verify", Some(&access), json!({"code": code}))
        .await;
    assert_eq!(s, 200, "{body}");
    (user_id, access, seed)
}

/// Logs in with password and the next step's code (within the accepted
/// skew, and never a code already used).
async fn login_with_totp(t: &TestApi, email: &str, seed: &str) -> (u16, Value) {
    let code = totp_code(seed, unix_now() + 30);
    let (s, body, _) = t
        .post(
            "/auth/login",
            None,
            json!({"email": email, "password": PASSWORD, "totp": code}),
        )
        .await;
    (s, body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn moto() -> String {
    testkit::shared_moto_endpoint()
}

/// A DynamoDB store on tables of its own on moto, created.
async fn fresh_dynamo() -> DynamoStore {
    let store = DynamoStore::new(&DynamoConfig {
        endpoint: Some(moto()),
        table_prefix: format!("t{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(api::aws::StaticCredentials::test()),
        ..DynamoConfig::default()
    })
    .await;
    store.ensure_tables().await.expect("tables on moto");
    store
}

/// The test config with a new KMS key on moto.
async fn kms_config() -> api::ApiConfig {
    let mut config = api::ApiConfig {
        store: api::config::StoreKind::Dynamodb,
        kms_endpoint: moto(),
        aws_access_key_id: "test".into(),
        aws_secret_access_key: Some(api::secret::Secret::new("test")),
        jwt_secret: Some(api::secret::Secret::new(
            "0123456789abcdef0123456789abcdef-at-rest",
        )),
        ..common::test_config()
    };
    let client = api::seal::kms_client(&config).await;
    config.kms_key_id = api::seal::create_kms_key(&client)
        .await
        .expect("a KMS key on moto");
    config
}

#[tokio::test]
async fn the_store_file_holds_no_seed_or_password_hash_and_totp_login_still_works() {
    let t = common::start().await;
    let email = fresh_email();
    let (_, _, seed) = with_mfa(&t, &email).await;
    let (s, body) = login_with_totp(&t, &email, &seed).await;
    assert_eq!(s, 200, "{body}");

    // The store's file and its write-ahead log (where a write is until a
    // checkpoint moves it into the file).
    let mut bytes = std::fs::read(t.dir.path().join(EmbeddedStore::FILE)).unwrap();
    for entry in std::fs::read_dir(t.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wal") {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(contains(&bytes, b"sealed:v1:"), "the sealed form is stored");
    assert!(
        !contains(&bytes, seed.as_bytes()),
        "the seed is in the store's files"
    );
    assert!(
        !contains(&bytes, b"$argon2"),
        "a password hash is in the store's files"
    );
}

#[tokio::test]
async fn the_dynamodb_item_holds_no_seed_and_a_second_node_reads_it_with_the_shared_kms_key() {
    let store = fresh_dynamo().await;
    let config = kms_config().await;
    let a = common::start_sharing(config.clone(), Arc::new(store.clone())).await;
    let b = common::start_sharing(config, Arc::new(store.clone())).await;
    let email = fresh_email();
    let (user_id, _, seed) = with_mfa(&a, &email).await;

    let users = TABLES.iter().find(|t| t.name == "Users").unwrap();
    let item = store
        .client()
        .get_item()
        .table_name(store.table(users))
        .key("user_id", AttributeValue::S(user_id.clone()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the user item");
    let raw = format!("{item:?}");
    assert!(raw.contains("sealed:v1:"), "{raw}");
    assert!(!raw.contains(&seed), "the seed is in the item: {raw}");
    assert!(!raw.contains("$argon2"), "a password hash is in the item");

    // Node B never saw the seed: it opens it with the data key it got by
    // unwrapping the stored key with KMS.
    let (s, body) = login_with_totp(&b, &email, &seed).await;
    assert_eq!(s, 200, "{body}");
}

/// A node of its own on a store this test also holds raw (under the
/// sealing), to plant records as an older version, or an attacker, would.
async fn node_with_raw_store() -> (TestApi, Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let t = common::start_sharing(common::test_config(), raw.clone()).await;
    (t, raw, dir)
}

#[tokio::test]
async fn a_legacy_plaintext_seed_is_still_accepted_and_sealed_by_the_next_write() {
    let (t, raw, _dir) = node_with_raw_store().await;
    let email = fresh_email();
    let (user_id, access, seed) = with_mfa(&t, &email).await;
    // The record as a version before sealing stored it: in the clear.
    let plain = t.api.store.user(&user_id).await.unwrap().unwrap();
    let mut legacy = plain.clone();
    legacy.version += 1;
    raw.commit(vec![Write::UpdateUser {
        user: legacy,
        expected_version: plain.version,
    }])
    .await
    .unwrap();
    let stored = raw.user(&user_id).await.unwrap().unwrap();
    assert_eq!(
        stored.mfa_secret.as_ref().map(|s| s.expose()),
        Some(seed.as_str())
    );

    let (s, body) = login_with_totp(&t, &email, &seed).await;
    assert_eq!(s, 200, "{body}");
    let (s, body, _) = t
        .put(
            "/users/profile",
            Some(&access),
            json!({"first_name": "Ada"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let stored = raw.user(&user_id).await.unwrap().unwrap();
    let sealed_seed = stored.mfa_secret.expect("seed kept");
    assert!(
        sealed_seed.expose().starts_with("sealed:v1:"),
        "the next write seals the seed"
    );
    assert!(stored.password_hash.expose().starts_with("sealed:v1:"));
}

#[tokio::test]
async fn a_sealed_seed_moved_into_another_users_record_does_not_open() {
    let (t, raw, _dir) = node_with_raw_store().await;
    let (a_email, b_email) = (fresh_email(), fresh_email());
    let (a_id, _, seed) = with_mfa(&t, &a_email).await;
    let (b_id, _, _) = t.signup(&b_email).await;
    let a = raw.user(&a_id).await.unwrap().unwrap();
    let mut b = raw.user(&b_id).await.unwrap().unwrap();
    let expected_version = b.version;
    b.mfa_secret = a.mfa_secret.clone();
    b.mfa_enabled = true;
    b.version += 1;
    raw.commit(vec![Write::UpdateUser {
        user: b,
        expected_version,
    }])
    .await
    .unwrap();

    // A's codes do not sign B in: B's record does not open at all.
    let (s, body) = login_with_totp(&t, &b_email, &seed).await;
    assert_error(s, &body, 500, "internal");
    assert!(matches!(
        t.api.store.user(&b_id).await,
        Err(StoreError::Corrupt(m)) if m.contains("mfa_secret") && !m.contains(&seed)
    ));
    // A is untouched.
    let (s, body) = login_with_totp(&t, &a_email, &seed).await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn nodes_starting_at_once_agree_on_one_kms_data_key() {
    let store = fresh_dynamo().await;
    let config = kms_config().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = tokio::join!(
        api::seal::keyring(&config, dir_a.path(), &store),
        api::seal::keyring(&config, dir_b.path(), &store),
    );
    let (a, b) = (a.expect("node a's keyring"), b.expect("node b's keyring"));
    assert_eq!(a.sealing_key_id(), b.sealing_key_id());
    // Neither wrote a local key file: the key lives in KMS and the store.
    assert!(!dir_a.path().join("keys").exists());
    let sealed = a.seal("JBSWY3DPEHPK3PXP", "users/u/mfa_secret");
    assert_eq!(
        b.open(&sealed, "users/u/mfa_secret").unwrap(),
        "JBSWY3DPEHPK3PXP"
    );
}
