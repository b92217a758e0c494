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

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::providers::kyc::KycProvider;
use crate::store::{KycStatus, Store, User};
use axum::extract::FromRef;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the `/users` routes use.
#[derive(Clone)]
pub struct UsersState {
    pub store: Arc<dyn Store>,
    /// Where identity documents are reviewed.
    pub kyc: Arc<dyn KycProvider>,
}

/// How many times a user write is attempted when a concurrent writer bumps
/// the version in between (the first try and one retry).
const USER_CONFLICT_ATTEMPTS: usize = 2;

/// The stored user behind an authenticated request; 404 `user_not_found`
/// when the token outlived its user.
pub async fn load_user(store: &dyn Store, user_id: &str) -> ApiResult<User> {
    store.user(user_id).await?.ok_or_else(user_not_found)
}

/// 404 `user_not_found`: the token outlived its user.
fn user_not_found() -> ApiError {
    ApiError::not_found("user_not_found", "the user does not exist")
}

/// Ok if the user's KYC status is `VERIFIED`; otherwise 403
/// `kyc_required` (docs/API.md: trading and withdrawals need it; so do fiat
/// deposits), or 404 `user_not_found`. Reads the status alone
/// ([`Store::kyc_status`]), not the sealed fields beside it.
pub async fn require_verified_kyc(store: &dyn Store, user_id: &str) -> ApiResult<()> {
    let status = store
        .kyc_status(user_id)
        .await?
        .ok_or_else(user_not_found)?;
    if status == KycStatus::Verified {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "kyc_required",
            "this needs verified KYC (POST /users/kyc-documents)",
        ))
    }
}

/// The routes of this module, on any state both [`UsersState`] and the
/// [`Auth`] can be had from.
pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    UsersState: FromRef<S>,
    Arc<Auth>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(profile::get_profile, profile::put_profile))
        .routes(routes!(kyc::kyc_status))
        .routes(routes!(kyc::submit_kyc_document))
}
