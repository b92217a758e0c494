//! BCB Group webhooks: an HMAC of the body, and the notices this service
//! acts on, in the shapes BCB documents (its API blueprint, "Payment
//! Status Webhooks" and "Notifications"; docs.bcb.group "Webhook
//! signature").
//!
//! Scheme: `X-BCB-Signature: {hex}` where `hex` is the lowercase hex
//! HMAC-SHA256 of the exact raw body, keyed with the webhook secret,
//! compared in constant time. The body carries no timestamp, so a replay
//! of a genuine delivery is caught by its delivery id (webhook receipts),
//! not by the signature.
//!
//! Payloads, both naming our transaction by BCB's reference to it (the
//! reference recorded when it was opened, [`Notice::ProviderSettlement`]):
//! - **payment status** (payouts): a JSON array of one
//!   `{"endToEndIdentification", "transactionId", "nonce", "response"}`;
//!   `response` `Complete` completes the payout, `Rejected` fails it,
//!   `Accepted`/`Processing` (and others) are acknowledged and ignored.
//!   Delivery id `{transactionId}:{response}`.
//! - **transaction notification** (deposits): `{"subject": "TRANSACTION:…",
//!   "timestamp", "account_id", "transactions": [one {"id", "credit": true,
//!   "reference", "amount_actual", "currency", …}]}`: a credit quoting the
//!   deposit's reference completes it (a debit is ignored). Delivery id
//!   `transaction:{id}`. The amount is a JSON number in BCB's body; it is
//!   read from its decimal text, never through a float's arithmetic.
//!
//! A body with several statuses or transactions is refused (400
//! `invalid_payload`) rather than half applied: BCB's examples carry one.
//! A bank transfer that never arrives sends nothing; the payment sandbox
//! reports a failed deposit as a `Rejected` status naming its reference
//! (a signal of the sandbox's own).

use super::keys::BCB_SECRET_FILE;
use super::notice::{self, Direction, Notice, Outcome, PayloadError, SignatureError};
use super::provider::{HmacPayments, HmacSecret};
use super::signing::{hmac_sha256, hmac_sha256_matches};
use crate::providers::payment::{BankInstructions, NextStep};
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
    match &v {
        serde_json::Value::Array(items) => read_status(items),
        serde_json::Value::Object(_) => read_transaction(&v),
        _ => Err(PayloadError::Field("body")),
    }
}

/// The one element of `items`, or a refusal naming `what`.
fn only<'a>(
    items: Option<&'a Vec<serde_json::Value>>,
    what: &'static str,
) -> Result<&'a serde_json::Value, PayloadError> {
    match items.map(Vec::as_slice) {
        Some([one]) => Ok(one),
        _ => Err(PayloadError::Field(what)),
    }
}

fn read_status(items: &Vec<serde_json::Value>) -> Result<Notice, PayloadError> {
    let item = only(Some(items), "one payment status")?;
    let provider_ref = notice::id_at(item, "/transactionId", "transactionId")?;
    let response = notice::id_at(item, "/response", "response")?;
    let webhook_id = format!("{provider_ref}:{response}");
    let event_type = format!("payment.{}", response.to_ascii_lowercase());
    let outcome = match response.as_str() {
        "Complete" => Outcome::Completed,
        "Rejected" => Outcome::Failed,
        _ => {
            return Ok(Notice::Ignored {
                webhook_id,
                event_type,
            })
        }
    };
    Ok(Notice::ProviderSettlement {
        webhook_id,
        event_type,
        provider_ref,
        outcome,
        amount: None,
        currency: None,
    })
}

fn read_transaction(v: &serde_json::Value) -> Result<Notice, PayloadError> {
    let t = only(
        v.get("transactions").and_then(serde_json::Value::as_array),
        "one transaction",
    )?;
    let id = match t.get("id") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => notice::id_at(t, "/id", "transactions.id")?,
    };
    let webhook_id = format!("transaction:{id}");
    // `true` in notifications, `1` in BCB's transaction listings.
    let credit = t
        .get("credit")
        .is_some_and(|c| c.as_bool() == Some(true) || c.as_i64() == Some(1));
    if !credit {
        return Ok(Notice::Ignored {
            webhook_id,
            event_type: "transaction.debit".into(),
        });
    }
    let reference = notice::id_at(t, "/reference", "transactions.reference")?;
    let amount = match t.get("amount_actual") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => notice::id_at(t, "/amount_actual", "transactions.amount_actual")?,
    };
    Ok(Notice::ProviderSettlement {
        webhook_id,
        event_type: "transaction.credit".into(),
        provider_ref: reference.trim().to_owned(),
        outcome: Outcome::Completed,
        amount: Some(amount),
        currency: notice::optional_id_at(t, "/currency", "transactions.currency")?,
    })
}

