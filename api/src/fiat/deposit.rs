//! Opening a fiat deposit: idempotency, the provider's payment session,
//! and the `pending` record. No money moves here: the balance is credited
//! only when the provider's signed webhook confirms the payment
//! ([`settle`](crate::money::settle)).
//!
//! Order: the provider is asked first (its answer, the payment URL or
//! bank instructions, is part of the record and of every replay), then
//! one commit records the transaction, its idempotency key, the
//! provider's reference to it ([`references`]) and its
//! `deposit.state_changed` event. If the commit fails, the provider is
//! left with a session nobody will pay; its webhook, should one come,
//! names a transaction (or a reference) that does not exist and is
//! rejected (a reference only after a few minutes of retries).

use super::payout::payment_order;
use super::FiatState;
use crate::error::ApiError;
use crate::money::amount::AssetAmount;
use crate::money::movement::{new_transaction_id, state_event, Movement, MovementStatus};
use crate::money::{references, request_keys};
use crate::providers::payment::{FiatProvider, NextStep};
use crate::store::{Conflict, StoreError, Transaction, TxKind, Write};

/// Request-key scope of fiat deposits.
pub const SCOPE: &str = "fiat_deposit";

/// The deposit `idempotency_key` made before (same request), or a new
/// `pending` one; 409 `duplicate_idempotency_key` for another request.
pub async fn open(
    state: &FiatState,
    user_id: &str,
    idempotency_key: &str,
    amount: &AssetAmount,
    provider: FiatProvider,
) -> Result<Transaction, ApiError> {
    let raw = amount.raw.to_string();
    let fingerprint = request_keys::fingerprint(&[SCOPE, &amount.asset, &raw, provider.as_str()]);
    let store = state.ledger.store.as_ref();
    let prior = || request_keys::prior(store, user_id, SCOPE, idempotency_key, &fingerprint);
    if let Some(tx) = prior().await? {
        return Ok(tx);
    }
    let transaction_id = new_transaction_id();
    let order = payment_order(&transaction_id, user_id, amount);
    let start = state.fiat.start_deposit(provider, &order).await?;
    let (mut payment_url, mut instructions, mut client_secret) = (None, None, None);
    match start.next_step {
        NextStep::PaymentUrl(url) => payment_url = Some(url),
        NextStep::Instructions(i) => instructions = Some(i),
        NextStep::ClientSecret(s) => client_secret = Some(s),
    }
    let reference = references::record(
        provider.as_str(),
        &start.provider_ref,
        &references::Ours {
            user_id: user_id.to_owned(),
            transaction_id: transaction_id.clone(),
        },
    );
    let movement = Movement {
        asset: amount.asset.clone(),
        amount: amount.decimal(),
        provider: Some(provider.as_str().to_owned()),
        provider_ref: Some(start.provider_ref),
        payment_url,
        instructions,
        client_secret,
        ..Movement::default()
    };
    let tx = movement.new_transaction(
        transaction_id,
        user_id,
        TxKind::FiatDeposit,
        MovementStatus::Pending,
    );
    let record = request_keys::record(
        user_id,
        SCOPE,
        idempotency_key,
        &fingerprint,
        &tx.transaction_id,
    );
    let writes = vec![
        Write::CreateTransaction(tx.clone()),
        Write::CreateIdempotency(record),
        reference,
        Write::Emit(state_event(&tx, &movement, None)),
    ];
    match state.ledger.store.commit(writes).await {
        Ok(()) => Ok(tx),
        // A concurrent request with this key won: answer as it did.
        Err(StoreError::Conflict(Conflict::IdempotencyKey)) => prior()
            .await?
            .ok_or_else(|| ApiError::internal("idempotency conflict without a record")),
        Err(e) => Err(e.into()),
    }
}
