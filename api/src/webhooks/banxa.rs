//! Banxa webhooks: Banxa's HMAC request signature and its order status
//! notices (docs/API.md, "Webhooks").
//!
//! Scheme (Banxa's API authentication, which its webhook calls carry
//! too): `Authorization: Bearer {api_key}:{signature}:{nonce}` where
//! `signature` is the lowercase hex HMAC-SHA256, keyed with the API
//! secret, over `"POST\n{path}\n{nonce}\n{raw body}"`. `path` is the URI
//! path of the webhook URL registered with Banxa: `/webhooks/banxa` after
//! the path of `webhook_base_url` when the service is reached through a
//! prefix ([`WebhookKeys::signed_path`](super::keys::WebhookKeys::signed_path)).
//! The nonce is a Unix time in seconds (10 digits), milliseconds (13:
//! Banxa's legacy API) or microseconds (16: its newer API), and must be
//! within [`TOLERANCE_SECS`] of now. `api_key` must be present (the HMAC
//! is what authenticates). Comparison is constant-time.
//!
//! Payload (Banxa's webhooks v2): `{"order_id", "status", "status_date"}`,
//! with the order's other fields (`order_type` `BUY`/`SELL`, `fiat_amount`,
//! `fiat_currency`, ...) in the newer form. It names the order only by
//! Banxa's id, so the applier finds our transaction through the reference
//! recorded when the order was opened ([`Notice::ProviderSettlement`]).
//! A status is read without case, `_`, `-` or spaces, so the legacy API's
//! camelCase (`pendingPayment`, `complete`) and the newer API's upper case
//! (`COMPLETED`, `IN_PROGRESS`) are one vocabulary: `complete(d)` completes
//! the order; `cancelled`, `declined`, `expired`, `refunded`, `failed`,
//! `rejected` fail it; every other status is acknowledged and ignored.
//! The delivery id (deduplication) is `{order_id}:{status}`: Banxa sends a
//! status of an order once, and sends it again only as a retry. The
//! legacy body without a status (`order_id` alone, to be looked up with
//! Get Order) is refused with 400: configure webhooks v2 at Banxa.

use super::keys::BANXA_SECRET_FILE;
use super::notice::{self, Direction, Notice, Outcome, PayloadError, SignatureError};
use super::provider::{HmacPayments, HmacSecret};
use super::signing::{hmac_sha256, hmac_sha256_matches};
use crate::providers::payment::NextStep;
use crate::secret::Secret;
use axum::http::HeaderMap;
use serde_json::{json, Value};

/// Header carrying the signature.
pub const HEADER: &str = "authorization";
/// Largest accepted distance between the nonce and now.
pub const TOLERANCE_SECS: i64 = 300;

/// The lowercase hex HMAC-SHA256 of Banxa's canonical string,
/// `"{method}\n{path}\n{nonce}"` and, when there is a body,
/// `"\n{body}"`: what its API requests and its webhooks carry.
pub fn signature(
    secret: &Secret,
    method: &str,
    path: &str,
    nonce: &str,
    body: Option<&[u8]>,
) -> String {
    let key = secret.expose().as_bytes();
    let mac = match body {
        Some(body) => {
            let head = format!("{method}\n{path}\n{nonce}\n");
            hmac_sha256(key, &[head.as_bytes(), body])
        }
        None => hmac_sha256(key, &[format!("{method}\n{path}\n{nonce}").as_bytes()]),
    };
    hex::encode(mac)
}

/// The `Authorization` value for `body` POSTed to `path`, with `nonce`
/// written as given (seconds, milliseconds or microseconds).
pub fn sign(api_key: &str, secret: &Secret, path: &str, nonce: i64, body: &[u8]) -> String {
    let nonce = nonce.to_string();
    let signature = signature(secret, "POST", path, &nonce, Some(body));
    format!("Bearer {api_key}:{signature}:{nonce}")
}

