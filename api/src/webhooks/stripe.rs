//! Stripe webhooks: the `Stripe-Signature` scheme and the event payloads
//! this service acts on.
//!
//! Scheme (Stripe, "verify webhook signatures manually"): the header is
//! `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]` (other
//! schemes such as `v0` are ignored); each `v1` is HMAC-SHA256, keyed
//! with the endpoint secret (the whole `whsec_…` string), over
//! `"{t}.{raw body}"`. A delivery passes when `t` is within
//! [`TOLERANCE_SECS`] of now (either way) and any `v1` matches, compared
//! in constant time (several `v1` appear while a secret is being rolled).
//!
//! Events: `payment_intent.succeeded` / `checkout.session.completed`
//! complete a fiat deposit; `payment_intent.canceled`,
//! `checkout.session.expired` fail it. `payment_intent.payment_failed` is
//! acknowledged and ignored: it reports one declined attempt, after which
//! the intent is back to `requires_payment_method` and the user may pay
//! with another card (failing the deposit then would leave a later
//! success uncredited);
//! `payout.paid` completes a fiat withdrawal, `payout.failed` /
//! `payout.canceled` fail it. The transaction is named by
//! `data.object.metadata.{user_id, transaction_id}`; `data.object.amount`
//! (or `amount_total`) is in minor units (cents). `charge.refunded`
//! (whose object is the Charge) names the deposit by its
//! `payment_intent` and the total refunded by `amount_refunded`
//! (cumulative over partial refunds): a [`Notice::Refund`]. Other types
//! are ignored.

use super::keys::STRIPE_SECRET_FILE;
use super::notice::{self, Direction, Notice, Outcome, PayloadError, SignatureError};
use super::provider::{HmacPayments, HmacSecret};
use super::signing::{hmac_sha256, hmac_sha256_matches};
use crate::providers::payment::NextStep;
use crate::secret::Secret;
use axum::http::HeaderMap;
use serde_json::json;

/// Header carrying the signature (lowercase: header names are
/// case-insensitive).
pub const HEADER: &str = "stripe-signature";
/// Largest accepted distance between `t` and now.
pub const TOLERANCE_SECS: i64 = 300;
/// Decimals of the minor unit of the currencies accepted (USD, EUR, GBP).
pub const MINOR_UNIT_SCALE: u8 = 2;

/// The `Stripe-Signature` value for `body` signed at `t`.
pub fn sign(secret: &Secret, t: i64, body: &[u8]) -> String {
    let mac = hmac_sha256(
        secret.expose().as_bytes(),
        &[t.to_string().as_bytes(), b".", body],
    );
    format!("t={t},v1={}", hex::encode(mac))
}

