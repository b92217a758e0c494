//! Sumsub (KYC) webhooks: the payload digest and the review results this
//! service acts on (docs/API.md "Webhooks"; the adapter that submits
//! documents is [`crate::providers::kyc_sumsub`]).
//!
//! Scheme (Sumsub, "Webhooks: verify the sender"): `X-Payload-Digest` is
//! the hex HMAC of the exact raw body keyed with the webhook's secret key,
//! and `X-Payload-Digest-Alg` names the hash: `HMAC_SHA256_HEX` or
//! `HMAC_SHA512_HEX` are accepted; `HMAC_SHA1_HEX` (Sumsub's legacy
//! default) is refused, so the webhook must be set to SHA-256 or SHA-512
//! in Sumsub's dashboard. No timestamp is signed: a replay is caught by
//! the delivery id.
//!
//! Payload: `{"applicantId", "inspectionId", "correlationId",
//! "externalUserId", "levelName", "type", "reviewStatus", "createdAtMs",
//! "reviewResult": {"reviewAnswer": "GREEN"|"RED", "rejectLabels",
//! "reviewRejectType": "FINAL"|"RETRY", "moderationComment"}}`. An
//! `applicantReviewed` with `reviewStatus` `completed` decides the KYC of
//! user `externalUserId` (our user id, given when the applicant was
//! made): `GREEN` verifies it, `RED` rejects it (`RETRY`: the user may
//! submit again, which our `REJECTED` allows too; the reason is the
//! labels). Other types are acknowledged and ignored. The delivery id is
//! `{applicantId}:{type}:{createdAtMs}`. A review made more than a minute
//! (clock skew) before the user's latest submission is about an earlier
//! submission and is ignored (`createdAtMs`, UTC).

use super::keys::{KeyError, WebhookKeys};
use super::notice::{self, Notice, PayloadError, SignatureError};
use super::provider::{HmacSecret, WebhookProvider};
use crate::providers::kyc::KycDecision;
use crate::secret::Secret;
use async_trait::async_trait;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

/// Header carrying the digest.
pub const HEADER: &str = "x-payload-digest";
/// Header naming its algorithm.
pub const ALG_HEADER: &str = "x-payload-digest-alg";
/// File (in the keys folder) of the generated secret when none is set.
pub const SECRET_FILE: &str = "sumsub_webhook_secret";

/// The digest headers of `body` with SHA-256 (the sandbox's and tests'
/// side of the scheme).
pub fn sign(secret: &Secret, body: &[u8]) -> Vec<(&'static str, String)> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("invariant: HMAC accepts keys of any length");
    mac.update(body);
    vec![
        (HEADER, hex::encode(mac.finalize().into_bytes())),
        (ALG_HEADER, "HMAC_SHA256_HEX".to_owned()),
    ]
}

/// Checks the digest of `body`.
pub fn verify(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let digest = notice::header(headers, HEADER)?;
    let alg = notice::header(headers, ALG_HEADER)?;
    let Ok(digest) = hex::decode(digest.trim()) else {
        return Err(SignatureError::Malformed(HEADER));
    };
    let key = secret.expose().as_bytes();
    let matched = match alg.trim() {
        "HMAC_SHA256_HEX" => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            mac.update(body);
            mac.verify_slice(&digest).is_ok()
        }
        "HMAC_SHA512_HEX" => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
            mac.update(body);
            mac.verify_slice(&digest).is_ok()
        }
        _ => return Err(SignatureError::Malformed(ALG_HEADER)),
    };
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Longest reason kept from the reject labels and comment.
const MAX_REASON: usize = 300;

/// Reads a verified Sumsub notice.
pub fn read(body: &[u8]) -> Result<Notice, PayloadError> {
    let v = notice::json(body)?;
    let applicant = notice::id_at(&v, "/applicantId", "applicantId")?;
    let event_type = notice::id_at(&v, "/type", "type")?;
    let created = match v.get("createdAtMs") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => notice::id_at(&v, "/createdAtMs", "createdAtMs")?,
    };
    let webhook_id = format!("{applicant}:{event_type}:{created}");
    if webhook_id.len() > notice::MAX_ID_LEN * 3 {
        return Err(PayloadError::Field("createdAtMs"));
    }
    let status = notice::optional_id_at(&v, "/reviewStatus", "reviewStatus")?;
    if event_type != "applicantReviewed" || status.as_deref() != Some("completed") {
        return Ok(Notice::Ignored {
            webhook_id,
            event_type,
        });
    }
    let user_id = notice::id_at(&v, "/externalUserId", "externalUserId")?;
    let answer = notice::id_at(
        &v,
        "/reviewResult/reviewAnswer",
        "reviewResult.reviewAnswer",
    )?;
    let decision = match answer.as_str() {
        "GREEN" => KycDecision::Verified,
        "RED" => {
            let labels: Vec<&str> = v
                .pointer("/reviewResult/rejectLabels")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str)
                .collect();
            let kind = v
                .pointer("/reviewResult/reviewRejectType")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("FINAL");
            let reason: String = format!("sumsub {kind}: {}", labels.join(", "))
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_REASON)
                .collect();
            KycDecision::Rejected { reason }
        }
        _ => return Err(PayloadError::Field("reviewResult.reviewAnswer")),
    };
    // `yyyy-MM-dd HH:mm:ss.fff`, UTC (an unreadable one: not compared).
    let reviewed_at = chrono::NaiveDateTime::parse_from_str(&created, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc());
    Ok(Notice::KycReview {
        webhook_id,
        event_type,
        user_id,
        reviewed_at,
        applicant_id: applicant,
        verified: decision == KycDecision::Verified,
        reason: match decision {
            KycDecision::Rejected { reason } => Some(reason),
            KycDecision::Verified => None,
        },
    })
}

