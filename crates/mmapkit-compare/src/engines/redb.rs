//! redb, with its defaults (`Durability::Immediate` commits, the default page cache of 1 GiB) but for one: the
//! database it creates is open in `ConcurrencyMode::SingleWriter`, so that reader processes can open it read-only
//! and follow its commits, as LMDB's and mmapkit-db's always can. In redb's default mode (`ExclusiveWriter`) the
//! writer locks the whole file and keeps every other process out; the mode is chosen when the file is opened, and
//! closing and reopening it in the middle of the workload would change what the later rows measure (redb's file
//! after the removals is about half as long when reopened before them).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use redb::{ConcurrencyMode, ReadableDatabase as _, ReadableTableMetadata as _, TableDefinition};

use crate::results::FileSize;

use super::{Engine, EngineKind, ReadTable, ReadTxn, TABLE, WriteTable, WriteTxn, file_size};

/// The benchmark table.
const DEFINITION: TableDefinition<&[u8], &[u8]> = TableDefinition::new(TABLE);

/// The mode of the database the workload creates, and of its reader processes: one writer, any number of
/// read-only processes beside it.
const SHARED_MODE: ConcurrencyMode = ConcurrencyMode::SingleWriter;

/// A redb database on one file.
pub struct Redb {
    handle: Handle,
    path: PathBuf,
}

/// How a [`Redb`] has its file open.
enum Handle {
    /// For reading and writing.
    Writer(redb::Database),
    /// For reading only, beside a writer in another process.
    Reader(redb::ReadOnlyDatabase),
}

impl Redb {
    /// Creates a database at `path`, open in [`SHARED_MODE`]: processes may open it with [`Redb::open_read_only`]
    /// while this handle writes.
    pub fn create(path: &Path) -> Result<Self> {
        let db = redb::Builder::new()
            .set_concurrency_mode(SHARED_MODE)
            .create(path)
            .with_context(|| format!("creating redb at {} in {SHARED_MODE:?} mode", path.display()))?;
        Ok(Self { handle: Handle::Writer(db), path: path.to_owned() })
    }

    /// Opens the database at `path` in redb's default mode (which keeps every other process out) with a page cache
    /// of `cache_bytes` (`None`: redb's default).
    pub fn open(path: &Path, cache_bytes: Option<usize>) -> Result<Self> {
        let db =
            Self::builder(cache_bytes).open(path).with_context(|| format!("opening redb at {}", path.display()))?;
        Ok(Self { handle: Handle::Writer(db), path: path.to_owned() })
    }

    /// Opens the database at `path` for reading only, with a page cache of `cache_bytes` (`None`: redb's default),
    /// beside the writer in another process that [created](Redb::create) it.
    pub fn open_read_only(path: &Path, cache_bytes: Option<usize>) -> Result<Self> {
        let db = Self::builder(cache_bytes)
            .set_concurrency_mode(SHARED_MODE)
            .open_read_only(path)
            .with_context(|| format!("opening redb read-only in {SHARED_MODE:?} mode at {}", path.display()))?;
        Ok(Self { handle: Handle::Reader(db), path: path.to_owned() })
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
            Handle::Writer(db) => Ok(db),
            Handle::Reader(_) => bail!("redb at {} is open read-only", self.path.display()),
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
            Handle::Writer(db) => db.begin_read()?,
            Handle::Reader(db) => db.begin_read()?,
        }))
    }

    fn file_size(&self) -> Result<FileSize> {
        file_size(&self.path)
    }

    fn compact(&mut self, _dir: &Path) -> Result<FileSize> {
        match &mut self.handle {
            Handle::Writer(db) => db.compact().context("compacting redb")?,
            Handle::Reader(_) => bail!("redb at {} is open read-only: no compaction", self.path.display()),
        };
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
