//! [`SumsubServer`]: a Sumsub-shaped KYC server of a test's own on
//! 127.0.0.1 (Sumsub: `https://api.sumsub.com`), from Sumsub's documented
//! API and its own examples (github.com/SumSubstance/AppTokenUsageExamples):
//!
//! - **App-token signing** (docs.sumsub.com/reference/authentication): every
//!   request carries `X-App-Token`, `X-App-Access-Ts` (Unix seconds, UTC) and
//!   `X-App-Access-Sig`, the lowercase hex HMAC-SHA256, keyed with the secret
//!   key, of ts + METHOD (upper case) + path with its query + the body bytes
//!   exactly as sent (none for a GET; for `multipart/form-data` the whole
//!   multipart body, as the JS example signs `form.getBuffer()`). "Your
//!   timestamp must be within 1 minute of the API server time":
//!   [`TS_TOLERANCE_SECS`]. A refusal is 401 and changes nothing.
//! - **Errors** (docs.sumsub.com/reference/review-api-health, "Errors"):
//!   `{"description", "code" (the HTTP status), "correlationId", "errorCode"?,
//!   "errorName"?}`; a bad signature is documented as 401 "Request signature
//!   mismatch", errorCode 4003 (docs.sumsub.com/reference/generate-access-token).
//!   errorCodes 1000 duplicate-document (409), 1003 empty-file (400), 1006
//!   no-upload-verification-in-progress (409), 1009
//!   applicant-with-final-reject (409) are from
//!   docs.sumsub.com/reference/error-codes-description; 4001 (unknown token),
//!   4004 (ts out of window), 4005 (bad header value), 4006 (missing header)
//!   and 3000 (already in that state) are the documented numbers, their
//!   `errorName`s derived from the documented pattern (not seen verbatim).
//!   429 is documented ("we will return a status code 429"), its body is
//!   the usual shape with description "Too many requests" (invented).
//! - **`POST /resources/applicants?levelName=…`**
//!   (docs.sumsub.com/reference/create-applicants): JSON with
//!   `externalUserId` (required here), `email`, `phone`, `lang`, `fixedInfo`
//!   (copied to `info`). Answer 201 (Sumsub's own PHP example accepts 200 and
//!   201; 201 is what integrators report) with the applicant: `id` (24
//!   lowercase hex, as documented), `createdAt` `2020-04-17 23:03:47`,
//!   `clientId`, `inspectionId`, `externalUserId`, `info`, `type`
//!   `individual`, `review` {`reviewId`, `attemptId`, `attemptCnt`,
//!   `levelName`, `createDate` `…+0000`, `reviewStatus` `init`} (shape of
//!   the documented examples, docs.sumsub.com/docs/questionnaire-api). A
//!   level other than [`SumsubConfig::level_name`] or none: 400 "Existing
//!   level should be specified to create an applicant" (wording observed in
//!   integrators' reports). A second `externalUserId`: 409 "Applicant with
//!   external user id '…' already exists: {id}" (observed wording, quoted
//!   by several public clients that parse the id out of it).
//! - **`GET /resources/applicants/-;externalUserId={id}/one`** and
//!   **`GET /resources/applicants/{id}/one`**
//!   (docs.sumsub.com/reference/get-applicant-data-via-externaluserid): the
//!   applicant; **`GET /resources/applicants/{id}/status`**
//!   (docs.sumsub.com/reference/get-applicant-review-status): its `review`.
//!   An id not of 24 hex digits: 400 "Invalid id '…'" (documented example);
//!   an unknown one 404 (wording invented).
//! - **`POST /resources/applicants/{id}/info/idDoc`**
//!   (docs.sumsub.com/reference/add-id-documents): a multipart form with a
//!   `metadata` part (JSON, `idDocType` and `country` (alpha-3) required)
//!   and an optional `content` file; 200 with the metadata and header
//!   `X-Image-Id` (read by Sumsub's Python and PHP examples). Bounded:
//!   [`MAX_UPLOAD`] (larger: 413; Sumsub's own limit is 64 MB, 1002),
//!   [`MAX_PARTS`] parts. The content is hashed and measured, never kept.
//! - **`POST /resources/applicants/{id}/status/pending`**
//!   (docs.sumsub.com/reference/request-applicant-check): 200 `{"ok": 1}`,
//!   the review becomes `pending`; "You cannot use this method for profiles
//!   that are in pending, queued, or prechecked statuses" (409 here), and
//!   without documents 409 "Not all required documents or data are
//!   submitted…" (the documented example).
//! - **Webhooks** (docs.sumsub.com/docs/user-verification-webhooks,
//!   docs.sumsub.com/docs/webhook-manager): POSTed JSON with
//!   `X-Payload-Digest`, the hex HMAC of the raw body keyed with the
//!   webhook's secret key, and `X-Payload-Digest-Alg` `HMAC_SHA256_HEX` (the
//!   default) or `HMAC_SHA512_HEX` (the dashboard's other choice) or
//!   `HMAC_SHA1_HEX` (older webhooks; the header values are those public
//!   receivers check) ([`DigestAlg`]). Bodies: `applicantId`,
//!   `inspectionId`, `applicantType`, `correlationId`, `levelName`,
//!   `externalUserId`, `type`, `sandboxMode`, `reviewStatus`, `createdAtMs`
//!   (`yyyy-MM-dd HH:mm:ss.fff` UTC, a string, as documented), `clientId`,
//!   and for `applicantReviewed` `reviewResult` {`reviewAnswer` `GREEN`} or
//!   {`RED`, `rejectLabels`, `reviewRejectType` `FINAL`|`RETRY`,
//!   `moderationComment`, `clientComment`}
//!   (docs.sumsub.com/docs/receive-and-interpret-results-via-api). Sumsub
//!   sends them itself; here a test does ([`SumsubServer::review`],
//!   [`SumsubServer::send_pending`], [`SumsubServer::send_created`]), each
//!   with a later `createdAtMs` than the one before.
//!
//! Every request is logged ([`SumsubServer::requests`]). Not modelled:
//! other endpoints (404), access tokens and SDK links, levels' required
//! steps (any document makes the applicant checkable), rate limits other
//! than injected ones ([`SumsubServer::fail_next`]), webhook retries.

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

