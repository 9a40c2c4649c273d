//! The write transaction: changes copied into new pages, made visible (and
//! durable) by one commit, or forgotten on drop.

use std::collections::BTreeMap;
use std::ops::RangeBounds;

use super::engine::Engine;
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
    /// Set when a change failed half-way: the transaction can only be aborted.
    broken: Option<String>,
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
        })
    }

    /// The id this transaction's commit will have.
    pub fn id(&self) -> u64 {
        self.pages.txn()
    }

    /// Chooses when [`commit`](Self::commit) returns (default: [`Durability::Immediate`]).
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    fn usable(&self) -> Result<()> {
        match &self.broken {
            Some(cause) => Err(Error::Poisoned { path: self.pages.path().to_path_buf(), cause: cause.clone() }),
            None => Ok(()),
        }
    }

    fn table_info(&self, name: &str) -> Result<Option<TableInfo>> {
        if let Some(info) = self.tables.get(name) {
            return Ok(Some(*info));
        }
        catalog::lookup(&self.pages, self.catalog, name)
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
    /// the file as they fill ([`TxnPages::write_ahead`]). The table's pages
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
        let built = bulk::build(&mut self.pages, entries);
        self.pages.start_writeback();
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
        let result = btree::free_tree(&mut self.pages, info.root, 0)
            .and_then(|()| btree::remove(&mut self.pages, self.catalog, name.as_bytes()));
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
        let mut names = catalog::names(&self.pages, self.catalog)?;
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
        let mut catalog = self.catalog;
        for (name, info) in std::mem::take(&mut self.tables) {
            catalog = btree::insert(&mut self.pages, catalog, name.as_bytes(), &info.encode())?.0;
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
        let result = btree::insert(&mut self.txn.pages, self.info.root, key, value).map(|(root, replaced)| {
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
        let result = btree::remove(&mut self.txn.pages, root, key).and_then(|(new_root, found)| {
            self.info.root = new_root;
            if found {
                // A damaged catalog can hold a count below the tree's entries.
                self.info.len = self.info.len.checked_sub(1).ok_or_else(|| {
                    self.txn.pages.corrupt(root, format!("table {:?} counts 0 entries but holds one", self.name))
                })?;
            }
            Ok(found)
        });
        self.changed(result)
    }

    /// The value under `key`, as this transaction has it.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        reads::get(&self.txn.pages, self.info.root, key)
    }

    /// The entries with keys in `range`, in order (reverse with `.rev()`).
    pub fn range<'k>(&self, range: impl RangeBounds<&'k [u8]>) -> Range<'_> {
        reads::range(&self.txn.pages, self.info.root, range)
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
