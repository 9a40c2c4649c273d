//! mmapkit-db, the engine under test, with its default durability (`Durability::Immediate`) and default
//! builder settings. Built with the `mmapkit-db` feature (on by default).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use mmapkit_db::{Database, ReadTable as DbReadTable, ReadTransaction, Table, WriteTransaction};

use crate::results::FileSize;

use super::{Engine, EngineKind, ReadTable, ReadTxn, TABLE, WriteTable, WriteTxn, file_size};

/// An mmapkit-db database on one file.
pub struct MmapkitDb {
    db: Database,
    path: PathBuf,
}

impl MmapkitDb {
    /// Creates a database at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        // SAFETY: the file is new, in this run's own temporary directory; nothing but mmapkit-db handles of this
        // program (this one and the reader processes it starts) opens or changes it.
        let db = unsafe { Database::create(path) };
        let db = db.with_context(|| format!("creating mmapkit-db at {}", path.display()))?;
        Ok(Self { db, path: path.to_owned() })
    }

    /// Opens the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        // SAFETY: the file is in this run's own temporary directory; nothing but mmapkit-db handles of this program
        // opens or changes it.
        let db = unsafe { Database::open(path) };
        let db = db.with_context(|| format!("opening mmapkit-db at {}", path.display()))?;
        Ok(Self { db, path: path.to_owned() })
    }

    /// Opens the database at `path` for reading only, beside a handle in another process that writes it.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        // SAFETY: the file is in this run's own temporary directory; nothing but mmapkit-db handles of this program
        // (the writer that made it, in the parent process, and other readers) opens or changes it.
        let db = unsafe { Database::builder().read_only(true).open(path) };
        let db = db.with_context(|| format!("opening mmapkit-db read-only at {}", path.display()))?;
        Ok(Self { db, path: path.to_owned() })
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

impl Engine for MmapkitDb {
    type Write<'a> = MmapkitWrite<'a>;
    type Read<'a> = MmapkitRead<'a>;

    fn kind(&self) -> EngineKind {
        EngineKind::MmapkitDb
    }

    fn begin_write(&self) -> Result<MmapkitWrite<'_>> {
        Ok(MmapkitWrite(self.db.begin_write()?))
    }

    fn begin_read(&self) -> Result<MmapkitRead<'_>> {
        Ok(MmapkitRead(self.db.begin_read()?))
    }

    fn file_size(&self) -> Result<FileSize> {
        file_size(&self.path)
    }

    fn compact(&mut self, dir: &Path) -> Result<FileSize> {
        let dest = dir.join("mmapkit-db-compacted.db");
        self.db.compact_to(&dest).with_context(|| format!("compacting mmapkit-db into {}", dest.display()))?;
        file_size(&dest)
    }
}

/// An mmapkit-db write transaction.
pub struct MmapkitWrite<'db>(WriteTransaction<'db>);

impl<'db> WriteTxn for MmapkitWrite<'db> {
    type Table<'t>
        = MmapkitWriteTable<'t, 'db>
    where
        Self: 't;

    fn table(&mut self) -> Result<MmapkitWriteTable<'_, 'db>> {
        Ok(MmapkitWriteTable(self.0.open_table(TABLE)?))
    }

    fn commit(self) -> Result<()> {
        Ok(self.0.commit()?)
    }
}

/// The benchmark table in an mmapkit-db write transaction.
pub struct MmapkitWriteTable<'t, 'db>(Table<'t, 'db>);

impl WriteTable for MmapkitWriteTable<'_, '_> {
    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.0.insert(key, value)?)
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.0.remove(key)?)
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

/// An mmapkit-db read transaction.
pub struct MmapkitRead<'a>(ReadTransaction<'a>);

impl ReadTxn for MmapkitRead<'_> {
    type Table<'t>
        = MmapkitReadTable<'t>
    where
        Self: 't;

    fn table(&self) -> Result<MmapkitReadTable<'_>> {
        Ok(MmapkitReadTable(self.0.open_table(TABLE)?))
    }
}

/// The benchmark table in an mmapkit-db read transaction.
pub struct MmapkitReadTable<'t>(DbReadTable<'t>);

impl ReadTable for MmapkitReadTable<'_> {
    fn len(&self) -> Result<u64> {
        Ok(self.0.len())
    }

    fn get<R>(&self, key: &[u8], visit: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.0.get(key)?.map(visit))
    }

    fn range_from(&self, start: &[u8], limit: usize, mut visit: impl FnMut(&[u8], &[u8])) -> Result<usize> {
        let mut seen = 0;
        for item in self.0.range(start..).take(limit) {
            let (key, value) = item?;
            visit(key, value);
            seen += 1;
        }
        Ok(seen)
    }
}
