//! The overlay: the writes made durable in the write-ahead log and not
//! yet checkpointed into the redb file, in memory, where every read looks
//! first (docs/ARCHITECTURE.md, "Embedded store").
//!
//! It has an active [`Layer`], which each group of batches joins once its
//! log record is synced, and at most one frozen layer, being written into
//! the file by a checkpoint; the frozen layer is dropped only after that
//! checkpoint has committed, so a read that misses the overlay and then
//! reads the file finds what the layer held.

use super::table::{Table, Visit, COUNT};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// A stored value, shared between the overlay and its readers.
pub(super) type Bytes = Arc<[u8]>;

/// A copy of the overlay's writes to a range of keys, in key order.
pub(super) type Copied = Vec<(Box<[u8]>, Option<Bytes>)>;

/// Bytes a layer counts per entry beyond its key and value (the map's
/// node share and the `Arc`), for [`Layer::bytes`].
const ENTRY_OVERHEAD: usize = 64;

/// Writes by table and key: a value, or `None` for a removal (which hides
/// the key in the file).
#[derive(Default)]
pub(super) struct Layer {
    maps: [BTreeMap<Box<[u8]>, Option<Bytes>>; COUNT],
    /// About how much memory the layer holds.
    bytes: usize,
}

impl Layer {
    /// `Some(None)` for a removal; `None` when the layer has no word on
    /// the key.
    pub(super) fn get(&self, t: Table, key: &[u8]) -> Option<&Option<Bytes>> {
        self.maps[t.index()].get(key)
    }

    pub(super) fn put(&mut self, t: Table, key: &[u8], value: Option<Bytes>) {
        self.bytes += key.len() + value.as_ref().map_or(0, |v| v.len()) + ENTRY_OVERHEAD;
        self.maps[t.index()].insert(key.into(), value);
    }

    /// Adds `later`'s writes, which win over this layer's.
    pub(super) fn extend(&mut self, later: Layer) {
        for (map, more) in self.maps.iter_mut().zip(later.maps) {
            map.extend(more);
        }
        self.bytes += later.bytes;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.maps.iter().all(BTreeMap::is_empty)
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The writes to table `t`, in key order.
    pub(super) fn entries(&self, t: Table) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.maps[t.index()]
            .iter()
            .map(|(k, v)| (&**k, v.as_deref()))
    }

    fn range<'a>(
        &'a self,
        t: Table,
        bounds: (Bound<&'a [u8]>, Bound<&'a [u8]>),
    ) -> impl Iterator<Item = (&'a Box<[u8]>, &'a Option<Bytes>)> {
        self.maps[t.index()].range::<[u8], _>(bounds)
    }
}

struct Layers {
    active: Layer,
    frozen: Option<Arc<Layer>>,
}

/// The active and frozen layers, read by every reader and written only by
/// the store's committer thread.
pub(super) struct Overlay(RwLock<Layers>);

impl Default for Overlay {
    fn default() -> Self {
        Overlay(RwLock::new(Layers {
            active: Layer::default(),
            frozen: None,
        }))
    }
}

impl Overlay {
    /// The overlay's word on `key`: `Some(None)` if it was removed, `None`
    /// if the overlay does not hold it (the file then has its value).
    pub(super) fn get(&self, t: Table, key: &[u8]) -> Option<Option<Bytes>> {
        let layers = self.0.read();
        if let Some(v) = layers.active.get(t, key) {
            return Some(v.clone());
        }
        layers.frozen.as_ref()?.get(t, key).cloned()
    }

    /// The overlay's writes to table `t` within `bounds`, in key order,
    /// the newest for each key, and what `begin` returns, called before
    /// the overlay can change: `begin` starts the file's read
    /// transaction, so that the file holds nothing newer than the copy
    /// (a layer reaches the file only after it was frozen, which waits
    /// for this copy). A scan then never mixes a batch's new values from
    /// the file with older ones from the copy.
    pub(super) fn range<T, E>(
        &self,
        t: Table,
        bounds: (Bound<&[u8]>, Bound<&[u8]>),
        begin: impl FnOnce() -> Result<T, E>,
    ) -> Result<(Copied, T), E> {
        let layers = self.0.read();
        let active = layers.active.range(t, bounds);
        let copy = match &layers.frozen {
            None => active.map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(frozen) => {
                let mut merged: BTreeMap<&Box<[u8]>, &Option<Bytes>> =
                    frozen.range(t, bounds).collect();
                merged.extend(active);
                merged
                    .into_iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }
        };
        Ok((copy, begin()?))
    }

