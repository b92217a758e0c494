//! [`LayeredStore`]: a [`Store`] in front of another one that lets a
//! [`StoreLayer`] change batches on their way in, see what committed, and
//! change users on their way out. The one wrapper every cross-cutting
//! store concern uses, so no concern re-implements the whole trait:
//! sealing users' secrets ([`crate::seal::Sealing`]) and waking the outbox
//! relay after a commit that emits events
//! ([`crate::events::relay::RelayWake`]) are layers.

use super::*;
use async_trait::async_trait;
use std::sync::Arc;
use tracing::Instrument as _;

/// What a layer does around the store it sits in front of. Every hook
/// defaults to "nothing".
pub trait StoreLayer: Send + Sync + 'static {
    /// The batch the inner store commits instead of `writes`.
    fn on_commit(&self, writes: Vec<Write>) -> Vec<Write> {
        writes
    }

    /// Called after a batch committed with what its events (its
    /// [`Write::Emit`]s) were.
    fn committed(&self, events: &[Emitted]) {
        let _ = events;
    }

    /// Whether commits through this layer get a `store.commit` span: true
    /// for one layer of the stack (the outbox relay's, which every
    /// committing store of a process passes), so a commit is one span.
    fn traces_commits(&self) -> bool {
        false
    }

    /// The user a read returns instead of the stored `user`.
    fn on_user(&self, user: User) -> Result<User, StoreError> {
        Ok(user)
    }
}

/// What a committed event was, for the layers' [`StoreLayer::committed`]:
/// its type and, where its data has one, its `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    pub event_type: String,
    pub status: Option<String>,
}

impl Emitted {
    fn of(event: &Event) -> Self {
        Emitted {
            event_type: event.event_type.clone(),
            status: event.data["status"].as_str().map(str::to_owned),
        }
    }
}

/// `inner` behind `layer` (see the module doc).
pub struct LayeredStore {
    inner: Arc<dyn Store>,
    layer: Box<dyn StoreLayer>,
}

impl LayeredStore {
    pub fn new(inner: Arc<dyn Store>, layer: impl StoreLayer) -> Self {
        LayeredStore {
            inner,
            layer: Box::new(layer),
        }
    }
}

#[async_trait]
impl Store for LayeredStore {
    async fn commit(&self, writes: Vec<Write>) -> StoreResult<()> {
        let writes = self.layer.on_commit(writes);
        let events: Vec<Emitted> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Emit(event) => Some(Emitted::of(event)),
                _ => None,
            })
            .collect();
        let commit = self.inner.commit(writes);
        if self.layer.traces_commits() {
            commit
                .instrument(tracing::info_span!(target: crate::events::trace::TRACE_ONLY, "store.commit", events = events.len()))
                .await?;
        } else {
            commit.await?;
        }
        self.layer.committed(&events);
        Ok(())
    }

    async fn get(&self, key: RecordKey<'_>) -> StoreResult<Option<Record>> {
        match self.inner.get(key).await? {
            Some(Record::User(user)) => Ok(Some(Record::User(self.layer.on_user(user)?))),
            other => Ok(other),
        }
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let user = self.inner.user_by_email(email).await?;
        user.map(|u| self.layer.on_user(u)).transpose()
    }

    async fn kyc_status(&self, user_id: &str) -> StoreResult<Option<KycStatus>> {
        // No layer changes a user's KYC status: skip `on_user`.
        self.inner.kyc_status(user_id).await
    }

    async fn transactions(&self, user_id: &str, query: &TxQuery) -> StoreResult<Page<Transaction>> {
        self.inner.transactions(user_id, query).await
    }

    async fn in_status(&self, query: &StatusQuery<'_>) -> StoreResult<Vec<Transaction>> {
        self.inner.in_status(query).await
    }

    async fn outbox_pending(&self, limit: usize) -> StoreResult<Vec<OutboxEntry>> {
        self.inner.outbox_pending(limit).await
    }

    async fn outbox_ack(&self, positions: &[String]) -> StoreResult<()> {
        self.inner.outbox_ack(positions).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
}
