//! mmapkit-db through its typed API: the benchmark table as `TableDefinition<&[u8], &[u8]>`, the types a user
//! writes for keys and values that are opaque bytes (the workload's keys are random bytes, not numbers), on the
//! same database settings as the raw engine. Built with the `mmapkit-db` feature (on by default).

use std::path::Path;

use anyhow::Result;
use mmapkit_db::{ReadTransaction, TableDefinition, TypedReadTable, TypedTable, WriteTransaction};

use crate::results::FileSize;

use super::mmapkit_db::MmapkitDb;
use super::{Engine, EngineKind, ReadTable, ReadTxn, TABLE, WriteTable, WriteTxn};

/// The benchmark table, typed.
const DEFINITION: TableDefinition<&[u8], &[u8]> = TableDefinition::new(TABLE);

/// An mmapkit-db database on one file, used through the typed API.
pub struct MmapkitDbTyped(MmapkitDb);

impl MmapkitDbTyped {
    /// The typed API on `db`.
    pub fn new(db: MmapkitDb) -> Self {
        Self(db)
    }
}

impl Engine for MmapkitDbTyped {
    type Write<'a> = TypedWrite<'a>;
    type Read<'a> = TypedRead<'a>;

    fn kind(&self) -> EngineKind {
        EngineKind::MmapkitDbTyped
    }

    fn begin_write(&self) -> Result<TypedWrite<'_>> {
        Ok(TypedWrite(self.0.database().begin_write()?))
    }

    fn begin_read(&self) -> Result<TypedRead<'_>> {
        Ok(TypedRead(self.0.database().begin_read()?))
    }

    fn file_size(&self) -> Result<FileSize> {
        self.0.file_size()
    }

    fn compact(&mut self, dir: &Path) -> Result<FileSize> {
        self.0.compact(dir)
    }
}

/// An mmapkit-db write transaction, opening the table typed.
pub struct TypedWrite<'db>(WriteTransaction<'db>);

impl<'db> WriteTxn for TypedWrite<'db> {
    type Table<'t>
        = TypedWriteTable<'t, 'db>
    where
        Self: 't;

    fn table(&mut self) -> Result<TypedWriteTable<'_, 'db>> {
        Ok(TypedWriteTable(self.0.open_typed(DEFINITION)?))
    }

    fn commit(self) -> Result<()> {
        Ok(self.0.commit()?)
    }
}

/// The typed benchmark table in an mmapkit-db write transaction.
pub struct TypedWriteTable<'t, 'db>(TypedTable<'t, 'db, &'static [u8], &'static [u8]>);

impl WriteTable for TypedWriteTable<'_, '_> {
    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.0.insert(key, value)?;
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.0.remove(key)?.is_some())
    }

    fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) -> Result<()> {
        self.0.retain(|key, _| keep(key))?;
        Ok(())
    }

    fn delete_range(&mut self, start: &[u8], end: &[u8]) -> Result<()> {
        self.0.delete_range(start..end)?;
        Ok(())
    }
}

/// An mmapkit-db read transaction, opening the table typed.
pub struct TypedRead<'a>(ReadTransaction<'a>);

impl ReadTxn for TypedRead<'_> {
    type Table<'t>
        = TypedReadTableOf<'t>
    where
        Self: 't;

    fn table(&self) -> Result<TypedReadTableOf<'_>> {
        Ok(TypedReadTableOf(self.0.open_typed(DEFINITION)?))
    }
}

/// The typed benchmark table in an mmapkit-db read transaction.
pub struct TypedReadTableOf<'t>(TypedReadTable<'t, &'static [u8], &'static [u8]>);

impl ReadTable for TypedReadTableOf<'_> {
    fn len(&self) -> Result<u64> {
        Ok(self.0.len())
    }

    fn get<R>(&self, key: &[u8], visit: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.0.get(key)?.map(visit))
    }

    fn range_from(&self, start: &[u8], limit: usize, mut visit: impl FnMut(&[u8], &[u8])) -> Result<usize> {
        let mut seen = 0;
        for item in self.0.range(start..)?.take(limit) {
            let (key, value) = item?;
            visit(key, value);
            seen += 1;
        }
        Ok(seen)
    }
}
