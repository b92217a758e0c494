//! Opening a fiat deposit: idempotency, the provider's payment session,
//! and the `pending` record. No money moves here: the balance is credited
//! only when the provider's signed webhook confirms the payment
//! ([`settle`](crate::wallets::settle)).
//!
//! Order: the provider is asked first (its answer, the payment URL or
//! bank instructions, is part of the record and of every replay), then
//! one commit records the transaction, its idempotency key and its
//! `deposit.state_changed` event. If the commit fails, the provider is
//! left with a session nobody will pay; its webhook, should one come,
//! names a transaction that does not exist and is refused.

use super::payout::payment_order;
use super::provider::{FiatProvider, NextStep};
use super::upstream;
use crate::error::ApiError;
use crate::state::Api;
use crate::store::{Conflict, StoreError, Transaction, TxKind, Write};
use crate::wallets::amount::AssetAmount;
use crate::wallets::idempotency;
use crate::wallets::movement::{state_event, Movement, PENDING};

/// Idempotency scope of fiat deposits.
pub const SCOPE: &str = "fiat_deposit";

/// The deposit `idempotency_key` made before (same request), or a new
/// `pending` one; 409 `duplicate_idempotency_key` for another request.
pub async fn open(
    api: &Api,
    user_id: &str,
    idempotency_key: &str,
    amount: &AssetAmount,
    provider: FiatProvider,
) -> Result<Transaction, ApiError> {
    let raw = amount.raw.to_string();
    let fingerprint = idempotency::fingerprint(&[SCOPE, &amount.asset, &raw, provider.as_str()]);
    let prior = || idempotency::prior(api, user_id, SCOPE, idempotency_key, &fingerprint);
    if let Some(tx) = prior().await? {
        return Ok(tx);
    }
    let transaction_id = uuid::Uuid::now_v7().to_string();
    let order = payment_order(&transaction_id, user_id, amount);
    let start = upstream::start_deposit(api, provider, &order).await?;
    let (payment_url, instructions) = match start.next_step {
        NextStep::PaymentUrl(url) => (Some(url), None),
        NextStep::Instructions(i) => (None, Some(i)),
    };
    let movement = Movement {
        asset: amount.asset.clone(),
        amount: amount.decimal(),
        provider: Some(provider.as_str().to_owned()),
        provider_ref: Some(start.provider_ref),
        payment_url,
        instructions,
        ..Movement::default()
    };
    let now = crate::events::now();
    let tx = Transaction {
        user_id: user_id.to_owned(),
        transaction_id,
        kind: TxKind::FiatDeposit,
        status: PENDING.to_owned(),
        pair: Some(amount.asset.clone()),
        created_at: now,
        updated_at: now,
        version: 1,
        detail: movement.to_detail(),
    };
    let record = idempotency::record(
        user_id,
        SCOPE,
        idempotency_key,
        &fingerprint,
        &tx.transaction_id,
    );
    let writes = vec![
        Write::CreateTransaction(tx.clone()),
        Write::CreateIdempotency(record),
        Write::Emit(state_event(&tx, &movement, None)),
    ];
    match api.store.commit(writes).await {
        Ok(()) => {
            api.relay.notify();
            Ok(tx)
        }
        // A concurrent request with this key won: answer as it did.
        Err(StoreError::Conflict(Conflict::IdempotencyKey)) => prior()
            .await?
            .ok_or_else(|| ApiError::internal("idempotency conflict without a record")),
        Err(e) => Err(e.into()),
    }
}
