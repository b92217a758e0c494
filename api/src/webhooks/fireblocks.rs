//! Fireblocks webhooks: the RSA signature schemes and the transaction
//! payloads this service acts on.
//!
//! Schemes (Fireblocks, "validating webhooks"):
//! - **v2 (JWKS)**: `Fireblocks-Webhook-Signature: {header}..{signature}`,
//!   a JWS with detached payload (RFC 7515 appendix F): the header names
//!   the key (`kid`) and `alg` `RS512`; the signature is RSASSA-PKCS1-v1_5
//!   with SHA-512 over `"{header}.{base64url(raw body)}"`, with the key
//!   of that `kid` in Fireblocks' key set (`fireblocks_jwks_url`,
//!   [`super::jwks`]: a rotated key is fetched when first named; a `kid`
//!   the fetched set does not hold is refused). No timestamp is signed: a replay
//!   is caught by the delivery id.
//! - **v1 (legacy)**: `Fireblocks-Signature` is the base64
//!   RSASSA-PKCS1-v1_5 signature with SHA-512 of the exact raw body; we
//!   verify with Fireblocks' public key (`fireblocks_public_key_file`, or
//!   the sandbox custody's when neither that nor a key set is
//!   configured).
//!
//! With a key set configured, a delivery carrying the v2 header is
//! checked by it alone; one without it is checked by v1 only while the
//! v1 key file is configured (Fireblocks sends both during its
//! migration), and refused otherwise.
//!
//! Payload (v1): `{"type": "TRANSACTION_CREATED"|"TRANSACTION_STATUS_UPDATED",
//! "tenantId", "timestamp", "data": {"id", "externalTxId", "customerRefId",
//! "status", "assetId", "destination": {"type"}, "destinationAddress",
//! "amountInfo": {"amount"}, "txHash", "index"}}`. v1 deliveries carry no
//! event id, and a Fireblocks transaction reaches each status once, so the
//! delivery id is `"{data.id}:{data.status}"`. `index` (optional) is
//! Fireblocks' position of the transfer within the chain transaction: the
//! UTXO's vout, or the transfer's position on account chains; Fireblocks
//! leaves it out when a transaction has several destinations. Payload
//! (v2): `{"id", "eventType": "transaction.created"|"transaction.status.updated",
//! "workspaceId", "createdAt", "data": {…the same transaction…}}`, read
//! the same way (and with the same delivery id, so a notice delivered in
//! both formats counts once).
//! - With `externalTxId` (our withdrawal's transaction id, which we pass
//!   when submitting) and `customerRefId` (our user id): status
//!   `COMPLETED` completes the withdrawal; `FAILED`, `REJECTED`,
//!   `CANCELLED`, `BLOCKED` fail it; other statuses are ignored.
//! - Without `externalTxId`, to a `VAULT_ACCOUNT` destination, `COMPLETED`:
//!   an incoming deposit at `destinationAddress`, for user `customerRefId`
//!   when the notice has one, else for the user custody made that address
//!   for (Fireblocks does not document `customerRefId` on incoming
//!   transfers, so the applier asks custody, [`Custody::owner_of`](crate::providers::custody::Custody::owner_of)),
//!   of the chain transfer (`assetId`, `txHash`, `index`). Fireblocks may
//!   notify one chain transfer under several of its ids; the deposit is
//!   credited once per chain transfer, not per id (see
//!   [`process`](super::process)).

use super::jwks::Lookup;
use super::keys::{KeyError, WebhookKeys};
use super::notice::{self, Direction, Notice, Outcome, PayloadError, SignatureError};
use super::provider::WebhookProvider;
use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::json;
use sha2::Sha512;

/// Header carrying the v1 signature.
pub const HEADER: &str = "fireblocks-signature";
/// Header carrying the v2 signature (a detached JWS).
pub const V2_HEADER: &str = "fireblocks-webhook-signature";
/// The one algorithm v2 signatures may name.
pub const V2_ALG: &str = "RS512";
/// Longest JWS header accepted (base64url characters).
const MAX_JWS_HEADER: usize = 2048;

/// The protected header of a v2 signature.
#[derive(serde::Deserialize)]
struct JwsHeader {
    alg: String,
    kid: String,
    /// RFC 7797's unencoded payload: not Fireblocks' format, refused.
    b64: Option<bool>,
    crit: Option<serde_json::Value>,
}

