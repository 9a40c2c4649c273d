//! What transactions begin from: the page store, the newest commit published
//! to readers, and the snapshots readers hold (which keep their pages from
//! being reused).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use crate::error::Result;
use crate::store::{Config, Meta, PageStore, TxnPages};

/// An open database below its front: the store and the published state.
pub struct Engine {
    store: PageStore,
    snapshots: Mutex<Snapshots>,
}

/// The published state: the newest commit, and the snapshots readers hold.
struct Snapshots {
    current: Meta,
    /// Snapshot transaction id → open read transactions on it.
    readers: BTreeMap<u64, usize>,
}

/// Locks `m`, also after a panic elsewhere: the snapshots are changed by
/// single assignments and counter steps, which leave them consistent.
fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Engine {
    /// Opens the database file at `path` (see [`PageStore::open`]).
    ///
    /// # Safety
    /// No other process may modify the file while it is open.
    pub unsafe fn open(path: &Path, config: &Config, create: bool) -> Result<Engine> {
        // SAFETY: the caller upholds `PageStore::open`'s contract, which is this function's.
        let (store, current) = unsafe { PageStore::open(path, config, create) }?;
        Ok(Engine { store, snapshots: Mutex::new(Snapshots { current, readers: BTreeMap::new() }) })
    }

    /// The page store.
    pub fn store(&self) -> &PageStore {
        &self.store
    }

    /// The newest commit.
    pub fn current(&self) -> Meta {
        relock(&self.snapshots).current
    }

    /// The newest commit, registered as a snapshot a reader holds until
    /// [`end_read`](Self::end_read).
    pub fn begin_read(&self) -> Meta {
        let mut snapshots = relock(&self.snapshots);
        let meta = snapshots.current;
        *snapshots.readers.entry(meta.txn).or_insert(0) += 1;
        meta
    }

    /// Records that a reader of snapshot `txn` ended.
    pub fn end_read(&self, txn: u64) {
        let mut snapshots = relock(&self.snapshots);
        if let Some(n) = snapshots.readers.get_mut(&txn) {
            *n -= 1;
            if *n == 0 {
                snapshots.readers.remove(&txn);
            }
        }
    }

    /// The writer's pages for a new write transaction, starting from the
    /// newest commit; waits while another write transaction is open.
    pub fn begin_write(&self) -> Result<TxnPages<'_>> {
        self.store.begin_write(|| {
            let snapshots = relock(&self.snapshots);
            (snapshots.current, snapshots.readers.keys().next().copied())
        })
    }

    /// Makes `meta` the commit new readers start from.
    pub fn publish(&self, meta: Meta) {
        relock(&self.snapshots).current = meta;
    }
}

impl Drop for Engine {
    /// Makes commits made with `Durability::None` durable, then gives the
    /// free pages at the end of the file back to the file system.
    fn drop(&mut self) {
        if self.store.is_read_only() {
            return;
        }
        let needs_commit = {
            let writer = self.store.writer();
            writer.poisoned().is_none() && self.current().txn > writer.last_durable()
        };
        if needs_commit && let Ok(mut pages) = self.begin_write() {
            // Nothing to report to: a failure leaves the last durable commit, as a crash would.
            let catalog = pages.start().catalog;
            if let Ok(meta) = self.store.commit(&mut pages, catalog, true) {
                self.publish(meta);
            }
        }
        let current = self.current();
        self.store.close(&current);
    }
}
