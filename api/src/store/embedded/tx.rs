//! [`Tx`]: the store as one batch sees it while the committer applies it:
//! its own writes, then the earlier batches of its group, then the
//! overlay, then the redb file as of the group's start. Its writes stay in
//! the batch until it succeeds; a refused batch leaves nothing.

use super::layer::{Bytes, Layer, Overlay};
use super::table::{self, Table};
use super::StoreError;
use crate::events::Event;
use redb::ReadTransaction;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

pub(super) struct Tx<'a> {
    pub(super) file: &'a ReadTransaction,
    pub(super) overlay: &'a Overlay,
    /// The writes of the group's batches before this one.
    pub(super) group: &'a Layer,
    pub(super) batch: RefCell<Layer>,
    /// The next outbox position.
    pub(super) next_position: &'a Cell<u64>,
    /// The events this batch put in the outbox, by position, for
    /// [`super::emitted`] once the batch has succeeded and its group
    /// synced.
    pub(super) emitted: RefCell<Vec<(u64, Arc<Event>)>>,
}

impl Tx<'_> {
    /// The value under `key` in `t`, as this batch sees it.
    pub(super) fn get(&self, t: Table, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        if let Some(v) = self.batch.borrow().get(t, key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.group.get(t, key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.overlay.get(t, key) {
            return Ok(v);
        }
        table::get(self.file, t, key)
    }

    pub(super) fn insert(&self, t: Table, key: &[u8], value: &[u8]) {
        self.batch.borrow_mut().put(t, key, Some(value.into()));
    }

    pub(super) fn remove(&self, t: Table, key: &[u8]) {
        self.batch.borrow_mut().put(t, key, None);
    }

    /// Puts `event` in the outbox at the next position.
    pub(super) fn emit(&self, event: &Arc<Event>) -> Result<(), StoreError> {
        let position = self.next_position();
        self.insert(
            Table::Outbox,
            &position.to_be_bytes(),
            &super::encode(event.as_ref())?,
        );
        self.emitted.borrow_mut().push((position, event.clone()));
        Ok(())
    }

    /// Takes the next outbox position.
    pub(super) fn next_position(&self) -> u64 {
        let position = self.next_position.get();
        self.next_position.set(position + 1);
        position
    }
}
