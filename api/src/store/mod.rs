//! The store boundary: everything the API persists (docs/ARCHITECTURE.md tables
//! `Users`, `Transactions`, `WebhookReceipts`, `SyncCheckpoints`, plus
//! refresh-token families, idempotency keys, credited chain transfers and
//! the event outbox).
//!
//! Writes go through [`Store::commit`]: a batch of [`Write`]s that lands
//! all together or not at all, with each write's condition checked
//! (unique email, expected version, key not seen before). A state change
//! and the events describing it are one batch, so an acknowledged change
//! always has its events in the outbox, and an event never describes a
//! change that did not happen. Implementations: [`embedded::EmbeddedStore`]
//! (a crash-safe file in the data directory, the default) and
//! [`dynamo::DynamoStore`] (DynamoDB).
//! Every acknowledged commit survives a crash of the process (`kill -9`).
//! Concerns in front of a store (sealing secrets, waking the outbox
//! relay) are [`layered::StoreLayer`]s.

pub mod dynamo;
pub mod embedded;
mod keyed;
pub mod layered;
mod records;

use keyed::found;
pub use keyed::{Record, RecordKey};
pub use records::*;

use crate::events::Event;
use async_trait::async_trait;
use std::sync::Arc;
use thiserror::Error;

/// Why a commit or read failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// A write's condition did not hold; nothing of the batch was written.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// The store could not be reached or did not answer; the batch may be
    /// retried (commits are idempotent only through their conditions).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A list position ([`TxQuery::after`]) that is not one the store
    /// handed out for this list (a client's tampered cursor).
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// A stored record could not be decoded, or the store is inconsistent.
    #[error("store corrupt: {0}")]
    Corrupt(String),
}

/// Which condition of a batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// `CreateUser` with an email another user has.
    EmailTaken,
    /// A `Create*` whose key already exists (user id, transaction id,
    /// refresh family).
    AlreadyExists(&'static str),
    /// An update whose `expected_version` is not the stored one (a
    /// concurrent writer won), or whose record does not exist.
    VersionMismatch(&'static str),
    /// `CreateIdempotency` for a (user, scope, key) already recorded.
    IdempotencyKey,
    /// `CreateWebhookReceipt` for a (provider, webhook id) already recorded.
    DuplicateWebhook,
    /// `CreateChainCredit` for a chain transfer (asset, hash, output)
    /// already credited.
    DuplicateChainCredit,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conflict::EmailTaken => f.write_str("email taken"),
            Conflict::AlreadyExists(what) => write!(f, "{what} already exists"),
            Conflict::VersionMismatch(what) => write!(f, "{what} changed concurrently"),
            Conflict::IdempotencyKey => f.write_str("idempotency key already used"),
            Conflict::DuplicateWebhook => f.write_str("webhook already received"),
            Conflict::DuplicateChainCredit => f.write_str("chain transfer already credited"),
        }
    }
}

/// One conditional write of a [`Store::commit`] batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Creates a user; fails with `EmailTaken` when the (normalized) email
    /// is used, `AlreadyExists("user")` when the id is.
    CreateUser(User),
    /// Replaces a user whose stored `version` is `expected_version`; the
    /// record carries its new version (`expected_version + 1`).
    UpdateUser { user: User, expected_version: u64 },
    /// Creates a transaction; `AlreadyExists("transaction")` if the
    /// (user, transaction id) exists.
    CreateTransaction(Transaction),
    /// Replaces a transaction whose stored `version` is `expected_version`.
    UpdateTransaction {
        tx: Transaction,
        expected_version: u64,
    },
    /// Records an idempotency key; `IdempotencyKey` if already recorded.
    CreateIdempotency(IdempotencyRecord),
    /// Records a webhook; `DuplicateWebhook` if already recorded.
    CreateWebhookReceipt(WebhookReceipt),
    /// Replaces a webhook receipt whose stored `version` is
    /// `expected_version` (`VersionMismatch("webhook receipt")`
    /// otherwise, or when it does not exist): the applier's move out of
    /// `received`, which two appliers of one delivery make once.
    UpdateWebhookReceipt {
        receipt: WebhookReceipt,
        expected_version: u64,
    },
    /// Records that a chain transfer was credited; `DuplicateChainCredit`
    /// if its (asset, tx hash, output) is already recorded. Never expires,
    /// so a batch carrying it commits at most once per chain transfer.
    CreateChainCredit(ChainCredit),
    /// Creates (`expected_version: None`) or replaces a refresh family.
    PutRefreshFamily {
        family: RefreshFamily,
        expected_version: Option<u64>,
    },
    /// Sets a checkpoint (unconditional).
    PutCheckpoint(SyncCheckpoint),
    /// Sets a checkpoint only if none exists for its (service, type);
    /// `AlreadyExists("checkpoint")` otherwise. Nodes racing to set a
    /// value once (the wrapped data key) agree on the first one.
    CreateCheckpoint(SyncCheckpoint),
    /// Replaces the checkpoint of its (service, type) only if the stored
    /// `value` is `expected_value`; `VersionMismatch("checkpoint")` if it
    /// is not, or if there is none. Writers racing to advance one
    /// checkpoint (the CRM sync's per-user positions) cannot move it
    /// back: the loser re-reads and decides again.
    ReplaceCheckpoint {
        checkpoint: SyncCheckpoint,
        expected_value: String,
    },
    /// Appends an event to the outbox, after every earlier one.
    Emit(Event),
}

