//! Fireblocks as custody (`custody_provider = "fireblocks"`), through its
//! REST API (docs/API.md "Webhooks", docs/ARCHITECTURE.md "Adding a
//! payment, custody or KYC adapter").
//!
//! - **Deposit addresses**: one address per user and asset in the deposit
//!   vault (`fireblocks_vault_id`), tagged with the user id as
//!   `customerRefId`. Asked for one, the adapter first looks for the
//!   user's address (`GET /v1/vault/accounts/{vault}/{asset}/addresses_paginated`,
//!   at most [`MAX_ADDRESS_PAGES`] pages), and creates it only when there
//!   is none (`POST …/addresses` with an `Idempotency-Key` derived from
//!   the user and asset), so the address is the same on every call; then
//!   kept in memory. Known limit: the lookup reads at most
//!   [`MAX_ADDRESS_PAGES`] pages of 500 (10,000 addresses per asset);
//!   past that, a stored mapping is needed (not built).
//!   Fireblocks makes such addresses for UTXO assets (BTC); account-based
//!   assets (ETH) need a vault account per user, which is not built: it
//!   refuses them, and so does the adapter (`unsupported_asset`).
//! - **Withdrawals**: `POST /v1/transactions` from the vault to a one-time
//!   address, `externalTxId` = our transaction id (Fireblocks refuses a
//!   second transaction with it), plus the same id as `Idempotency-Key`.
//!   Any answer but a success is checked with
//!   `GET /v1/transactions/external_tx_id/{id}` before it counts as a
//!   refusal: a transaction already made with our id (an earlier attempt
//!   whose answer was lost) is the answer, so the funds are never given
//!   back for a transfer that may still go out. The outcome arrives as a webhook
//!   ([`crate::webhooks::fireblocks`]).
//! - **Status** (reconciliation): `GET /v1/transactions/{id}`: `COMPLETED`
//!   completed; `FAILED`, `REJECTED`, `CANCELLED`, `BLOCKED` failed;
//!   anything else pending.
//!
//! Every request carries `X-API-Key` and `Authorization: Bearer {jwt}`:
//! RS256 with the API user's private key (`fireblocks_api_secret_file`),
//! claims `uri` (path and query), `nonce` (random, never repeated),
//! `iat`, `exp` (`iat` + 30 s, as Fireblocks documents), `sub` (the API
//! key) and `bodyHash` (hex SHA-256 of the exact body; of nothing for a
//! GET). Our asset symbols map to Fireblocks asset ids through
//! `fireblocks_asset_ids` (`BTC=BTC_TEST,…`; unlisted: the same symbol).
//! Answers are read through [`super::answer`], bounded before parsing.

use super::answer;
use super::custody::{Custody, CustodyError, DepositAddress, WithdrawalOrder};
use super::{ProviderContext, RemoteStatus, SetupError};
use crate::money::address::Network;
use crate::secret::Secret;
use crate::secrets::{Derived, LiveSecret};
use async_trait::async_trait;
use inbound::JsonBounds;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Bounds of an answer of Fireblocks', checked before it is parsed.
pub const ANSWER_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 512 * 1024,
    max_depth: 16,
    max_elements: 50_000,
};
/// Most pages of a vault's addresses read looking for a user's.
pub const MAX_ADDRESS_PAGES: usize = 20;
/// Lifetime of a request's token (Fireblocks: under 30 s).
const TOKEN_SECS: i64 = 30;

