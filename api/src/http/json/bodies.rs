//! The table of every JSON request body the routes take, with the check
//! its route makes before reading any state (for fuzzing and a test).

use super::decode;
use crate::error::ApiError;
use serde::de::DeserializeOwned;

/// Checks one request body as its route does before reading any state.
pub type BodyCheck = fn(&[u8]) -> Result<(), ApiError>;

fn decodes<T: DeserializeOwned>(bytes: &[u8]) -> Result<(), ApiError> {
    decode::<T>(bytes).map(drop)
}

/// Every JSON request body the routes take (each operation's
/// `request_body` in the OpenAPI document, by schema name), with what its
/// route checks of it before reading any state: [`decode`], plus the
/// pure validation where a route has one. For fuzzing (`fuzz/`, target
/// `rest_bodies`); a test keeps it in step with the routes.
pub const REQUEST_BODIES: &[(&str, BodyCheck)] = &[
    ("RegisterRequest", decodes::<crate::auth::RegisterRequest>),
    ("LoginRequest", decodes::<crate::auth::LoginRequest>),
    ("RefreshRequest", decodes::<crate::auth::RefreshRequest>),
    ("MfaVerifyRequest", decodes::<crate::auth::MfaVerifyRequest>),
    (
        "ProfileUpdate",
        crate::users::profile::ProfileUpdate::check_body,
    ),
    (
        "KycDocumentRequest",
        decodes::<crate::users::kyc::KycDocumentRequest>,
    ),
    ("PlaceOrderRequest", crate::trading::check_order_body),
    (
        "DepositAddressRequest",
        decodes::<crate::wallets::handlers::DepositAddressRequest>,
    ),
    (
        "WithdrawRequest",
        decodes::<crate::wallets::handlers::WithdrawRequest>,
    ),
    (
        "FiatDepositRequest",
        decodes::<crate::fiat::handlers::FiatDepositRequest>,
    ),
    (
        "FiatWithdrawRequest",
        decodes::<crate::fiat::handlers::FiatWithdrawRequest>,
    ),
];