mod api;
mod wire;

/// The applicants collection; one applicant is `/{id}/…` under it.
pub const APPLICANTS_PATH: &str = "/resources/applicants";
/// Largest JSON request body (larger: 413).
pub const MAX_BODY: usize = 64 * 1024;
/// Largest `…/info/idDoc` body (larger: 413).
pub const MAX_UPLOAD: usize = 5 * 1024 * 1024;
/// Most parts in one multipart body (more: 400).
pub const MAX_PARTS: usize = 8;
/// Largest header block of one part (larger: 400).
pub const MAX_PART_HEADERS: usize = 8 * 1024;
/// Longest `externalUserId` accepted, in characters.
pub const MAX_EXTERNAL_ID: usize = 512;
/// Largest distance between `X-App-Access-Ts` and now (Sumsub: 1 minute).
pub const TS_TOLERANCE_SECS: i64 = 60;
/// The `clientId` of applicants and webhooks.
pub const CLIENT_ID: &str = "testkitClientId";

/// The hash of the webhooks' `X-Payload-Digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestAlg {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

impl DigestAlg {
    /// Its `X-Payload-Digest-Alg` value.
    pub fn header_value(self) -> &'static str {
        match self {
            DigestAlg::Sha1 => "HMAC_SHA1_HEX",
            DigestAlg::Sha256 => "HMAC_SHA256_HEX",
            DigestAlg::Sha512 => "HMAC_SHA512_HEX",
        }
    }
}

