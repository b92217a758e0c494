//! The custody API of [`super::FireblocksServer`]: routing, injected faults,
//! authentication, `Idempotency-Key`, and the endpoints (ts-sdk
//! `docs/apis/VaultsApi.md`, `TransactionsApi.md` and `docs/models`).
//!
//! Error codes: 1438 (a reused `externalTxId`, worded as
//! developers.fireblocks.com/docs/manage-withdrawals-at-scale quotes it; read
//! from a copy of that page, not confirmed against the live API), 1503 (an
//! unsupported asset, docs/error-handling's example), 1004 and 1006 (no such
//! vault account / asset, the api-responses table). Invented: the code of an
//! unknown transaction ([`NOT_FOUND_CODE`]) and the messages of invalid
//! bodies (400 without a code; `ErrorSchema.code` is optional).

use super::{auth, error_body, reply, Inner, Saved, Shared};
use super::{ASSET_ID_CHARS, IDEMPOTENCY_TTL, MAX_IDEMPOTENCY_KEY};
use axum::http::{request::Parts, Method};
use axum::response::Response;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::time::SystemTime;

/// The code of a 404 for an unknown transaction (invented: Fireblocks
/// documents none).
const NOT_FOUND_CODE: i64 = 1404;
const DUPLICATE: &str = "The external tx id that was provided in the request, already exists";

/// A status, a body and why (for the log).
type Answer = (u16, String, Option<String>);

enum Route {
    Address(String, String),
    Addresses(String, String),
    Create,
    Get(String),
    External(String),
}

/// The endpoint `method` `path` names, path segments %-decoded.
fn route(method: &Method, path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v1/")?;
    let segments: Vec<String> = rest.split('/').map(decode).collect::<Option<_>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (post, get) = (method == Method::POST, method == Method::GET);
    match segments[..] {
        ["vault", "accounts", vault, asset, "addresses"] if post => {
            Some(Route::Address(vault.to_owned(), asset.to_owned()))
        }
        ["vault", "accounts", vault, asset, "addresses_paginated"] if get => {
            Some(Route::Addresses(vault.to_owned(), asset.to_owned()))
        }
        ["transactions"] if post => Some(Route::Create),
        ["transactions", "external_tx_id", id] if get && !id.is_empty() => {
            Some(Route::External(id.to_owned()))
        }
        ["transactions", id] if get && !id.is_empty() => Some(Route::Get(id.to_owned())),
        _ => None,
    }
}

/// `%XX` as a byte; `None` unless that makes UTF-8.
fn decode(raw: &str) -> Option<String> {
    let (raw, mut out, mut i) = (raw.as_bytes(), Vec::new(), 0);
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            out.push(*hex::decode(raw.get(i + 1..i + 3)?).ok()?.first()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Answers an API request: faults first, then authentication, routing,
/// idempotency and the endpoint. The answer and why (for the log).
pub(super) fn answer(
    shared: &Shared,
    parts: &Parts,
    target: &str,
    body: &[u8],
    key: Option<&str>,
) -> (Response, Option<String>) {
    let (status, body, why) = respond(shared, parts, target, body, key);
    (reply(status, body), why)
}

fn respond(shared: &Shared, parts: &Parts, target: &str, body: &[u8], key: Option<&str>) -> Answer {
    let (method, path) = (&parts.method, parts.uri.path());
    let not_found = || {
        let why = format!("no endpoint {method} {path}");
        (404, error_body("Not Found", None), Some(why))
    };
    if !path.starts_with("/v1/") {
        return not_found();
    }
    if let Some(status) = shared.inner.lock().faults.pop_front() {
        let message = match status {
            429 => "Too many requests",
            500.. => "Internal server error",
            _ => "Injected fault",
        };
        let why = Some("injected fault".to_owned());
        return (status, error_body(message, Some(status.into())), why);
    }
    let now = chrono::Utc::now().timestamp();
    let config = &shared.config;
    let checked = auth::check(
        &config.api_key,
        &shared.api_key,
        &parts.headers,
        target,
        body,
        now,
    );
    let mut inner = shared.inner.lock();
    let refused =
        |code: i64, why: String| (401, error_body(auth::message(code), Some(code)), Some(why));
    match checked {
        Err((code, why)) => return refused(code, why),
        Ok(nonce) if inner.nonces.contains(&nonce) => {
            return refused(-7, "nonce reused".to_owned());
        }
        Ok(nonce) => {
            inner.nonces.insert(nonce);
        }
    }
    let Some(route) = route(method, path) else {
        return not_found();
    };
    let key = key.filter(|k| method == Method::POST && !k.is_empty());
    let now = chrono::Utc::now().timestamp_millis();
    if let Some(key) = key {
        if key.chars().count() > MAX_IDEMPOTENCY_KEY {
            let why = format!("Idempotency-Key is over {MAX_IDEMPOTENCY_KEY} characters");
            return (400, error_body(&why, None), Some(why));
        }
        let ttl = IDEMPOTENCY_TTL.as_millis() as i64;
        inner.saved.retain(|_, saved| now - saved.at < ttl);
        if let Some(saved) = inner.saved.get(key) {
            let why = Some("replayed for its Idempotency-Key".to_owned());
            return (saved.status, saved.body.clone(), why);
        }
    }
    let answer = match route {
        Route::Address(vault, asset) => create_address(&mut inner, &vault, &asset, body),
        Route::Addresses(vault, asset) => {
            let query = parts.uri.query().unwrap_or_default();
            list_addresses(&inner, &vault, &asset, query)
        }
        Route::Create => create_transaction(&mut inner, &shared.url, body),
        Route::Get(id) => transaction(&inner, "id", &id),
        Route::External(id) => transaction(&inner, "externalTxId", &id),
    };
    if let Some(key) = key {
        let (status, body) = (answer.0, answer.1.clone());
        inner.saved.insert(
            key.to_owned(),
            Saved {
                at: now,
                status,
                body,
            },
        );
    }
    answer
}

/// A 400 without a code.
fn invalid(why: String) -> Answer {
    (400, error_body(&why, None), Some(why))
}

/// The JSON object of `body` (`{}` when empty).
fn object(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err("The request body is not a JSON object".to_owned()),
    }
}

/// Optional string field `name` (absent or `null`: `None`).
fn optional<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name} must be a string")),
    }
}

