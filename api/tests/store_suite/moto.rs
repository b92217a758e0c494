//! DynamoDB stores on the shared `moto_server` (`NAX_TEST_MOTO_PORT`, set
//! by `scripts/test.sh`). Without it the DynamoDB cases fail loudly; they
//! never skip. Each store gets its own random table prefix, so cases run
//! in parallel without sharing tables.

use api::events::sqs::StaticCredentials;
use api::store::dynamo::{DynamoConfig, DynamoStore};
use std::net::TcpStream;

/// The shared moto's port; panics when it is unset or moto does not answer.
/// (The same check as `tests/sqs.rs`.)
pub fn shared_moto_port() -> u16 {
    let port: u16 = std::env::var("NAX_TEST_MOTO_PORT")
        .expect("NAX_TEST_MOTO_PORT is unset: run scripts/test.sh, or start `moto_server -H 127.0.0.1 -p 5000` and export NAX_TEST_MOTO_PORT=5000")
        .parse()
        .expect("NAX_TEST_MOTO_PORT is not a port number");
    TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("moto_server does not answer on 127.0.0.1:{port}: {e}"));
    port
}

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