/// Whom the server lets in, how it signs webhooks, and where they go.
#[derive(Debug, Clone)]
pub struct SumsubConfig {
    /// `X-App-Token`.
    pub app_token: String,
    /// Keys `X-App-Access-Sig`.
    pub secret_key: String,
    /// Keys `X-Payload-Digest`.
    pub webhook_secret: String,
    pub digest_alg: DigestAlg,
    /// The one level that exists.
    pub level_name: String,
    /// Where webhooks are POSTed (plain http).
    pub webhook_url: Option<String>,
}

impl Default for SumsubConfig {
    fn default() -> Self {
        SumsubConfig {
            app_token: "sbx:testkit0000000000000000.testkit000000000000000000000000".to_owned(),
            secret_key: "testkit-secret-key".to_owned(),
            webhook_secret: "testkit-webhook-secret".to_owned(),
            digest_alg: DigestAlg::Sha256,
            level_name: "basic-kyc-level".to_owned(),
            webhook_url: None,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The status it was answered with.
    pub status: u16,
}

/// Why an applicant was rejected: a final rejection or a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectType {
    Final,
    Retry,
}

/// The outcome of a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewAnswer {
    Green,
    /// `comment` is both the `moderationComment` and the `clientComment`.
    Red {
        labels: Vec<String>,
        reject_type: RejectType,
        comment: String,
    },
}

struct Applicant {
    /// As `GET …/one` answers it.
    value: Value,
    /// Each document's metadata, size and hash (never its content).
    docs: Vec<Value>,
    /// SHA-256 of every file added, for `duplicate-document`.
    hashes: Vec<String>,
}

#[derive(Default)]
struct Inner {
    applicants: Vec<Applicant>,
    faults: VecDeque<u16>,
    log: Vec<LoggedRequest>,
    /// Every webhook body made, oldest first.
    webhooks: Vec<String>,
    /// The last webhook's Unix ms: each one is later.
    last_ms: i64,
    /// What ids hash, with the time: the server's URL and a counter.
    salt: (String, u64),
    /// Set after the start; wins over the configuration's.
    webhook_url: Option<String>,
}

impl Inner {
    fn seed(&mut self) -> [u8; 32] {
        self.salt.1 += 1;
        let seed = format!("{:?}{:?}", self.salt, SystemTime::now());
        Sha256::digest(seed.as_bytes()).into()
    }

    /// `len` (≤ 64) lowercase hex digits, never the same twice.
    fn new_hex(&mut self, len: usize) -> String {
        hex::encode(self.seed())[..len].to_owned()
    }

    /// `len` (≤ 32) letters, as Sumsub's `reviewId`/`attemptId`.
    fn new_alpha(&mut self, len: usize) -> String {
        const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let seed = self.seed();
        seed.iter()
            .take(len)
            .map(|b| ALPHA[*b as usize % 52] as char)
            .collect()
    }

    /// A numeric image id.
    fn new_image_id(&mut self) -> String {
        self.salt.1 += 1;
        (1_000_000_000 + self.salt.1).to_string()
    }
}

struct Shared {
    config: SumsubConfig,
    url: String,
    inner: Mutex<Inner>,
}

/// A running Sumsub-shaped server; stops when dropped.
pub struct SumsubServer {
    shared: Arc<Shared>,
    _task: crate::served::Task,
}

impl SumsubServer {
    /// Starts on a free port of 127.0.0.1 (needs a tokio runtime).
    pub async fn start(config: SumsubConfig) -> SumsubServer {
        let (listener, url) = crate::served::bind().await;
        let mut inner = Inner::default();
        inner.salt.0.clone_from(&url);
        let inner = Mutex::new(inner);
        let shared = Arc::new(Shared { config, url, inner });
        let app = Router::new()
            .fallback(api::handle)
            .with_state(shared.clone());
        let _task = crate::served::serve(listener, app, "sumsub");
        SumsubServer { shared, _task }
    }

