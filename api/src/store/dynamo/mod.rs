//! [`DynamoStore`]: the production [`Store`] on DynamoDB, on exactly the
//! tables of `infra/terraform/dynamodb.tf` (`<prefix>Users`,
//! `Transactions`, `WebhookReceipts`, `ChainCredits`, `SyncCheckpoints`,
//! `IdempotencyKeys`, `RefreshFamilies`, `Outbox`; see [`TABLES`]).
//!
//! - Items: key attributes and what indexes, conditions and TTL need
//!   (`email`, `status`, `created_at`, `kind`, `pair`, `version`,
//!   `expires_at` as a Number of epoch seconds) are real attributes; the
//!   record itself is its JSON in `doc` (`dynamo/items.rs`).
//! - Writes: a batch is one `TransactWriteItems` (all or nothing, at most
//!   100 items), its condition failures mapped back to the [`Conflict`]
//!   of the write that failed (`dynamo/commit.rs`).
//! - Emails: unique through a guard item in `Users`
//!   (`user_id = "EMAIL#<normalized email>"`, `owner = <user id>`) put
//!   with `attribute_not_exists` in the same transaction as the user.
//!   [`Store::user_by_email`] reads the guard, then the user, both
//!   strongly consistent: the `email-index` GSI is eventually consistent,
//!   so a user who just registered could fail to log in through it. The
//!   index is still maintained (the user item carries `email`) for
//!   back-office look-ups.
//! - Lists: a descending `Query` with the filters server-side and an
//!   opaque cursor (`dynamo/transactions.rs`).
//! - Outbox: time-ordered positions over 16 shards; in order per user,
//!   at least once (`dynamo/outbox.rs` states the guarantee exactly).
//! - Every read is strongly consistent. Network errors, timeouts,
//!   throttling and missing tables are [`StoreError::Unavailable`]; a
//!   request DynamoDB rejects as invalid and an oversized batch are
//!   [`StoreError::Corrupt`]; a cursor not handed out for the list is
//!   [`StoreError::InvalidCursor`] (422 `invalid_cursor`).
//!
//! Local development against `moto_server`:
//! `DynamoConfig { endpoint: Some("http://127.0.0.1:5000".into()), static_credentials: Some(StaticCredentials::test()), ..DynamoConfig::default() }`,
//! then [`DynamoStore::ensure_tables`].

mod commit;
mod errors;
mod items;
mod outbox;
mod tables;
mod transactions;

pub use commit::MAX_ITEMS;
pub(crate) use errors::sdk_error;
pub(crate) use tables::ensure_table;
pub use tables::{IndexSpec, TableSpec, TABLES};

use super::*;
use crate::aws::StaticCredentials;
use aws_sdk_dynamodb::Client;
use items::Item;

/// How to reach DynamoDB (from `ApiConfig`'s `dynamodb_*` fields).
#[derive(Debug, Clone)]
pub struct DynamoConfig {
    /// Endpoint override (e.g. `http://127.0.0.1:5000` for moto); `None`
    /// uses the region's AWS endpoint.
    pub endpoint: Option<String>,
    pub region: String,
    /// Prepended to every table name; Terraform's `local.table_prefix`
    /// (the variable `resource_prefix`, e.g. `staging-`).
    pub table_prefix: String,
    /// Fixed credentials (tests, moto); `None` uses the default AWS
    /// provider chain (environment, ECS task role, ...).
    pub static_credentials: Option<StaticCredentials>,
}

impl DynamoConfig {
    /// The `dynamodb_*` fields of `config` (an empty endpoint: the
    /// region's AWS endpoint).
    pub fn from_api(config: &crate::ApiConfig) -> DynamoConfig {
        DynamoConfig {
            endpoint: (!config.dynamodb_endpoint.is_empty())
                .then(|| config.dynamodb_endpoint.clone()),
            region: config.dynamodb_region.clone(),
            table_prefix: config.dynamodb_table_prefix.clone(),
            static_credentials: config.aws_credentials(),
        }
    }

    /// A client for this configuration (short connect/operation timeouts,
    /// the SDK's standard retries); makes no call. The store and the
    /// market archive build theirs here.
    pub(crate) async fn client(&self) -> Client {
        let sdk = crate::aws::sdk_config(
            &self.region,
            self.endpoint.as_deref(),
            self.static_credentials.as_ref(),
        )
        .await;
        Client::new(&sdk)
    }
}

impl Default for DynamoConfig {
    fn default() -> Self {
        DynamoConfig {
            endpoint: None,
            region: "us-east-1".to_owned(),
            table_prefix: String::new(),
            static_credentials: None,
        }
    }
}