/// The Fireblocks adapter for `ctx`.
pub fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn Custody>, SetupError> {
    let config = ctx.config;
    let missing = |setting: &'static str| SetupError::Missing {
        setting,
        because: "api.custody_provider is \"fireblocks\"",
    };
    if config.fireblocks_api_url.is_empty() {
        return Err(missing("fireblocks_api_url"));
    }
    let api_key = ctx.secrets.setting(config.fireblocks_api_key.as_ref());
    let api_key = api_key.ok_or(missing("fireblocks_api_key"))?;
    let pem = match (
        &config.fireblocks_api_secret,
        &config.fireblocks_api_secret_file,
    ) {
        (Some(pem), _) => ctx.secrets.live(pem),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map(|pem| LiveSecret::fixed(Secret::new(pem)))
            .map_err(|e| SetupError::Client(format!("{file}: {e}")))?,
        (None, None) => return Err(missing("fireblocks_api_secret_file")),
    };
    let signing = Derived::default();
    signing.get(&pem, signing_key).map_err(SetupError::Client)?;
    if config.fireblocks_vault_id.is_empty() {
        return Err(missing("fireblocks_vault_id"));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.upstream_timeout_ms))
        .build()
        .map_err(|e| SetupError::Client(e.to_string()))?;
    Ok(Arc::new(FireblocksCustody {
        http,
        base: config.fireblocks_api_url.trim_end_matches('/').to_owned(),
        api_key,
        pem,
        signing,
        vault: config.fireblocks_vault_id.clone(),
        asset_ids: asset_ids(&config.fireblocks_asset_ids),
        addresses: dashmap::DashMap::new(),
    }))
}

/// The RS256 key of the PEM in `pem` (the API secret; its value is never
/// in the error).
fn signing_key(pem: &Secret) -> Result<EncodingKey, String> {
    EncodingKey::from_rsa_pem(pem.expose().as_bytes())
        .map_err(|e| format!("api.fireblocks_api_secret(_file) holds no RSA private key: {e}"))
}

/// `BTC=BTC_TEST,ETH=ETH_TEST5` as a map (blank or malformed entries are
/// skipped: the configuration check refuses them first).
pub fn asset_ids(setting: &str) -> HashMap<String, String> {
    setting
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(ours, theirs)| (ours.trim().to_owned(), theirs.trim().to_owned()))
        .filter(|(ours, theirs)| !ours.is_empty() && !theirs.is_empty())
        .collect()
}

/// Fireblocks' REST API.
pub struct FireblocksCustody {
    http: reqwest::Client,
    base: String,
    /// Read at each request: rotated without a restart.
    api_key: LiveSecret,
    /// The private key's PEM, and the signing key parsed from its value.
    pem: LiveSecret,
    signing: Derived<EncodingKey>,
    vault: String,
    asset_ids: HashMap<String, String>,
    /// Addresses found or made, by (user, asset): a user's address never
    /// changes, and every deposit notice asks for it.
    addresses: dashmap::DashMap<(String, String), String>,
}

/// The claims of a request's token.
#[derive(Serialize)]
pub struct Claims<'a> {
    pub uri: &'a str,
    pub nonce: String,
    pub iat: i64,
    pub exp: i64,
    pub sub: &'a str,
    #[serde(rename = "bodyHash")]
    pub body_hash: String,
}

/// The claims of a request to `uri` (path and query) with `body`, at `now`.
pub fn claims<'a>(uri: &'a str, body: &[u8], api_key: &'a str, now: i64) -> Claims<'a> {
    Claims {
        uri,
        nonce: uuid::Uuid::new_v4().to_string(),
        iat: now,
        exp: now + TOKEN_SECS,
        sub: api_key,
        body_hash: hex::encode(Sha256::digest(body)),
    }
}

/// The error an answer of status `status` means (`{message, code}`).
fn refusal(status: u16, body: &Value) -> CustodyError {
    let message: String = answer::text_at(body, "/message")
        .unwrap_or_else(|| "no detail".to_owned())
        .chars()
        .take(200)
        .collect();
    let code = body.get("code").and_then(Value::as_i64).unwrap_or(0);
    let said = format!("fireblocks {status} (code {code}): {message}");
    match status {
        429 | 500..=599 => CustodyError::Unavailable(said),
        401 | 403 => {
            tracing::error!(status, code,
                "fireblocks refused our authentication; check the API key, its secret key and the clock");
            CustodyError::Unavailable(said)
        }
        _ => CustodyError::Rejected(said),
    }
}

impl FireblocksCustody {
    fn asset_id<'a>(&'a self, asset: &'a str) -> &'a str {
        self.asset_ids.get(asset).map_or(asset, String::as_str)
    }