    /// A group's writes, now durable, join the active layer. The removal
    /// of an outbox entry that the active layer inserted drops the entry
    /// instead of keeping a removal: it was inserted after the last
    /// freeze, so no checkpoint has written it, and outbox positions are
    /// never used twice while the store is open (each is past every
    /// position in the file when the store opened), so the file holds no
    /// other value of it to hide. The outbox's acknowledged entries then
    /// leave the overlay at once, and the relay's scans stay short.
    pub(super) fn publish(&self, mut group: Layer) {
        let mut layers = self.0.write();
        let active = &mut layers.active;
        let outbox = Table::Outbox.index();
        group.maps[outbox].retain(|key, value| {
            let inserted_here =
                value.is_none() && matches!(active.maps[outbox].get(key), Some(Some(_)));
            if inserted_here {
                active.maps[outbox].remove(key);
            }
            !inserted_here
        });
        active.extend(group);
    }

    pub(super) fn active_bytes(&self) -> usize {
        self.0.read().active.bytes()
    }

    pub(super) fn active_is_empty(&self) -> bool {
        self.0.read().active.is_empty()
    }

    /// Whether the overlay holds nothing, frozen layer included: every
    /// write shown so far is in the file.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        let layers = self.0.read();
        layers.active.is_empty() && layers.frozen.is_none()
    }

    /// Freezes the active layer for a checkpoint and starts an empty one;
    /// `None` while the last frozen layer is still there.
    pub(super) fn freeze(&self) -> Option<Arc<Layer>> {
        let mut layers = self.0.write();
        if layers.frozen.is_some() {
            return None;
        }
        let frozen = Arc::new(std::mem::take(&mut layers.active));
        layers.frozen = Some(frozen.clone());
        Some(frozen)
    }

    /// Drops the frozen layer, once its checkpoint has committed.
    pub(super) fn drop_frozen(&self) {
        self.0.write().frozen = None;
    }
}

/// Merges `overlay` (in scan order, from [`Overlay::range`]) into a scan
/// of the file: calls `each` with every entry of the merged view in scan
/// order, the overlay's value winning and its removals hiding the file's,
/// until `each` answers `false`. `file` runs the file's scan with the
/// callback it is given (see `table::scan`).
pub(super) fn merge<E>(
    overlay: Copied,
    rev: bool,
    file: impl FnOnce(&mut Visit<'_, E>) -> Result<(), E>,
    each: &mut Visit<'_, E>,
) -> Result<(), E> {
    type Entries = Box<dyn Iterator<Item = (Box<[u8]>, Option<Bytes>)>>;
    let entries: Entries = if rev {
        Box::new(overlay.into_iter().rev())
    } else {
        Box::new(overlay.into_iter())
    };
    let mut overlay = entries.peekable();
    // Whether `a` comes before `b` in scan order.
    let before = |a: &[u8], b: &[u8]| if rev { a > b } else { a < b };
    let mut going = true;
    file(&mut |key, value| {
        while let Some((k, v)) = overlay.next_if(|(k, _)| before(k, key)) {
            if let Some(v) = v {
                if !each(&k, &v)? {
                    going = false;
                    return Ok(false);
                }
            }
        }
        let go = match overlay.next_if(|(k, _)| &**k == key) {
            Some((_, Some(v))) => each(key, &v)?,
            Some((_, None)) => true,
            None => each(key, value)?,
        };
        going = go;
        Ok(go)
    })?;
    if going {
        for (k, v) in overlay {
            if let Some(v) = v {
                if !each(&k, &v)? {
                    break;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