/// Sumsub in the webhook registry.
pub struct Sumsub;

#[async_trait]
impl WebhookProvider for Sumsub {
    fn name(&self) -> &'static str {
        "sumsub"
    }

    async fn verify(
        &self,
        keys: &WebhookKeys,
        headers: &HeaderMap,
        body: &[u8],
        _now: i64,
    ) -> Result<Result<(), SignatureError>, KeyError> {
        // The previous secret too, for a while after a rotation.
        Ok(keys.hmac(self.name())?.verify(|s| verify(s, headers, body)))
    }

    fn read(&self, body: &[u8]) -> Result<Notice, PayloadError> {
        read(body)
    }

    fn hmac_secret(&self) -> Option<HmacSecret> {
        Some(HmacSecret {
            file: SECRET_FILE,
            prefix: "",
            configured: |config| config.sumsub_webhook_secret.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREEN: &[u8] = br#"{"applicantId":"5cb56e8e0a975a35f333cb83","inspectionId":"5cb56e8e0a975a35f333cb84","correlationId":"req-a260b669","externalUserId":"u1","levelName":"basic-kyc-level","type":"applicantReviewed","reviewStatus":"completed","createdAtMs":"2020-02-21 13:23:19.321","reviewResult":{"reviewAnswer":"GREEN"}}"#;

    fn headers(digest: &str, alg: &str) -> HeaderMap {
        let mut h = notice::header_map("X-Payload-Digest", digest);
        h.insert(ALG_HEADER, alg.parse().unwrap());
        h
    }

    /// Digests made with openssl, not with our code:
    /// `printf "$GREEN" | openssl dgst -sha256 -hmac whsec-sumsub` (and `-sha512`).
    #[test]
    fn digests_made_with_openssl_pass_and_only_for_their_body_and_key() {
        let secret = Secret::new("whsec-sumsub");
        let sha256 = "6a2418056a1723ecc189fa9928492de56901f15ba94115905e8c3b8b154b9b09";
        let sha512 = "1dcda4574ac2c80a7822adcd227ffb3bff60a8a03adeb0277e4d4477c402e89f34818d19afc06b630b70ed97ec66728825800832a6e38f3160948a3f833c85d3";
        assert_eq!(
            verify(&secret, &headers(sha256, "HMAC_SHA256_HEX"), GREEN),
            Ok(())
        );
        assert_eq!(
            verify(&secret, &headers(sha512, "HMAC_SHA512_HEX"), GREEN),
            Ok(())
        );
        assert_eq!(sign(&secret, GREEN)[0].1, sha256);
        let tampered = String::from_utf8(GREEN.to_vec())
            .unwrap()
            .replace("GREEN", "RED");
        assert_eq!(
            verify(
                &secret,
                &headers(sha256, "HMAC_SHA256_HEX"),
                tampered.as_bytes()
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &Secret::new("other"),
                &headers(sha256, "HMAC_SHA256_HEX"),
                GREEN
            ),
            Err(SignatureError::Mismatch)
        );
        // SHA-1 (Sumsub's legacy default) and unknown algorithms: refused.
        assert_eq!(
            verify(&secret, &headers(sha256, "HMAC_SHA1_HEX"), GREEN),
            Err(SignatureError::Malformed(ALG_HEADER))
        );
        assert_eq!(
            verify(
                &secret,
                &notice::header_map("X-Payload-Digest", sha256),
                GREEN
            ),
            Err(SignatureError::Missing(ALG_HEADER))
        );
        assert_eq!(
            verify(&secret, &HeaderMap::new(), GREEN),
            Err(SignatureError::Missing(HEADER))
        );
    }

    #[test]
    fn reviews_decide_and_other_events_are_ignored() {
        assert_eq!(
            read(GREEN).unwrap(),
            Notice::KycReview {
                webhook_id: "5cb56e8e0a975a35f333cb83:applicantReviewed:2020-02-21 13:23:19.321"
                    .into(),
                event_type: "applicantReviewed".into(),
                user_id: "u1".into(),
                applicant_id: "5cb56e8e0a975a35f333cb83".into(),
                verified: true,
                reason: None,
                reviewed_at: Some(
                    chrono::DateTime::parse_from_rfc3339("2020-02-21T13:23:19.321Z")
                        .unwrap()
                        .to_utc()
                ),
            }
        );
        let red = br#"{"applicantId":"a1","externalUserId":"u1","type":"applicantReviewed","reviewStatus":"completed","createdAtMs":"2020-02-21 13:23:19.321","reviewResult":{"reviewAnswer":"RED","rejectLabels":["FORGERY","SELFIE_MISMATCH"],"reviewRejectType":"FINAL"}}"#;
        assert!(matches!(
            read(red).unwrap(),
            Notice::KycReview { verified: false, reason: Some(ref r), .. }
                if r == "sumsub FINAL: FORGERY, SELFIE_MISMATCH"
        ));
        let pending = br#"{"applicantId":"a1","externalUserId":"u1","type":"applicantPending","reviewStatus":"pending","createdAtMs":"2020-02-21 13:23:19.321"}"#;
        assert!(matches!(read(pending).unwrap(), Notice::Ignored { .. }));
        let odd = br#"{"applicantId":"a1","externalUserId":"u1","type":"applicantReviewed","reviewStatus":"completed","createdAtMs":"x","reviewResult":{"reviewAnswer":"YELLOW"}}"#;
        assert_eq!(
            read(odd),
            Err(PayloadError::Field("reviewResult.reviewAnswer"))
        );
    }
}
