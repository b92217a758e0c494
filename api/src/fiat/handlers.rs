//! The `/fiat` handlers (docs/API.md "Routes") and their request and response
//! types.

use super::payout::{self, MINOR_UNIT_DECIMALS};
use super::{deposit, FiatState, FIAT_CURRENCIES};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::events::Timestamp;
use crate::http::{ApiJson, ApiQuery};
use crate::money::amount::{find_asset, AssetAmount};
use crate::money::history::{self, ListQuery};
use crate::money::movement::{direction_name, Movement, MovementStatus};
use crate::money::outflow::{self, MovementAccepted, Outflow};
use crate::money::request_keys;
use crate::providers::payment::{BankInstructions, FiatProvider};
use crate::store::{Transaction, TxKind};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use feeds::venue::AssetSpec;
use serde::{Deserialize, Serialize};

/// Longest payout destination accepted.
pub const MAX_DESTINATION_LEN: usize = 128;

const WITHDRAW_SCOPE: &str = "fiat_withdraw";

/// `POST /fiat/deposit` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FiatDepositRequest {
    /// A fiat currency the venue holds (`USD`).
    pub currency: String,
    /// Decimal string, at most 2 decimals.
    pub amount: String,
    pub provider: FiatProvider,
    /// 1..=128 printable ASCII characters (see `POST /wallets/withdraw`).
    pub idempotency_key: String,
}

/// `POST /fiat/withdraw` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FiatWithdrawRequest {
    pub currency: String,
    pub amount: String,
    pub provider: FiatProvider,
    /// The bank account to pay (IBAN or the provider's account reference),
    /// 1..=128 printable characters.
    pub destination: String,
    pub idempotency_key: String,
}

impl FiatDepositRequest {
    /// `(idempotency_key, currency, amount)`.
    fn common(&self) -> (&str, &str, &str) {
        (&self.idempotency_key, &self.currency, &self.amount)
    }
}

impl FiatWithdrawRequest {
    /// `(idempotency_key, currency, amount)`.
    fn common(&self) -> (&str, &str, &str) {
        (&self.idempotency_key, &self.currency, &self.amount)
    }
}

/// A deposit opened with a provider.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FiatDepositAccepted {
    pub transaction_id: String,
    /// `pending` until the provider confirms the payment.
    #[schema(value_type = String)]
    pub status: MovementStatus,
    /// Where the user pays (Stripe, Banxa).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
    /// The bank transfer to make (BCB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<BankInstructions>,
    /// The PaymentIntent's client secret, for Stripe.js `confirmPayment`
    /// (Stripe with its adapter, `stripe_api_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// A fiat deposit or withdrawal.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FiatTransaction {
    pub transaction_id: String,
    /// `deposit` or `withdrawal`.
    #[serde(rename = "type")]
    pub kind: String,
    pub currency: String,
    pub amount: String,
    pub provider: Option<String>,
    /// `pending`, `processing`, `completed` or `failed`.
    #[schema(value_type = String)]
    pub status: MovementStatus,
    pub destination: Option<String>,
    pub payment_url: Option<String>,
    pub instructions: Option<BankInstructions>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A page of fiat transactions, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FiatTransactions {
    pub transactions: Vec<FiatTransaction>,
    pub next_cursor: Option<String>,
}

/// Opens a fiat deposit; needs verified KYC, like trading and
/// withdrawals (checked before the provider is asked, so a refused request
/// opens no payment session). The balance is credited only when the
/// provider's signed webhook confirms the payment.
#[utoipa::path(post, path = "/fiat/deposit", tag = "fiat",
    security(("bearer" = [])),
    request_body = FiatDepositRequest,
    responses(
        (status = 201, description = "Opened (or replayed for the same idempotency key)", body = FiatDepositAccepted),
        (status = 400, description = "`unknown_field`, `bad_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`kyc_required`: the user's KYC is not `VERIFIED`; nothing was opened", body = ErrorBody),
        (status = 409, description = "`duplicate_idempotency_key`", body = ErrorBody),
        (status = 422, description = "`unsupported_currency`, `invalid_amount`, `amount_out_of_range`, `invalid_field` (e.g. unknown provider), `missing_field`, `provider_rejected`", body = ErrorBody),
        (status = 503, description = "`provider_unavailable`, `store_unavailable`", body = ErrorBody),
    ))]
pub async fn deposit(
    State(state): State<FiatState>,
    user: AuthUser,
    ApiJson(req): ApiJson<FiatDepositRequest>,
) -> ApiResult<(StatusCode, Json<FiatDepositAccepted>)> {
    let amount = checked_amount(&state, &user, req.common()).await?;
    let tx = deposit::open(
        &state,
        &user.user_id,
        &req.idempotency_key,
        &amount,
        req.provider,
    )
    .await?;
    deposit_answer(&tx)
}