    /// One signed request to `uri` (path and query, from `/v1`).
    async fn call(
        &self,
        method: reqwest::Method,
        uri: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Value), CustodyError> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let now = chrono::Utc::now().timestamp();
        let signing_error = |e| CustodyError::Unavailable(format!("signing a request: {e}"));
        let signing = self.signing.get(&self.pem, signing_key);
        let api_key = self.api_key.current();
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims(uri, &bytes, api_key.expose(), now),
            &*signing.map_err(signing_error)?,
        )
        .map_err(|e| signing_error(e.to_string()))?;
        let mut request = self
            .http
            .request(method, format!("{}{uri}", self.base))
            .header("x-api-key", api_key.expose())
            .bearer_auth(token)
            .header("accept", "application/json");
        if !bytes.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(bytes);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CustodyError::Unavailable(format!("no answer: {e}")))?;
        answer::read(response, &ANSWER_BOUNDS)
            .await
            .map_err(CustodyError::Unavailable)
    }

    /// The first of the vault's addresses of `asset_id` that `wanted`
    /// picks.
    async fn scan(
        &self,
        asset_id: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Result<Option<Value>, CustodyError> {
        let mut after: Option<String> = None;
        for _ in 0..MAX_ADDRESS_PAGES {
            let mut uri = format!(
                "/v1/vault/accounts/{}/{asset_id}/addresses_paginated?limit=500",
                self.vault
            );
            if let Some(cursor) = &after {
                uri.push_str("&after=");
                uri.push_str(
                    &form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>(),
                );
            }
            let (status, page) = self.call(reqwest::Method::GET, &uri, None, None).await?;
            match status {
                200..=299 => {}
                404 => return Ok(None),
                _ => return Err(refusal(status, &page)),
            }
            let found = page
                .get("addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|a| wanted(a));
            if let Some(found) = found {
                return Ok(Some(found.clone()));
            }
            match answer::text_at(&page, "/paging/after") {
                Some(cursor) => after = Some(cursor),
                None => return Ok(None),
            }
        }
        Err(CustodyError::Unavailable(format!(
            "the vault holds more than {MAX_ADDRESS_PAGES} pages of {asset_id} addresses"
        )))
    }

    /// The address of `user_id` among the vault's addresses of `asset_id`.
    async fn find_address(
        &self,
        asset_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, CustodyError> {
        let mine = |a: &Value| a.get("customerRefId").and_then(Value::as_str) == Some(user_id);
        let found = self.scan(asset_id, mine).await?;
        Ok(found.and_then(|a| answer::text_at(&a, "/address")))
    }
}

impl FireblocksCustody {
    /// The transaction submitted with `external_id`, if any.
    async fn by_external_id(&self, external_id: &str) -> Result<Option<Value>, CustodyError> {
        let id: String = form_urlencoded::byte_serialize(external_id.as_bytes()).collect();
        let uri = format!("/v1/transactions/external_tx_id/{id}");
        let (status, found) = self.call(reqwest::Method::GET, &uri, None, None).await?;
        match status {
            200..=299 => Ok(Some(found)),
            404 => Ok(None),
            _ => Err(CustodyError::Unavailable(format!(
                "looking up transaction {external_id}: {}",
                refusal(status, &found)
            ))),
        }
    }
}

/// The `Idempotency-Key` of creating `user_id`'s `asset` address (at most
/// 40 characters, as Fireblocks allows).
pub fn address_key(user_id: &str, asset: &str) -> String {
    let digest = Sha256::digest(format!("deposit-address\0{user_id}\0{asset}"));
    hex::encode(&digest[..20])
}

/// What a transaction's `status` says.
pub fn remote_status(status: &str) -> RemoteStatus {
    match status {
        "COMPLETED" => RemoteStatus::Completed,
        "FAILED" | "REJECTED" | "CANCELLED" | "BLOCKED" => RemoteStatus::Failed(status.to_owned()),
        _ => RemoteStatus::Pending,
    }
}

#[async_trait]
impl Custody for FireblocksCustody {
    async fn owner_of(&self, asset: &str, address: &str) -> Result<Option<String>, CustodyError> {
        let known = self
            .addresses
            .iter()
            .find(|e| e.key().1 == asset && e.value() == address)
            .map(|e| e.key().0.clone());
        if known.is_some() {
            return Ok(known);
        }
        let this = |a: &Value| a.get("address").and_then(Value::as_str) == Some(address);
        let found = self.scan(self.asset_id(asset), this).await?;
        Ok(found.and_then(|a| answer::text_at(&a, "/customerRefId")))
    }

    fn our_asset(&self, custody_asset: &str) -> String {
        self.asset_ids
            .iter()
            .find(|(_, theirs)| theirs.as_str() == custody_asset)
            .map_or(custody_asset, |(ours, _)| ours.as_str())
            .to_owned()
    }

    async fn deposit_address(
        &self,
        user_id: &str,
        asset: &str,
    ) -> Result<DepositAddress, CustodyError> {
        let network = Network::of(asset)
            .filter(|n| *n == Network::Bitcoin)
            .ok_or_else(|| CustodyError::UnsupportedAsset(asset.to_owned()))?;
        let key = (user_id.to_owned(), asset.to_owned());
        if let Some(address) = self.addresses.get(&key) {
            return Ok(DepositAddress {
                asset: asset.to_owned(),
                address: address.clone(),
                network,
            });
        }
        let asset_id = self.asset_id(asset);
        let found = self.find_address(asset_id, user_id).await?;
        let address = match found {
            Some(address) => address,
            None => {
                let uri = format!("/v1/vault/accounts/{}/{asset_id}/addresses", self.vault);
                let body =
                    json!({"customerRefId": user_id, "description": format!("nax user {user_id}")});
                let key = address_key(user_id, asset);
                let (status, made) = self
                    .call(reqwest::Method::POST, &uri, Some(body), Some(&key))
                    .await?;
                if !(200..300).contains(&status) {
                    return Err(refusal(status, &made));
                }
                answer::text_at(&made, "/address").ok_or_else(|| {
                    CustodyError::Unavailable("fireblocks answer without address".into())
                })?
            }
        };
        self.addresses.insert(key, address.clone());
        Ok(DepositAddress {
            asset: asset.to_owned(),
            address,
            network,
        })
    }

    async fn submit_withdrawal(&self, order: &WithdrawalOrder) -> Result<String, CustodyError> {
        if Network::of(&order.asset).is_none() {
            return Err(CustodyError::UnsupportedAsset(order.asset.clone()));
        }
        let body = json!({
            "operation": "TRANSFER",
            "assetId": self.asset_id(&order.asset),
            "amount": order.amount,
            "source": {"type": "VAULT_ACCOUNT", "id": self.vault},
            "destination": {"type": "ONE_TIME_ADDRESS", "oneTimeAddress": {"address": order.address}},
            "externalTxId": order.transaction_id,
            "customerRefId": order.user_id,
            "note": format!("withdrawal {}", order.transaction_id),
        });
        let (status, answer) = self
            .call(
                reqwest::Method::POST,
                "/v1/transactions",
                Some(body),
                Some(&order.transaction_id),
            )
            .await?;
        let answer = match status {
            200..=299 => answer,
            // Any other answer may follow an earlier attempt that was
            // taken (a 1438 duplicate, or the 400 Fireblocks gives a key
            // reused after an internal error): the transaction with our
            // id, if one exists, is the answer; a refusal stands only when
            // there is none, so funds are never given back for a transfer
            // that may still go out.
            _ => match self.by_external_id(&order.transaction_id).await? {
                Some(first) => first,
                None => return Err(refusal(status, &answer)),
            },
        };
        answer::text_at(&answer, "/id")
            .filter(|id| id.len() <= crate::webhooks::notice::MAX_ID_LEN)
            .ok_or_else(|| CustodyError::Unavailable("fireblocks answer without id".into()))
    }

    async fn transfer_status(&self, provider_ref: &str) -> Result<RemoteStatus, CustodyError> {
        let safe = !provider_ref.is_empty()
            && provider_ref.len() <= 128
            && provider_ref
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !safe {
            return Ok(RemoteStatus::NotFound);
        }
        let uri = format!("/v1/transactions/{provider_ref}");
        let (status, answer) = self.call(reqwest::Method::GET, &uri, None, None).await?;
        match status {
            200..=299 => {}
            404 => return Ok(RemoteStatus::NotFound),
            _ => return Err(refusal(status, &answer)),
        }
        let word = answer::text_at(&answer, "/status")
            .ok_or_else(|| CustodyError::Unavailable("fireblocks answer without status".into()))?;
        Ok(remote_status(&word))
    }
}

#[cfg(test)]
#[path = "custody_fireblocks_tests.rs"]
mod tests;
