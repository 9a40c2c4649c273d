//! The write transaction: changes copied into new pages, made visible (and
//! durable) by one commit, or forgotten on drop.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use super::engine::Engine;
use super::savepoint::{Savepoints, next_serial};
use crate::error::{Error, Result};
use crate::store::{PageNo, PageSource, TxnPages};
use crate::tree::Range;
use crate::tree::catalog::{self, TableInfo};
use crate::tree::node::{LEAF_ENTRY_HEADER, MAX_ENTRY, SLOT};
use crate::tree::{btree, bulk, reads};

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
    engine: &'db Engine,
    /// The pages it sees and changes; they hold the writer's lock.
    pages: TxnPages<'db>,
    catalog: PageNo,
    /// Tables opened in this transaction, with their current root and length.
    tables: BTreeMap<String, TableInfo>,
    durability: Durability,
    /// Set when a change failed half-way: the transaction can only be
    /// aborted (or go back to a savepoint).
    broken: Option<String>,
    /// This transaction's number among all write transactions, for savepoints.
    serial: u64,
    /// The savepoints taken, and which can be restored.
    savepoints: Savepoints,
}

/// The parts of a write transaction a savepoint copies and restores.
pub(crate) struct SavepointState<'t, 'db> {
    pub pages: &'t mut TxnPages<'db>,
    pub catalog: &'t mut PageNo,
    pub tables: &'t mut BTreeMap<String, TableInfo>,
    pub broken: &'t mut Option<String>,
    pub savepoints: &'t mut Savepoints,
}

impl<'db> WriteTransaction<'db> {
    /// Starts the write transaction on `engine`'s newest commit, waiting while
    /// another one is open.
    pub(crate) fn begin(engine: &'db Engine) -> Result<WriteTransaction<'db>> {
        let pages = engine.begin_write()?;
        let catalog = pages.start().catalog;
        Ok(WriteTransaction {
            engine,
            pages,
            catalog,
            tables: BTreeMap::new(),
            durability: Durability::Immediate,
            broken: None,
            serial: next_serial(),
            savepoints: Savepoints::default(),
        })
    }

    /// This transaction's serial number and the state savepoints copy.
    pub(crate) fn savepoint_parts(&mut self) -> (u64, SavepointState<'_, 'db>) {
        let state = SavepointState {
            pages: &mut self.pages,
            catalog: &mut self.catalog,
            tables: &mut self.tables,
            broken: &mut self.broken,
            savepoints: &mut self.savepoints,
        };
        (self.serial, state)
    }

    /// The id this transaction's commit will have.
    pub fn id(&self) -> u64 {
        self.pages.txn()
    }

    /// Chooses when [`commit`](Self::commit) returns (default: [`Durability::Immediate`]).
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    pub(super) fn pages(&self) -> &TxnPages<'db> {
        &self.pages
    }

    pub(crate) fn usable(&self) -> Result<()> {
        match &self.broken {
            Some(cause) => Err(Error::Poisoned { path: self.pages.path().to_path_buf(), cause: cause.clone() }),
            None => Ok(()),
        }
    }

    pub(super) fn table_info(&self, name: &str) -> Result<Option<TableInfo>> {
        if let Some(info) = self.tables.get(name) {
            return Ok(Some(*info));
        }
        catalog::lookup(&self.pages, self.catalog, name)
    }

    /// Opens a table for reading and writing, creating it if it does not
    /// exist: the raw form, keys and values as bytes (see
    /// [`open_typed`](Self::open_typed) for typed ones). A table created
    /// typed can be opened raw too.
    pub fn open_table(&mut self, name: &str) -> Result<Table<'_, 'db>> {
        catalog::check_name(name)?;
        self.open_any(name)
    }

    /// `open_table` for any name, the store's own tables' too.
    pub(crate) fn open_any(&mut self, name: &str) -> Result<Table<'_, 'db>> {
        self.usable()?;
        let info = self.table_info(name)?.unwrap_or_default();
        self.tables.insert(name.to_string(), info);
        Ok(Table { txn: self, name: name.to_string(), info })
    }