/// A nonce in Unix seconds: 10 digits are seconds, 13 milliseconds, 16
/// microseconds; anything else is malformed.
pub fn nonce_seconds(nonce: &str) -> Option<i64> {
    if !nonce.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = nonce.parse().ok()?;
    match nonce.len() {
        10 => Some(value),
        13 => Some(value / 1_000),
        16 => Some(value / 1_000_000),
        _ => None,
    }
}

/// Checks the `Authorization` header of `body`, POSTed to `path`, at Unix
/// time `now` (seconds).
pub fn verify(
    secret: &Secret,
    path: &str,
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
    let t = nonce_seconds(nonce).ok_or(malformed)?;
    if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let head = format!("POST\n{path}\n{nonce}\n");
    if hmac_sha256_matches(
        secret.expose().as_bytes(),
        &[head.as_bytes(), body],
        signature,
    ) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// A status without case, `_`, `-` or spaces (`IN_PROGRESS` and
/// `inProgress` are both `inprogress`).
pub fn status_word(status: &str) -> String {
    status
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// What a status does to the order's transaction; `None`: nothing yet.
pub fn outcome_of(status: &str) -> Option<Outcome> {
    match status {
        "complete" | "completed" => Some(Outcome::Completed),
        "cancelled" | "canceled" | "declined" | "expired" | "refunded" | "failed" | "rejected" => {
            Some(Outcome::Failed)
        }
        _ => None,
    }
}

/// `fiat_amount` as a decimal string: Banxa writes it as a string; a JSON
/// number is taken as written.
fn fiat_amount(v: &Value) -> Result<Option<String>, PayloadError> {
    match v.get("fiat_amount") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let text = n.to_string();
            if text.len() > notice::MAX_ID_LEN {
                return Err(PayloadError::Field("fiat_amount"));
            }
            Ok(Some(text))
        }
        Some(_) => notice::optional_id_at(v, "/fiat_amount", "fiat_amount"),
    }
}

/// Reads a verified Banxa order notice.
pub fn read(body: &[u8]) -> Result<Notice, PayloadError> {
    let v = notice::json(body)?;
    let order_id = notice::id_at(&v, "/order_id", "order_id")?;
    let status = status_word(&notice::id_at(&v, "/status", "status")?);
    if status.is_empty() || status.len() > 64 {
        return Err(PayloadError::Field("status"));
    }
    if let Some(order_type) = notice::optional_id_at(&v, "/order_type", "order_type")? {
        let known = ["BUY", "SELL", "ONRAMP", "OFFRAMP"];
        if !known.contains(
            &order_type
                .to_ascii_uppercase()
                .replace(['_', '-'], "")
                .as_str(),
        ) {
            return Err(PayloadError::Field("order_type"));
        }
    }
    let webhook_id = format!("{order_id}:{status}");
    let event_type = format!("order.{status}");
    let Some(outcome) = outcome_of(&status) else {
        return Ok(Notice::Ignored {
            webhook_id,
            event_type,
        });
    };
    Ok(Notice::ProviderSettlement {
        webhook_id,
        event_type,
        provider_ref: order_id,
        outcome,
        amount: fiat_amount(&v)?,
        currency: notice::optional_id_at(&v, "/fiat_currency", "fiat_currency")?,
    })
}

