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

pub mod dynamo;
pub mod embedded;
mod records;

pub use records::*;

use crate::events::Event;
use async_trait::async_trait;
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
    pub event: Event,
}

/// The persistence boundary (see the module doc).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies every write of `writes` atomically and durably, or none and
    /// returns the first failed condition.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError>;

    /// Looks up by normalized (trimmed, lowercase) email.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;

    async fn transaction(
        &self,
        user_id: &str,
        transaction_id: &str,
    ) -> Result<Option<Transaction>, StoreError>;

    /// A user's transactions matching `query`, newest first.
    async fn transactions(
        &self,
        user_id: &str,
        query: &TxQuery,
    ) -> Result<Page<Transaction>, StoreError>;

    /// Every user's transactions in `status` created at or before
    /// `until`, oldest first, at most `limit`: work left in a state (a
    /// withdrawal still `processing`, say), for sweeps and operators.
    /// DynamoDB: a query on `status-index` (eventually consistent, like
    /// every GSI read); embedded: a scan.
    async fn transactions_with_status(
        &self,
        status: &str,
        until: crate::events::Timestamp,
        limit: usize,
    ) -> Result<Vec<Transaction>, StoreError>;

    async fn idempotency(
        &self,
        user_id: &str,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    async fn webhook_receipt(
        &self,
        provider: &str,
        webhook_id: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError>;

    async fn refresh_family(&self, family_id: &str) -> Result<Option<RefreshFamily>, StoreError>;

    async fn checkpoint(
        &self,
        service_name: &str,
        sync_type: &str,
    ) -> Result<Option<SyncCheckpoint>, StoreError>;

    /// The oldest `limit` outbox entries not yet acknowledged, in commit order.
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Removes published entries; unknown positions are ignored.
    async fn outbox_ack(&self, positions: &[String]) -> Result<(), StoreError>;

    /// Answers when the store is reachable (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Normalizes an email for uniqueness and lookup.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
