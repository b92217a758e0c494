//! Banxa webhooks: Banxa's HMAC request signature and the order payloads
//! this service acts on.
//!
//! Scheme (Banxa's API authentication, which its webhook calls carry too):
//! `Authorization: Bearer {api_key}:{signature}:{nonce}` where `nonce` is
//! the Unix time in seconds and `signature` is the lowercase hex
//! HMAC-SHA256, keyed with the API secret, over
//! `"POST\n{path}\n{nonce}\n{raw body}"` with `path` = [`PATH`]. The nonce
//! must be within [`TOLERANCE_SECS`] of now (replay window); `api_key`
//! must be present (the HMAC is what authenticates). Comparison is
//! constant-time.
//!
//! Payload: `{"id", "order_id", "order_type": "BUY"|"SELL", "status",
//! "fiat_amount", "fiat_code", "meta_data": {"user_id", "transaction_id"}}`.
//! `BUY` is a fiat deposit, `SELL` a fiat withdrawal; status `complete`
//! completes it, `failed`/`cancelled`/`declined`/`expired`/`refunded` fail
//! it, other statuses are ignored. `id` is the delivery id.

use super::keys::BANXA_SECRET_FILE;
use super::notice::{self, Direction, Notice, Outcome, PayloadError, SignatureError};
use super::provider::{HmacPayments, HmacSecret};
use super::signing::{hmac_sha256, hmac_sha256_matches};
use crate::providers::payment::NextStep;
use crate::secret::Secret;
use axum::http::HeaderMap;
use serde_json::json;

/// Header carrying the signature.
pub const HEADER: &str = "authorization";
/// The path covered by the signature.
pub const PATH: &str = "/webhooks/banxa";
/// Largest accepted distance between the nonce and now.
pub const TOLERANCE_SECS: i64 = 300;

fn message(nonce: &str, body: &[u8]) -> [Vec<u8>; 2] {
    [
        format!("POST\n{PATH}\n{nonce}\n").into_bytes(),
        body.to_vec(),
    ]
}

/// The `Authorization` value for `body` signed at `nonce`.
pub fn sign(api_key: &str, secret: &Secret, nonce: i64, body: &[u8]) -> String {
    let nonce = nonce.to_string();
    let [head, body] = message(&nonce, body);
    let signature = hmac_sha256(secret.expose().as_bytes(), &[&head, &body]);
    format!("Bearer {api_key}:{}:{nonce}", hex::encode(signature))
}

/// Checks the `Authorization` header of `body` at time `now`.
pub fn verify(
    secret: &Secret,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let value = notice::header(headers, HEADER)?;
    let malformed = SignatureError::Malformed(HEADER);
    let (scheme, credentials) = value.split_once(' ').ok_or(malformed.clone())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed);
    }
    let mut parts = credentials.trim().split(':');
    let (Some(api_key), Some(signature), Some(nonce), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed);
    };
    if api_key.is_empty() {
        return Err(malformed);
    }
    let t: i64 = nonce.parse().map_err(|_| malformed.clone())?;
    if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let [head, body] = message(nonce, body);
    if hmac_sha256_matches(secret.expose().as_bytes(), &[&head, &body], signature) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Reads a verified Banxa order notice.
pub fn read(body: &[u8]) -> Result<Notice, PayloadError> {
    let v = notice::json(body)?;
    let webhook_id = notice::id_at(&v, "/id", "id")?;
    let status = notice::id_at(&v, "/status", "status")?.to_ascii_lowercase();
    let order_type = notice::id_at(&v, "/order_type", "order_type")?;
    let event_type = format!("order.{}.{status}", order_type.to_ascii_lowercase());
    let direction = match order_type.to_ascii_uppercase().as_str() {
        "BUY" => Direction::In,
        "SELL" => Direction::Out,
        _ => return Err(PayloadError::Field("order_type")),
    };
    let outcome = match status.as_str() {
        "complete" | "completed" => Outcome::Completed,
        "failed" | "cancelled" | "declined" | "expired" | "refunded" => Outcome::Failed,
        _ => {
            return Ok(Notice::Ignored {
                webhook_id,
                event_type,
            })
        }
    };
    Ok(Notice::Settlement {
        user_id: notice::id_at(&v, "/meta_data/user_id", "meta_data.user_id")?,
        transaction_id: notice::id_at(&v, "/meta_data/transaction_id", "meta_data.transaction_id")?,
        amount: notice::optional_id_at(&v, "/fiat_amount", "fiat_amount")?,
        webhook_id,
        event_type,
        direction,
        outcome,
    })
}