fn deposit_answer(tx: &Transaction) -> ApiResult<(StatusCode, Json<FiatDepositAccepted>)> {
    let m = Movement::of(tx)?;
    Ok((
        StatusCode::CREATED,
        Json(FiatDepositAccepted {
            transaction_id: tx.transaction_id.clone(),
            status: m.answered_status(),
            payment_url: m.payment_url,
            instructions: m.instructions,
            client_secret: m.client_secret,
        }),
    ))
}

/// Pays fiat out to a bank account: the funds leave the balance at once;
/// the provider reports the outcome by webhook (a failure credits them back).
#[utoipa::path(post, path = "/fiat/withdraw", tag = "fiat",
    security(("bearer" = [])),
    request_body = FiatWithdrawRequest,
    responses(
        (status = 202, description = "Accepted (or replayed for the same idempotency key)", body = MovementAccepted),
        (status = 400, description = "`unknown_field`, `bad_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`kyc_required`", body = ErrorBody),
        (status = 409, description = "`duplicate_idempotency_key`", body = ErrorBody),
        (status = 422, description = "`unsupported_currency`, `invalid_amount`, `amount_out_of_range`, `invalid_destination`, `insufficient_funds`, `invalid_field`, `missing_field`", body = ErrorBody),
        (status = 503, description = "`upstream_unavailable`, `upstream_timeout`, `store_unavailable`", body = ErrorBody),
    ))]
pub async fn withdraw(
    State(state): State<FiatState>,
    user: AuthUser,
    ApiJson(req): ApiJson<FiatWithdrawRequest>,
) -> ApiResult<(StatusCode, Json<MovementAccepted>)> {
    let amount = checked_amount(&state, &user, req.common()).await?;
    let destination = req.destination.trim();
    if destination.is_empty()
        || destination.len() > MAX_DESTINATION_LEN
        || destination.chars().any(char::is_control)
    {
        return Err(ApiError::unprocessable(
            "invalid_destination",
            format!("destination: 1 to {MAX_DESTINATION_LEN} printable characters"),
        ));
    }
    let provider = req.provider;
    let movement = Movement {
        asset: amount.asset.clone(),
        amount: amount.decimal(),
        provider: Some(provider.as_str().to_owned()),
        destination: Some(destination.to_owned()),
        ..Movement::default()
    };
    let outflow = Outflow {
        user_id: &user.user_id,
        scope: WITHDRAW_SCOPE,
        idempotency_key: &req.idempotency_key,
        identity: &[provider.as_str(), destination],
        kind: TxKind::FiatWithdrawal,
        amount: &amount,
        movement,
    };
    let accepted = outflow::withdraw(&state.ledger, outflow, |tx, movement| {
        payout::submit(&state.fiat, provider, tx, &amount, movement)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// The checks every fiat request starts with, in order: the request key,
/// verified KYC, the currency, the amount (at most
/// [`MINOR_UNIT_DECIMALS`] decimals).
async fn checked_amount(
    state: &FiatState,
    user: &AuthUser,
    (idempotency_key, currency, amount): (&str, &str, &str),
) -> Result<AssetAmount, ApiError> {
    request_keys::check_key(idempotency_key)?;
    crate::users::require_verified_kyc(state.ledger.store.as_ref(), &user.user_id).await?;
    let spec = fiat_currency(state, currency)?;
    AssetAmount::parse("amount", amount, &spec, MINOR_UNIT_DECIMALS)
}

/// The user's fiat deposits and withdrawals, newest first.
#[utoipa::path(get, path = "/fiat/transactions", tag = "fiat",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = FiatTransactions),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 422, description = "`invalid_limit`, `invalid_cursor`", body = ErrorBody),
    ))]
pub async fn transactions(
    State(state): State<FiatState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<FiatTransactions>> {
    let kinds = [TxKind::FiatDeposit, TxKind::FiatWithdrawal];
    let (transactions, next_cursor) = history::list(
        &state.ledger,
        &user.user_id,
        &kinds,
        &query,
        |tx, status, m| FiatTransaction {
            transaction_id: tx.transaction_id,
            kind: direction_name(tx.kind).to_owned(),
            currency: m.asset,
            amount: m.amount,
            provider: m.provider,
            status,
            destination: m.destination,
            payment_url: m.payment_url,
            instructions: m.instructions,
            created_at: tx.created_at,
            updated_at: tx.updated_at,
        },
    )
    .await?;
    Ok(Json(FiatTransactions {
        transactions,
        next_cursor,
    }))
}

/// The venue's fiat currency named `symbol`, or 422 `unsupported_currency`.
fn fiat_currency(state: &FiatState, symbol: &str) -> Result<AssetSpec, ApiError> {
    find_asset(&state.ledger.venue.assets(), symbol)
        .filter(|spec| FIAT_CURRENCIES.contains(&spec.symbol.as_str()))
        .ok_or_else(|| {
            ApiError::unprocessable(
                "unsupported_currency",
                format!("currency: {symbol:.16} is not a supported fiat currency"),
            )
        })
}