/// A well-formed v2 signature: the encoded header, its `kid`, and the
/// signature's bytes.
fn parse_v2(value: &str) -> Result<(&str, String, Vec<u8>), SignatureError> {
    let malformed = SignatureError::Malformed(V2_HEADER);
    let mut parts = value.trim().split('.');
    let (Some(header), Some(""), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed);
    };
    if header.is_empty() || header.len() > MAX_JWS_HEADER {
        return Err(malformed);
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed.clone())?;
    let parsed: JwsHeader = serde_json::from_slice(&decoded).map_err(|_| malformed.clone())?;
    if parsed.alg != V2_ALG
        || parsed.b64.is_some()
        || parsed.crit.is_some()
        || parsed.kid.is_empty()
        || parsed.kid.len() > 256
    {
        return Err(malformed);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| malformed.clone())?;
    Ok((header, parsed.kid, signature))
}

/// Checks the `Fireblocks-Webhook-Signature` of `body` against the key
/// set. The outer error is the set that could not be fetched.
pub async fn verify_v2(
    jwks: &super::jwks::Jwks,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<Result<(), SignatureError>, KeyError> {
    let checked = notice::header(headers, V2_HEADER).and_then(parse_v2);
    let (header, kid, signature) = match checked {
        Ok(parts) => parts,
        Err(e) => return Ok(Err(e)),
    };
    match jwks.key(&kid).await.map_err(KeyError::Fetch)? {
        Lookup::Key(key) => Ok(verify_jws(&key, header, &signature, body)),
        Lookup::Unknown => Ok(Err(SignatureError::UnknownKey)),
        // Answered 500: Fireblocks delivers again later.
        Lookup::Deferred => Err(KeyError::Fetch(format!(
            "key {kid} is not in the cached key set and no fetch is allowed now"
        ))),
    }
}

/// Checks the `Fireblocks-Webhook-Signature` of `body` with `key`,
/// whatever `kid` it names (the fuzz target's entry; deliveries go through
/// [`verify_v2`]).
pub fn verify_v2_with(
    key: &RsaPublicKey,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    let value = notice::header(headers, V2_HEADER)?;
    let (header, _kid, signature) = parse_v2(value)?;
    verify_jws(key, header, &signature, body)
}

/// RS512 over `"{header}.{base64url(body)}"`.
fn verify_jws(
    key: &RsaPublicKey,
    header: &str,
    signature: &[u8],
    body: &[u8],
) -> Result<(), SignatureError> {
    let signature =
        Signature::try_from(signature).map_err(|_| SignatureError::Malformed(V2_HEADER))?;
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(body));
    VerifyingKey::<Sha512>::new(key.clone())
        .verify(input.as_bytes(), &signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// The `Fireblocks-Signature` value of `body`.
pub fn sign(key: &RsaPrivateKey, body: &[u8]) -> String {
    let signature = SigningKey::<Sha512>::new(key.clone()).sign(body);
    STANDARD.encode(signature.to_bytes())
}

/// Checks the `Fireblocks-Signature` header of `body`.
pub fn verify(
    key: &RsaPublicKey,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    let value = notice::header(headers, HEADER)?;
    let bytes = STANDARD
        .decode(value.trim())
        .map_err(|_| SignatureError::Malformed(HEADER))?;
    let signature =
        Signature::try_from(bytes.as_slice()).map_err(|_| SignatureError::Malformed(HEADER))?;
    VerifyingKey::<Sha512>::new(key.clone())
        .verify(body, &signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// Reads a verified Fireblocks notice.
pub fn read(body: &[u8]) -> Result<Notice, PayloadError> {
    let v = notice::json(body)?;
    // v2 names the event in `eventType` (`transaction.status.updated`),
    // v1 in `type` (`TRANSACTION_STATUS_UPDATED`): one vocabulary.
    let kind = match v.get("eventType") {
        Some(_) => notice::id_at(&v, "/eventType", "eventType")?
            .replace('.', "_")
            .to_ascii_uppercase(),
        None => notice::id_at(&v, "/type", "type")?,
    };
    let fireblocks_id = notice::id_at(&v, "/data/id", "data.id")?;
    let status = notice::id_at(&v, "/data/status", "data.status")?;
    let webhook_id = format!("{fireblocks_id}:{status}");
    let event_type = format!(
        "{}.{}",
        kind.to_ascii_lowercase(),
        status.to_ascii_lowercase()
    );
    let ignored = || Notice::Ignored {
        webhook_id: webhook_id.clone(),
        event_type: event_type.clone(),
    };
    if kind != "TRANSACTION_CREATED" && kind != "TRANSACTION_STATUS_UPDATED" {
        return Ok(ignored());
    }
    let outcome = match status.as_str() {
        "COMPLETED" => Outcome::Completed,
        "FAILED" | "REJECTED" | "CANCELLED" | "BLOCKED" => Outcome::Failed,
        _ => return Ok(ignored()),
    };
    let amount = notice::optional_id_at(&v, "/data/amountInfo/amount", "data.amountInfo.amount")?;
    let user_id = notice::optional_id_at(&v, "/data/customerRefId", "data.customerRefId")?;
    if let Some(transaction_id) =
        notice::optional_id_at(&v, "/data/externalTxId", "data.externalTxId")?
    {
        return Ok(Notice::Settlement {
            webhook_id,
            event_type,
            // We set it on every withdrawal we submit.
            user_id: user_id.ok_or(PayloadError::Field("data.customerRefId"))?,
            transaction_id,
            direction: Direction::Out,
            outcome,
            amount,
        });
    }
    let to_vault =
        v.pointer("/data/destination/type").and_then(|t| t.as_str()) == Some("VAULT_ACCOUNT");
    if !to_vault || outcome != Outcome::Completed {
        return Ok(ignored());
    }
    Ok(Notice::IncomingDeposit {
        asset: notice::id_at(&v, "/data/assetId", "data.assetId")?,
        amount: amount.ok_or(PayloadError::Field("data.amountInfo.amount"))?,
        address: notice::id_at(&v, "/data/destinationAddress", "data.destinationAddress")?,
        tx_hash: notice::optional_id_at(&v, "/data/txHash", "data.txHash")?,
        output_index: output_index(&v)?,
        custody_ref: fireblocks_id,
        webhook_id,
        event_type,
        user_id,
    })
}

/// `data.index`: absent or `null` is `None`; otherwise a non-negative
/// integer, as a JSON number or a string of digits.
fn output_index(v: &serde_json::Value) -> Result<Option<u64>, PayloadError> {
    let refused = PayloadError::Field("data.index");
    match v.pointer("/data/index") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64().map(Some).ok_or(refused),
        Some(serde_json::Value::String(s))
            if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().map(Some).map_err(|_| refused)
        }
        Some(_) => Err(refused),
    }
}

/// What a Fireblocks transaction notice says, for [`transaction_body`].
pub struct TransactionReport<'a> {
    /// Fireblocks' transaction id.
    pub fireblocks_id: &'a str,
    /// Our transaction id (withdrawals), `None` for incoming deposits.
    pub external_tx_id: Option<&'a str>,
    pub user_id: &'a str,
    pub status: &'a str,
    pub asset: &'a str,
    pub amount: &'a str,
    pub destination_address: &'a str,
    pub tx_hash: &'a str,
}

/// A `TRANSACTION_STATUS_UPDATED` body, as the sandbox custody (and tests
/// playing Fireblocks) send it: outgoing from the omnibus vault when
/// `external_tx_id` is set, else incoming to the user's vault account.
pub fn transaction_body(r: &TransactionReport<'_>) -> Vec<u8> {
    let (source, destination) = match r.external_tx_id {
        Some(_) => (
            json!({"type": "VAULT_ACCOUNT", "id": "0", "name": "omnibus"}),
            json!({"type": "ONE_TIME_ADDRESS"}),
        ),
        None => (
            json!({"type": "UNKNOWN"}),
            json!({"type": "VAULT_ACCOUNT", "name": r.user_id}),
        ),
    };
    json!({
        "type": "TRANSACTION_STATUS_UPDATED",
        "tenantId": "sandbox",
        "timestamp": chrono::Utc::now().timestamp_millis(),
        "data": {
            "id": r.fireblocks_id,
            "externalTxId": r.external_tx_id,
            "customerRefId": r.user_id,
            "status": r.status,
            "operation": "TRANSFER",
            "assetId": r.asset,
            "source": source,
            "destination": destination,
            "destinationAddress": r.destination_address,
            "amountInfo": {"amount": r.amount, "requestedAmount": r.amount},
            "txHash": r.tx_hash,
        },
    })
    .to_string()
    .into_bytes()
}

/// Fireblocks (custody) in the webhook registry.
pub struct Fireblocks;

#[async_trait]
impl WebhookProvider for Fireblocks {
    fn name(&self) -> &'static str {
        "fireblocks"
    }

    async fn verify(
        &self,
        keys: &WebhookKeys,
        headers: &axum::http::HeaderMap,
        body: &[u8],
        _now: i64,
    ) -> Result<Result<(), SignatureError>, KeyError> {
        match keys.fireblocks_jwks() {
            Some(jwks) if headers.contains_key(V2_HEADER) => verify_v2(jwks, headers, body).await,
            // With a key set, v1 only while its key file is configured.
            Some(_) if !keys.fireblocks_v1_configured() => {
                Ok(Err(SignatureError::Missing(V2_HEADER)))
            }
            _ => Ok(verify(&keys.fireblocks().await?, headers, body)),
        }
    }

    fn read(&self, body: &[u8]) -> Result<Notice, PayloadError> {
        read(body)
    }
}

#[cfg(test)]
#[path = "fireblocks_tests.rs"]
mod tests;
