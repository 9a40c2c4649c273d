//! redb, with its defaults: `Durability::Immediate` commits and the default page cache (1 GiB), its file locked
//! whole (`ConcurrencyMode::ExclusiveWriter`) except while [shared](Engine::share) with reader processes.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use redb::{ConcurrencyMode, ReadableDatabase as _, ReadableTableMetadata as _, TableDefinition};

use crate::results::FileSize;

use super::{Engine, EngineKind, ReadTable, ReadTxn, TABLE, WriteTable, WriteTxn, file_size};

/// The benchmark table.
const DEFINITION: TableDefinition<&[u8], &[u8]> = TableDefinition::new(TABLE);

/// A redb database on one file.
pub struct Redb {
    handle: Handle,
    path: PathBuf,
    /// The page cache asked for; `None` for redb's default.
    cache_bytes: Option<usize>,
}

/// How a [`Redb`] has its file open.
enum Handle {
    /// For writing, in this mode.
    Writer(redb::Database, ConcurrencyMode),
    /// For reading only, beside a writer in another process (`ConcurrencyMode::SingleWriter`).
    Reader(redb::ReadOnlyDatabase),
    /// Not open: only while [`Engine::share`] reopens it.
    Closed,
}

impl Redb {
    /// Creates a database at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let db = redb::Database::create(path).with_context(|| format!("creating redb at {}", path.display()))?;
        Ok(Self {
            handle: Handle::Writer(db, ConcurrencyMode::ExclusiveWriter),
            path: path.to_owned(),
            cache_bytes: None,
        })
    }

    /// Opens the database at `path` with a page cache of `cache_bytes` (`None`: redb's default).
    pub fn open(path: &Path, cache_bytes: Option<usize>) -> Result<Self> {
        let db =
            Self::builder(cache_bytes).open(path).with_context(|| format!("opening redb at {}", path.display()))?;
        let handle = Handle::Writer(db, ConcurrencyMode::ExclusiveWriter);
        Ok(Self { handle, path: path.to_owned(), cache_bytes })
    }

    /// Opens the database at `path` for reading only, with a page cache of `cache_bytes` (`None`: redb's default),
    /// beside a writer in another process that [shares](Engine::share) it.
    pub fn open_read_only(path: &Path, cache_bytes: Option<usize>) -> Result<Self> {
        let db = Self::builder(cache_bytes)
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .open_read_only(path)
            .with_context(|| format!("opening redb read-only (single-writer mode) at {}", path.display()))?;
        Ok(Self { handle: Handle::Reader(db), path: path.to_owned(), cache_bytes })
    }

    /// A builder with a page cache of `cache_bytes` (`None`: redb's default).
    fn builder(cache_bytes: Option<usize>) -> redb::Builder {
        let mut builder = redb::Builder::new();
        if let Some(bytes) = cache_bytes {
            builder.set_cache_size(bytes);
        }
        builder
    }

    /// The database, open for writing.
    fn writer(&self) -> Result<&redb::Database> {
        match &self.handle {
            Handle::Writer(db, _) => Ok(db),
            Handle::Reader(_) => bail!("redb at {} is open read-only", self.path.display()),
            Handle::Closed => bail!("redb at {} is closed", self.path.display()),
        }
    }
}

impl Engine for Redb {
    type Write<'a> = RedbWrite;
    type Read<'a> = RedbRead;

    fn kind(&self) -> EngineKind {
        EngineKind::Redb
    }

    fn begin_write(&self) -> Result<RedbWrite> {
        Ok(RedbWrite(self.writer()?.begin_write()?))
    }

    fn begin_read(&self) -> Result<RedbRead> {
        Ok(RedbRead(match &self.handle {
            Handle::Writer(db, _) => db.begin_read()?,
            Handle::Reader(db) => db.begin_read()?,
            Handle::Closed => bail!("redb at {} is closed", self.path.display()),
        }))
    }

    fn file_size(&self) -> Result<FileSize> {
        file_size(&self.path)
    }

    fn compact(&mut self, _dir: &Path) -> Result<FileSize> {
        match &mut self.handle {
            Handle::Writer(db, _) => db.compact().context("compacting redb")?,
            _ => bail!("redb at {} is not open for writing: no compaction", self.path.display()),
        };
        file_size(&self.path)
    }

    /// Closes the file and opens it again in `ConcurrencyMode::SingleWriter` (shared) or back in the default
    /// `ExclusiveWriter`, which locks the whole file and keeps every other process out.
    fn share(&mut self, shared: bool) -> Result<()> {
        let mode = if shared { ConcurrencyMode::SingleWriter } else { ConcurrencyMode::ExclusiveWriter };
        match std::mem::replace(&mut self.handle, Handle::Closed) {
            Handle::Writer(db, now) if now == mode => {
                self.handle = Handle::Writer(db, now);
                return Ok(());
            }
            Handle::Writer(db, _) => db.close().with_context(|| format!("closing redb at {}", self.path.display()))?,
            Handle::Reader(_) | Handle::Closed => bail!("redb at {} is not open for writing", self.path.display()),
        }
        let db = Self::builder(self.cache_bytes)
            .set_concurrency_mode(mode)
            .create(&self.path)
            .with_context(|| format!("reopening redb at {} in {mode:?} mode", self.path.display()))?;
        self.handle = Handle::Writer(db, mode);
        Ok(())
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
