//! The write transaction: changes copied into new pages, made visible (and
//! durable) by one commit, or forgotten on drop.

use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::sync::MutexGuard;

use crate::btree;
use crate::catalog::{self, TableInfo};
use crate::db::{Database, Writer};
use crate::error::{Error, Result};
use crate::freelist;
use crate::meta::{MAX_WRITTEN, Meta};
use crate::node::{self, LEAF_ENTRY_HEADER, MAX_ENTRY, SLOT};
use crate::page::{self, Kind, PAGE_SIZE, PageNo};
use crate::pages::Pages;
use crate::range::Range;
use crate::store::Store;
use crate::table_ops;
use crate::write_ahead::WriteAhead;

/// Longest key, in bytes.
pub const MAX_KEY: usize = 1024;
/// Longest value, in bytes (values past a few hundred bytes go to overflow
/// pages, read as one contiguous slice).
pub const MAX_VALUE: usize = 1 << 30;

const _: () =
    assert!(LEAF_ENTRY_HEADER + MAX_KEY + 8 + SLOT <= MAX_ENTRY, "a key with an overflow value fits an entry");

/// When a commit returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// After the commit's pages and meta page are on disk, through the
    /// drive's cache: `fdatasync` on Linux and FreeBSD, `fcntl(F_FULLFSYNC)`
    /// on macOS (whose `fsync` stops at the drive's cache). One sync, or two
    /// for a large commit.
    #[default]
    Immediate,
    /// At once: visible to new readers, durable with the next durable commit
    /// (or when the database is closed). A crash loses it, never more.
    None,
}

/// The one write transaction. Dropping it without [`commit`](Self::commit) aborts it.
pub struct WriteTransaction<'db> {
    db: &'db Database,
    writer: MutexGuard<'db, Writer>,
    store: Store<'db>,
    meta: Meta,
    catalog: PageNo,
    /// Tables opened in this transaction, with their current root and length.
    tables: BTreeMap<String, TableInfo>,
    durability: Durability,
    /// Set when a change failed half-way: the transaction can only be aborted.
    broken: Option<String>,
    /// Set once a commit has handed the free pages back to the writer.
    committed: bool,
    /// Where the file ended once the free pages at its end were trimmed.
    trimmed_from: PageNo,
}