/// A Banxa order notice (webhooks v2) about one of our transactions, as
/// the sandbox sends it. Banxa's delivery id is its order and status, so
/// `_webhook_id` is not used.
pub fn event_body(report: &super::delivery::Report<'_>, _webhook_id: &str) -> Vec<u8> {
    let order_type = match report.direction {
        Direction::In => "BUY",
        Direction::Out => "SELL",
    };
    let status = match report.outcome {
        Outcome::Completed => "complete",
        Outcome::Failed => "declined",
    };
    let now = crate::events::now().format("%Y-%m-%d %H:%M:%S").to_string();
    json!({
        "order_id": report.provider_ref,
        "status": status,
        "status_date": now,
        "created_at": now,
        "updated_at": now,
        "external_id": null,
        "order_type": order_type,
        "fiat_currency": report.currency,
        "fiat_amount": report.amount,
        "metadata": [],
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
    // Microsecond nonces, as Banxa's newer API sends them.
    sign: |secret, path, body, now| {
        vec![(
            HEADER,
            sign(SANDBOX_API_KEY, secret, path, now * 1_000_000, body),
        )]
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/webhooks/banxa";
    const BODY: &[u8] =
        br#"{"order_id":"o1","status":"complete","status_date":"2026-01-16 04:04:21"}"#;
    const NOW: i64 = 1_700_000_000;

    fn headers(value: &str) -> HeaderMap {
        notice::header_map("Authorization", value)
    }

    fn secret() -> Secret {
        Secret::new("banxa-secret")
    }

    /// A vector made with a standard tool, not with our HMAC code:
    /// `printf 'POST\n/webhooks/banxa\n1700000000123\n%s' "$BODY" |
    /// openssl dgst -sha256 -hmac banxa-secret` (BODY as above).
    const OPENSSL_MS: &str = "39befd3c822799f378500b76388a177399f9bf814e5674fcaf757ecea2791ccb";

    #[test]
    fn a_signature_made_with_openssl_passes() {
        let value = format!("Bearer merchant:{OPENSSL_MS}:1700000000123");
        assert_eq!(verify(&secret(), PATH, &headers(&value), BODY, NOW), Ok(()));
    }

    #[test]
    fn nonces_in_seconds_milliseconds_and_microseconds_pass() {
        for nonce in [NOW, NOW * 1_000 + 123, NOW * 1_000_000 + 123_456] {
            let value = sign("merchant", &secret(), PATH, nonce, BODY);
            assert_eq!(
                verify(&secret(), PATH, &headers(&value), BODY, NOW),
                Ok(()),
                "{nonce}"
            );
        }
        assert_eq!(nonce_seconds("1700000000"), Some(NOW));
        assert_eq!(nonce_seconds("1700000000999"), Some(NOW));
        assert_eq!(nonce_seconds("1700000000999999"), Some(NOW));
        for bad in [
            "170000000",
            "17000000001",
            "+700000000",
            "17000000001234567",
            "",
        ] {
            assert_eq!(nonce_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn stale_nonces_fail_in_every_unit() {
        let old = NOW - TOLERANCE_SECS - 1;
        for nonce in [old, old * 1_000, old * 1_000_000] {
            let h = headers(&sign("merchant", &secret(), PATH, nonce, BODY));
            assert_eq!(
                verify(&secret(), PATH, &h, BODY, NOW),
                Err(SignatureError::Stale),
                "{nonce}"
            );
        }
    }

    #[test]
    fn the_signed_path_is_the_registered_urls() {
        let h = headers(&sign(
            "merchant",
            &secret(),
            "/api/webhooks/banxa",
            NOW,
            BODY,
        ));
        assert_eq!(
            verify(&secret(), "/api/webhooks/banxa", &h, BODY, NOW),
            Ok(())
        );
        assert_eq!(
            verify(&secret(), PATH, &h, BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tampered_body_fails() {
        let h = headers(&sign("merchant", &secret(), PATH, NOW, BODY));
        assert_eq!(
            verify(&secret(), PATH, &h, br#"{"order_id":"o2"}"#, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret_fails() {
        let h = headers(&sign("merchant", &Secret::new("other"), PATH, NOW, BODY));
        assert_eq!(
            verify(&secret(), PATH, &h, BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_or_malformed_fails() {
        assert_eq!(
            verify(&secret(), PATH, &HeaderMap::new(), BODY, NOW),
            Err(SignatureError::Missing(HEADER))
        );
        for bad in [
            "Basic abc",
            "Bearer merchant:abc",
            "Bearer :00:1700000000",
            "Bearer m:00:nonce",
            "Bearer m:00:1:2",
            "Bearer m:00:170000000012",
        ] {
            assert!(
                verify(&secret(), PATH, &headers(bad), BODY, NOW).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn reads_the_documented_v2_body() {
        // Banxa's documented webhooks v2 example, re-typed.
        let body = br#"{"order_id":"d9efc5d228cb7edfc4b6bb82f7b39f94","status":"complete","status_date":"2026-01-16 04:04:21","created_at":"2026-01-16 04:04:20","updated_at":"2026-01-16 04:04:20","external_id":null,"order_type":"BUY","crypto_coin":"USDT","crypto_blockchain":"ETH","crypto_amount":"67.1000000000000000","fiat_currency":"AUD","fiat_amount":"100","asset_price":"1.490312965722801","payment_method":"payid-bank-transfer","processing_fee":"0","network_fee":"0","usd_exchange_rate":"1.4923330","transaction_hash":"0","metadata":[]}"#;
        assert_eq!(
            read(body).unwrap(),
            Notice::ProviderSettlement {
                webhook_id: "d9efc5d228cb7edfc4b6bb82f7b39f94:complete".into(),
                event_type: "order.complete".into(),
                provider_ref: "d9efc5d228cb7edfc4b6bb82f7b39f94".into(),
                outcome: Outcome::Completed,
                amount: Some("100".into()),
                currency: Some("AUD".into()),
            }
        );
        // The short form: order, status and its time.
        let short = br#"{"order_id":"e82c57b2cba367069dfef4f866c7bc87","status":"expired","status_date":"2024-01-31 12:48:36"}"#;
        assert!(matches!(
            read(short).unwrap(),
            Notice::ProviderSettlement {
                outcome: Outcome::Failed,
                amount: None,
                ..
            }
        ));
    }

    #[test]
    fn legacy_and_newer_status_words_map_alike() {
        let read_status = |status: &str| {
            let body = json!({"order_id": "o", "status": status}).to_string();
            read(body.as_bytes()).unwrap()
        };
        for (status, outcome) in [
            ("complete", Some(Outcome::Completed)),
            ("COMPLETED", Some(Outcome::Completed)),
            ("cancelled", Some(Outcome::Failed)),
            ("CANCELLED", Some(Outcome::Failed)),
            ("declined", Some(Outcome::Failed)),
            ("expired", Some(Outcome::Failed)),
            ("EXPIRED", Some(Outcome::Failed)),
            ("refunded", Some(Outcome::Failed)),
            ("pendingPayment", None),
            ("waitingPayment", None),
            ("inProgress", None),
            ("IN_PROGRESS", None),
            ("coinTransferred", None),
            ("extraVerification", None),
        ] {
            match (read_status(status), outcome) {
                (Notice::ProviderSettlement { outcome: got, .. }, Some(want)) => {
                    assert_eq!(got, want, "{status}")
                }
                (Notice::Ignored { .. }, None) => {}
                (other, _) => panic!("{status}: {other:?}"),
            }
        }
        // One vocabulary: the two spellings are one delivery.
        assert_eq!(
            read_status("IN_PROGRESS").webhook_id(),
            read_status("inProgress").webhook_id()
        );
    }

    #[test]
    fn the_legacy_id_only_body_and_odd_fields_are_refused() {
        assert_eq!(
            read(br#"{"order_id":"3526ccb0e20f31de92hec732c37bb683"}"#),
            Err(PayloadError::Field("status"))
        );
        // Banxa's legacy sample is not even JSON (single quotes).
        assert!(matches!(
            read(b"{'order_id':'3526ccb0e20f31de92hec732c37bb683'}"),
            Err(PayloadError::NotJson(_))
        ));
        assert_eq!(
            read(br#"{"order_id":"o","status":"complete","order_type":"SWAP"}"#),
            Err(PayloadError::Field("order_type"))
        );
        assert_eq!(
            read(br#"{"order_id":"o","status":"complete","fiat_amount":{}}"#),
            Err(PayloadError::Field("fiat_amount"))
        );
    }
}
