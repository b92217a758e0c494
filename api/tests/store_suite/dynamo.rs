//! Cases only `DynamoStore` has: DynamoDB's transaction size limit,
//! cursor validation, the table layout against moto and against
//! `infra/terraform/dynamodb.tf`, TTL, the email guard, the outbox across
//! shards and concurrent committers, and errors when DynamoDB is away.

use super::fixtures::{event, receipt, tx, unique, user};
use super::outbox::pending_of;
use api::events::{Event, EventType};
use api::store::dynamo::{DynamoStore, TableSpec, MAX_ITEMS, TABLES};
use api::store::{Store, StoreError, TxKind, TxQuery, Write};
use aws_sdk_dynamodb::types::{AttributeValue, KeyType, TimeToLiveStatus};
use base64::Engine as _;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

fn spec(name: &str) -> &'static TableSpec {
    TABLES
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no table {name}"))
}

fn is_corrupt_saying(result: &Result<impl std::fmt::Debug, StoreError>, words: &str) -> bool {
    matches!(result, Err(StoreError::Corrupt(why)) if why.contains(words))
}

pub async fn batch_over_the_transaction_limit_is_refused(store: &DynamoStore) {
    let events: Vec<Event> = (0..=MAX_ITEMS)
        .map(|i| event(&format!("big-{i}")))
        .collect();
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let result = store
        .commit(events.iter().cloned().map(Write::Emit).collect())
        .await;
    assert!(is_corrupt_saying(&result, "at most 100"), "{result:?}");
    assert!(pending_of(store, &ids).await.is_empty(), "nothing landed");

    // A user takes two items (the user and its email guard).
    let users: Vec<_> = (0..MAX_ITEMS / 2 + 1).map(|_| user()).collect();
    let result = store
        .commit(users.iter().cloned().map(Write::CreateUser).collect())
        .await;
    assert!(is_corrupt_saying(&result, "at most 100"), "{result:?}");
    assert_eq!(store.user(&users[0].user_id).await.unwrap(), None);

    // Exactly the limit lands, in order.
    let events = &events[..MAX_ITEMS];
    store
        .commit(events.iter().cloned().map(Write::Emit).collect())
        .await
        .unwrap();
    let landed: Vec<String> = pending_of(store, &ids)
        .await
        .into_iter()
        .map(|e| e.event.id.clone())
        .collect();
    assert_eq!(landed, ids[..MAX_ITEMS].to_vec());
}

