//! Fireblocks webhooks: the RSA signature scheme and the transaction
//! payloads this service acts on.
//!
//! Scheme (Fireblocks, "validating webhooks"): `Fireblocks-Signature` is
//! the base64 RSASSA-PKCS1-v1_5 signature with SHA-512 of the exact raw
//! body, made with Fireblocks' private key; we verify with its public key
//! (configured PEM file, or the sandbox custody's).
//!
//! Payload (v1): `{"type": "TRANSACTION_CREATED"|"TRANSACTION_STATUS_UPDATED",
//! "tenantId", "timestamp", "data": {"id", "externalTxId", "customerRefId",
//! "status", "assetId", "destination": {"type"}, "destinationAddress",
//! "amountInfo": {"amount"}, "txHash", "index"}}`. v1 deliveries carry no
//! event id, and a Fireblocks transaction reaches each status once, so the
//! delivery id is `"{data.id}:{data.status}"`. `index` (optional) is
//! Fireblocks' position of the transfer within the chain transaction: the
//! UTXO's vout, or the transfer's position on account chains; Fireblocks
//! leaves it out when a transaction has several destinations.
//! - With `externalTxId` (our withdrawal's transaction id, which we pass
//!   when submitting) and `customerRefId` (our user id): status
//!   `COMPLETED` completes the withdrawal; `FAILED`, `REJECTED`,
//!   `CANCELLED`, `BLOCKED` fail it; other statuses are ignored.
//! - Without `externalTxId`, to a `VAULT_ACCOUNT` destination, `COMPLETED`:
//!   an incoming deposit for user `customerRefId` at `destinationAddress`,
//!   of the chain transfer (`assetId`, `txHash`, `index`). Fireblocks may
//!   notify one chain transfer under several of its ids; the deposit is
//!   credited once per chain transfer, not per id (see
//!   [`process`](super::process)).

use super::keys::{KeyError, WebhookKeys};
use super::notice::{self, Direction, Notice, Outcome, PayloadError, SignatureError};
use super::provider::WebhookProvider;
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::json;
use sha2::Sha512;

/// Header carrying the signature.
pub const HEADER: &str = "fireblocks-signature";

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
    let kind = notice::id_at(&v, "/type", "type")?;
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
    let user_id = notice::id_at(&v, "/data/customerRefId", "data.customerRefId")?;
    if let Some(transaction_id) =
        notice::optional_id_at(&v, "/data/externalTxId", "data.externalTxId")?
    {
        return Ok(Notice::Settlement {
            webhook_id,
            event_type,
            user_id,
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

    fn signature_headers(&self) -> &'static [&'static str] {
        &[HEADER]
    }

    async fn verify(
        &self,
        keys: &WebhookKeys,
        headers: &axum::http::HeaderMap,
        body: &[u8],
        _now: i64,
    ) -> Result<Result<(), SignatureError>, KeyError> {
        Ok(verify(&keys.fireblocks().await?, headers, body))
    }

    fn read(&self, body: &[u8]) -> Result<Notice, PayloadError> {
        read(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use std::sync::OnceLock;

    const BODY: &[u8] = br#"{"type":"TRANSACTION_STATUS_UPDATED","data":{"id":"fb1"}}"#;

    /// Small keys keep the tests fast (the scheme is the same).
    fn keys() -> &'static (RsaPrivateKey, RsaPrivateKey) {
        static KEYS: OnceLock<(RsaPrivateKey, RsaPrivateKey)> = OnceLock::new();
        KEYS.get_or_init(|| {
            let mut rng = rand::thread_rng();
            (
                RsaPrivateKey::new(&mut rng, 1024).unwrap(),
                RsaPrivateKey::new(&mut rng, 1024).unwrap(),
            )
        })
    }

    fn headers(value: &str) -> HeaderMap {
        notice::header_map("Fireblocks-Signature", value)
    }

    #[test]
    fn good_signature_passes() {
        let (key, _) = keys();
        let h = headers(&sign(key, BODY));
        assert_eq!(verify(&key.to_public_key(), &h, BODY), Ok(()));
    }

    #[test]
    fn tampered_body_fails() {
        let (key, _) = keys();
        let h = headers(&sign(key, BODY));
        let tampered = br#"{"type":"TRANSACTION_STATUS_UPDATED","data":{"id":"fb2"}}"#;
        assert_eq!(
            verify(&key.to_public_key(), &h, tampered),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_key_fails() {
        let (key, other) = keys();
        let h = headers(&sign(other, BODY));
        assert_eq!(
            verify(&key.to_public_key(), &h, BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_or_malformed_header_fails() {
        let public = keys().0.to_public_key();
        assert_eq!(
            verify(&public, &HeaderMap::new(), BODY),
            Err(SignatureError::Missing(HEADER))
        );
        assert_eq!(
            verify(&public, &headers("%%%"), BODY),
            Err(SignatureError::Malformed(HEADER))
        );
        assert!(verify(&public, &headers("AAAA"), BODY).is_err());
    }

    #[test]
    fn reads_withdrawal_updates_and_incoming_deposits() {
        let mut report = TransactionReport {
            fireblocks_id: "fb9",
            external_tx_id: Some("tx1"),
            user_id: "u1",
            status: "COMPLETED",
            asset: "BTC",
            amount: "0.5",
            destination_address: "bc1qexample",
            tx_hash: "abc",
        };
        assert_eq!(
            read(&transaction_body(&report)).unwrap(),
            Notice::Settlement {
                webhook_id: "fb9:COMPLETED".into(),
                event_type: "transaction_status_updated.completed".into(),
                user_id: "u1".into(),
                transaction_id: "tx1".into(),
                direction: Direction::Out,
                outcome: Outcome::Completed,
                amount: Some("0.5".into()),
            }
        );
        report.external_tx_id = None;
        assert!(matches!(
            read(&transaction_body(&report)).unwrap(),
            Notice::IncomingDeposit { ref asset, ref address, .. } if asset == "BTC" && address == "bc1qexample"
        ));
        let mut with_index: serde_json::Value =
            serde_json::from_slice(&transaction_body(&report)).unwrap();
        for (index, read_as) in [
            (json!(2), Ok(Some(2))),
            (json!("7"), Ok(Some(7))),
            (json!(null), Ok(None)),
            (json!(-1), Err(PayloadError::Field("data.index"))),
            (json!(1.5), Err(PayloadError::Field("data.index"))),
            (json!("x1"), Err(PayloadError::Field("data.index"))),
            (json!([0]), Err(PayloadError::Field("data.index"))),
        ] {
            with_index["data"]["index"] = index.clone();
            let body = with_index.to_string();
            let got = read(body.as_bytes()).map(|n| match n {
                Notice::IncomingDeposit { output_index, .. } => output_index,
                other => panic!("{other:?}"),
            });
            assert_eq!(got, read_as, "{index}");
        }
        report.status = "CONFIRMING";
        assert!(matches!(
            read(&transaction_body(&report)).unwrap(),
            Notice::Ignored { .. }
        ));
    }
}
