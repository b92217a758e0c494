//! A user's transactions, newest first: a descending `Query` on
//! `Transactions` (the range key is the time-ordered transaction id) with
//! the filters as a `FilterExpression`, continued until the page is full.
//!
//! The cursor is the key of the last item of the page (an
//! `ExclusiveStartKey`, what DynamoDB calls `LastEvaluatedKey`), as
//! base64url JSON. Decoding checks it names the queried user, so a
//! tampered or foreign cursor is an error, never a panic nor another
//! user's list.

use super::errors::sdk_error;
use super::items::{self, Item};
use crate::store::{Page, StatusQuery, StoreError, Transaction, TxQuery};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use inbound::JsonBounds;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Items DynamoDB evaluates per call when a filter drops some.
const FILTERED_READ: usize = 200;
/// DynamoDB's limit on a range key's size.
const MAX_KEY_BYTES: usize = 1024;

/// Bounds of a decoded cursor, checked before it is parsed (see
/// docs/SECURITY.md, "Input bounds"): one flat object of two ids, each at
/// most [`MAX_KEY_BYTES`] (a JSON escape can spell one byte in six).
const CURSOR_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 2 * 6 * MAX_KEY_BYTES,
    max_depth: 1,
    max_elements: 4,
};
/// Longest encoded cursor decoded (base64url of [`CURSOR_BOUNDS`]).
const MAX_CURSOR_CHARS: usize = CURSOR_BOUNDS.max_bytes / 3 * 4 + 4;

/// What a cursor holds: the key of the last item handed out.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorKey {
    user_id: String,
    transaction_id: String,
}

