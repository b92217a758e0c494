//! The `/wallets` handlers (docs/API.md "Routes") and their request and
//! response types. Handlers validate, then hand over to
//! [`money`](crate::money) (the withdraw and listing paths) and custody.

use super::WalletsState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::events::Timestamp;
use crate::http::{ApiJson, ApiQuery};
use crate::money::address::Network;
use crate::money::amount::{find_asset, AssetAmount};
use crate::money::history::{self, AssetBalance, ListQuery};
use crate::money::movement::{direction_name, Movement, MovementStatus};
use crate::money::outflow::{self, MovementAccepted, Outflow, Submission};
use crate::money::request_keys;
use crate::providers::custody::{CustodyError, WithdrawalOrder};
use crate::resilience::CallError;
use crate::store::{Transaction, TxKind};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use feeds::venue::AssetSpec;
use serde::{Deserialize, Serialize};

/// Request-key scope of crypto withdrawals.
const SCOPE: &str = "withdraw";

/// `POST /wallets/deposit-address` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositAddressRequest {
    /// A crypto asset of the venue (`BTC`, `ETH`, `SOL`).
    pub asset: String,
}

/// A user's deposit address; the same on every request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DepositAddressAnswer {
    pub asset: String,
    pub address: String,
    /// `bitcoin`, `ethereum` or `solana`.
    pub network: String,
}

/// `POST /wallets/withdraw` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    pub asset: String,
    /// Decimal string, positive, at most the asset's scale.
    pub amount: String,
    /// A valid address of the asset's network.
    pub address: String,
    /// 1..=128 printable ASCII characters; the same key and body replay
    /// the first answer, another body is 409.
    pub idempotency_key: String,
}

/// A deposit or withdrawal of crypto.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WalletTransaction {
    pub transaction_id: String,
    /// `deposit` or `withdrawal`.
    #[serde(rename = "type")]
    pub kind: String,
    pub asset: String,
    pub amount: String,
    /// `pending`, `processing`, `completed` or `failed`.
    #[schema(value_type = String)]
    pub status: MovementStatus,
    pub address: Option<String>,
    pub network: Option<String>,
    pub tx_hash: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A page of crypto transactions, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WalletTransactions {
    pub transactions: Vec<WalletTransaction>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The user's balance of every asset.
#[utoipa::path(get, path = "/wallets/balances", tag = "wallets",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Balances; a pending withdrawal's amount is `locked`", body = [AssetBalance]),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`upstream_unavailable`, `upstream_timeout`", body = ErrorBody),
    ))]
pub async fn balances(
    State(state): State<WalletsState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<AssetBalance>>> {
    history::balances(&state.ledger, &user.user_id)
        .await
        .map(Json)
}

/// The user's deposit address for a crypto asset (stable per user and asset).
#[utoipa::path(post, path = "/wallets/deposit-address", tag = "wallets",
    security(("bearer" = [])),
    request_body = DepositAddressRequest,
    responses(
        (status = 200, body = DepositAddressAnswer),
        (status = 400, description = "`unknown_field`, `bad_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 422, description = "`unsupported_asset` (unknown or fiat), `missing_field`", body = ErrorBody),
    ))]
pub async fn deposit_address(
    State(state): State<WalletsState>,
    user: AuthUser,
    ApiJson(req): ApiJson<DepositAddressRequest>,
) -> ApiResult<Json<DepositAddressAnswer>> {
    let (spec, _) = crypto_asset(&state, &req.asset)?;
    let address = state
        .custody
        .deposit_address(&user.user_id, &spec.symbol)
        .await?;
    Ok(Json(DepositAddressAnswer {
        asset: address.asset,
        address: address.address,
        network: address.network.as_str().to_owned(),
    }))
}