impl<'db> WriteTransaction<'db> {
    pub(crate) fn new(db: &'db Database, mut writer: MutexGuard<'db, Writer>, meta: Meta) -> WriteTransaction<'db> {
        // The store works on the writer's free pages and hands them back, as
        // they end up on commit or as they were on abort (see `Drop`).
        let mut free = std::mem::take(&mut writer.free);
        let page_count = free.trim_tail(meta.page_count);
        let mut store = Store::new(db.pages_of(&meta), free);
        store.page_count = page_count;
        store.spare = std::mem::take(&mut writer.spare);
        WriteTransaction {
            db,
            writer,
            store,
            meta,
            catalog: meta.catalog,
            tables: BTreeMap::new(),
            durability: Durability::Immediate,
            broken: None,
            committed: false,
            trimmed_from: page_count,
        }
    }

    /// The id this transaction's commit will have.
    pub fn id(&self) -> u64 {
        self.writer.next_txn
    }

    /// Chooses when [`commit`](Self::commit) returns (default: [`Durability::Immediate`]).
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    fn usable(&self) -> Result<()> {
        match &self.broken {
            Some(cause) => Err(Error::Poisoned { path: self.db.path.clone(), cause: cause.clone() }),
            None => Ok(()),
        }
    }

    fn table_info(&self, name: &str) -> Result<Option<TableInfo>> {
        if let Some(info) = self.tables.get(name) {
            return Ok(Some(*info));
        }
        catalog::lookup(&self.store, self.catalog, name)
    }

    /// Opens a table for reading and writing, creating it if it does not exist.
    pub fn open_table(&mut self, name: &str) -> Result<Table<'_, 'db>> {
        self.usable()?;
        catalog::check_name(name)?;
        let info = self.table_info(name)?.unwrap_or_default();
        self.tables.insert(name.to_string(), info);
        Ok(Table { txn: self, name: name.to_string(), info })
    }

    /// Fills a new (or empty) table from entries in strictly increasing key
    /// order, building its tree bottom-up with full pages that are written to
    /// the file as they fill (see [`crate::write_ahead`]). The table's pages
    /// are final: reading or changing it in the same transaction is an error.
    pub(crate) fn bulk_load<'e>(
        &mut self,
        name: &str,
        entries: impl Iterator<Item = Result<(&'e [u8], &'e [u8])>>,
    ) -> Result<()> {
        self.usable()?;
        catalog::check_name(name)?;
        if self.table_info(name)?.is_some_and(|info| info.len > 0) {
            return Err(Error::InvalidTableName { name: name.to_string(), why: "a bulk load needs an empty table" });
        }
        let txn = self.id();
        let mut sink = WriteAhead::new(self.db, &mut self.store, txn);
        let built = crate::bulk::build(&mut sink, entries);
        sink.finish();
        match built {
            Ok((root, len)) => {
                self.tables.insert(name.to_string(), TableInfo { root, len });
                Ok(())
            }
            Err(e) => {
                self.broken = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Deletes a table and frees its pages; `false` if there was none.
    pub fn delete_table(&mut self, name: &str) -> Result<bool> {
        self.usable()?;
        catalog::check_name(name)?;
        let Some(info) = self.table_info(name)? else { return Ok(false) };
        self.tables.remove(name);
        let result = btree::free_tree(&mut self.store, info.root, 0)
            .and_then(|()| btree::remove(&mut self.store, self.catalog, name.as_bytes()));
        match result {
            Ok((catalog, _)) => {
                self.catalog = catalog;
                Ok(true)
            }
            Err(e) => {
                self.broken = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// The names of every table, in order, as this transaction sees them.
    pub fn list_tables(&self) -> Result<Vec<String>> {
        let mut names = catalog::names(&self.store, self.catalog)?;
        names.extend(self.tables.keys().cloned());
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Makes the changes visible to new readers, and (with the default
    /// [`Durability::Immediate`]) durable, before returning. On an error
    /// nothing of the transaction is visible; if the error came from the disk
    /// the handle refuses further writes ([`Error::Poisoned`]) and a reopen
    /// recovers to the last durable commit.
    pub fn commit(mut self) -> Result<()> {
        self.usable()?;
        let txn = self.id();
        let mut catalog = self.catalog;
        for (name, info) in std::mem::take(&mut self.tables) {
            catalog = btree::insert(&mut self.store, catalog, name.as_bytes(), &info.encode())?.0;
        }
        let durable = self.durability == Durability::Immediate;
        let mut meta = Meta { txn, catalog, ..self.meta };
        // A durable commit writes the free list its meta page names: the ready
        // list, and a segment of what was freed since the last durable commit.
        let saved = if durable {
            let saved = freelist::save(&mut self.store, txn);
            meta.freelist = saved.first;
            meta.free_list_pages = saved.pages;
            Some(saved)
        } else {
            None
        };
        meta.page_count = self.store.page_count;

        let mut dirty: Vec<(PageNo, Box<[u8]>)> = std::mem::take(&mut self.store.dirty).into_iter().collect();
        dirty.sort_unstable_by_key(|(n, _)| *n);
        for (_, bytes) in &mut dirty {
            // Entries go to disk in key order, so a range scan reads each
            // page in one sweep (inserts place them where there is room).
            let node = matches!(Kind::from_byte(page::kind_byte(bytes)), Some(Kind::Leaf | Kind::Branch));
            if node && !node::edit::in_order(bytes) {
                node::edit::compact(bytes);
            }
            page::seal(bytes, txn);
        }
        let pages: Vec<(PageNo, &[u8])> = dirty.iter().map(|(n, b)| (*n, &b[..])).collect();
        let written = self.db.write_pages(&pages, meta.page_count).and_then(|()| {
            if durable {
                let slot = 1 - self.writer.durable_slot;
                // One sync suffices only when every page the new meta needs
                // is this commit's, listed with its checksum: not after
                // unsynced (`Durability::None`) commits, nor for big commits
                // or ones that wrote pages ahead.
                let one_sync = pages.len() <= MAX_WRITTEN
                    && self.meta.txn == self.writer.last_durable
                    && self.store.ahead_from.is_none();
                let written: Vec<(PageNo, u64)> =
                    if one_sync { pages.iter().map(|(n, b)| (*n, page::read_u64(b, 0))).collect() } else { Vec::new() };
                self.db.write_meta_durably(&meta, &written, slot)?;
                self.writer.durable_slot = slot;
                self.writer.last_durable = txn;
            }
            Ok(())
        });
        if let Err(e) = written {
            if !matches!(e, Error::Map(_)) {
                // Growing the map failed before anything was written; any
                // other failure leaves the disk in an unknown state.
                self.writer.poisoned = Some(e.to_string());
            }
            return Err(e);
        }
        drop(pages);
        let room = MAX_SPARE.saturating_sub(self.store.spare.len());
        self.store.spare.extend(dirty.into_iter().map(|(_, b)| b).filter(|b| b.len() == PAGE_SIZE).take(room));
        let mut free = std::mem::take(&mut self.store.free);
        for (start, len) in self.store.recycled.ready_extents() {
            free.add_ready(start, len);
        }
        match saved {
            Some(saved) => free.saved(saved.list, saved.segment),
            None => free.add_unsaved(std::mem::take(&mut self.store.freed)),
        }
        self.writer.free = free;
        self.committed = true;
        self.writer.next_txn = txn + 1;
        self.db.publish(meta);
        Ok(())
    }

    /// Forgets every change (as dropping the transaction does).
    pub fn abort(self) {}
}

/// Page buffers a writer keeps between transactions (8 MiB).
const MAX_SPARE: usize = 2048;

impl Drop for WriteTransaction<'_> {
    /// Aborts unless committed: the writer gets its free pages back as they
    /// were, with those trimmed from the end of the file and those taken.
    fn drop(&mut self) {
        // Page buffers are kept for the next transaction, up to a limit.
        let mut spare = std::mem::take(&mut self.store.spare);
        let room = MAX_SPARE.saturating_sub(spare.len());
        spare.extend(std::mem::take(&mut self.store.dirty).into_values().filter(|b| b.len() == PAGE_SIZE).take(room));
        spare.truncate(MAX_SPARE);
        self.writer.spare = spare;
        if self.committed {
            return;
        }
        let mut free = std::mem::take(&mut self.store.free);
        for (start, len) in std::mem::take(&mut self.store.taken) {
            free.add_ready(start, len);
        }
        free.add_ready(self.trimmed_from, self.meta.page_count - self.trimmed_from);
        self.writer.free = free;
    }
}

/// A table opened in a write transaction: reads see the transaction's own changes.
pub struct Table<'txn, 'db> {
    txn: &'txn mut WriteTransaction<'db>,
    name: String,
    info: TableInfo,
}

impl Table<'_, '_> {
    fn check_sizes(key: &[u8], value: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY {
            return Err(Error::KeyTooLarge { len: key.len(), max: MAX_KEY });
        }
        if value.len() > MAX_VALUE {
            return Err(Error::ValueTooLarge { len: value.len(), max: MAX_VALUE });
        }
        Ok(())
    }

    fn changed<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            self.txn.broken = Some(e.to_string());
        }
        // `open_table` put the entry there, and nothing removes it while this
        // table borrows the transaction.
        if let Some(info) = self.txn.tables.get_mut(&self.name) {
            *info = self.info;
        }
        result
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.txn.usable()?;
        Self::check_sizes(key, value)?;
        let result = btree::insert(&mut self.txn.store, self.info.root, key, value).map(|(root, replaced)| {
            self.info.root = root;
            if !replaced {
                self.info.len = self.info.len.saturating_add(1);
            }
        });
        self.changed(result)
    }

    /// Removes `key`; `false` if it was not there.
    pub fn remove(&mut self, key: &[u8]) -> Result<bool> {
        self.txn.usable()?;
        if key.len() > MAX_KEY {
            return Ok(false);
        }
        let root = self.info.root;
        let result = btree::remove(&mut self.txn.store, root, key).and_then(|(new_root, found)| {
            self.info.root = new_root;
            if found {
                // A damaged catalog can hold a count below the tree's entries.
                self.info.len = self.info.len.checked_sub(1).ok_or_else(|| {
                    self.txn.store.corrupt(root, format!("table {:?} counts 0 entries but holds one", self.name))
                })?;
            }
            Ok(found)
        });
        self.changed(result)
    }

    /// The value under `key`, as this transaction has it.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        table_ops::get(&self.txn.store, self.info.root, key)
    }

    /// The entries with keys in `range`, in order (reverse with `.rev()`).
    pub fn range<'k>(&self, range: impl RangeBounds<&'k [u8]>) -> Range<'_> {
        table_ops::range(&self.txn.store, self.info.root, range)
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Result<Option<(&[u8], &[u8])>> {
        table_ops::edge(&self.txn.store, self.info.root, false)
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Result<Option<(&[u8], &[u8])>> {
        table_ops::edge(&self.txn.store, self.info.root, true)
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.info.len
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.info.len == 0
    }
}

#[cfg(test)]
mod tests {
    use crate::Database;
    use crate::freelist::{self, EXTENTS_PER_PAGE, FreePages};
    use crate::node::edit;
    use crate::page::{self, Kind, PAGE_SIZE};
    use crate::store::Store;

    /// Inserts land where a page has room, out of key order; a commit writes
    /// every node with its entries in key order, for scans.
    #[test]
    fn committed_nodes_hold_their_entries_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("order.db");
        // SAFETY: the file is this test's own, in its own directory.
        let db = unsafe { Database::create(&path) }.unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..3 {
            let mut w = db.begin_write().unwrap();
            {
                let mut t = w.open_table("t").unwrap();
                for _ in 0..5_000 {
                    let key = (next() % 20_000).to_be_bytes();
                    if round > 0 && next() % 3 == 0 {
                        t.remove(&key).unwrap();
                    } else {
                        t.insert(&key, &next().to_le_bytes().repeat(1 + (next() % 8) as usize)).unwrap();
                    }
                }
            }
            w.commit().unwrap();
        }
        drop(db);
        let bytes = std::fs::read(&path).unwrap();
        let mut nodes = 0;
        for p in bytes.chunks(PAGE_SIZE).skip(2).filter(|p| page::checksum_ok(p)) {
            if matches!(Kind::from_byte(page::kind_byte(p)), Some(Kind::Leaf | Kind::Branch)) {
                nodes += 1;
                assert!(edit::in_order(p), "a node written out of key order");
            }
        }
        assert!(nodes > 50, "only {nodes} nodes found");
    }

    /// The extents the ready list of a commit with these free pages holds.
    fn ready_list(store: &Store<'_>) -> Vec<(u64, u64)> {
        freelist::merged(store.free.ready_extents().chain(store.recycled.ready_extents()).collect())
    }

    /// Taking a page for the ready list from a recycled page between two ready
    /// runs splits one persisted extent into two; when that crosses a page's
    /// worth, the list must grow, or the reopened file's free list comes up short.
    #[test]
    fn the_ready_list_holds_every_extent_when_its_own_page_splits_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.db");
        // SAFETY: the file is this test's own, in its own directory.
        let db = unsafe { Database::create(&path) }.unwrap();
        let mut w = db.begin_write().unwrap();
        // Pages 8..13 and 100.. are declared free in a file of 2,000 pages:
        // page 10 recycled between the ready runs 8..10 and 11..13, and single
        // ready pages, as many as make the merged extents exactly one list page's worth.
        w.store.page_count = 2_000;
        w.store.recycled.add_ready(10, 1);
        let mut free = FreePages::default();
        free.add_ready(8, 2);
        free.add_ready(11, 2);
        for i in 0..EXTENTS_PER_PAGE as u64 - 1 {
            free.add_ready(100 + 2 * i, 1);
        }
        w.store.free = free;
        assert_eq!(ready_list(&w.store).len(), EXTENTS_PER_PAGE);
        // No table changed and nothing was freed: the first page taken is the
        // list's, page 10 (recycled pages go first).
        w.commit().unwrap();
        drop(db);

        // SAFETY: as above.
        let db = unsafe { Database::open(&path) }.unwrap();
        let ready: Vec<(u64, u64)> = db.writer.lock().unwrap().free.ready_extents().collect();
        // Pages 10 and 8 hold the list: the rest of the run is two extents.
        assert_eq!(ready[..2], [(9, 1), (11, 2)]);
        assert_eq!(ready.len(), EXTENTS_PER_PAGE + 1);
    }
}