/// Encodes the position after `last`.
pub(super) fn encode_cursor(last: &Transaction) -> String {
    let key = CursorKey {
        user_id: last.user_id.clone(),
        transaction_id: last.transaction_id.clone(),
    };
    let json = serde_json::to_vec(&key).expect("invariant: two strings always serialize");
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor of `user_id`'s list into the key to start after.
pub(super) fn decode_cursor(user_id: &str, cursor: &str) -> Result<Item, StoreError> {
    let bad = |why: &str| StoreError::InvalidCursor(why.to_owned());
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(bad("too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad("not base64url"))?;
    CURSOR_BOUNDS
        .check(&bytes)
        .map_err(|e| StoreError::InvalidCursor(e.to_string()))?;
    let key: CursorKey = serde_json::from_slice(&bytes).map_err(|_| bad("not a cursor"))?;
    if key.user_id != user_id {
        return Err(bad("it belongs to another list"));
    }
    if key.transaction_id.is_empty() || key.transaction_id.len() > MAX_KEY_BYTES {
        return Err(bad("bad transaction id"));
    }
    Ok(items::transaction_key(&key.user_id, &key.transaction_id))
}

/// The `FilterExpression` of `query` with its names and values, if any.
struct Filter {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn filter(query: &TxQuery) -> Result<Option<Filter>, StoreError> {
    let mut clauses = Vec::new();
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    if !query.kinds.is_empty() {
        let mut placeholders = Vec::new();
        for (i, kind) in query.kinds.iter().enumerate() {
            let p = format!(":kind{i}");
            values.insert(p.clone(), items::s(items::kind_name(kind)?));
            placeholders.push(p);
        }
        names.insert("#kind".to_owned(), "kind".to_owned());
        clauses.push(format!("#kind IN ({})", placeholders.join(", ")));
    }
    if let Some(status) = &query.status {
        names.insert("#status".to_owned(), "status".to_owned());
        values.insert(":status".to_owned(), items::s(status));
        clauses.push("#status = :status".to_owned());
    }
    if let Some(pair) = &query.pair {
        names.insert("#pair".to_owned(), "pair".to_owned());
        values.insert(":pair".to_owned(), items::s(pair));
        clauses.push("#pair = :pair".to_owned());
    }
    Ok((!clauses.is_empty()).then(|| Filter {
        expression: clauses.join(" AND "),
        names,
        values,
    }))
}

/// Every user's transactions in `status` created at or before `until`,
/// oldest first, at most `limit`: a `Query` on `status-index` (hash
/// `status`, range `created_at`, which sorts as time).
pub(super) async fn with_status(
    client: &Client,
    table: &str,
    query: &StatusQuery<'_>,
) -> Result<Vec<Transaction>, StoreError> {
    let StatusQuery {
        status,
        until,
        limit,
    } = *query;
    let until = &until;
    let mut found: Vec<Transaction> = Vec::new();
    let mut start = None;
    while found.len() < limit {
        let out = client
            .query()
            .table_name(table)
            .index_name("status-index")
            .key_condition_expression("#status = :status AND #created <= :until")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#created", "created_at")
            .expression_attribute_values(":status", items::s(status))
            .expression_attribute_values(":until", items::s(items::sortable_time(until)))
            .scan_index_forward(true)
            .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error("Query", table, e))?;
        for item in out.items() {
            found.push(items::decode(item)?);
        }
        match out.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => break,
        }
    }
    found.truncate(limit);
    Ok(found)
}

/// One page of `user_id`'s transactions matching `query` (see the module
/// docs). A page is short only when it is the last.
pub(super) async fn page(
    client: &Client,
    table: &str,
    user_id: &str,
    query: &TxQuery,
) -> Result<Page<Transaction>, StoreError> {
    let limit = query.limit.max(1);
    let mut start = match &query.after {
        Some(cursor) => Some(decode_cursor(user_id, cursor)?),
        None => None,
    };
    let filter = filter(query)?;
    let mut found: Vec<Transaction> = Vec::new();
    // One item past the page tells whether there is a next page.
    loop {
        let want = limit + 1 - found.len();
        let read = if filter.is_some() {
            want.max(FILTERED_READ)
        } else {
            want
        };
        let mut request = client
            .query()
            .table_name(table)
            .key_condition_expression("#user = :user")
            .expression_attribute_names("#user", "user_id")
            .expression_attribute_values(":user", items::s(user_id))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(i32::try_from(read).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.take());
        if let Some(f) = &filter {
            request = request.filter_expression(&f.expression);
            for (k, v) in &f.names {
                request = request.expression_attribute_names(k, v);
            }
            for (k, v) in &f.values {
                request = request.expression_attribute_values(k, v.clone());
            }
        }
        let out = request
            .send()
            .await
            .map_err(|e| sdk_error("Query", table, e))?;
        for item in out.items() {
            found.push(items::decode(item)?);
        }
        if found.len() > limit {
            found.truncate(limit);
            let next = found.last().map(encode_cursor);
            return Ok(Page { items: found, next });
        }
        match out.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => {
                return Ok(Page {
                    items: found,
                    next: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TxKind;

    fn tx(user_id: &str, id: &str) -> Transaction {
        let now = crate::events::now();
        Transaction {
            user_id: user_id.into(),
            transaction_id: id.into(),
            kind: TxKind::Order,
            status: "open".into(),
            pair: None,
            created_at: now,
            updated_at: now,
            version: 1,
            detail: serde_json::json!({}).into(),
        }
    }

    #[test]
    fn cursor_round_trips() {
        let c = encode_cursor(&tx("u1", "0190-abc"));
        let key = decode_cursor("u1", &c).unwrap();
        assert_eq!(key, items::transaction_key("u1", "0190-abc"));
    }

    #[test]
    fn bad_cursors_are_errors() {
        let foreign = encode_cursor(&tx("u2", "0190-abc"));
        let empty_id = URL_SAFE_NO_PAD.encode(r#"{"user_id":"u1","transaction_id":""}"#);
        let extra = URL_SAFE_NO_PAD.encode(r#"{"user_id":"u1","transaction_id":"x","limit":9}"#);
        for bad in [
            "%%%",
            "",
            "bm90IGpzb24",
            foreign.as_str(),
            &empty_id,
            &extra,
        ] {
            assert!(
                matches!(decode_cursor("u1", bad), Err(StoreError::InvalidCursor(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn cursors_over_their_bounds_are_refused_before_parsing() {
        let refused = |cursor: &str| match decode_cursor("u1", cursor) {
            Err(StoreError::InvalidCursor(why)) => why,
            other => panic!("expected InvalidCursor, got {other:?}"),
        };
        let longest = encode_cursor(&tx("u1", &"x".repeat(MAX_KEY_BYTES)));
        assert!(decode_cursor("u1", &longest).is_ok());
        // Nesting inside an ignored place still reaches the parser.
        let deep = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"user_id":"u1","transaction_id":"x","x":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        ));
        assert_eq!(refused(&deep), "input nests deeper than 1 levels");
        let many = URL_SAFE_NO_PAD
            .encode(r#"{"user_id":"u1","transaction_id":"x","a":1,"b":2,"c":3,"d":4}"#);
        assert_eq!(refused(&many), "input holds more than 4 elements");
        let long = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"user_id":"u1","transaction_id":"{}"}}"#,
            "x".repeat(100_000)
        ));
        assert_eq!(refused(&long), "too long");
    }

    #[test]
    fn filters_combine() {
        assert!(filter(&TxQuery::default()).unwrap().is_none());
        let f = filter(&TxQuery {
            kinds: vec![TxKind::Deposit, TxKind::FiatDeposit],
            status: Some("pending".into()),
            pair: Some("BTC".into()),
            ..TxQuery::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            f.expression,
            "#kind IN (:kind0, :kind1) AND #status = :status AND #pair = :pair"
        );
        assert_eq!(f.values[":kind1"], items::s("fiat_deposit"));
    }
}