/// Withdraws crypto to an address: the funds leave the balance at once;
/// custody reports the outcome by webhook (a failure credits them back).
#[utoipa::path(post, path = "/wallets/withdraw", tag = "wallets",
    security(("bearer" = [])),
    request_body = WithdrawRequest,
    responses(
        (status = 202, description = "Accepted (or replayed for the same idempotency key)", body = MovementAccepted),
        (status = 400, description = "`unknown_field`, `bad_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`kyc_required`", body = ErrorBody),
        (status = 409, description = "`duplicate_idempotency_key`: the key was used with another body", body = ErrorBody),
        (status = 422, description = "`unsupported_asset`, `invalid_amount`, `amount_out_of_range`, `invalid_address`, `insufficient_funds`, `invalid_field`, `missing_field`", body = ErrorBody),
        (status = 503, description = "`upstream_unavailable`, `upstream_timeout`, `store_unavailable`", body = ErrorBody),
    ))]
pub async fn withdraw(
    State(state): State<WalletsState>,
    user: AuthUser,
    ApiJson(req): ApiJson<WithdrawRequest>,
) -> ApiResult<(StatusCode, Json<MovementAccepted>)> {
    request_keys::check_key(&req.idempotency_key)?;
    crate::users::require_verified_kyc(state.ledger.store.as_ref(), &user.user_id).await?;
    let (spec, network) = crypto_asset(&state, &req.asset)?;
    let amount = AssetAmount::parse("amount", &req.amount, &spec, spec.scale)?;
    network
        .validate(&req.address)
        .map_err(|e| ApiError::unprocessable("invalid_address", format!("address: {e}")))?;
    let movement = Movement {
        asset: amount.asset.clone(),
        amount: amount.decimal(),
        address: Some(req.address.clone()),
        network: Some(network.as_str().to_owned()),
        provider: Some("fireblocks".to_owned()),
        ..Movement::default()
    };
    let outflow = Outflow {
        user_id: &user.user_id,
        scope: SCOPE,
        idempotency_key: &req.idempotency_key,
        identity: &[&req.address],
        kind: TxKind::Withdrawal,
        amount: &amount,
        movement,
    };
    let accepted = outflow::withdraw(&state.ledger, outflow, |tx, movement| {
        submit(&state, tx, movement)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Hands a recorded withdrawal to custody.
async fn submit(state: &WalletsState, tx: Transaction, movement: Movement) -> Submission {
    let order = WithdrawalOrder {
        transaction_id: tx.transaction_id,
        user_id: tx.user_id,
        asset: movement.asset,
        amount: movement.amount,
        address: movement.address.unwrap_or_default(),
    };
    match state.custody.submit_withdrawal(&order).await {
        Ok(_) => Submission::Accepted(None),
        Err(CallError::Failed(
            CustodyError::Rejected(why) | CustodyError::UnsupportedAsset(why),
        )) => Submission::Refused(why),
        Err(e) => Submission::Unknown(format!("{e:?}")),
    }
}

/// The user's crypto deposits and withdrawals, newest first.
#[utoipa::path(get, path = "/wallets/transactions", tag = "wallets",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = WalletTransactions),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 422, description = "`invalid_limit`, `invalid_cursor`", body = ErrorBody),
    ))]
pub async fn transactions(
    State(state): State<WalletsState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<WalletTransactions>> {
    let kinds = [TxKind::Deposit, TxKind::Withdrawal];
    let (transactions, next_cursor) = history::list(
        &state.ledger,
        &user.user_id,
        &kinds,
        &query,
        |tx, status, m| WalletTransaction {
            transaction_id: tx.transaction_id,
            kind: direction_name(tx.kind).to_owned(),
            asset: m.asset,
            amount: m.amount,
            status,
            address: m.address,
            network: m.network,
            tx_hash: m.tx_hash,
            created_at: tx.created_at,
            updated_at: tx.updated_at,
        },
    )
    .await?;
    Ok(Json(WalletTransactions {
        transactions,
        next_cursor,
    }))
}

/// The venue's crypto asset named `symbol` and its network, or 422
/// `unsupported_asset` (unknown, fiat, or without a custody network).
fn crypto_asset(state: &WalletsState, symbol: &str) -> Result<(AssetSpec, Network), ApiError> {
    find_asset(&state.ledger.venue.assets(), symbol)
        .and_then(|spec| Network::of(&spec.symbol).map(|n| (spec, n)))
        .ok_or_else(|| {
            ApiError::unprocessable(
                "unsupported_asset",
                format!("asset: {symbol:.16} is not a supported crypto asset"),
            )
        })
}