/// Required non-empty string field `name`.
fn required<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    let value = optional(fields, name)?.filter(|s| !s.is_empty());
    value.ok_or_else(|| format!("{name} is required"))
}

/// Object field `name`.
fn nested<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a Map<String, Value>, String> {
    let value = fields.get(name).and_then(Value::as_object);
    value.ok_or_else(|| format!("{name} must be an object"))
}

/// A numeric vault account id (the server knows every one).
fn is_vault(id: &str) -> bool {
    (1..=10).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

/// 2 to 32 of [`ASSET_ID_CHARS`].
fn is_asset(id: &str) -> bool {
    (2..=32).contains(&id.len()) && id.chars().all(|c| ASSET_ID_CHARS.contains(c))
}

/// A positive decimal string (`"0.5"`, `"12"`), at most 64 characters.
pub(super) fn is_amount(s: &str) -> bool {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let nonzero = s.bytes().any(|b| (b'1'..=b'9').contains(&b));
    s.len() <= 64 && digits(whole) && digits(fraction) && nonzero
}

/// A new version-4-shaped UUID, never the same twice.
pub(super) fn new_uuid(inner: &mut Inner, salt: &str) -> String {
    inner.counter += 1;
    let seed = format!("{salt}/{}/{:?}", inner.counter, SystemTime::now());
    let mut bytes = Sha256::digest(seed.as_bytes())[..16].to_vec();
    bytes[6] = bytes[6] & 0x0f | 0x40;
    bytes[8] = bytes[8] & 0x3f | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The `index`-th address of (`vault`, `asset`): `bc1q`/`tb1q` and 38
/// bech32 characters for `BTC*` assets (`tb1q` for test networks), else
/// `0x` and 40 lowercase hex digits. Derived from the three, so the same
/// in every run and unique per (vault, asset, index); checksums are not
/// valid.
fn address(vault: &str, asset: &str, index: usize) -> String {
    let seed = format!("{vault}/{asset}/{index}");
    let digest = Sha256::digest(seed.as_bytes());
    if !asset.starts_with("BTC") {
        return format!("0x{}", hex::encode(&digest[..20]));
    }
    const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let more = Sha256::digest(format!("{seed}/more").as_bytes());
    let tail = digest.iter().chain(more.iter()).take(38);
    let prefix = if asset.contains("TEST") {
        "tb1q"
    } else {
        "bc1q"
    };
    let tail: String = tail.map(|b| BECH32[(b % 32) as usize] as char).collect();
    format!("{prefix}{tail}")
}

/// The 404 of a vault account id that is not numeric, or of an asset id
/// not of [`ASSET_ID_CHARS`].
fn no_wallet(vault: &str, asset: &str) -> Option<Answer> {
    if !is_vault(vault) {
        let why = format!("vault account id {vault} is not numeric");
        let body = error_body("Vault account Id was not found", Some(1004));
        return Some((404, body, Some(why)));
    }
    let why = format!("asset id {asset} is not 2 to 32 of A-Z, 0-9, _");
    let body = error_body("Asset doesn't exist", Some(1006));
    (!is_asset(asset)).then_some((404, body, Some(why)))
}

/// `GET /v1/vault/accounts/{vault}/{asset}/addresses_paginated?limit&after`:
/// `{addresses: [VaultWalletAddress], paging: {after?}}`, oldest first;
/// `limit` 1 to 500 (default 200), `after` the cursor of the next page (an
/// index: Fireblocks' cursors are opaque; limits invented, `before` not
/// modelled).
fn list_addresses(inner: &Inner, vault: &str, asset: &str, query: &str) -> Answer {
    if let Some(refused) = no_wallet(vault, asset) {
        return refused;
    }
    let param = |name: &str| {
        let pairs = query.split('&').filter_map(|p| p.split_once('='));
        pairs
            .filter(|(k, _)| *k == name)
            .find_map(|(_, v)| decode(v))
    };
    let limit = param("limit").map_or(Some(200), |l| l.parse().ok());
    let Some(limit) = limit.filter(|l: &usize| (1..=500).contains(l)) else {
        return invalid("limit must be 1 to 500".to_owned());
    };
    let Some(start) = param("after").map_or(Some(0), |a| a.parse::<usize>().ok()) else {
        return invalid("after is not a cursor of this list".to_owned());
    };
    let mine = |a: &&Value| a["vaultAccountId"] == vault && a["assetId"] == asset;
    let all: Vec<Value> = inner.addresses.iter().filter(mine).cloned().collect();
    let mut page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    page.iter_mut()
        .filter_map(Value::as_object_mut)
        .for_each(|a| {
            a.remove("vaultAccountId");
        });
    let more = start.saturating_add(limit) < all.len();
    let paging = if more {
        json!({ "after": (start + limit).to_string() })
    } else {
        json!({})
    };
    let answer = json!({ "addresses": page, "paging": paging });
    (200, answer.to_string(), None)
}

/// `POST /v1/vault/accounts/{vault}/{asset}/addresses`, body
/// `{description?, customerRefId?}`: `CreateAddressResponse`.
fn create_address(inner: &mut Inner, vault: &str, asset: &str, body: &[u8]) -> Answer {
    if let Some(refused) = no_wallet(vault, asset) {
        return refused;
    }
    let fields = match object(body) {
        Ok(fields) => fields,
        Err(why) => return invalid(why),
    };
    let (description, customer) = match (
        optional(&fields, "description"),
        optional(&fields, "customerRefId"),
    ) {
        (Ok(description), Ok(customer)) => (description, customer),
        (Err(why), _) | (_, Err(why)) => return invalid(why),
    };
    let mine = |a: &&Value| a["vaultAccountId"] == vault && a["assetId"] == asset;
    let index = inner.addresses.iter().filter(mine).count();
    let address = address(vault, asset, index);
    inner.addresses.push(json!({
        "vaultAccountId": vault, "assetId": asset, "address": address, "legacyAddress": "",
        "enterpriseAddress": "", "tag": "", "description": description.unwrap_or_default(),
        "customerRefId": customer, "type": "Permanent", "bip44AddressIndex": index,
        "addressFormat": if address.starts_with("0x") { "" } else { "SEGWIT" },
        "userDefined": false,
    }));
    let answer = json!({ "address": address, "legacyAddress": "", "enterpriseAddress": "",
                         "tag": "", "bip44AddressIndex": index });
    (200, answer.to_string(), None)
}

/// `POST /v1/transactions`: `{id, status: "SUBMITTED"}`.
fn create_transaction(inner: &mut Inner, salt: &str, body: &[u8]) -> Answer {
    let fields = match object(body) {
        Ok(fields) => fields,
        Err(why) => return invalid(why),
    };
    let asset = fields.get("assetId").and_then(Value::as_str);
    if let Some(asset) = asset.filter(|a| !is_asset(a)) {
        let message = format!(
            "The asset '{asset}' is not supported by Fireblocks, please check the supported \
             assets endpoint."
        );
        return (400, error_body(&message, Some(1503)), Some(message));
    }
    let mut tx = match validate(&fields) {
        Ok(tx) => tx,
        Err(why) => return invalid(why),
    };
    let external = &tx["externalTxId"];
    let taken = |t: &Value| !external.is_null() && t["externalTxId"] == *external;
    if inner.transactions.iter().any(taken) {
        let why = Some(format!("externalTxId {external} is taken"));
        return (400, error_body(DUPLICATE, Some(1438)), why);
    }
    let id = new_uuid(inner, salt);
    let now = chrono::Utc::now().timestamp_millis();
    tx["id"] = json!(id);
    (tx["createdAt"], tx["lastUpdated"]) = (json!(now), json!(now));
    inner.transactions.push(tx);
    (
        200,
        json!({ "id": id, "status": "SUBMITTED" }).to_string(),
        None,
    )
}

/// The new transaction (without `id` and times) a create body asks for:
/// a TRANSFER of `amount` (a positive decimal *string*: the deprecated
/// number form is refused, unlike Fireblocks, to catch clients sending it)
/// of `assetId` from `source {type: VAULT_ACCOUNT, id}` to `destination
/// {type: ONE_TIME_ADDRESS, oneTimeAddress {address, tag?}}`, with optional
/// `externalTxId`, `note`, `customerRefId`, `feeLevel`; other fields are
/// ignored.
fn validate(fields: &Map<String, Value>) -> Result<Value, String> {
    let asset = required(fields, "assetId")?;
    let amount = match fields.get("amount") {
        None | Some(Value::Null) => return Err("amount is required".to_owned()),
        Some(Value::String(s)) if is_amount(s) => s.as_str(),
        Some(Value::Number(_)) => return Err("amount must be a numeric string".to_owned()),
        Some(_) => return Err("amount must be a positive decimal string".to_owned()),
    };
    if optional(fields, "operation")?.is_some_and(|o| o != "TRANSFER") {
        return Err("only the TRANSFER operation is supported".to_owned());
    }
    let level = optional(fields, "feeLevel")?;
    if level.is_some_and(|l| !["LOW", "MEDIUM", "HIGH"].contains(&l)) {
        return Err("feeLevel must be LOW, MEDIUM or HIGH".to_owned());
    }
    let source = nested(fields, "source")?;
    let vault = required(source, "id")?;
    if required(source, "type")? != "VAULT_ACCOUNT" || !is_vault(vault) {
        return Err("source must be {type: VAULT_ACCOUNT, id: <numeric id>}".to_owned());
    }
    let destination = nested(fields, "destination")?;
    if required(destination, "type")? != "ONE_TIME_ADDRESS" {
        return Err("destination.type must be ONE_TIME_ADDRESS".to_owned());
    }
    let one_time = nested(destination, "oneTimeAddress")?;
    let (to, tag) = (required(one_time, "address")?, optional(one_time, "tag")?);
    let external = optional(fields, "externalTxId")?;
    if external == Some("") {
        return Err("externalTxId must not be empty".to_owned());
    }
    let (note, customer) = (
        optional(fields, "note")?,
        optional(fields, "customerRefId")?,
    );
    Ok(json!({
        "id": null, "externalTxId": external, "status": "SUBMITTED", "subStatus": "",
        "txHash": "", "operation": "TRANSFER", "assetId": asset,
        "amount": amount.parse::<f64>().unwrap_or(0.0),
        "amountInfo": { "amount": amount, "requestedAmount": amount, "netAmount": amount },
        "source": { "type": "VAULT_ACCOUNT", "id": vault },
        "destination": { "type": "ONE_TIME_ADDRESS" },
        "destinationAddress": to, "destinationTag": tag.unwrap_or_default(),
        "customerRefId": customer, "note": note.unwrap_or_default(),
        "createdAt": null, "lastUpdated": null,
    }))
}

/// `GET /v1/transactions/{id}` (`field` `id`) or `…/external_tx_id/{id}`
/// (`externalTxId`).
fn transaction(inner: &Inner, field: &str, value: &str) -> Answer {
    match inner.transactions.iter().find(|t| t[field] == value) {
        Some(tx) => (200, tx.to_string(), None),
        None => {
            let why = format!("no transaction with {field} {value}");
            let body = error_body("Transaction not found", Some(NOT_FOUND_CODE));
            (404, body, Some(why))
        }
    }
}
