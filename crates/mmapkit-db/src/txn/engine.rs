//! What transactions begin from: the page store, the newest commit this
//! handle knows of (its own, or one another process published), and the
//! snapshots this handle's readers hold, whose oldest it keeps in its reader
//! slot so that no writer in any process reuses their pages.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use crate::error::Result;
use crate::store::{Config, HeldTurn, Meta, PageStore, TxnPages};

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
    /// Open read transactions in all.
    open: u64,
    /// The id of the published commit last looked at (taken, or refused as
    /// not this file's).
    seen: Option<u64>,
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
    /// No process may modify the file while it is open other than through
    /// mmapkit-db handles.
    pub unsafe fn open(path: &Path, config: &Config, create: bool) -> Result<Engine> {
        // SAFETY: the caller upholds `PageStore::open`'s contract, which is this function's.
        let (store, current) = unsafe { PageStore::open(path, config, create) }?;
        Ok(Engine {
            store,
            snapshots: Mutex::new(Snapshots { current, readers: BTreeMap::new(), open: 0, seen: None }),
        })
    }

    /// The page store.
    pub fn store(&self) -> &PageStore {
        &self.store
    }

    /// Moves `snapshots` to the commit another process published, if it is
    /// newer and one of this file's.
    fn catch_up(&self, snapshots: &mut Snapshots) {
        let Some(table) = self.store.table() else { return };
        // None as well while a publisher that died mid-change left it torn.
        let published = table.lock_file().published();
        if snapshots.seen == published.map(|p| p.txn) {
            return;
        }
        snapshots.seen = published.map(|p| p.txn);
        if let Some(published) = published
            && published.txn > snapshots.current.txn
            && self.store.holds_commit(&published)
        {
            snapshots.current = published;
        }
    }

    /// The newest commit, registered as a snapshot a reader holds until
    /// [`end_read`](Self::end_read), its pages mapped.
    pub fn begin_read(&self) -> Result<Meta> {
        let meta = {
            let mut snapshots = relock(&self.snapshots);
            loop {
                self.catch_up(&mut snapshots);
                let meta = snapshots.current;
                if let Some(table) = self.store.table() {
                    if snapshots.open == 0 {
                        // The slot first, then a second look at what is published:
                        // a writer that published a newer commit after the first
                        // look may not have seen the slot (see `reader_slots.rs`).
                        table.set_oldest(Some(meta.txn), 1);
                        if table.lock_file().published_txn() != snapshots.seen {
                            continue;
                        }
                    } else {
                        table.set_count(snapshots.open + 1);
                    }
                }
                *snapshots.readers.entry(meta.txn).or_insert(0) += 1;
                snapshots.open += 1;
                break meta;
            }
        };
        if let Err(e) = self.store.cover(&meta) {
            self.end_read(meta.txn);
            return Err(e);
        }
        Ok(meta)
    }

    /// Records that a reader of snapshot `txn` ended.
    pub fn end_read(&self, txn: u64) {
        let mut snapshots = relock(&self.snapshots);
        let oldest = snapshots.readers.keys().next().copied();
        if let Some(n) = snapshots.readers.get_mut(&txn) {
            *n -= 1;
            if *n == 0 {
                snapshots.readers.remove(&txn);
            }
            snapshots.open -= 1;
        }
        if let Some(table) = self.store.table() {
            let now = snapshots.readers.keys().next().copied();
            if now != oldest {
                table.set_oldest(now, snapshots.open);
            } else {
                table.set_count(snapshots.open);
            }
        }
    }

    /// The writer's pages for a new write transaction, starting from the
    /// newest commit; waits while another write transaction (in any process)
    /// is open.
    pub fn begin_write(&self) -> Result<TxnPages<'_>> {
        self.store.begin_write(|fresh| {
            let mut snapshots = relock(&self.snapshots);
            if let Some(fresh) = fresh {
                // Read again from the file with the turn held: nothing newer exists.
                snapshots.current = fresh;
            }
            snapshots.current
        })
    }

    /// The writer's state with the turn held, and the commit it belongs to.
    pub fn held_turn(&self) -> Result<(HeldTurn<'_>, Meta)> {
        let turn = self.store.held_turn()?;
        let mut snapshots = relock(&self.snapshots);
        match turn.fresh {
            Some(fresh) => snapshots.current = fresh,
            None => self.catch_up(&mut snapshots),
        }
        let current = snapshots.current;
        drop(snapshots);
        self.store.cover(&current)?;
        Ok((turn, current))
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
            writer.poisoned().is_none() && writer.unsynced()
        };
        if needs_commit && let Ok(mut pages) = self.begin_write() {
            // Nothing to report to: a failure leaves the last durable commit, as a crash would.
            let catalog = pages.start().catalog;
            if let Ok(meta) = self.store.commit(&mut pages, catalog, true) {
                self.publish(meta);
            }
        }
        let current = relock(&self.snapshots).current;
        self.store.close(&current);
    }
}