/// A BCB notice about one of our transactions, as the sandbox sends it:
/// a transaction notification for a paid deposit, a payment status
/// otherwise (see the module doc).
pub fn event_body(report: &super::delivery::Report<'_>, webhook_id: &str) -> Vec<u8> {
    let number = |amount: &str| {
        serde_json::from_str::<serde_json::Number>(amount)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|_| json!(amount))
    };
    match (report.direction, report.outcome) {
        (Direction::In, Outcome::Completed) => json!({
            "subject": format!("TRANSACTION:{}:{webhook_id}", report.currency),
            "timestamp": crate::events::now().to_rfc3339(),
            "account_id": 10001,
            "transactions": [{
                "id": webhook_id,
                "timestamp": crate::events::now().to_rfc3339(),
                "amount_instructed": number(report.amount),
                "amount_actual": number(report.amount),
                "currency": report.currency,
                "credit": true,
                "reference": report.provider_ref,
                "account_name": "Sandbox Payer",
                "notes_external": "",
            }],
        }),
        (_, outcome) => json!([{
            "endToEndIdentification": webhook_id,
            "transactionId": report.provider_ref,
            "nonce": report.transaction_id,
            "response": if outcome == Outcome::Completed { "Complete" } else { "Rejected" },
        }]),
    }
    .to_string()
    .into_bytes()
}

/// BCB Group in the webhook registry.
pub static PROVIDER: HmacPayments = HmacPayments {
    name: "bcb",
    secret: HmacSecret {
        file: BCB_SECRET_FILE,
        prefix: "",
        configured: |config| config.bcb_webhook_secret.clone(),
    },
    // No timestamp in the scheme: replays are caught by the delivery id.
    verify: |secret, _path, headers, body, _now| verify(secret, headers, body),
    read,
    // The deposit's bank reference is its provider reference (what
    // BCB's notification quotes): "NAX" and 32 hex digits, within the 35
    // characters of a SEPA remittance reference.
    sandbox_ref_prefix: "NAX",
    sandbox_next_step: |provider_ref, _| NextStep::Instructions(sandbox_instructions(provider_ref)),
    event_body,
    sign: |secret, _path, body, _now| vec![(HEADER, sign(secret, body))],
};

/// The bank transfer the sandbox asks for, quoting the deposit's
/// reference.
fn sandbox_instructions(provider_ref: &str) -> BankInstructions {
    BankInstructions {
        bank_name: "BCB Payments Ltd (sandbox)".into(),
        account_name: "NA-X Stream client funds".into(),
        iban: "GB33BUKB20201555555555".into(),
        bic: "BUKBGB22".into(),
        reference: provider_ref.chars().take(35).collect(),
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

    /// Pinned to openssl, not to our HMAC code:
    /// `printf "$STATUS" | openssl dgst -sha256 -hmac bcb-secret`.
    #[test]
    fn a_signature_made_with_openssl_passes() {
        let status = br#"[{"endToEndIdentification":"E2E-1","transactionId":"61f5a1a0-1","nonce":"tx-1","response":"Complete"}]"#;
        let openssl = "750fb197fd210321d069081ae45db540b520fe2ef75505284d3dc8a3b7619e9c";
        assert_eq!(sign(&secret(), status), openssl);
        assert_eq!(verify(&secret(), &headers(openssl), status), Ok(()));
        let value = sign(&secret(), BODY);
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

    /// BCB's documented shapes (its blueprint's examples, re-typed).
    #[test]
    fn reads_payment_statuses_and_transaction_notifications() {
        let complete = br#"[{"endToEndIdentification":"E2E-1","transactionId":"61f5a1a0-1","nonce":"tx-1","response":"Complete"}]"#;
        assert_eq!(
            read(complete).unwrap(),
            Notice::ProviderSettlement {
                webhook_id: "61f5a1a0-1:Complete".into(),
                event_type: "payment.complete".into(),
                provider_ref: "61f5a1a0-1".into(),
                outcome: Outcome::Completed,
                amount: None,
                currency: None,
            }
        );
        let rejected = br#"[{"transactionId":"61f5a1a0-1","response":"Rejected"}]"#;
        assert!(matches!(
            read(rejected).unwrap(),
            Notice::ProviderSettlement {
                outcome: Outcome::Failed,
                ..
            }
        ));
        let accepted = br#"[{"transactionId":"61f5a1a0-1","response":"Accepted"}]"#;
        assert!(matches!(read(accepted).unwrap(), Notice::Ignored { .. }));
        let two = br#"[{"transactionId":"a","response":"Complete"},{"transactionId":"b","response":"Complete"}]"#;
        assert_eq!(read(two), Err(PayloadError::Field("one payment status")));

        let deposit = br#"{"subject":"TRANSACTION:GBP:1234","timestamp":"2026-12-05T10:00:00Z","account_id":10001,"transactions":[{"id":1234,"timestamp":"2026-12-05T10:00:00Z","amount_instructed":12.34,"amount_actual":12.34,"currency":"GBP","credit":true,"reference":"NAX0123 ","bank_name":"Barclays","account_name":"A Payer","notes_external":""}]}"#;
        assert_eq!(
            read(deposit).unwrap(),
            Notice::ProviderSettlement {
                webhook_id: "transaction:1234".into(),
                event_type: "transaction.credit".into(),
                provider_ref: "NAX0123".into(),
                outcome: Outcome::Completed,
                amount: Some("12.34".into()),
                currency: Some("GBP".into()),
            }
        );
        let debit = String::from_utf8(deposit.to_vec())
            .unwrap()
            .replace("\"credit\":true", "\"credit\":false");
        assert!(matches!(
            read(debit.as_bytes()).unwrap(),
            Notice::Ignored { .. }
        ));
        assert!(matches!(read(b"[1"), Err(PayloadError::NotJson(_))));
        assert_eq!(read(b"7"), Err(PayloadError::Field("body")));
    }
}
