//! redb, with its defaults: `Durability::Immediate` commits and the default page cache (1 GiB).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use redb::{ReadableDatabase as _, ReadableTableMetadata as _, TableDefinition};

use crate::results::FileSize;

use super::{Engine, EngineKind, ReadTable, ReadTxn, TABLE, WriteTable, WriteTxn, file_size};

/// The benchmark table.
const DEFINITION: TableDefinition<&[u8], &[u8]> = TableDefinition::new(TABLE);

/// A redb database on one file.
pub struct Redb {
    db: redb::Database,
    path: PathBuf,
}

impl Redb {
    /// Creates a database at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let db = redb::Database::create(path).with_context(|| format!("creating redb at {}", path.display()))?;
        Ok(Self { db, path: path.to_owned() })
    }

    /// Opens the database at `path` with a page cache of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Self> {
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .open(path)
            .with_context(|| format!("opening redb at {}", path.display()))?;
        Ok(Self { db, path: path.to_owned() })
    }
}

impl Engine for Redb {
    type Write<'a> = RedbWrite;
    type Read<'a> = RedbRead;

    fn kind(&self) -> EngineKind {
        EngineKind::Redb
    }

    fn begin_write(&self) -> Result<RedbWrite> {
        Ok(RedbWrite(self.db.begin_write()?))
    }

    fn begin_read(&self) -> Result<RedbRead> {
        Ok(RedbRead(self.db.begin_read()?))
    }

    fn file_size(&self) -> Result<FileSize> {
        file_size(&self.path)
    }

    fn compact(&mut self, _dir: &Path) -> Result<FileSize> {
        self.db.compact().context("compacting redb")?;
        file_size(&self.path)
    }
}

/// A redb write transaction.
pub struct RedbWrite(redb::WriteTransaction);

impl WriteTxn for RedbWrite {
    type Table<'t> = RedbWriteTable<'t>;

    fn table(&mut self) -> Result<RedbWriteTable<'_>> {
        Ok(RedbWriteTable(self.0.open_table(DEFINITION)?))
    }

    fn commit(self) -> Result<()> {
        Ok(self.0.commit()?)
    }
}

/// The benchmark table in a redb write transaction.
pub struct RedbWriteTable<'t>(redb::Table<'t, &'static [u8], &'static [u8]>);

impl WriteTable for RedbWriteTable<'_> {
    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.0.insert(key, value)?;
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.0.remove(key)?.is_some())
    }

    fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) -> Result<()> {
        Ok(self.0.retain(|key, _| keep(key))?)
    }

    /// redb has no delete_range: `retain_in` over the range, keeping nothing.
    fn delete_range(&mut self, start: &[u8], end: &[u8]) -> Result<()> {
        Ok(self.0.retain_in(start..end, |_, _| false)?)
    }
}

/// A redb read transaction.
pub struct RedbRead(redb::ReadTransaction);

impl ReadTxn for RedbRead {
    type Table<'t> = RedbReadTable;

    fn table(&self) -> Result<RedbReadTable> {
        Ok(RedbReadTable(self.0.open_table(DEFINITION)?))
    }
}

/// The benchmark table in a redb read transaction.
pub struct RedbReadTable(redb::ReadOnlyTable<&'static [u8], &'static [u8]>);

impl ReadTable for RedbReadTable {
    fn len(&self) -> Result<u64> {
        Ok(self.0.len()?)
    }

    fn get<R>(&self, key: &[u8], visit: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        // The trait's lifetime-bound accessor, as redb's own benchmark measures, rather than the inherent
        // reference-counted one that shadows it.
        Ok(redb::ReadableTable::get(&self.0, key)?.map(|guard| visit(guard.value())))
    }

    fn range_from(&self, start: &[u8], limit: usize, mut visit: impl FnMut(&[u8], &[u8])) -> Result<usize> {
        let mut seen = 0;
        for item in redb::ReadableTable::range(&self.0, start..)?.take(limit) {
            let (key, value) = item?;
            visit(key.value(), value.value());
            seen += 1;
        }
        Ok(seen)
    }
}