/// A page of a list, newest first, with the position to continue from.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque position of the last item, `None` on the last page.
    pub next: Option<String>,
}

/// Filters of a transaction list. Items come newest first (by
/// transaction id, which is time-ordered).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxQuery {
    /// Only these kinds (empty: all).
    pub kinds: Vec<TxKind>,
    pub status: Option<String>,
    pub pair: Option<String>,
    /// Continue after this position (from [`Page::next`]).
    pub after: Option<String>,
    /// At most this many items (1..=100).
    pub limit: usize,
}

/// One outbox entry: an event and its position, which orders it after
/// every event committed before it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub position: String,
    /// Shared: the embedded store hands out the events its process
    /// committed without decoding them again.
    pub event: Arc<Event>,
}

/// What a store call returns.
pub type StoreResult<T> = Result<T, StoreError>;

/// Filters of [`Store::in_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusQuery<'a> {
    pub status: &'a str,
    /// Created at or before this time.
    pub until: crate::events::Timestamp,
    /// At most this many.
    pub limit: usize,
}

/// The persistence boundary (see the module doc). An implementation
/// writes the required methods; the typed look-ups by key are provided
/// on top of [`Store::get`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies every write of `writes` atomically and durably, or none and
    /// returns the first failed condition.
    async fn commit(&self, writes: Vec<Write>) -> StoreResult<()>;

    /// The record under `key`, strongly consistent.
    async fn get(&self, key: RecordKey<'_>) -> StoreResult<Option<Record>>;

    /// Looks up by normalized (trimmed, lowercase) email.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;

    /// A user's transactions matching `query`, newest first.
    async fn transactions(&self, user_id: &str, query: &TxQuery) -> StoreResult<Page<Transaction>>;

    /// Every user's transactions in `query.status` created at or before
    /// `query.until`, oldest first, at most `query.limit`: work left in a
    /// state (a withdrawal still `processing`, say), for sweeps and
    /// operators. DynamoDB: a query on `status-index` (eventually
    /// consistent, like every GSI read); embedded: a scan.
    async fn in_status(&self, query: &StatusQuery<'_>) -> StoreResult<Vec<Transaction>>;

    /// The oldest `limit` outbox entries not yet acknowledged, in commit order.
    async fn outbox_pending(&self, limit: usize) -> StoreResult<Vec<OutboxEntry>>;

    /// Removes published entries; unknown positions are ignored.
    async fn outbox_ack(&self, positions: &[String]) -> StoreResult<()>;

    /// Answers when the store is reachable (readiness).
    async fn ping(&self) -> StoreResult<()>;

    async fn user(&self, user_id: &str) -> StoreResult<Option<User>> {
        found(self.get(RecordKey::User { user_id }).await?)
    }

    /// A user's KYC status, without what [`Store::user`]'s layers do to
    /// the rest of the record (opening its sealed secrets): the check on
    /// every order and withdrawal reads only this.
    async fn kyc_status(&self, user_id: &str) -> StoreResult<Option<KycStatus>> {
        Ok(self.user(user_id).await?.map(|user| user.kyc_status))
    }

    async fn transaction(
        &self,
        user_id: &str,
        transaction_id: &str,
    ) -> StoreResult<Option<Transaction>> {
        let key = RecordKey::Transaction {
            user_id,
            transaction_id,
        };
        found(self.get(key).await?)
    }

    /// [`Store::in_status`] with its filters as arguments.
    async fn transactions_with_status(
        &self,
        status: &str,
        until: crate::events::Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Transaction>> {
        let query = StatusQuery {
            status,
            until,
            limit,
        };
        self.in_status(&query).await
    }

    async fn idempotency(
        &self,
        user_id: &str,
        scope: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let key = RecordKey::Idempotency {
            user_id,
            scope,
            key,
        };
        found(self.get(key).await?)
    }

    async fn webhook_receipt(
        &self,
        provider: &str,
        webhook_id: &str,
    ) -> StoreResult<Option<WebhookReceipt>> {
        let key = RecordKey::WebhookReceipt {
            provider,
            webhook_id,
        };
        found(self.get(key).await?)
    }

    async fn refresh_family(&self, family_id: &str) -> StoreResult<Option<RefreshFamily>> {
        found(self.get(RecordKey::RefreshFamily { family_id }).await?)
    }

    async fn checkpoint(
        &self,
        service_name: &str,
        sync_type: &str,
    ) -> StoreResult<Option<SyncCheckpoint>> {
        let key = RecordKey::Checkpoint {
            service_name,
            sync_type,
        };
        found(self.get(key).await?)
    }
}

/// Normalizes an email for uniqueness and lookup.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