/// A Banxa order notice about one of our transactions, as the sandbox
/// sends it.
pub fn event_body(report: &super::delivery::Report<'_>, webhook_id: &str) -> Vec<u8> {
    let order_type = match report.direction {
        Direction::In => "BUY",
        Direction::Out => "SELL",
    };
    let status = match report.outcome {
        Outcome::Completed => "complete",
        Outcome::Failed => "failed",
    };
    json!({
        "id": webhook_id,
        "order_id": report.provider_ref,
        "order_type": order_type,
        "status": status,
        "status_date": crate::events::now().to_rfc3339(),
        "fiat_amount": report.amount,
        "fiat_code": report.currency,
        "meta_data": {"user_id": report.user_id, "transaction_id": report.transaction_id},
    })
    .to_string()
    .into_bytes()
}

/// Banxa merchant key the sandbox signs with (the HMAC secret is what
/// authenticates).
pub const SANDBOX_API_KEY: &str = "nax-sandbox";

/// Banxa in the webhook registry.
pub static PROVIDER: HmacPayments = HmacPayments {
    name: "banxa",
    headers: &[HEADER],
    secret: HmacSecret {
        file: BANXA_SECRET_FILE,
        prefix: "",
        configured: |config| config.banxa_webhook_secret.clone(),
    },
    verify,
    read,
    sandbox_ref_prefix: "bx_sandbox_",
    sandbox_next_step: |provider_ref, _| {
        NextStep::PaymentUrl(format!(
            "https://checkout.banxa.invalid/order/{provider_ref}"
        ))
    },
    event_body,
    sign: |secret, body, now| vec![(HEADER, sign(SANDBOX_API_KEY, secret, now, body))],
};

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"bx_1","order_id":"o1","status":"complete"}"#;
    const NOW: i64 = 1_700_000_000;

    fn headers(value: &str) -> HeaderMap {
        notice::header_map("Authorization", value)
    }

    fn secret() -> Secret {
        Secret::new("banxa-secret")
    }

    #[test]
    fn good_signature_passes_and_matches_the_documented_message() {
        let value = sign("merchant", &secret(), NOW, BODY);
        let expected = hex::encode(hmac_sha256(
            b"banxa-secret",
            &[format!("POST\n/webhooks/banxa\n{NOW}\n").as_bytes(), BODY],
        ));
        assert_eq!(value, format!("Bearer merchant:{expected}:{NOW}"));
        assert_eq!(verify(&secret(), &headers(&value), BODY, NOW), Ok(()));
    }

    #[test]
    fn tampered_body_fails() {
        let h = headers(&sign("merchant", &secret(), NOW, BODY));
        assert_eq!(
            verify(&secret(), &h, b"{\"id\":\"bx_2\"}", NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret_fails() {
        let h = headers(&sign("merchant", &Secret::new("other"), NOW, BODY));
        assert_eq!(
            verify(&secret(), &h, BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_malformed_or_stale_fails() {
        assert_eq!(
            verify(&secret(), &HeaderMap::new(), BODY, NOW),
            Err(SignatureError::Missing(HEADER))
        );
        for bad in [
            "Basic abc",
            "Bearer merchant:abc",
            "Bearer :00:1700000000",
            "Bearer m:00:nonce",
            "Bearer m:00:1:2",
        ] {
            assert!(
                verify(&secret(), &headers(bad), BODY, NOW).is_err(),
                "{bad}"
            );
        }
        let h = headers(&sign("merchant", &secret(), NOW - 301, BODY));
        assert_eq!(verify(&secret(), &h, BODY, NOW), Err(SignatureError::Stale));
    }

    #[test]
    fn reads_orders() {
        let body = br#"{"id":"bx_9","order_id":"o","order_type":"SELL","status":"complete","fiat_amount":"5.00","meta_data":{"user_id":"u","transaction_id":"t"}}"#;
        assert_eq!(
            read(body).unwrap(),
            Notice::Settlement {
                webhook_id: "bx_9".into(),
                event_type: "order.sell.complete".into(),
                user_id: "u".into(),
                transaction_id: "t".into(),
                direction: Direction::Out,
                outcome: Outcome::Completed,
                amount: Some("5.00".into()),
            }
        );
        let pending = br#"{"id":"bx_8","order_type":"BUY","status":"pendingPayment"}"#;
        assert!(matches!(read(pending).unwrap(), Notice::Ignored { .. }));
    }
}