/// The DynamoDB store (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    prefix: String,
}

impl DynamoStore {
    /// Builds the client with short connect/operation timeouts and the
    /// SDK's standard retries; makes no call.
    pub async fn new(config: &DynamoConfig) -> DynamoStore {
        DynamoStore {
            client: config.client().await,
            prefix: config.table_prefix.clone(),
        }
    }

    /// Creates the tables of [`TABLES`] that are missing, with their
    /// indexes and TTL, and waits until they are active. Idempotent. For
    /// tests and local development; production tables come from Terraform.
    pub async fn ensure_tables(&self) -> Result<(), StoreError> {
        tables::ensure_all(&self.client, &self.prefix).await
    }

    /// The SDK client (tests and tools inspect tables with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The full name of `spec`'s table under this store's prefix.
    pub fn table(&self, spec: &TableSpec) -> String {
        format!("{}{}", self.prefix, spec.name)
    }

    /// One item by key, strongly consistent.
    async fn get_item(&self, spec: &TableSpec, key: Item) -> Result<Option<Item>, StoreError> {
        let table = self.table(spec);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &table, e))?;
        Ok(out.item)
    }

    /// The table and item key of `key`'s record.
    fn locate(key: RecordKey<'_>) -> (&'static TableSpec, Item) {
        match key {
            RecordKey::User { user_id } => (&tables::USERS, items::key(&[("user_id", user_id)])),
            RecordKey::Transaction {
                user_id,
                transaction_id,
            } => (
                &tables::TRANSACTIONS,
                items::transaction_key(user_id, transaction_id),
            ),
            RecordKey::Idempotency {
                user_id,
                scope,
                key,
            } => (
                &tables::IDEMPOTENCY_KEYS,
                items::idempotency_key(user_id, scope, key),
            ),
            RecordKey::WebhookReceipt {
                provider,
                webhook_id,
            } => (
                &tables::WEBHOOK_RECEIPTS,
                items::webhook_key(provider, webhook_id),
            ),
            RecordKey::RefreshFamily { family_id } => {
                (&tables::REFRESH_FAMILIES, items::family_key(family_id))
            }
            RecordKey::Checkpoint {
                service_name,
                sync_type,
            } => (
                &tables::SYNC_CHECKPOINTS,
                items::checkpoint_key(service_name, sync_type),
            ),
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.commit_batch(writes).await
    }

    async fn get(&self, key: RecordKey<'_>) -> StoreResult<Option<Record>> {
        if let RecordKey::User { user_id } = key {
            if user_id.starts_with(items::EMAIL_GUARD_PREFIX) {
                return Ok(None);
            }
        }
        let (spec, item_key) = Self::locate(key);
        let item = self.get_item(spec, item_key).await?;
        item.map(|item| key.decode(items::doc(&item)?.as_bytes()))
            .transpose()
    }

    /// Reads the email guard, then its user (see the module docs).
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let guard = self
            .get_item(&tables::USERS, items::email_guard_key(email))
            .await?;
        let Some(guard) = guard else {
            return Ok(None);
        };
        let Some(aws_sdk_dynamodb::types::AttributeValue::S(owner)) = guard.get(items::OWNER)
        else {
            return Err(StoreError::Corrupt(format!(
                "email guard of {} has no owner",
                normalize_email(email)
            )));
        };
        match self.user(owner).await? {
            Some(user) => Ok(Some(user)),
            None => Err(StoreError::Corrupt(format!(
                "email guard of {} names missing user {owner}",
                normalize_email(email)
            ))),
        }
    }

    async fn transactions(&self, user_id: &str, query: &TxQuery) -> StoreResult<Page<Transaction>> {
        let table = self.table(&tables::TRANSACTIONS);
        transactions::page(&self.client, &table, user_id, query).await
    }

    async fn in_status(&self, query: &StatusQuery<'_>) -> StoreResult<Vec<Transaction>> {
        let table = self.table(&tables::TRANSACTIONS);
        transactions::with_status(&self.client, &table, query).await
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        outbox::pending(&self.client, &self.table(&tables::OUTBOX), limit).await
    }

    async fn outbox_ack(&self, positions: &[String]) -> Result<(), StoreError> {
        outbox::ack(&self.client, &self.table(&tables::OUTBOX), positions).await
    }

    /// `DescribeTable` on `Users`.
    async fn ping(&self) -> Result<(), StoreError> {
        let table = self.table(&tables::USERS);
        self.client
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTable", &table, e))?;
        Ok(())
    }
}
