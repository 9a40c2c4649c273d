//! The reads every byte table offers, whether it is a read transaction's
//! snapshot or a write transaction's own table: one trait, so code that only
//! reads can take either.

use std::ops::RangeBounds;

use super::read::ReadTable;
use super::write::Table;
use crate::error::Result;
use crate::tree::Range;

/// The reads of a byte table, shared by [`ReadTable`] (a snapshot) and
/// [`Table`] (a write transaction's table, its own changes included).
///
/// ```
/// # fn main() -> mmapkit_db::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use mmapkit_db::{Database, ReadableTable};
///
/// fn total_len(table: &impl ReadableTable) -> mmapkit_db::Result<usize> {
///     table.range(..).map(|item| item.map(|(_, value)| value.len())).sum()
/// }
///
/// // SAFETY: no other process writes this file while it is open.
/// let db = unsafe { Database::create(dir.path().join("t.db"))? };
/// let mut txn = db.begin_write()?;
/// let mut table = txn.open_table("t")?;
/// table.insert(b"a", b"123")?;
/// assert_eq!(total_len(&table)?, 3); // the write transaction's own table
/// drop(table);
/// txn.commit()?;
/// assert_eq!(total_len(&db.begin_read()?.open_table("t")?)?, 3); // a snapshot's
/// # Ok(())
/// # }
/// ```
pub trait ReadableTable {
    /// The value stored under `key`, a slice of the mapping.
    fn get(&self, key: &[u8]) -> Result<Option<&[u8]>>;
    /// The entries with keys in `range`, in key order (reversible).
    fn range<'k>(&self, range: impl RangeBounds<&'k [u8]>) -> Range<'_>;
    /// The entries whose keys start with `prefix`, in key order.
    fn range_prefix(&self, prefix: &[u8]) -> Range<'_>;
    /// The entry with the smallest key.
    fn first(&self) -> Result<Option<(&[u8], &[u8])>>;
    /// The entry with the largest key.
    fn last(&self) -> Result<Option<(&[u8], &[u8])>>;
    /// The number of entries.
    fn len(&self) -> u64;
    /// Whether the table has no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReadableTable for ReadTable<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        ReadTable::get(self, key)
    }
    fn range<'k>(&self, range: impl RangeBounds<&'k [u8]>) -> Range<'_> {
        ReadTable::range(self, range)
    }
    fn range_prefix(&self, prefix: &[u8]) -> Range<'_> {
        ReadTable::range_prefix(self, prefix)
    }
    fn first(&self) -> Result<Option<(&[u8], &[u8])>> {
        ReadTable::first(self)
    }
    fn last(&self) -> Result<Option<(&[u8], &[u8])>> {
        ReadTable::last(self)
    }
    fn len(&self) -> u64 {
        ReadTable::len(self)
    }
}

impl ReadableTable for Table<'_, '_> {
    fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        Table::get(self, key)
    }
    fn range<'k>(&self, range: impl RangeBounds<&'k [u8]>) -> Range<'_> {
        Table::range(self, range)
    }
    fn range_prefix(&self, prefix: &[u8]) -> Range<'_> {
        Table::range_prefix(self, prefix)
    }
    fn first(&self) -> Result<Option<(&[u8], &[u8])>> {
        Table::first(self)
    }
    fn last(&self) -> Result<Option<(&[u8], &[u8])>> {
        Table::last(self)
    }
    fn len(&self) -> u64 {
        Table::len(self)
    }
}
