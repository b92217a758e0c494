//! `/users` routes (docs/API.md, "Routes"): the caller's profile and KYC.
//!
//! - [`profile`]: `GET/PUT /users/profile`; only the user's own fields are
//!   settable, each validated ([`fields`], [`countries`]).
//! - [`kyc`]: `GET /users/kyc-status`, `POST /users/kyc-documents`; the
//!   KYC status changes only through this flow and the provider's decision
//!   ([`crate::providers::kyc`]).
//!
//! Every change is a version-checked user write committed with its event.

pub mod countries;
pub mod fields;
pub mod kyc;
pub mod profile;

use crate::error::ApiResult;
use crate::state::Api;
use crate::store::User;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How many times a user write is attempted when a concurrent writer bumps
/// the version in between (the first try and one retry).
const USER_CONFLICT_ATTEMPTS: usize = 2;

/// The stored user behind an authenticated request; 404 `user_not_found`
/// when the token outlived its user.
pub async fn load_user(api: &Api, user_id: &str) -> ApiResult<User> {
    kyc::load(api.store.as_ref(), user_id).await
}

/// The user, if their KYC status is `VERIFIED`; otherwise 403
/// `kyc_required` (docs/API.md: trading and withdrawals need it; so do fiat
/// deposits).
pub async fn require_verified_kyc(api: &Api, user_id: &str) -> ApiResult<User> {
    kyc::require_verified(api.store.as_ref(), user_id).await
}

/// The routes of this module.
pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(profile::get_profile, profile::put_profile))
        .routes(routes!(kyc::kyc_status))
        .routes(routes!(kyc::submit_kyc_document))
}
