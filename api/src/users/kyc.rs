//! `GET /users/kyc-status` and `POST /users/kyc-documents`: the KYC flow.
//!
//! `NONE`/`REJECTED` → (document submitted) → `PENDING` → (provider's
//! decision) → `VERIFIED` or `REJECTED`. `VERIFIED` is final here (a
//! further document is 409 `kyc_already_verified`); a document submitted
//! while `PENDING` restarts the review. Every status change is one commit:
//! the user at `version + 1` and a `kyc.status_changed` event.
//!
//! **Documents are not stored.** The content goes to the KYC provider in
//! memory and is dropped; the store keeps only the document's type and
//! SHA-256 digest, on the `kyc.status_changed` event of the submission
//! (enough to prove later which document was reviewed, without holding
//! identity scans in our tables or logs).

use super::{load_user, UsersState, USER_CONFLICT_ATTEMPTS};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::events::{self, Event, EventType, Timestamp};
use crate::http::ApiJson;
use crate::providers::kyc::{KycDecision, KycDocument, KycProviderError};
use crate::store::{Conflict, KycStatus, Store, StoreError, User, Write};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// Kinds of identity document accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Passport,
    IdCard,
    DriversLicense,
    ProofOfAddress,
}

/// Body of `POST /users/kyc-documents`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KycDocumentRequest {
    /// `passport`, `id_card`, `drivers_license` or `proof_of_address`.
    pub document_type: DocumentType,
    /// The document (image or PDF), standard base64 (padding optional);
    /// not empty. The 64 KiB body limit bounds its size.
    pub content_base64: String,
}

/// `GET /users/kyc-status`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KycStatusView {
    pub kyc_status: KycStatus,
    /// When the status last changed (or a document was last submitted).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// Answer of an accepted `POST /users/kyc-documents` (202).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KycSubmission {
    /// Identifies this submission in `kyc.status_changed` events.
    pub submission_id: String,
    /// Always `PENDING`.
    pub kyc_status: KycStatus,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// Standard base64 alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Attempts at applying a provider decision against concurrent user writes.
const DECISION_ATTEMPTS: usize = 5;

/// The user with `kyc_status` set to `to` at the next version.
fn with_kyc_status(stored: &User, to: KycStatus) -> User {
    let now = events::now();
    User {
        kyc_status: to,
        kyc_updated_at: now,
        updated_at: now,
        version: stored.version + 1,
        ..stored.clone()
    }
}

