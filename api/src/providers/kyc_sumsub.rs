//! Sumsub as the KYC provider (`kyc_provider = "sumsub"`), through its
//! API (docs/API.md "Users" and "Webhooks").
//!
//! A submitted document goes to the user's Sumsub applicant, made once at
//! the level `sumsub_level_name` with our user id as `externalUserId`
//! (`POST /resources/applicants?levelName=…`; when one exists already,
//! Sumsub answers 409 and the adapter reads it with
//! `GET /resources/applicants/-;externalUserId={id}/one`), as an ID
//! document (`POST /resources/applicants/{id}/info/idDoc`, multipart: a
//! `metadata` part `{idDocType, country}` and the `content` file), and the
//! review is requested (`POST /resources/applicants/{id}/status/pending`).
//! Sumsub's decision comes back as its signed `applicantReviewed` webhook
//! ([`crate::webhooks::sumsub`]), not through this adapter.
//!
//! Every request is signed as Sumsub documents: `X-App-Token`,
//! `X-App-Access-Ts` (Unix seconds) and `X-App-Access-Sig`, the hex
//! HMAC-SHA256 keyed with the secret key over `ts + METHOD + path with
//! query + body bytes`. Sumsub names countries in ISO 3166-1 alpha-3: the
//! user's profile country (alpha-2) is converted, and a user with none
//! set is asked to set it first. Answers are read through
//! [`super::answer`], bounded before parsing.

use super::answer;
use super::kyc::{KycDocument, KycProvider, KycProviderError};
use super::{ProviderContext, SetupError};
use crate::secret::Secret;
use crate::secrets::LiveSecret;
use crate::users::kyc::{DocumentType, KycDecisions};
use crate::webhooks::signing::hmac_sha256;
use async_trait::async_trait;
use inbound::JsonBounds;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Bounds of an answer of Sumsub's, checked before it is parsed.
pub const ANSWER_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 256 * 1024,
    max_depth: 16,
    max_elements: 10_000,
};

/// The Sumsub adapter for `ctx`.
pub fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn KycProvider>, SetupError> {
    let config = ctx.config;
    let missing = |setting: &'static str| SetupError::Missing {
        setting,
        because: "api.kyc_provider is \"sumsub\"",
    };
    if config.sumsub_api_url.is_empty() {
        return Err(missing("sumsub_api_url"));
    }
    let app_token = ctx
        .secrets
        .setting(config.sumsub_app_token.as_ref())
        .ok_or(missing("sumsub_app_token"))?;
    let secret_key = ctx
        .secrets
        .setting(config.sumsub_secret_key.as_ref())
        .ok_or(missing("sumsub_secret_key"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.upstream_timeout_ms))
        .build()
        .map_err(|e| SetupError::Client(e.to_string()))?;
    Ok(Arc::new(SumsubKyc {
        http,
        base: config.sumsub_api_url.trim_end_matches('/').to_owned(),
        app_token,
        secret_key,
        level: config.sumsub_level_name.clone(),
    }))
}

/// Sumsub's API.
pub struct SumsubKyc {
    http: reqwest::Client,
    base: String,
    /// Read at each request: rotated without a restart.
    app_token: LiveSecret,
    secret_key: LiveSecret,
    level: String,
}

/// The `X-App-Access-Sig` of a request.
pub fn signature(secret: &Secret, ts: i64, method: &str, path: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(
        secret.expose().as_bytes(),
        &[
            ts.to_string().as_bytes(),
            method.as_bytes(),
            path.as_bytes(),
            body,
        ],
    ))
}

/// Sumsub's `idDocType` of a document type.
pub fn id_doc_type(t: DocumentType) -> &'static str {
    match t {
        DocumentType::Passport => "PASSPORT",
        DocumentType::IdCard => "ID_CARD",
        DocumentType::DriversLicense => "DRIVERS",
        DocumentType::ProofOfAddress => "UTILITY_BILL",
    }
}

