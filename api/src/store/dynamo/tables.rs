//! The DynamoDB tables, key by key as `infra/terraform/dynamodb.tf`
//! declares them (a test compares the two), and creating them for tests
//! and local development.

use super::errors::sdk_error;
use crate::store::StoreError;
use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use std::time::Duration;

/// One table: its name after the prefix, its key attributes (all strings,
/// as in Terraform), its global secondary indexes and its TTL attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// Terraform's `"${local.table_prefix}<name>"`.
    pub name: &'static str,
    pub hash_key: &'static str,
    pub range_key: Option<&'static str>,
    pub indexes: &'static [IndexSpec],
    /// Attribute DynamoDB expires items by (a Number of epoch seconds).
    pub ttl: Option<&'static str>,
}

/// A global secondary index of a [`TableSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub hash_key: &'static str,
    pub range_key: Option<&'static str>,
    /// `KEYS_ONLY` or `ALL`.
    pub projection: &'static str,
}

pub const USERS: TableSpec = TableSpec {
    name: "Users",
    hash_key: "user_id",
    range_key: None,
    indexes: &[IndexSpec {
        name: "email-index",
        hash_key: "email",
        range_key: None,
        projection: "KEYS_ONLY",
    }],
    ttl: None,
};

pub const TRANSACTIONS: TableSpec = TableSpec {
    name: "Transactions",
    hash_key: "user_id",
    range_key: Some("transaction_id"),
    indexes: &[IndexSpec {
        name: "status-index",
        hash_key: "status",
        range_key: Some("created_at"),
        projection: "ALL",
    }],
    ttl: None,
};

pub const WEBHOOK_RECEIPTS: TableSpec = TableSpec {
    name: "WebhookReceipts",
    hash_key: "provider",
    range_key: Some("webhook_id"),
    indexes: &[],
    ttl: Some("expires_at"),
};

/// Credited chain transfers: kept forever (no TTL), the guard against
/// crediting one transfer twice.
pub const CHAIN_CREDITS: TableSpec = TableSpec {
    name: "ChainCredits",
    hash_key: "transfer",
    range_key: None,
    indexes: &[],
    ttl: None,
};

pub const SYNC_CHECKPOINTS: TableSpec = TableSpec {
    name: "SyncCheckpoints",
    hash_key: "service_name",
    range_key: Some("sync_type"),
    indexes: &[],
    ttl: None,
};

pub const IDEMPOTENCY_KEYS: TableSpec = TableSpec {
    name: "IdempotencyKeys",
    hash_key: "user_id",
    range_key: Some("scope_key"),
    indexes: &[],
    ttl: None,
};

pub const REFRESH_FAMILIES: TableSpec = TableSpec {
    name: "RefreshFamilies",
    hash_key: "family_id",
    range_key: None,
    indexes: &[],
    ttl: Some("expires_at"),
};

pub const OUTBOX: TableSpec = TableSpec {
    name: "Outbox",
    hash_key: "shard",
    range_key: Some("position"),
    indexes: &[],
    ttl: None,
};

/// Every table the store uses.
pub const TABLES: [TableSpec; 8] = [
    USERS,
    TRANSACTIONS,
    WEBHOOK_RECEIPTS,
    CHAIN_CREDITS,
    SYNC_CHECKPOINTS,
    IDEMPOTENCY_KEYS,
    REFRESH_FAMILIES,
    OUTBOX,
];

/// How long `ensure_all` waits for one table to become active.
const ACTIVE_WAIT: Duration = Duration::from_secs(60);

impl TableSpec {
    /// Every key attribute of the table and its indexes, once each.
    fn key_attributes(&self) -> Vec<&'static str> {
        let mut names = vec![self.hash_key];
        names.extend(self.range_key);
        for index in self.indexes {
            names.push(index.hash_key);
            names.extend(index.range_key);
        }
        let mut unique = Vec::new();
        for n in names {
            if !unique.contains(&n) {
                unique.push(n);
            }
        }
        unique
    }
}

fn key_schema(hash: &str, range: Option<&str>) -> Result<Vec<KeySchemaElement>, StoreError> {
    let mut schema = vec![(hash, KeyType::Hash)];
    schema.extend(range.map(|r| (r, KeyType::Range)));
    schema
        .into_iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| StoreError::Corrupt(format!("key schema of {name}: {e}")))
        })
        .collect()
}

/// Creates every table of [`TABLES`] under `prefix` that does not exist
/// ([`ensure_table`] each). Idempotent.
pub(super) async fn ensure_all(client: &Client, prefix: &str) -> Result<(), StoreError> {
    for spec in TABLES {
        // Boxed: one more nested future in the start-up path takes the
        // hub's largest test futures past the compiler's recursion limit.
        Box::pin(ensure_table(client, prefix, &spec)).await?;
    }
    Ok(())
}

/// Creates `spec`'s table under `prefix` when it does not exist, waits
/// until it is active and turns its TTL on. Idempotent. Tables are
/// on-demand and without deletion protection (tests drop them); the
/// production ones (PITR, KMS, deletion protection) come from Terraform.
pub(crate) async fn ensure_table(
    client: &Client,
    prefix: &str,
    spec: &TableSpec,
) -> Result<(), StoreError> {
    let name = format!("{prefix}{}", spec.name);
    create(client, &name, spec).await?;
    client
        .wait_until_table_exists()
        .table_name(&name)
        .wait(ACTIVE_WAIT)
        .await
        .map_err(|e| {
            StoreError::Unavailable(format!("dynamodb table {name} did not become active: {e}"))
        })?;
    if let Some(attribute) = spec.ttl {
        enable_ttl(client, &name, attribute).await?;
    }
    Ok(())
}

async fn create(client: &Client, name: &str, spec: &TableSpec) -> Result<(), StoreError> {
    let definitions = spec
        .key_attributes()
        .into_iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Corrupt(format!("attribute {a}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(key_schema(spec.hash_key, spec.range_key)?));
    for index in spec.indexes {
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(index.name)
            .set_key_schema(Some(key_schema(index.hash_key, index.range_key)?))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::from(index.projection))
                    .build(),
            )
            .build()
            .map_err(|e| StoreError::Corrupt(format!("index {}: {e}", index.name)))?;
        request = request.global_secondary_indexes(gsi);
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ResourceInUseException") => Ok(()),
        Err(e) => Err(sdk_error("CreateTable", name, e)),
    }
}

async fn enable_ttl(client: &Client, name: &str, attribute: &str) -> Result<(), StoreError> {
    let described = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeTimeToLive", name, e))?;
    let current = described.time_to_live_description();
    let status = current.and_then(|d| d.time_to_live_status());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        let on = current.and_then(|d| d.attribute_name());
        return match on {
            Some(a) if a == attribute => Ok(()),
            other => Err(StoreError::Corrupt(format!(
                "table {name} expires items by {other:?}, not {attribute}"
            ))),
        };
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(attribute)
        .enabled(true)
        .build()
        .map_err(|e| StoreError::Corrupt(format!("ttl of {name}: {e}")))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| sdk_error("UpdateTimeToLive", name, e))?;
    Ok(())
}