    /// `http://127.0.0.1:<port>`, the base URL a client takes.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// Every applicant as `GET …/one` answers it, with `documents`: each
    /// document's metadata, `fileName`, `mimeType`, `size`, `sha256` and
    /// `imageId` (never its content). Oldest first.
    pub fn applicants(&self) -> Vec<Value> {
        let inner = self.shared.inner.lock();
        let with_docs = |a: &Applicant| {
            let mut value = a.value.clone();
            value["documents"] = json!(a.docs);
            value
        };
        inner.applicants.iter().map(with_docs).collect()
    }

    /// The applicant whose `externalUserId` is `external_user_id`, as
    /// [`SumsubServer::applicants`] shows it.
    pub fn applicant_by_external(&self, external_user_id: &str) -> Option<Value> {
        let all = self.applicants();
        all.into_iter()
            .find(|a| a["externalUserId"] == external_user_id)
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.inner.lock().log.clone()
    }

    /// Every webhook body made (sent, or not for want of a URL), oldest first.
    pub fn webhooks(&self) -> Vec<Value> {
        let inner = self.shared.inner.lock();
        let parse = |w: &String| serde_json::from_str(w).unwrap_or(Value::Null);
        inner.webhooks.iter().map(parse).collect()
    }

    /// Answers the next `count` authenticated API requests with `status`
    /// (429: Sumsub's error body, "Too many requests"; 5xx: "Internal server
    /// error") before anything changes.
    pub fn fail_next(&self, count: usize, status: u16) {
        let mut inner = self.shared.inner.lock();
        inner.faults.extend(std::iter::repeat_n(status, count));
    }

    /// Where the webhooks go from now on (wins over the configuration's).
    pub fn set_webhook_url(&self, url: &str) {
        self.shared.inner.lock().webhook_url = Some(url.to_owned());
    }