/// A `multipart/form-data` body of `metadata` (JSON) and the `content`
/// file, with its content type.
pub fn multipart(metadata: &Value, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("nax-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::with_capacity(content.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\
             Content-Type: application/json\r\n\r\n{metadata}\r\n--{boundary}\r\n\
             Content-Disposition: form-data; name=\"content\"; filename=\"document\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Sumsub's `errorCode` of a document uploaded before.
const DUPLICATE_DOCUMENT: i64 = 1000;
/// Sumsub's `errorCode` of an applicant rejected for good.
const FINAL_REJECTION: i64 = 1009;

/// The `errorCode` of an error answer.
fn error_code(body: &Value) -> Option<i64> {
    body.get("errorCode").and_then(Value::as_i64)
}

/// The error an answer of status `status` means (`{description, code}`).
fn refusal(status: u16, body: &Value) -> KycProviderError {
    let said: String = answer::text_at(body, "/description")
        .unwrap_or_else(|| "no detail".to_owned())
        .chars()
        .take(200)
        .collect();
    if matches!(status, 401 | 403) {
        tracing::error!(
            status,
            "sumsub refused our authentication; check the app token, secret key and clock"
        );
    }
    KycProviderError::Unavailable(format!("sumsub {status}: {said}"))
}

impl SumsubKyc {
    /// One signed request to `path` (with its query).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<(u16, Value), KycProviderError> {
        let ts = chrono::Utc::now().timestamp();
        let sig = signature(&self.secret_key.current(), ts, method.as_str(), path, &body);
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-app-token", self.app_token.current().expose())
            .header("x-app-access-ts", ts.to_string())
            .header("x-app-access-sig", sig)
            .header("accept", "application/json");
        if let Some(t) = content_type {
            request = request.header("content-type", t).body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| KycProviderError::Unavailable(format!("no answer: {e}")))?;
        answer::read(response, &ANSWER_BOUNDS)
            .await
            .map_err(KycProviderError::Unavailable)
    }

    /// True when the applicant's review is requested already (a check
    /// requested by an earlier attempt whose answer was lost).
    async fn under_review(&self, applicant: &str) -> Result<bool, KycProviderError> {
        let path = format!("/resources/applicants/{applicant}/status");
        let (status, review) = self
            .call(reqwest::Method::GET, &path, Vec::new(), None)
            .await?;
        let word = answer::text_at(&review, "/reviewStatus");
        Ok((200..300).contains(&status)
            && matches!(
                word.as_deref(),
                Some("pending" | "queued" | "onHold" | "prechecked")
            ))
    }

    /// The id of `user_id`'s applicant, made if there is none.
    async fn applicant(&self, user_id: &str) -> Result<String, KycProviderError> {
        let level: String = form_urlencoded::byte_serialize(self.level.as_bytes()).collect();
        let path = format!("/resources/applicants?levelName={level}");
        let body = json!({"externalUserId": user_id}).to_string().into_bytes();
        let (status, made) = self
            .call(reqwest::Method::POST, &path, body, Some("application/json"))
            .await?;
        let found = match status {
            200..=299 => made,
            409 => {
                let id: String = form_urlencoded::byte_serialize(user_id.as_bytes()).collect();
                let path = format!("/resources/applicants/-;externalUserId={id}/one");
                let (status, found) = self
                    .call(reqwest::Method::GET, &path, Vec::new(), None)
                    .await?;
                if !(200..300).contains(&status) {
                    return Err(refusal(status, &found));
                }
                found
            }
            _ => return Err(refusal(status, &made)),
        };
        answer::text_at(&found, "/id")
            .filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric()))
            .ok_or_else(|| KycProviderError::Unavailable("sumsub answer without id".into()))
    }
}

/// Sumsub's alpha-3 code of the user's profile country.
fn country_of(country: Option<&str>) -> Result<&'static str, String> {
    country
        .and_then(crate::users::countries::alpha3)
        .ok_or_else(|| {
            "set your country in your profile first: it names the document's issuer".to_owned()
        })
}

#[async_trait]
impl KycProvider for SumsubKyc {
    fn check_submitter(&self, country: Option<&str>) -> Result<(), String> {
        country_of(country).map(|_| ())
    }

    async fn submit(
        &self,
        document: KycDocument,
        _decisions: KycDecisions,
    ) -> Result<(), KycProviderError> {
        let country = country_of(document.country.as_deref()).map_err(KycProviderError::Refused)?;
        let applicant = self.applicant(&document.user_id).await?;
        let metadata =
            json!({"idDocType": id_doc_type(document.document_type), "country": country});
        let (content_type, body) = multipart(&metadata, &document.content);
        let path = format!("/resources/applicants/{applicant}/info/idDoc");
        let (status, answer) = self
            .call(reqwest::Method::POST, &path, body, Some(&content_type))
            .await?;
        match (status, error_code(&answer)) {
            (200..=299, _) => {}
            // The same document, sent before an earlier attempt failed: it
            // is there.
            (409, Some(DUPLICATE_DOCUMENT)) => {}
            (409, Some(FINAL_REJECTION)) => {
                return Err(KycProviderError::Refused(
                    "the identity review was finally rejected; contact support".to_owned(),
                ))
            }
            // The document itself refused (format, type not in the level,
            // unreadable): the user's to fix, with Sumsub's reason.
            (400, _) => {
                let why: String = answer::text_at(&answer, "/description")
                    .unwrap_or_else(|| "the document was refused".to_owned())
                    .chars()
                    .take(200)
                    .collect();
                return Err(KycProviderError::Refused(format!(
                    "document refused: {why}"
                )));
            }
            _ => return Err(refusal(status, &answer)),
        }
        let path = format!("/resources/applicants/{applicant}/status/pending");
        let (status, answer) = self
            .call(
                reqwest::Method::POST,
                &path,
                Vec::new(),
                Some("application/json"),
            )
            .await?;
        if !(200..300).contains(&status) && !self.under_review(&applicant).await? {
            return Err(refusal(status, &answer));
        }
        tracing::info!(user_id = %document.user_id, applicant = %applicant,
            submission_id = %document.submission_id, "document sent to sumsub for review");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned to openssl, not to our HMAC code:
    /// `printf '1700000000POST/resources/applicants?levelName=basic-kyc-level{"externalUserId":"u1"}' | openssl dgst -sha256 -hmac test-secret`.
    #[test]
    fn requests_are_signed_as_sumsub_documents() {
        let sig = signature(
            &Secret::new("test-secret"),
            1_700_000_000,
            "POST",
            "/resources/applicants?levelName=basic-kyc-level",
            br#"{"externalUserId":"u1"}"#,
        );
        assert_eq!(
            sig,
            "e163b60171c42c8908b4ecba2f87788c3531dde75a271e01cf38d0559e32efcc"
        );
    }

    #[test]
    fn documents_are_a_metadata_part_and_a_content_part() {
        let (content_type, body) = multipart(&json!({"idDocType": "PASSPORT"}), b"scan\r\nbytes");
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{\"idDocType\":\"PASSPORT\"}\r\n"));
        assert!(text.contains("filename=\"document\"\r\nContent-Type: application/octet-stream\r\n\r\nscan\r\nbytes\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert_eq!(id_doc_type(DocumentType::DriversLicense), "DRIVERS");
    }
}