    /// Fills the new (or empty) table `name` from `entries`, which must come
    /// in strictly increasing key order, building its tree bottom-up with
    /// full pages written to the file as they fill: much faster than an
    /// insert per entry. Returns the number of entries loaded.
    ///
    /// The table's pages are final: reading or changing it later in the same
    /// transaction is an error ([`Error::Corrupt`] naming a page written
    /// ahead); commit first. Input out of order, a repeated key, or a key or
    /// value over the limits is an error naming the entry
    /// ([`Error::BulkLoad`]); so is a non-empty table. Once entries were
    /// taken, an error leaves the transaction able only to abort
    /// ([`Error::Poisoned`] for what follows) or to go back to a savepoint
    /// taken before ([`restore_savepoint`](Self::restore_savepoint)): the
    /// committed database is untouched.
    pub fn bulk_load<'e>(
        &mut self,
        name: &str,
        entries: impl IntoIterator<Item = (&'e [u8], &'e [u8])>,
    ) -> Result<u64> {
        catalog::check_name(name)?;
        let mut last: Option<&[u8]> = None;
        let table = name.to_string();
        let checked = entries.into_iter().enumerate().map(move |(index, (key, value))| {
            let why = if key.len() > MAX_KEY {
                format!("its key of {} bytes is over the limit of {MAX_KEY}", key.len())
            } else if value.len() > MAX_VALUE {
                format!("its value of {} bytes is over the limit of {MAX_VALUE}", value.len())
            } else if last.is_some_and(|prev| prev == key) {
                "its key repeats the one before".to_string()
            } else if last.is_some_and(|prev| prev > key) {
                "its key sorts before the one before (keys must be strictly increasing)".to_string()
            } else {
                last = Some(key);
                return Ok((key, value));
            };
            Err(Error::BulkLoad { table: table.clone(), index: index as u64, why })
        });
        self.bulk_load_from(name, checked)?;
        Ok(self.tables.get(name).map_or(0, |info| info.len))
    }

    /// Has the bulk loads of this transaction, on a file made just before it
    /// (a compaction's), write their pages in runs of a MiB.
    pub(crate) fn write_ahead_in_runs(&mut self) {
        self.pages.write_ahead_in_runs();
    }

    /// [`bulk_load`](Self::bulk_load) from entries known to be in order and
    /// within the limits (another table's), any of which may be an error.
    pub(crate) fn bulk_load_from<'e>(
        &mut self,
        name: &str,
        entries: impl Iterator<Item = Result<(&'e [u8], &'e [u8])>>,
    ) -> Result<()> {
        self.usable()?;
        if self.table_info(name)?.is_some_and(|info| info.len > 0) {
            return Err(Error::InvalidTableName { name: name.to_string(), why: "a bulk load needs an empty table" });
        }
        let built = bulk::build(&mut self.pages, entries);
        // The pages still gathered go to the file even after an error, as the others did.
        let written = self.pages.start_writeback();
        let built = built.and_then(|tree| written.map(|()| tree));
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

    /// Renames table `from` to `to`, which must not exist; its entries stay
    /// where they are. [`Error::TableNotFound`] if there is no `from`,
    /// [`Error::TableExists`] if there is a `to`.
    pub fn rename_table(&mut self, from: &str, to: &str) -> Result<()> {
        self.usable()?;
        catalog::check_name(from)?;
        catalog::check_name(to)?;
        let Some(info) = self.table_info(from)? else { return Err(Error::TableNotFound(from.to_string())) };
        if self.table_info(to)?.is_some() {
            return Err(Error::TableExists(to.to_string()));
        }
        self.tables.remove(from);
        match btree::remove(&mut self.pages, self.catalog, from.as_bytes(), false) {
            Ok((catalog, _)) => self.catalog = catalog,
            Err(e) => {
                self.broken = Some(e.to_string());
                return Err(e);
            }
        }
        self.tables.insert(to.to_string(), info);
        let moved = self.move_types(from, Some(to)).and_then(|()| self.move_sequence(from, Some(to)));
        moved.inspect_err(|e| self.broken = Some(e.to_string()))
    }

    /// Deletes a table and frees its pages; `false` if there was none.
    pub fn delete_table(&mut self, name: &str) -> Result<bool> {
        self.usable()?;
        catalog::check_name(name)?;
        let Some(info) = self.table_info(name)? else { return Ok(false) };
        self.tables.remove(name);
        let result = btree::free_tree(&mut self.pages, info.root, 0)
            .and_then(|()| btree::remove(&mut self.pages, self.catalog, name.as_bytes(), false));
        match result {
            Ok((catalog, _)) => {
                self.catalog = catalog;
                let moved = self.move_types(name, None).and_then(|()| self.move_sequence(name, None));
                moved.inspect_err(|e| self.broken = Some(e.to_string()))?;
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
        let mut names = catalog::names(&self.pages, self.catalog)?;
        names.extend(self.tables.keys().cloned());
        names.retain(|name| !catalog::is_internal(name));
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Whether table `name` exists, and its entry count.
    pub(crate) fn table_len(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.table_info(name)?.map(|info| info.len))
    }

    /// Makes the changes visible to new readers, and (with the default
    /// [`Durability::Immediate`]) durable, before returning. On an error
    /// nothing of the transaction is visible; if the error came from the disk
    /// the handle refuses further writes ([`Error::Poisoned`]) and a reopen
    /// recovers to the last durable commit.
    pub fn commit(mut self) -> Result<()> {
        self.usable()?;
        let mut catalog = self.catalog;
        for (name, info) in std::mem::take(&mut self.tables) {
            catalog = btree::insert(&mut self.pages, catalog, name.as_bytes(), &info.encode(), false)?.0;
        }
        btree::order_for_scans(&mut self.pages);
        let durable = self.durability == Durability::Immediate;
        let meta = self.engine.store().commit(&mut self.pages, catalog, durable)?;
        self.engine.publish(meta);
        Ok(())
    }

    /// Forgets every change (as dropping the transaction does).
    pub fn abort(self) {}
}

/// A table opened in a write transaction: reads see the transaction's own changes.
pub struct Table<'txn, 'db> {
    pub(super) txn: &'txn mut WriteTransaction<'db>,
    pub(super) name: String,
    info: TableInfo,
}

impl Table<'_, '_> {
    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

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

    /// Stores `value` under `key`, replacing what was there, without reading
    /// the old value (see [`replace`](Self::replace) for that).
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put(key, value, false).map(drop)
    }

    /// Stores `value` under `key`; returns the value it replaced, if any
    /// (copied out: the page that held it may be rewritten in place).
    pub fn replace(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        self.put(key, value, true).map(Option::flatten)
    }

    /// Stores `value` under `key`; what it replaced, with the old value's
    /// bytes if `want_old`.
    fn put(&mut self, key: &[u8], value: &[u8], want_old: bool) -> Result<Option<Option<Vec<u8>>>> {
        self.txn.usable()?;
        Self::check_sizes(key, value)?;
        let result = btree::insert(&mut self.txn.pages, self.info.root, key, value, want_old).map(|(root, old)| {
            self.info.root = root;
            if old.is_none() {
                self.info.len = self.info.len.saturating_add(1);
            }
            old
        });
        self.changed(result)
    }

    /// Stores a value of `len` bytes under `key` (replacing what was there)
    /// and hands out its bytes, zeroed, to be filled in place: no buffer to
    /// build first. The bytes are committed as they are when the borrow ends.
    ///
    /// ```
    /// # fn demo(table: &mut mmapkit_db::Table<'_, '_>) -> mmapkit_db::Result<()> {
    /// let bytes = table.insert_reserve(b"counter", 8)?;
    /// bytes.copy_from_slice(&42u64.to_le_bytes());
    /// assert_eq!(table.get(b"counter")?, Some(&42u64.to_le_bytes()[..]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert_reserve(&mut self, key: &[u8], len: usize) -> Result<&mut [u8]> {
        if len > MAX_VALUE {
            return Err(Error::ValueTooLarge { len, max: MAX_VALUE });
        }
        self.put(key, &vec![0; len], false)?;
        let located = btree::locate(&self.txn.pages, self.info.root, key);
        let (page, offset) = match located {
            Ok(Some(at)) => at,
            Ok(None) => {
                let e = self.txn.pages.corrupt(self.info.root, format!("key {key:?} missing after its insert"));
                return self.changed(Err(e));
            }
            Err(e) => return self.changed(Err(e)),
        };
        // The insert made the leaf (and any overflow run) this transaction's own.
        Ok(&mut self.txn.pages.page_mut(page)[offset..offset + len])
    }

    /// Removes `key`; `false` if it was not there (see [`take`](Self::take)
    /// for the value it held).
    pub fn remove(&mut self, key: &[u8]) -> Result<bool> {
        self.remove_key(key, false).map(|found| found.is_some())
    }

    /// Removes `key`; returns its value (copied out), or `None` if it was not there.
    pub fn take(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.remove_key(key, true).map(|found| found.map(Option::unwrap_or_default))
    }

    /// Removes `key`: `None` if it was not there, else its value if `want_old`.
    fn remove_key(&mut self, key: &[u8], want_old: bool) -> Result<Option<Option<Vec<u8>>>> {
        self.txn.usable()?;
        if key.len() > MAX_KEY {
            return Ok(None);
        }
        let root = self.info.root;
        let result = btree::remove(&mut self.txn.pages, root, key, want_old).and_then(|(new_root, found)| {
            self.info.root = new_root;
            if found.is_some() {
                // A damaged catalog can hold a count below the tree's entries.
                self.info.len = self.info.len.checked_sub(1).ok_or_else(|| {
                    self.txn.pages.corrupt(root, format!("table {:?} counts 0 entries but holds one", self.name))
                })?;
            }
            Ok(found)
        });
        self.changed(result)
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop_first(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.pop(false)
    }

    /// Removes and returns the entry with the largest key.
    pub fn pop_last(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.pop(true)
    }

    fn pop(&mut self, last: bool) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.txn.usable()?;
        let Some((key, _)) = reads::edge(&self.txn.pages, self.info.root, last)? else { return Ok(None) };
        let key = key.to_vec();
        Ok(self.take(&key)?.map(|value| (key, value)))
    }

    /// Keeps only the entries for which `keep(key, value)` is true; returns
    /// how many were removed.
    pub fn retain(&mut self, keep: impl FnMut(&[u8], &[u8]) -> bool) -> Result<u64> {
        self.retain_in::<&[u8]>(.., keep)
    }

    /// Keeps only the entries in `range` for which `keep(key, value)` is
    /// true (entries outside `range` stay); returns how many were removed.
    pub fn retain_in<K: Borrow<[u8]>>(
        &mut self,
        range: impl RangeBounds<K>,
        mut keep: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<u64> {
        self.txn.usable()?;
        let (start, end) = bounds(&range);
        let root = self.info.root;
        let outcome = btree::retain(&mut self.txn.pages, root, as_slices(&start), as_slices(&end), &mut keep);
        self.after_removal(root, outcome)
    }

    /// Removes the entries for which `pred(key, value)` is true and returns
    /// them, in key order.
    pub fn extract_if(&mut self, pred: impl FnMut(&[u8], &[u8]) -> bool) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.extract_from_if::<&[u8]>(.., pred)
    }

    /// Removes the entries in `range` for which `pred(key, value)` is true
    /// and returns them, in key order.
    pub fn extract_from_if<K: Borrow<[u8]>>(
        &mut self,
        range: impl RangeBounds<K>,
        mut pred: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.remove_where(bounds(&range), |k, v| Ok(pred(k, v)), true)
    }

    /// Removes every entry with a key in `range`; returns how many.
    pub fn delete_range<K: Borrow<[u8]>>(&mut self, range: impl RangeBounds<K>) -> Result<u64> {
        self.txn.usable()?;
        let (start, end) = bounds(&range);
        let root = self.info.root;
        let outcome = btree::delete_range(&mut self.txn.pages, root, as_slices(&start), as_slices(&end));
        self.after_removal(root, outcome)
    }

    /// Takes the outcome of a removal from the tree at `root` (the new root
    /// and how many entries went) into the table's record; how many went.
    fn after_removal(&mut self, root: PageNo, outcome: Result<(PageNo, u64)>) -> Result<u64> {
        let result = outcome.and_then(|(new_root, removed)| {
            self.info.root = new_root;
            self.info.len = self.info.len.checked_sub(removed).ok_or_else(|| {
                self.txn.pages.corrupt(root, format!("table {:?} counts fewer entries than it holds", self.name))
            })?;
            Ok(removed)
        });
        self.changed(result)
    }

    /// Removes every entry and frees the table's pages; returns how many
    /// entries there were. The table stays, empty.
    pub fn clear(&mut self) -> Result<u64> {
        self.txn.usable()?;
        let len = self.info.len;
        let result = btree::free_tree(&mut self.txn.pages, self.info.root, 0).map(|()| {
            self.info = TableInfo { root: 0, len: 0 };
            len
        });
        self.changed(result)
    }

    /// Removes the entries in `start..end` for which `pred` holds, in key
    /// order; returns their keys, and values if `values`. An error from
    /// `pred` ends it before anything is removed.
    pub(crate) fn remove_where(
        &mut self,
        (start, end): KeyBounds,
        mut pred: impl FnMut(&[u8], &[u8]) -> Result<bool>,
        values: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.txn.usable()?;
        // What `pred` says of each entry in the range, in key order, before anything changes.
        let mut verdicts = Vec::new();
        let range = Range::new(&self.txn.pages, self.info.root, as_slices(&start), as_slices(&end));
        for item in range {
            let (key, value) = item?;
            verdicts.push(pred(key, value)?);
        }
        let mut chosen = Vec::new();
        if !verdicts.contains(&true) {
            return Ok(chosen);
        }
        // One walk of the tree removes them: it meets the same entries in the same order.
        let mut verdicts = verdicts.into_iter();
        let mut unmatched = false;
        let mut keep = |key: &[u8], value: &[u8]| match verdicts.next() {
            Some(true) => {
                chosen.push((key.to_vec(), if values { value.to_vec() } else { Vec::new() }));
                false
            }
            Some(false) => true,
            None => {
                unmatched = true;
                true
            }
        };
        let root = self.info.root;
        let walked = btree::retain(&mut self.txn.pages, root, as_slices(&start), as_slices(&end), &mut keep);
        let left_over = verdicts.len();
        let result = walked.and_then(|(new_root, removed)| {
            if unmatched || left_over > 0 {
                let what = format!("table {:?}: its range and its tree walk met different entries", self.name);
                return Err(self.txn.pages.corrupt(root, what));
            }
            self.info.root = new_root;
            self.info.len = self.info.len.checked_sub(removed).ok_or_else(|| {
                self.txn.pages.corrupt(root, format!("table {:?} counts fewer entries than it holds", self.name))
            })?;
            Ok(())
        });
        self.changed(result)?;
        Ok(chosen)
    }

    /// The value under `key`, as this transaction has it.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        reads::get(&self.txn.pages, self.info.root, key)
    }

    /// The entries with keys in `range`, in order (reverse with `.rev()`).
    pub fn range<'k>(&self, range: impl RangeBounds<&'k [u8]>) -> Range<'_> {
        reads::range(&self.txn.pages, self.info.root, range)
    }

    /// The entries whose keys start with `prefix`, in order.
    pub fn range_prefix(&self, prefix: &[u8]) -> Range<'_> {
        reads::prefix(&self.txn.pages, self.info.root, prefix)
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Result<Option<(&[u8], &[u8])>> {
        reads::edge(&self.txn.pages, self.info.root, false)
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Result<Option<(&[u8], &[u8])>> {
        reads::edge(&self.txn.pages, self.info.root, true)
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

/// A range's two bounds, as owned keys.
pub type KeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The bounds of `range`, copied.
fn bounds<K: Borrow<[u8]>>(range: &impl RangeBounds<K>) -> KeyBounds {
    let copy = |b: Bound<&K>| b.map(|k| k.borrow().to_vec());
    (copy(range.start_bound()), copy(range.end_bound()))
}

fn as_slices(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::WriteTransaction;
    use crate::store::page_header::{self, Kind};
    use crate::store::{Config, PAGE_SIZE};
    use crate::tree::node::edit;
    use crate::txn::engine::Engine;

    /// Inserts land where a page has room, out of key order; a commit writes
    /// every node with its entries in key order, for scans.
    #[test]
    fn committed_nodes_hold_their_entries_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("order.db");
        // SAFETY: the file is this test's own, in its own directory.
        let db = unsafe { Engine::open(&path, &Config::default(), true) }.unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..3 {
            let mut w = WriteTransaction::begin(&db).unwrap();
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
        for p in bytes.chunks(PAGE_SIZE).skip(2).filter(|p| page_header::checksum_ok(p)) {
            if matches!(Kind::from_byte(page_header::kind_byte(p)), Some(Kind::Leaf | Kind::Branch)) {
                nodes += 1;
                assert!(edit::in_order(p), "a node written out of key order");
            }
        }
        assert!(nodes > 50, "only {nodes} nodes found");
    }
}