    /// The headers Sumsub would sign `body` with: `X-Payload-Digest` and
    /// `X-Payload-Digest-Alg` for the configured secret and algorithm.
    pub fn sign_webhook(&self, body: &[u8]) -> [(&'static str, String); 2] {
        let config = &self.shared.config;
        let digest = wire::digest(config.digest_alg, &config.webhook_secret, body);
        [
            ("x-payload-digest", digest),
            (
                "x-payload-digest-alg",
                config.digest_alg.header_value().to_owned(),
            ),
        ]
    }

    /// Completes the review of `applicant_id` with `answer` (its `review`
    /// gets `reviewStatus` `completed`, `reviewResult`, `reviewDate`) and
    /// sends `applicantReviewed`; the webhook's status and JSON answer, `None`
    /// without a webhook URL. Panics on an unknown applicant, or one whose
    /// check was never requested (`init`); a completed one may be reviewed
    /// again (Sumsub may send several final webhooks).
    pub async fn review(&self, applicant_id: &str, answer: ReviewAnswer) -> Option<(u16, Value)> {
        let result = match answer {
            ReviewAnswer::Green => json!({ "reviewAnswer": "GREEN" }),
            ReviewAnswer::Red {
                labels,
                reject_type,
                comment,
            } => {
                let kind = match reject_type {
                    RejectType::Final => "FINAL",
                    RejectType::Retry => "RETRY",
                };
                json!({ "reviewAnswer": "RED", "rejectLabels": labels, "reviewRejectType": kind,
                    "moderationComment": comment, "clientComment": comment })
            }
        };
        let body = self.webhook(applicant_id, "applicantReviewed", |review| {
            let status = review["reviewStatus"].as_str().unwrap_or_default();
            assert!(
                status != "init",
                "{applicant_id}: no check was requested (init)"
            );
            review["reviewStatus"] = json!("completed");
            review["reviewResult"] = result.clone();
            review["reviewDate"] = json!(wire::review_date(chrono::Utc::now()));
            Some(result)
        });
        self.deliver(&body).await
    }

    /// Sends `applicantPending` about `applicant_id`, whose check was
    /// requested. Panics unless it is `pending`.
    pub async fn send_pending(&self, applicant_id: &str) -> Option<(u16, Value)> {
        let body = self.webhook(applicant_id, "applicantPending", |review| {
            let status = review["reviewStatus"].as_str().unwrap_or_default();
            assert!(
                status == "pending",
                "{applicant_id} is {status}, not pending"
            );
            None
        });
        self.deliver(&body).await
    }

    /// Sends `applicantCreated` about `applicant_id`. Panics unless it is
    /// `init`.
    pub async fn send_created(&self, applicant_id: &str) -> Option<(u16, Value)> {
        let body = self.webhook(applicant_id, "applicantCreated", |review| {
            let status = review["reviewStatus"].as_str().unwrap_or_default();
            assert!(status == "init", "{applicant_id} is {status}, not init");
            None
        });
        self.deliver(&body).await
    }

    /// POSTs the last webhook again, byte for byte (same `createdAtMs` and
    /// `correlationId`, same digest): a duplicate delivery. Panics when
    /// there was none.
    pub async fn resend_last(&self) -> Option<(u16, Value)> {
        let last = self.shared.inner.lock().webhooks.last().cloned();
        self.deliver(&last.expect("no webhook to resend")).await
    }

    /// POSTs `body` with exactly `headers` (no digest of its own; see
    /// [`SumsubServer::sign_webhook`]) to the webhook URL; not recorded in
    /// [`SumsubServer::webhooks`]. `None` without a webhook URL.
    pub async fn send_raw(&self, body: &[u8], headers: &[(&str, &str)]) -> Option<(u16, Value)> {
        let url = self.webhook_url()?;
        Some(crate::served::post_webhook("Sumsub", &url, body.to_vec(), headers).await)
    }

    /// Changes the review of `applicant_id` with `change` and records the
    /// webhook `kind` about it (with `reviewResult` when `change` returns
    /// one); its body.
    fn webhook<F>(&self, applicant_id: &str, kind: &str, change: F) -> String
    where
        F: FnOnce(&mut Value) -> Option<Value>,
    {
        let mut inner = self.shared.inner.lock();
        let now = chrono::Utc::now().timestamp_millis();
        inner.last_ms = now.max(inner.last_ms + 1);
        let created_at_ms = wire::created_at_ms(inner.last_ms);
        let found = inner
            .applicants
            .iter_mut()
            .find(|a| a.value["id"] == applicant_id);
        let no_applicant = || panic!("the Sumsub test server has no applicant {applicant_id}");
        let applicant = &mut found.unwrap_or_else(no_applicant).value;
        let result = change(&mut applicant["review"]);
        let mut body = json!({
            "applicantId": applicant_id, "inspectionId": applicant["inspectionId"],
            "applicantType": "individual", "correlationId": wire::correlation_id(),
            "levelName": applicant["review"]["levelName"],
            "externalUserId": applicant["externalUserId"], "type": kind, "sandboxMode": true,
            "reviewStatus": applicant["review"]["reviewStatus"], "createdAtMs": created_at_ms,
            "clientId": CLIENT_ID,
        });
        if let Some(result) = result {
            body["reviewResult"] = result;
        }
        let body = body.to_string();
        inner.webhooks.push(body.clone());
        body
    }

    fn webhook_url(&self) -> Option<String> {
        let set = self.shared.inner.lock().webhook_url.clone();
        set.or_else(|| self.shared.config.webhook_url.clone())
    }

    /// POSTs `body` signed as [`SumsubServer::sign_webhook`] says.
    async fn deliver(&self, body: &str) -> Option<(u16, Value)> {
        let url = self.webhook_url()?;
        let signed = self.sign_webhook(body.as_bytes());
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(signed.iter().map(|(name, value)| (*name, value.as_str())));
        let body = body.as_bytes().to_vec();
        Some(crate::served::post_webhook("Sumsub", &url, body, &headers).await)
    }
}

#[cfg(test)]
#[path = "sumsub_tests.rs"]
mod tests;