pub async fn bad_cursor_is_an_error(store: &DynamoStore) {
    let owner = unique("user");
    let txs: Vec<_> = (0..3)
        .map(|_| tx(&owner, TxKind::Order, "open", Some("BTC-USD")))
        .collect();
    store
        .commit(txs.into_iter().map(Write::CreateTransaction).collect())
        .await
        .unwrap();
    let first = store
        .transactions(
            &owner,
            &TxQuery {
                limit: 1,
                ..TxQuery::default()
            },
        )
        .await
        .unwrap();
    let cursor = first.next.expect("more pages");
    let after = |user: &str, cursor: &str| {
        let user = user.to_owned();
        let q = TxQuery {
            limit: 1,
            after: Some(cursor.to_owned()),
            ..TxQuery::default()
        };
        async move { store.transactions(&user, &q).await }
    };
    assert_eq!(after(&owner, &cursor).await.unwrap().items.len(), 1);

    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    for bad in [
        "!!not base64!!".to_owned(),
        b64("not json"),
        b64("{}"),
        b64(r#"{"user_id":"someone","transaction_id":"x"}"#),
        cursor[..cursor.len() - 3].to_owned(),
    ] {
        let result = after(&owner, &bad).await;
        assert!(
            matches!(result, Err(StoreError::InvalidCursor(_))),
            "{bad}: {result:?}"
        );
    }
    // A cursor of one user's list does not open another's.
    let result = after(&unique("user"), &cursor).await;
    assert!(
        matches!(result, Err(StoreError::InvalidCursor(_))),
        "{result:?}"
    );
}

pub async fn webhook_receipts_expire_by_ttl_on_a_numeric_expires_at(store: &DynamoStore) {
    let client = store.client();
    for spec in TABLES {
        let out = client
            .describe_time_to_live()
            .table_name(store.table(&spec))
            .send()
            .await
            .expect("DescribeTimeToLive");
        let d = out.time_to_live_description().expect("a description");
        match spec.ttl {
            Some(attribute) => {
                assert_eq!(
                    d.time_to_live_status(),
                    Some(&TimeToLiveStatus::Enabled),
                    "{}",
                    spec.name
                );
                assert_eq!(d.attribute_name(), Some(attribute), "{}", spec.name);
            }
            None => assert_ne!(
                d.time_to_live_status(),
                Some(&TimeToLiveStatus::Enabled),
                "{}",
                spec.name
            ),
        }
    }
    let webhooks = spec("WebhookReceipts");
    assert_eq!(webhooks.ttl, Some("expires_at"));

    let r = receipt("fireblocks", &unique("wh"));
    store
        .commit(vec![Write::CreateWebhookReceipt(r.clone())])
        .await
        .unwrap();
    let item = client
        .get_item()
        .table_name(store.table(webhooks))
        .key("provider", AttributeValue::S(r.provider.clone()))
        .key("webhook_id", AttributeValue::S(r.webhook_id.clone()))
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the receipt");
    assert_eq!(
        item.get("expires_at"),
        Some(&AttributeValue::N(r.expires_at.timestamp().to_string())),
        "epoch seconds as a Number"
    );
    let days = (r.expires_at - r.received_at).num_days();
    assert_eq!(days, 30, "kept 30 days");
}

pub async fn email_guard_and_index_are_written_with_the_user(store: &DynamoStore) {
    let u = user();
    store
        .commit(vec![Write::CreateUser(u.clone())])
        .await
        .unwrap();
    let users = store.table(spec("Users"));
    let email = api::store::normalize_email(&u.email);
    let guard = store
        .client()
        .get_item()
        .table_name(&users)
        .key("user_id", AttributeValue::S(format!("EMAIL#{email}")))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the guard item");
    assert_eq!(
        guard.get("owner"),
        Some(&AttributeValue::S(u.user_id.clone()))
    );
    assert_eq!(guard.get("email"), None, "guards stay out of email-index");
    // The guard never reads as a user.
    assert_eq!(store.user(&format!("EMAIL#{email}")).await.unwrap(), None);

    let indexed = store
        .client()
        .query()
        .table_name(&users)
        .index_name("email-index")
        .key_condition_expression("email = :e")
        .expression_attribute_values(":e", AttributeValue::S(email))
        .send()
        .await
        .expect("Query email-index");
    let ids: Vec<_> = indexed
        .items()
        .iter()
        .filter_map(|i| i.get("user_id"))
        .collect();
    assert_eq!(ids, vec![&AttributeValue::S(u.user_id.clone())]);
}

/// Events of many users (so every shard) come out in commit order, and
/// `outbox_pending(n)` is the oldest `n` across shards.
pub async fn outbox_order_holds_across_shards(store: &DynamoStore) {
    let events: Vec<Event> = (0..48)
        .map(|i| {
            Event::new(
                EventType::OrderAccepted,
                Some(&format!("user-{i}")),
                json!({"i": i}),
            )
        })
        .collect();
    for e in &events {
        store.commit(vec![Write::Emit(e.clone())]).await.unwrap();
    }
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let all = pending_of(store, &ids).await;
    assert_eq!(
        all.iter().map(|e| &e.event.id).collect::<Vec<_>>(),
        ids.iter().collect::<Vec<_>>()
    );
    let oldest = store.outbox_pending(5).await.unwrap();
    assert_eq!(oldest, all[..5].to_vec());
    let shards: std::collections::BTreeSet<&str> = all
        .iter()
        .map(|e| e.position.rsplit('-').next().expect("a shard"))
        .collect();
    assert!(shards.len() > 8, "users spread over shards: {shards:?}");
}

/// Several committers (two store instances, many tasks) at once: every
/// user's events come out in that user's commit order, none lost.
pub async fn concurrent_committers_keep_each_users_order(prefix: &str) {
    let a = Arc::new(super::moto::store_on(prefix).await);
    let b = Arc::new(super::moto::store_on(prefix).await);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..8 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            let user_id = unique("user");
            let mut ids = Vec::new();
            for i in 0..10 {
                let e = Event::new(EventType::OrderFilled, Some(&user_id), json!({ "i": i }));
                ids.push(e.id.clone());
                store.commit(vec![Write::Emit(e)]).await.unwrap();
            }
            (user_id, ids)
        });
    }
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (user_id, ids) = done.expect("task");
        want.insert(user_id, ids);
    }
    let pending = a.outbox_pending(10_000).await.unwrap();
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in &pending {
        let user_id = entry.event.user_id.clone().expect("a user");
        got.entry(user_id).or_default().push(entry.event.id.clone());
    }
    assert_eq!(got, want, "every user's events, in that user's order");
    let positions: Vec<&String> = pending.iter().map(|e| &e.position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing"
    );
}

/// `ensure_tables` is idempotent and makes exactly the tables of
/// [`TABLES`]: keys, indexes and projections.
pub async fn tables_are_created_as_specified(store: &DynamoStore) {
    store.ensure_tables().await.expect("ensure_tables again");
    for spec in TABLES {
        let out = store
            .client()
            .describe_table()
            .table_name(store.table(&spec))
            .send()
            .await
            .expect("DescribeTable");
        let t = out.table().expect("a table");
        assert_eq!(
            keys(t.key_schema()),
            (spec.hash_key.to_owned(), spec.range_key.map(str::to_owned)),
            "{}",
            spec.name
        );
        let mut indexes: Vec<_> = t
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                let projection = i
                    .projection()
                    .and_then(|p| p.projection_type())
                    .map(|p| p.as_str().to_owned());
                (
                    i.index_name().unwrap_or("").to_owned(),
                    keys(i.key_schema()),
                    projection,
                )
            })
            .collect();
        indexes.sort();
        let want: Vec<_> = spec
            .indexes
            .iter()
            .map(|i| {
                (
                    i.name.to_owned(),
                    (i.hash_key.to_owned(), i.range_key.map(str::to_owned)),
                    Some(i.projection.to_owned()),
                )
            })
            .collect();
        assert_eq!(indexes, want, "{}", spec.name);
    }
}

