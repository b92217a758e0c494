//! `/wallets` routes (docs/API.md "Routes"): balances, deposit addresses,
//! crypto withdrawals and the deposit/withdrawal history, over the
//! [`Custody`](crate::providers::custody::Custody) boundary
//! (`custody_provider`: Fireblocks in production, the sandbox by
//! default). Money movement itself is [`crate::money`]'s.

pub mod handlers;

use crate::error::ApiError;
use crate::money::Ledger;
use crate::providers::custody::CustodyAccess;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the wallet routes use: money movement and custody.
#[derive(Clone)]
pub struct WalletsState {
    pub ledger: Ledger,
    pub custody: Arc<CustodyAccess>,
}

/// The routes of this module.
pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    WalletsState: axum::extract::FromRef<S>,
    crate::auth::AuthUser: axum::extract::FromRequestParts<S, Rejection = ApiError>,
{
    OpenApiRouter::new()
        .routes(routes!(handlers::balances))
        .routes(routes!(handlers::deposit_address))
        .routes(routes!(handlers::withdraw))
        .routes(routes!(handlers::transactions))
}
