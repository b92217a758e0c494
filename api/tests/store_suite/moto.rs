//! DynamoDB stores on the shared `moto_server` (`NAX_TEST_MOTO_PORT`, set
//! by `scripts/test.sh`). Without it the DynamoDB cases fail loudly; they
//! never skip. Each store gets its own random table prefix, so cases run
//! in parallel without sharing tables.

use api::aws::StaticCredentials;
use api::store::dynamo::{DynamoConfig, DynamoStore};
use testkit::shared_moto_port;

/// A config on the shared moto under `prefix`.
pub fn config(prefix: &str) -> DynamoConfig {
    DynamoConfig {
        endpoint: Some(format!("http://127.0.0.1:{}", shared_moto_port())),
        region: "us-east-1".to_owned(),
        table_prefix: prefix.to_owned(),
        static_credentials: Some(StaticCredentials::test()),
    }
}

/// A fresh table prefix (`t<uuid>-`).
pub fn fresh_prefix() -> String {
    format!("t{}-", uuid::Uuid::new_v4().simple())
}

/// A store on tables of its own, created.
pub async fn fresh_store() -> DynamoStore {
    store_on(&fresh_prefix()).await
}

/// A store on the tables under `prefix`, created if missing.
pub async fn store_on(prefix: &str) -> DynamoStore {
    let store = DynamoStore::new(&config(prefix)).await;
    store
        .ensure_tables()
        .await
        .expect("create the tables on moto");
    store
}
