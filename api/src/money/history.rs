//! Balances as the user sees them, and pages of deposit / withdrawal
//! transactions (newest first, opaque cursor), shared by the wallet and
//! fiat lists.

use super::movement::{Movement, MovementStatus};
use super::Ledger;
use crate::error::ApiError;
use crate::http::{Cursor, Limit};
use crate::store::{Transaction, TxKind, TxQuery};
use orderbook::decimal::{format_scaled, parse_scaled};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One asset's balance; decimal strings at the asset's scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AssetBalance {
    pub asset: String,
    /// Free to trade or withdraw.
    pub available: String,
    /// Held by open orders and by withdrawals not finished yet.
    pub locked: String,
    /// `available + locked`.
    pub total: String,
}

/// `?cursor=&limit=` of the transaction lists.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1..=100 (default 50).
    pub limit: Option<usize>,
}

/// The user's balance of every venue asset. A withdrawal not finished
/// yet was debited at the venue when requested; its amount is shown as
/// `locked` until it completes (gone) or fails (credited back).
pub async fn balances(ledger: &Ledger, user_id: &str) -> Result<Vec<AssetBalance>, ApiError> {
    let venue = ledger.venue.balances(user_id).await?;
    let scales: HashMap<String, u8> = ledger
        .venue
        .assets()
        .into_iter()
        .map(|a| (a.symbol, a.scale))
        .collect();
    let in_flight = withdrawals_in_flight(ledger, user_id, &scales).await?;
    let overflow = || ApiError::internal("balance overflows u64");
    venue
        .into_iter()
        .filter_map(|(asset, b)| scales.get(&asset).map(|s| (asset, b, *s)))
        .map(|(asset, b, scale)| {
            let locked = b
                .locked
                .checked_add(in_flight.get(&asset).copied().unwrap_or(0))
                .ok_or_else(overflow)?;
            let total = b.available.checked_add(locked).ok_or_else(overflow)?;
            Ok(AssetBalance {
                available: format_scaled(b.available, scale),
                locked: format_scaled(locked, scale),
                total: format_scaled(total, scale),
                asset,
            })
        })
        .collect()
}

/// Raw amounts per asset of the user's withdrawals in `pending` or
/// `processing`.
async fn withdrawals_in_flight(
    ledger: &Ledger,
    user_id: &str,
    scales: &HashMap<String, u8>,
) -> Result<HashMap<String, u64>, ApiError> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for status in [MovementStatus::Pending, MovementStatus::Processing] {
        let mut query = TxQuery {
            kinds: vec![TxKind::Withdrawal, TxKind::FiatWithdrawal],
            status: Some(status.as_str().to_owned()),
            limit: crate::http::page::MAX_LIMIT,
            ..TxQuery::default()
        };
        loop {
            let page = ledger.store.transactions(user_id, &query).await?;
            for tx in &page.items {
                let m = Movement::of(tx)?;
                let Some(scale) = scales.get(&m.asset) else {
                    continue;
                };
                let raw = parse_scaled(&m.amount, *scale).map_err(|e| {
                    ApiError::internal(format!("transaction {}: {e}", tx.transaction_id))
                })?;
                let sum = out.entry(m.asset).or_default();
                *sum = sum.saturating_add(raw);
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
    }
    Ok(out)
}

/// The one listing path: one page of the user's transactions of `kinds`,
/// newest first, each made a `T` by `row` from the transaction, its
/// status and its movement, with the cursor of the next page (`None` on
/// the last). Only the caller's own transactions are ever read.
pub async fn list<T>(
    ledger: &Ledger,
    user_id: &str,
    kinds: &[TxKind],
    query: &ListQuery,
    row: impl Fn(Transaction, MovementStatus, Movement) -> T,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = Limit::parse(query.limit)?;
    let after = Cursor::parse(query.cursor.as_deref())?.map(|c| c.0);
    let page = ledger
        .store
        .transactions(
            user_id,
            &TxQuery {
                kinds: kinds.to_vec(),
                after,
                limit: limit.0,
                ..TxQuery::default()
            },
        )
        .await?;
    let items = page
        .items
        .into_iter()
        .map(|tx| {
            let status = MovementStatus::of(&tx)?;
            let movement = Movement::of(&tx)?;
            Ok(row(tx, status, movement))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok((items, page.next.as_deref().map(Cursor::encode)))
}
