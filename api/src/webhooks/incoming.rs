//! Custody deposits: funds that arrived at a user's deposit address, as
//! custody (Fireblocks) reports them, credited once per chain transfer.
//!
//! Custody may report one transfer on the chain under several of its own
//! ids (so several delivery ids). The transfer's identity is (asset,
//! transaction hash, output) ([`ChainTransfer`], canonically spelled: hex
//! hashes whatever their case or `0x`, base58 ones as they are); a
//! [`ChainCredit`] for it is written in the same commit as the deposit
//! and its credit, and the store refuses a second one
//! (`DuplicateChainCredit`, never expiring, unlike the 30-day webhook
//! receipts). So concurrent notices under different ids credit once: the
//! losers' receipts become `ignored` ("chain transfer already credited").
//!
//! The output is custody's transfer index (a UTXO's vout) when the notice
//! has one, else the destination address (Fireblocks leaves the index out
//! when a transaction has several destinations; the address still tells
//! our users' outputs apart, and two outputs of one transaction to one
//! address are then credited once: an under-credit, visible and
//! reconcilable, never an over-credit).
//!
//! A `COMPLETED` incoming deposit without `txHash` is refused by the
//! route ([`check_shape`]) with 422 `missing_tx_hash` and nothing is
//! recorded: it could not be told apart from the same transfer under
//! another id. Fireblocks sets `txHash` on every completed crypto
//! transfer from an external source, so this is an anomaly for an
//! operator (logged), and a corrected redelivery of the same id is
//! accepted.

use super::notice::{Notice, Provider};
use super::process::{applied_writes, Failure};
use super::WebhooksState;
use crate::error::ApiError;
use crate::money::address::Network;
use crate::money::amount::find_asset;
use crate::money::chain::{ChainTransfer, Output};
use crate::money::movement::{new_transaction_id, Movement, MovementStatus};
use crate::money::settle;
use crate::store::{
    ChainCredit, Conflict, ReceiptStatus, StoreError, TxKind, WebhookReceipt, Write,
};
use orderbook::decimal::parse_scaled;

/// The checks of an incoming deposit that need only the notice, made by
/// the route before anything is stored: only custody reports deposits
/// (422 `invalid_payload`), and a completed one names its chain
/// transaction (422 `missing_tx_hash`). Other notices pass.
pub fn check_shape(provider: Provider, notice: &Notice) -> Result<(), ApiError> {
    let Notice::IncomingDeposit {
        user_id,
        custody_ref,
        tx_hash,
        ..
    } = notice
    else {
        return Ok(());
    };
    if provider.payments().is_some() {
        return Err(ApiError::unprocessable(
            "invalid_payload",
            "only custody reports deposits",
        ));
    }
    if tx_hash.is_none() {
        tracing::warn!(custody_ref = %custody_ref, user_id = ?user_id,
            "completed incoming deposit without a tx hash refused");
        return Err(ApiError::unprocessable(
            "missing_tx_hash",
            "a completed incoming deposit must name its chain transaction (txHash)",
        ));
    }
    Ok(())
}

/// Applies an [`Notice::IncomingDeposit`] stored in `receipt`: checks it,
/// then records the deposit with the receipt's move and the chain credit
/// in one commit and credits the venue. Other notices are a caller's
/// mistake (500).
pub(super) async fn apply(
    state: &WebhooksState,
    provider: Provider,
    notice: &Notice,
    receipt: &WebhookReceipt,
) -> Result<ReceiptStatus, Failure> {
    let Notice::IncomingDeposit {
        user_id,
        asset,
        amount,
        address,
        custody_ref,
        tx_hash,
        output_index,
        ..
    } = notice
    else {
        return Err(ApiError::internal("incoming::apply called with another notice").into());
    };
    check_shape(provider, notice)?;
    let ledger = &state.ledger;
    let user_id = match user_id {
        Some(user) => user.clone(),
        None => {
            let ours = state.custody.custody.our_asset(asset);
            state
                .custody
                .owner_of(&ours, address)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found("unknown_address", "no user has this deposit address")
                })?
        }
    };
    let user_id = &user_id;
    if ledger.store.user(user_id).await?.is_none() {
        return Err(ApiError::not_found("unknown_user", "no such user").into());
    }
    let unsupported =
        || ApiError::unprocessable("unsupported_asset", "asset is not held in custody");
    let asset = state.custody.custody.our_asset(asset);
    let spec = find_asset(&ledger.venue.assets(), &asset).ok_or_else(unsupported)?;
    let network = Network::of(&spec.symbol).ok_or_else(unsupported)?;
    let Some(tx_hash) = tx_hash else {
        return Err(ApiError::internal("check_shape let a deposit without txHash through").into());
    };
    let output = match output_index {
        Some(index) => Output::Index(*index),
        None => Output::Address(address.clone()),
    };
    let transfer = ChainTransfer::new(network, &spec.symbol, tx_hash, &output)
        .map_err(|e| ApiError::unprocessable("invalid_tx_hash", e.to_string()))?;
    let expected = state.custody.deposit_address(user_id, &spec.symbol).await?;
    if expected.address != *address {
        return Err(
            ApiError::unprocessable("unknown_address", "not this user's deposit address").into(),
        );
    }
    let raw = parse_scaled(amount, spec.scale)
        .ok()
        .filter(|r| *r > 0)
        .ok_or_else(|| {
            ApiError::unprocessable("invalid_amount", "amount does not fit the asset")
        })?;
    let movement = Movement {
        asset: spec.symbol.clone(),
        amount: orderbook::decimal::format_scaled(raw, spec.scale),
        address: Some(address.clone()),
        network: Some(network.as_str().to_owned()),
        provider: Some(provider.as_str().to_owned()),
        provider_ref: Some(custody_ref.clone()),
        tx_hash: Some(transfer.tx_hash.clone()),
        ..Movement::default()
    };
    let tx = movement.new_transaction(
        new_transaction_id(),
        user_id,
        TxKind::Deposit,
        MovementStatus::Processing,
    );
    let mut extra = applied_writes(
        receipt,
        ReceiptStatus::Applied,
        Some(user_id),
        Some(&tx.transaction_id),
        "deposit",
    );
    extra.push(Write::CreateChainCredit(ChainCredit {
        asset: transfer.asset.clone(),
        tx_hash: transfer.tx_hash.clone(),
        output: transfer.output.clone(),
        user_id: user_id.clone(),
        transaction_id: tx.transaction_id.clone(),
        provider: provider.as_str().to_owned(),
        credited_at: tx.created_at,
    }));
    match settle::record_incoming(ledger, tx, &movement, extra).await {
        Ok(_) => Ok(ReceiptStatus::Applied),
        Err(StoreError::Conflict(Conflict::DuplicateChainCredit)) => {
            tracing::info!(custody_ref = %custody_ref, asset = %transfer.asset,
                tx_hash = %transfer.tx_hash, output = %transfer.output,
                "chain transfer already credited under another custody id");
            let writes = applied_writes(
                receipt,
                ReceiptStatus::Ignored,
                Some(user_id),
                None,
                "ignored: chain transfer already credited",
            );
            ledger.store.commit(writes).await?;
            Ok(ReceiptStatus::Ignored)
        }
        Err(e) => Err(e.into()),
    }
}
