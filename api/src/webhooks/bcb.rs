//! BCB Group webhooks: an HMAC of the body, and the payment payloads this
//! service acts on.
//!
//! Scheme: `X-BCB-Signature: {hex}` where `hex` is the lowercase hex
//! HMAC-SHA256 of the exact raw body, keyed with the webhook secret,
//! compared in constant time. The body carries no timestamp, so a replay
//! of a genuine delivery is caught by its `event_id` (webhook receipts),
//! not by the signature.
//!
//! Payload: `{"event_id", "event_type", "data": {"reference", "amount",
//! "currency", "metadata": {"user_id", "transaction_id"}}}`. Event types:
//! `payment.settled` completes a fiat deposit, `payment.failed` fails it;
//! `payout.settled` completes a fiat withdrawal, `payout.failed` /
//! `payout.rejected` fail it; others are ignored.

use super::keys::BCB_SECRET_FILE;
use super::notice::{self, Direction, Notice, Outcome, PayloadError, SignatureError};
use super::provider::{HmacPayments, HmacSecret};
use super::signing::{hmac_sha256, hmac_sha256_matches};
use crate::providers::payment::{BankInstructions, NextStep, PaymentOrder};
use crate::secret::Secret;
use axum::http::HeaderMap;
use serde_json::json;

/// Header carrying the signature.
pub const HEADER: &str = "x-bcb-signature";

/// The `X-BCB-Signature` value of `body`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.expose().as_bytes(), &[body]))
}

/// Checks the `X-BCB-Signature` header of `body`.
pub fn verify(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let value = notice::header(headers, HEADER)?;
    if value.trim().is_empty() {
        return Err(SignatureError::Malformed(HEADER));
    }
    if hmac_sha256_matches(secret.expose().as_bytes(), &[body], value) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Reads a verified BCB notice.
pub fn read(body: &[u8]) -> Result<Notice, PayloadError> {
    let v = notice::json(body)?;
    let webhook_id = notice::id_at(&v, "/event_id", "event_id")?;
    let event_type = notice::id_at(&v, "/event_type", "event_type")?;
    let (direction, outcome) = match event_type.as_str() {
        "payment.settled" => (Direction::In, Outcome::Completed),
        "payment.failed" => (Direction::In, Outcome::Failed),
        "payout.settled" => (Direction::Out, Outcome::Completed),
        "payout.failed" | "payout.rejected" => (Direction::Out, Outcome::Failed),
        _ => {
            return Ok(Notice::Ignored {
                webhook_id,
                event_type,
            })
        }
    };
    Ok(Notice::Settlement {
        user_id: notice::id_at(&v, "/data/metadata/user_id", "data.metadata.user_id")?,
        transaction_id: notice::id_at(
            &v,
            "/data/metadata/transaction_id",
            "data.metadata.transaction_id",
        )?,
        amount: notice::optional_id_at(&v, "/data/amount", "data.amount")?,
        webhook_id,
        event_type,
        direction,
        outcome,
    })
}

/// A BCB notice about one of our transactions, as the sandbox sends it.
pub fn event_body(report: &super::delivery::Report<'_>, webhook_id: &str) -> Vec<u8> {
    let event_type = match (report.direction, report.outcome) {
        (Direction::In, Outcome::Completed) => "payment.settled",
        (Direction::In, Outcome::Failed) => "payment.failed",
        (Direction::Out, Outcome::Completed) => "payout.settled",
        (Direction::Out, Outcome::Failed) => "payout.failed",
    };
    json!({
        "event_id": webhook_id,
        "event_type": event_type,
        "created_at": crate::events::now().to_rfc3339(),
        "data": {
            "reference": report.provider_ref,
            "amount": report.amount,
            "currency": report.currency,
            "metadata": {"user_id": report.user_id, "transaction_id": report.transaction_id},
        },
    })
    .to_string()
    .into_bytes()
}

/// BCB Group in the webhook registry.
pub static PROVIDER: HmacPayments = HmacPayments {
    name: "bcb",
    headers: &[HEADER],
    secret: HmacSecret {
        file: BCB_SECRET_FILE,
        prefix: "",
        configured: |config| config.bcb_webhook_secret.clone(),
    },
    // No timestamp in the scheme: replays are caught by `event_id`.
    verify: |secret, _path, headers, body, _now| verify(secret, headers, body),
    read,
    sandbox_ref_prefix: "bcb_sandbox_",
    sandbox_next_step: |_, order| NextStep::Instructions(sandbox_instructions(order)),
    event_body,
    sign: |secret, _path, body, _now| vec![(HEADER, sign(secret, body))],
};

/// The bank transfer the sandbox asks for: naming the deposit.
fn sandbox_instructions(order: &PaymentOrder) -> BankInstructions {
    BankInstructions {
        bank_name: "BCB Payments Ltd (sandbox)".into(),
        account_name: "NA-X Stream client funds".into(),
        iban: "GB33BUKB20201555555555".into(),
        bic: "BUKBGB22".into(),
        // 35 characters at most (SEPA remittance reference).
        reference: format!("NAX{}", order.transaction_id.replace('-', ""))
            .chars()
            .take(35)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"event_id":"e1","event_type":"payment.settled"}"#;

    fn headers(value: &str) -> HeaderMap {
        notice::header_map("X-BCB-Signature", value)
    }

    fn secret() -> Secret {
        Secret::new("bcb-secret")
    }

    #[test]
    fn good_signature_passes() {
        let value = sign(&secret(), BODY);
        assert_eq!(value, hex::encode(hmac_sha256(b"bcb-secret", &[BODY])));
        assert_eq!(verify(&secret(), &headers(&value), BODY), Ok(()));
    }

    #[test]
    fn tampered_body_fails() {
        let h = headers(&sign(&secret(), BODY));
        assert_eq!(
            verify(&secret(), &h, b"{\"event_id\":\"e2\"}"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret_fails() {
        let h = headers(&sign(&Secret::new("other"), BODY));
        assert_eq!(verify(&secret(), &h, BODY), Err(SignatureError::Mismatch));
    }

    #[test]
    fn missing_or_empty_header_fails() {
        assert_eq!(
            verify(&secret(), &HeaderMap::new(), BODY),
            Err(SignatureError::Missing(HEADER))
        );
        assert_eq!(
            verify(&secret(), &headers(""), BODY),
            Err(SignatureError::Malformed(HEADER))
        );
        assert_eq!(
            verify(&secret(), &headers("zz"), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn reads_payments_and_payouts() {
        let body = br#"{"event_id":"e3","event_type":"payout.failed","data":{"amount":"1.00","metadata":{"user_id":"u","transaction_id":"t"}}}"#;
        assert_eq!(
            read(body).unwrap(),
            Notice::Settlement {
                webhook_id: "e3".into(),
                event_type: "payout.failed".into(),
                user_id: "u".into(),
                transaction_id: "t".into(),
                direction: Direction::Out,
                outcome: Outcome::Failed,
                amount: Some("1.00".into()),
            }
        );
        assert!(matches!(read(b"[1"), Err(PayloadError::NotJson(_))));
    }
}
