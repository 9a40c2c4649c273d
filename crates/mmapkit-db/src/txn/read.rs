//! Read transactions: a snapshot that stays as it was, whatever the writer does.

use std::ops::RangeBounds;

use super::engine::Engine;
use crate::error::{Error, Result};
use crate::store::{Meta, PageNo, PageSource, SnapshotPages};
use crate::tree::Range;
use crate::tree::catalog::{self, TableInfo};
use crate::tree::reads;

/// A consistent snapshot of the database: the newest commit when it began.
///
/// Values are returned as slices of the mapped file that live as long as the
/// transaction: the pages they point into are not reused until it ends.
pub struct ReadTransaction<'db> {
    engine: &'db Engine,
    meta: Meta,
    pages: SnapshotPages<'db>,
}

impl<'db> ReadTransaction<'db> {
    /// A snapshot of `engine`'s newest commit, held until the transaction is dropped.
    pub(crate) fn begin(engine: &'db Engine) -> Result<ReadTransaction<'db>> {
        let meta = engine.begin_read()?;
        Ok(ReadTransaction { engine, meta, pages: engine.store().snapshot(&meta) })
    }

    /// The commit this snapshot shows.
    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The snapshot's pages.
    pub(crate) fn pages(&self) -> &SnapshotPages<'db> {
        &self.pages
    }

    /// The id of the commit this snapshot shows.
    pub fn id(&self) -> u64 {
        self.meta.txn
    }

    /// Opens a table for reading, keys and values as bytes (see
    /// [`open_typed`](Self::open_typed) for typed ones);
    /// [`Error::TableNotFound`] if it does not exist.
    pub fn open_table(&self, name: &str) -> Result<ReadTable<'_>> {
        catalog::check_name(name)?;
        self.open_any(name)
    }

    /// `open_table` for any name, the store's own tables' too.
    pub(crate) fn open_any(&self, name: &str) -> Result<ReadTable<'_>> {
        match catalog::lookup(&self.pages, self.meta.catalog, name).map_err(|e| self.pages.fault_first(e))? {
            Some(info) => {
                Ok(ReadTable { pages: &self.pages, catalog: self.meta.catalog, name: name.to_string(), info })
            }
            None => Err(Error::TableNotFound(name.to_string())),
        }
    }

    /// The names of every table, in order.
    pub fn list_tables(&self) -> Result<Vec<String>> {
        let mut names = self.all_tables()?;
        names.retain(|name| !catalog::is_internal(name));
        Ok(names)
    }

    /// Every table's name, the store's own tables' too.
    pub(crate) fn all_tables(&self) -> Result<Vec<String>> {
        catalog::names(&self.pages, self.meta.catalog).map_err(|e| self.pages.fault_first(e))
    }
}

impl Drop for ReadTransaction<'_> {
    fn drop(&mut self) {
        self.engine.end_read(self.meta.txn);
    }
}

/// A table as a read transaction sees it.
pub struct ReadTable<'txn> {
    pub(super) pages: &'txn SnapshotPages<'txn>,
    /// The snapshot's catalog root, where the sequence numbers are found.
    pub(super) catalog: PageNo,
    pub(super) name: String,
    info: TableInfo,
}

impl<'txn> ReadTable<'txn> {
    /// The value stored under `key`: a slice of the mapped file.
    pub fn get(&self, key: &[u8]) -> Result<Option<&'txn [u8]>> {
        reads::get(self.pages, self.info.root, key)
    }

    /// The entries with keys in `range`, in order (reverse with `.rev()`).
    ///
    /// ```
    /// # fn demo(table: &mmapkit_db::ReadTable<'_>) -> mmapkit_db::Result<()> {
    /// for item in table.range(&b"a"[..]..&b"m"[..]) {
    ///     let (key, value) = item?;
    ///     println!("{key:?} = {value:?}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn range<'k>(&self, range: impl RangeBounds<&'k [u8]>) -> Range<'txn> {
        reads::range(self.pages, self.info.root, range)
    }

    /// The entries whose keys start with `prefix`, in order.
    pub fn range_prefix(&self, prefix: &[u8]) -> Range<'txn> {
        reads::prefix(self.pages, self.info.root, prefix)
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Result<Option<(&'txn [u8], &'txn [u8])>> {
        reads::edge(self.pages, self.info.root, false)
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Result<Option<(&'txn [u8], &'txn [u8])>> {
        reads::edge(self.pages, self.info.root, true)
    }

    /// Number of entries, kept in the catalog: no scan.
    pub fn len(&self) -> u64 {
        self.info.len
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.info.len == 0
    }
}