/// Checks the `Stripe-Signature` header of `body` at time `now`.
pub fn verify(
    secret: &Secret,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let value = notice::header(headers, HEADER)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            return Err(SignatureError::Malformed(HEADER));
        };
        match k {
            "t" => {
                let t: i64 = v.parse().map_err(|_| SignatureError::Malformed(HEADER))?;
                timestamp = Some(t);
            }
            "v1" => signatures.push(v),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed(HEADER))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed(HEADER));
    }
    if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let signed = [t.to_string().into_bytes(), b".".to_vec()];
    let parts: [&[u8]; 3] = [&signed[0], &signed[1], body];
    // Check every candidate (no early exit on the first match).
    let matched = signatures.iter().fold(false, |found, sig| {
        hmac_sha256_matches(secret.expose().as_bytes(), &parts, sig) | found
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Reads a verified Stripe event.
pub fn read(body: &[u8]) -> Result<Notice, PayloadError> {
    let v = notice::json(body)?;
    let webhook_id = notice::id_at(&v, "/id", "id")?;
    let event_type = notice::id_at(&v, "/type", "type")?;
    if event_type == "charge.refunded" {
        let refunded = v
            .pointer("/data/object/amount_refunded")
            .and_then(serde_json::Value::as_u64)
            .ok_or(PayloadError::Field("data.object.amount_refunded"))?;
        return Ok(Notice::Refund {
            provider_ref: notice::id_at(
                &v,
                "/data/object/payment_intent",
                "data.object.payment_intent",
            )?,
            refunded: orderbook::decimal::format_scaled(refunded, MINOR_UNIT_SCALE),
            webhook_id,
            event_type,
        });
    }
    let (direction, outcome) = match event_type.as_str() {
        "payment_intent.succeeded" | "checkout.session.completed" => {
            (Direction::In, Outcome::Completed)
        }
        "payment_intent.canceled" | "checkout.session.expired" => (Direction::In, Outcome::Failed),
        "payout.paid" => (Direction::Out, Outcome::Completed),
        "payout.failed" | "payout.canceled" => (Direction::Out, Outcome::Failed),
        _ => {
            return Ok(Notice::Ignored {
                webhook_id,
                event_type,
            })
        }
    };
    let object = v
        .pointer("/data/object")
        .ok_or(PayloadError::Field("data.object"))?;
    let minor = match object.get("amount").or_else(|| object.get("amount_total")) {
        None | Some(serde_json::Value::Null) => None,
        Some(a) => Some(
            a.as_u64()
                .ok_or(PayloadError::Field("data.object.amount"))?,
        ),
    };
    Ok(Notice::Settlement {
        user_id: notice::id_at(&v, "/data/object/metadata/user_id", "metadata.user_id")?,
        transaction_id: notice::id_at(
            &v,
            "/data/object/metadata/transaction_id",
            "metadata.transaction_id",
        )?,
        webhook_id,
        event_type,
        direction,
        outcome,
        amount: minor.map(|m| orderbook::decimal::format_scaled(m, MINOR_UNIT_SCALE)),
    })
}

/// A Stripe event about one of our transactions, as the sandbox sends it:
/// a `payment_intent` for deposits, a `payout` for withdrawals.
pub fn event_body(report: &super::delivery::Report<'_>, webhook_id: &str) -> Vec<u8> {
    let (event_type, object, status) = match (report.direction, report.outcome) {
        (Direction::In, Outcome::Completed) => {
            ("payment_intent.succeeded", "payment_intent", "succeeded")
        }
        (Direction::In, Outcome::Failed) => {
            ("payment_intent.canceled", "payment_intent", "canceled")
        }
        (Direction::Out, Outcome::Completed) => ("payout.paid", "payout", "paid"),
        (Direction::Out, Outcome::Failed) => ("payout.failed", "payout", "failed"),
    };
    let amount = orderbook::decimal::parse_scaled(report.amount, MINOR_UNIT_SCALE).ok();
    json!({
        "id": webhook_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": super::signing::unix_now(),
        "type": event_type,
        "livemode": false,
        "data": {"object": {
            "id": report.provider_ref,
            "object": object,
            "amount": amount,
            "currency": report.currency.to_ascii_lowercase(),
            "status": status,
            "metadata": {"user_id": report.user_id, "transaction_id": report.transaction_id},
        }},
    })
    .to_string()
    .into_bytes()
}

/// Stripe in the webhook registry.
pub static PROVIDER: HmacPayments = HmacPayments {
    name: "stripe",
    secret: HmacSecret {
        file: STRIPE_SECRET_FILE,
        prefix: "whsec_",
        configured: |config| config.stripe_webhook_secret.clone(),
    },
    verify: |secret, _path, headers, body, now| verify(secret, headers, body, now),
    read,
    sandbox_ref_prefix: "pi_sandbox_",
    sandbox_next_step: |provider_ref, _| {
        NextStep::PaymentUrl(format!(
            "https://checkout.stripe.invalid/pay/{provider_ref}"
        ))
    },
    event_body,
    sign: |secret, _path, body, now| vec![(HEADER, sign(secret, now, body))],
};

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    fn headers(value: &str) -> HeaderMap {
        notice::header_map("Stripe-Signature", value)
    }

    fn secret() -> Secret {
        Secret::new("whsec_test")
    }

    #[test]
    fn good_signature_passes() {
        let now = 1_700_000_000;
        let h = headers(&sign(&secret(), now, BODY));
        assert_eq!(verify(&secret(), &h, BODY, now), Ok(()));
        assert_eq!(verify(&secret(), &h, BODY, now + 299), Ok(()));
    }

    /// Pinned to openssl, not to our HMAC code:
    /// `printf '1700000000.{"id":"evt_1","type":"payment_intent.succeeded"}' | openssl dgst -sha256 -hmac whsec_test`.
    #[test]
    fn a_signature_made_with_openssl_passes() {
        let openssl = "001ce3ef73e456cedaab328328720d3ad59defb8bbd0f1518f46c04ad4ac0bb7";
        let value = format!("t=1700000000,v1={openssl}");
        assert_eq!(sign(&secret(), 1_700_000_000, BODY), value);
        assert_eq!(
            verify(&secret(), &headers(&value), BODY, 1_700_000_100),
            Ok(())
        );
    }

    /// A `charge.refunded` event as Stripe documents the Event and Charge
    /// objects (re-typed, trimmed): the deposit is named by the Charge's
    /// `payment_intent`, the total by its cumulative `amount_refunded`.
    #[test]
    fn a_refund_names_the_payment_intent_and_the_total_refunded() {
        let body = br#"{"id":"evt_3MqVGsLkdIwHu7ix0wU0pYzP","object":"event","api_version":"2024-06-20","created":1680064028,"type":"charge.refunded","livemode":false,"pending_webhooks":1,"request":{"id":"req_x","idempotency_key":null},"data":{"object":{"id":"ch_3MqVGsLkdIwHu7ix1aTtW5Cq","object":"charge","amount":2000,"amount_captured":2000,"amount_refunded":500,"currency":"usd","paid":true,"payment_intent":"pi_3MqVGsLkdIwHu7ix1D2MbFW2","refunded":false,"status":"succeeded","metadata":{}}}}"#;
        assert_eq!(
            read(body).unwrap(),
            Notice::Refund {
                webhook_id: "evt_3MqVGsLkdIwHu7ix0wU0pYzP".into(),
                event_type: "charge.refunded".into(),
                provider_ref: "pi_3MqVGsLkdIwHu7ix1D2MbFW2".into(),
                refunded: "5.00".into(),
            }
        );
        let no_intent =
            br#"{"id":"evt_4","type":"charge.refunded","data":{"object":{"amount_refunded":1}}}"#;
        assert_eq!(
            read(no_intent),
            Err(PayloadError::Field("data.object.payment_intent"))
        );
        let no_amount = br#"{"id":"evt_5","type":"charge.refunded","data":{"object":{"payment_intent":"pi_1","amount_refunded":-1}}}"#;
        assert_eq!(
            read(no_amount),
            Err(PayloadError::Field("data.object.amount_refunded"))
        );
    }

    #[test]
    fn tampered_body_fails() {
        let now = 1_700_000_000;
        let h = headers(&sign(&secret(), now, BODY));
        let tampered = br#"{"id":"evt_2","type":"payment_intent.succeeded"}"#;
        assert_eq!(
            verify(&secret(), &h, tampered, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret_fails() {
        let now = 1_700_000_000;
        let h = headers(&sign(&Secret::new("whsec_other"), now, BODY));
        assert_eq!(
            verify(&secret(), &h, BODY, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_or_malformed_header_fails() {
        let now = 1_700_000_000;
        assert_eq!(
            verify(&secret(), &HeaderMap::new(), BODY, now),
            Err(SignatureError::Missing(HEADER))
        );
        for bad in ["", "garbage", "t=abc,v1=00", "v1=00", "t=1700000000"] {
            assert!(
                verify(&secret(), &headers(bad), BODY, now).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn outside_tolerance_fails_both_ways() {
        let t = 1_700_000_000;
        let h = headers(&sign(&secret(), t, BODY));
        assert_eq!(
            verify(&secret(), &h, BODY, t + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&secret(), &h, BODY, t - 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn any_of_several_v1_may_match() {
        let now = 1_700_000_000;
        let good = sign(&secret(), now, BODY);
        let good_sig = good.split("v1=").nth(1).unwrap();
        let value = format!("t={now},v1={},v1={good_sig},v0=abc", "0".repeat(64));
        assert_eq!(verify(&secret(), &headers(&value), BODY, now), Ok(()));
        let none = format!("t={now},v1={},v0={good_sig}", "0".repeat(64));
        assert_eq!(
            verify(&secret(), &headers(&none), BODY, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn reads_settlements_and_ignores_other_types() {
        let body = br#"{"id":"evt_9","type":"payment_intent.succeeded","data":{"object":{"amount":1050,"metadata":{"user_id":"u1","transaction_id":"t1"}}}}"#;
        assert_eq!(
            read(body).unwrap(),
            Notice::Settlement {
                webhook_id: "evt_9".into(),
                event_type: "payment_intent.succeeded".into(),
                user_id: "u1".into(),
                transaction_id: "t1".into(),
                direction: Direction::In,
                outcome: Outcome::Completed,
                amount: Some("10.50".into()),
            }
        );
        let other = br#"{"id":"evt_8","type":"customer.created","data":{"object":{}}}"#;
        assert!(matches!(read(other).unwrap(), Notice::Ignored { .. }));
        // A declined attempt is not the deposit's end: the user may retry.
        let declined = br#"{"id":"evt_6","type":"payment_intent.payment_failed","data":{"object":{"amount":1050,"status":"requires_payment_method","metadata":{"user_id":"u1","transaction_id":"t1"}}}}"#;
        assert!(matches!(read(declined).unwrap(), Notice::Ignored { .. }));
        let canceled = br#"{"id":"evt_5","type":"payment_intent.canceled","data":{"object":{"amount":1050,"status":"canceled","metadata":{"user_id":"u1","transaction_id":"t1"}}}}"#;
        assert!(matches!(
            read(canceled).unwrap(),
            Notice::Settlement {
                outcome: Outcome::Failed,
                ..
            }
        ));
        let no_meta = br#"{"id":"evt_7","type":"payout.paid","data":{"object":{}}}"#;
        assert_eq!(read(no_meta), Err(PayloadError::Field("metadata.user_id")));
    }
}