fn keys(schema: &[aws_sdk_dynamodb::types::KeySchemaElement]) -> (String, Option<String>) {
    let of = |kind: KeyType| {
        schema
            .iter()
            .find(|k| *k.key_type() == kind)
            .map(|k| k.attribute_name().to_owned())
    };
    (of(KeyType::Hash).unwrap_or_default(), of(KeyType::Range))
}

/// With DynamoDB unreachable, calls are `Unavailable` (and building the
/// store made no call).
pub async fn unreachable_dynamodb_is_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut config = super::moto::config("nowhere-");
    config.endpoint = Some(format!("http://127.0.0.1:{port}"));
    let store = DynamoStore::new(&config).await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    let result = store.commit(vec![Write::Emit(event("nowhere"))]).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(matches!(
        store.user("u").await,
        Err(StoreError::Unavailable(_))
    ));

    // Reachable, but the tables do not exist.
    let missing = DynamoStore::new(&super::moto::config(&super::moto::fresh_prefix())).await;
    let result = missing.ping().await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

/// The tables of `infra/terraform/dynamodb.tf`, read plainly: block
/// nesting by braces, `key = "value"` lines.
#[derive(Debug, Default, PartialEq)]
struct TerraformTable {
    name: String,
    hash_key: String,
    range_key: Option<String>,
    indexes: Vec<(String, String, Option<String>, String)>,
    ttl: Option<String>,
    attributes: BTreeMap<String, String>,
}

fn terraform_tables() -> Vec<TerraformTable> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/terraform/dynamodb.tf"
    );
    let text = std::fs::read_to_string(path).expect("read dynamodb.tf");
    let mut tables = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut block: HashMap<String, String> = HashMap::new();
    let mut current: Option<TerraformTable> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(head) = line.strip_suffix('{') {
            let head = head.trim();
            if head.starts_with("resource \"aws_dynamodb_table\"") {
                current = Some(TerraformTable::default());
            }
            stack.push(head.split_whitespace().next().unwrap_or("").to_owned());
            block.clear();
            continue;
        }
        if line == "}" {
            let closed = stack.pop().unwrap_or_default();
            if let Some(t) = current.as_mut() {
                let get = |k: &str| block.get(k).cloned();
                match closed.as_str() {
                    "attribute" => {
                        t.attributes
                            .insert(get("name").unwrap(), get("type").unwrap());
                    }
                    "global_secondary_index" => t.indexes.push((
                        get("name").unwrap(),
                        get("hash_key").unwrap(),
                        get("range_key"),
                        get("projection_type").unwrap(),
                    )),
                    "ttl" if get("enabled").as_deref() == Some("true") => {
                        t.ttl = get("attribute_name")
                    }
                    "resource" => tables.push(current.take().expect("in a table")),
                    _ => {}
                }
            }
            block.clear();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_owned();
        let k = k.trim().to_owned();
        if let (Some(t), Some("resource")) = (current.as_mut(), stack.last().map(String::as_str)) {
            match k.as_str() {
                "name" => t.name = v.replace("${local.table_prefix}", ""),
                "hash_key" => t.hash_key = v,
                "range_key" => t.range_key = Some(v),
                _ => {}
            }
        } else {
            block.insert(k, v);
        }
    }
    tables
}

fn as_terraform(spec: &TableSpec) -> TerraformTable {
    let mut attributes = BTreeMap::new();
    let mut indexes = Vec::new();
    for k in [Some(spec.hash_key), spec.range_key].into_iter().flatten() {
        attributes.insert(k.to_owned(), "S".to_owned());
    }
    for i in spec.indexes {
        for k in [Some(i.hash_key), i.range_key].into_iter().flatten() {
            attributes.insert(k.to_owned(), "S".to_owned());
        }
        indexes.push((
            i.name.to_owned(),
            i.hash_key.to_owned(),
            i.range_key.map(str::to_owned),
            i.projection.to_owned(),
        ));
    }
    TerraformTable {
        name: spec.name.to_owned(),
        hash_key: spec.hash_key.to_owned(),
        range_key: spec.range_key.map(str::to_owned),
        indexes,
        ttl: spec.ttl.map(str::to_owned),
        attributes,
    }
}

/// The code's tables (the store's and the market archive's) are
/// Terraform's, attribute for attribute.
pub fn tables_match_terraform() {
    let terraform = terraform_tables();
    let code: Vec<TerraformTable> = TABLES
        .iter()
        .chain([&api::market_archive::dynamo::TABLE])
        .map(as_terraform)
        .collect();
    assert_eq!(terraform.len(), 9, "tables parsed: {terraform:#?}");
    assert_eq!(terraform, code);
}