/// Accepts a KYC document for `user_id`: validates it (422 naming the
/// field), sets the status to `PENDING` with a `kyc.status_changed` event
/// carrying the document's type and digest (one commit), then hands the
/// document to the provider. Already `VERIFIED`: 409
/// `kyc_already_verified`, nothing changes. The provider's requirement of
/// the submitter unmet (Sumsub: a profile country): 422
/// `kyc_document_refused`, nothing changes. Provider unreachable: 503
/// `kyc_provider_unavailable` with the status left `PENDING` (submitting
/// again is allowed and resubmits). The provider refusing to review the
/// user (rejected for good there): 422 `kyc_document_refused`, the status
/// back to `REJECTED` with its reason.
pub async fn submit_document(
    state: &UsersState,
    user_id: &str,
    request: KycDocumentRequest,
) -> ApiResult<KycSubmission> {
    if request.content_base64.is_empty() {
        return Err(ApiError::invalid_field(
            "content_base64",
            "must not be empty",
        ));
    }
    let content = BASE64
        .decode(request.content_base64.as_bytes())
        .map_err(|_| ApiError::invalid_field("content_base64", "must be standard base64"))?;
    let sha256 = hex::encode(Sha256::digest(&content));
    let submission_id = uuid::Uuid::now_v7().to_string();

    let mut committed = None;
    for _ in 0..USER_CONFLICT_ATTEMPTS {
        let stored = load_user(state.store.as_ref(), user_id).await?;
        if stored.kyc_status == KycStatus::Verified {
            return Err(ApiError::conflict(
                "kyc_already_verified",
                "KYC is already verified",
            ));
        }
        state
            .kyc
            .check_submitter(stored.country.as_deref())
            .map_err(|why| ApiError::unprocessable("kyc_document_refused", why))?;
        let user = with_kyc_status(&stored, KycStatus::Pending);
        let event = Event::new(
            EventType::KycStatusChanged,
            Some(user_id),
            json!({
                "from": stored.kyc_status,
                "to": KycStatus::Pending,
                "submission_id": submission_id,
                "document_type": request.document_type,
                "document_sha256": sha256,
                "document_bytes": content.len(),
            }),
        );
        let writes = vec![
            Write::UpdateUser {
                user: user.clone(),
                expected_version: stored.version,
            },
            Write::Emit(event),
        ];
        match state.store.commit(writes).await {
            Ok(()) => {
                committed = Some(user);
                break;
            }
            Err(StoreError::Conflict(Conflict::VersionMismatch(_))) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let user = committed.ok_or_else(|| {
        ApiError::conflict(
            "concurrent_update",
            "the user changed concurrently; try again",
        )
    })?;

    let document = KycDocument {
        user_id: user_id.to_owned(),
        submission_id: submission_id.clone(),
        country: user.country.clone(),
        document_type: request.document_type,
        content,
        sha256,
    };
    let decisions = KycDecisions::new(state.store.clone());
    match state.kyc.submit(document, decisions.clone()).await {
        Ok(()) => {}
        // The provider will not review this user (e.g. rejected for good
        // there): back to REJECTED with its reason, and a clear refusal.
        Err(KycProviderError::Refused(why)) => {
            let decision = KycDecision::Rejected {
                reason: why.clone(),
            };
            decisions
                .decide(user_id, &submission_id, &decision, None, |_| Vec::new())
                .await?;
            return Err(ApiError::unprocessable("kyc_document_refused", why));
        }
        Err(e) => {
            tracing::warn!(error = %e, "KYC provider did not take the document");
            return Err(ApiError::unavailable(
                "kyc_provider_unavailable",
                "the KYC provider is unavailable; submit again later",
                5,
            ));
        }
    }
    Ok(KycSubmission {
        submission_id,
        kyc_status: user.kyc_status,
        updated_at: user.kyc_updated_at,
    })
}

/// How much earlier than a submission a provider's decision may be dated
/// and still be about it (the provider's clock and ours differ).
pub const DECISION_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Turns a provider's decisions into KYC status changes.
#[derive(Clone)]
pub struct KycDecisions {
    store: Arc<dyn Store>,
}

impl KycDecisions {
    pub fn new(store: Arc<dyn Store>) -> Self {
        KycDecisions { store }
    }

    /// Applies `decision` on `submission_id` to `user_id`: a user still
    /// `PENDING` becomes `VERIFIED` or `REJECTED`, with a
    /// `kyc.status_changed` event, in one commit. A user in any other
    /// status is left alone (the decision is stale), so a decision applies
    /// at most once. Concurrent writes are retried; a failure is logged
    /// (the sandbox's decisions have no one to retry them).
    pub async fn apply(&self, user_id: &str, submission_id: &str, decision: KycDecision) {
        let extra = |_: bool| Vec::new();
        if let Err(e) = self
            .decide(user_id, submission_id, &decision, None, extra)
            .await
        {
            tracing::warn!(%user_id, %submission_id, error = %e, "KYC decision not applied");
        }
    }

    /// [`apply`](Self::apply), with `extra(applied)` writes joining the
    /// commit (a webhook receipt's move): `Ok(true)` when the status
    /// changed, `Ok(false)` when the user was not `PENDING`, or when the
    /// decision was made (`decided_at`) more than [`DECISION_SKEW`] before
    /// the user's latest submission, so about an earlier one (the extra
    /// writes are committed alone then). Errors are the store's, to retry.
    pub async fn decide(
        &self,
        user_id: &str,
        submission_id: &str,
        decision: &KycDecision,
        decided_at: Option<Timestamp>,
        extra: impl Fn(bool) -> Vec<Write>,
    ) -> Result<bool, StoreError> {
        let (to, reason) = match decision {
            KycDecision::Verified => (KycStatus::Verified, None),
            KycDecision::Rejected { reason } => (KycStatus::Rejected, Some(reason.as_str())),
        };
        for _ in 0..DECISION_ATTEMPTS {
            let current =
                |u: &User| decided_at.is_none_or(|at| at + DECISION_SKEW >= u.kyc_updated_at);
            let stored = match self.store.user(user_id).await? {
                Some(u) if u.kyc_status == KycStatus::Pending && current(&u) => u,
                _ => {
                    tracing::info!(%user_id, %submission_id, "KYC decision ignored: user not pending");
                    self.store.commit(extra(false)).await?;
                    return Ok(false);
                }
            };
            let event = Event::new(
                EventType::KycStatusChanged,
                Some(user_id),
                json!({
                    "from": stored.kyc_status,
                    "to": to,
                    "submission_id": submission_id,
                    "reason": reason,
                }),
            );
            let mut writes = vec![
                Write::UpdateUser {
                    user: with_kyc_status(&stored, to),
                    expected_version: stored.version,
                },
                Write::Emit(event),
            ];
            writes.extend(extra(true));
            match self.store.commit(writes).await {
                Ok(()) => return Ok(true),
                Err(StoreError::Conflict(Conflict::VersionMismatch(_))) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(format!(
            "KYC decision for {user_id} not applied: the user kept changing"
        )))
    }
}

/// The caller's KYC status.
#[utoipa::path(
    get,
    path = "/users/kyc-status",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`NONE`, `PENDING`, `VERIFIED` or `REJECTED`, and when it last changed", body = KycStatusView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`user_not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = ErrorBody),
    )
)]
pub async fn kyc_status(
    State(state): State<UsersState>,
    caller: AuthUser,
) -> ApiResult<Json<KycStatusView>> {
    let user = load_user(state.store.as_ref(), &caller.user_id).await?;
    Ok(Json(KycStatusView {
        kyc_status: user.kyc_status,
        updated_at: user.kyc_updated_at,
    }))
}

/// Submits an identity document; the status becomes `PENDING` and the
/// provider decides later (the sandbox verifies after
/// `kyc_verify_delay_ms`; content starting with `REJECT` is rejected).
/// The document itself is not stored, only its type and SHA-256 digest.
#[utoipa::path(
    post,
    path = "/users/kyc-documents",
    tag = "users",
    security(("bearer" = [])),
    request_body = KycDocumentRequest,
    responses(
        (status = 202, description = "Accepted for review; status `PENDING`", body = KycSubmission),
        (status = 400, description = "`unknown_field` or `bad_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`kyc_already_verified`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`document_type` not one of the four kinds, `content_base64` empty or not base64) or `missing_field`; `kyc_document_refused`: the KYC provider needs something of the user first (Sumsub: a profile `country`; nothing changed) or will not review them (rejected for good: status `REJECTED`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = ErrorBody),
        (status = 503, description = "`kyc_provider_unavailable`: status stays `PENDING`; submit again", body = ErrorBody),
    )
)]
pub async fn submit_kyc_document(
    State(state): State<UsersState>,
    caller: AuthUser,
    ApiJson(request): ApiJson<KycDocumentRequest>,
) -> ApiResult<(StatusCode, Json<KycSubmission>)> {
    let accepted = submit_document(&state, &caller.user_id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
