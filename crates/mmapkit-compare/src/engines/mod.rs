//! The adapter every engine implements, in the shape of redb's own benchmark: an engine hands out write and
//! read transactions, a transaction opens the one benchmark table, and the workload in
//! [`crate::workload`] only ever talks to these traits.
//!
//! Every write transaction commits durably, with the engine's default durability.

mod kind;
pub mod lmdb;
#[cfg(feature = "mmapkit-db")]
pub mod mmapkit_db;
#[cfg(feature = "mmapkit-db")]
pub mod mmapkit_db_typed;
pub mod redb;

use std::path::Path;

use anyhow::Result;

pub use kind::EngineKind;

use crate::results::FileSize;

/// Name of the table (redb table, LMDB named database, mmapkit-db table) every engine writes.
pub const TABLE: &str = "bench";

/// One embedded key-value store, open on its own file.
pub trait Engine: Sync {
    /// A write transaction.
    type Write<'a>: WriteTxn
    where
        Self: 'a;
    /// A read transaction.
    type Read<'a>: ReadTxn
    where
        Self: 'a;

    /// Which engine it is.
    fn kind(&self) -> EngineKind;

    /// Begins a write transaction whose commit is durable (on disk when `commit` returns).
    fn begin_write(&self) -> Result<Self::Write<'_>>;

    /// Begins a read transaction: a snapshot of the last commit.
    fn begin_read(&self) -> Result<Self::Read<'_>>;

    /// The database file's size.
    fn file_size(&self) -> Result<FileSize>;

    /// Compacts the database, writing the result into `dir` if the engine compacts into a new file, and
    /// returns the compacted file's size. No transaction is open when it is called.
    fn compact(&mut self, dir: &Path) -> Result<FileSize>;
}

/// A write transaction.
pub trait WriteTxn {
    /// The benchmark table, open for writing.
    type Table<'t>: WriteTable
    where
        Self: 't;

    /// Opens the benchmark table, creating it if it is missing.
    fn table(&mut self) -> Result<Self::Table<'_>>;

    /// Commits durably.
    fn commit(self) -> Result<()>;
}

/// The benchmark table inside a write transaction.
pub trait WriteTable {
    /// Inserts or replaces `key`.
    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Removes `key`; `true` if it was there.
    fn remove(&mut self, key: &[u8]) -> Result<bool>;

    /// Keeps only the entries whose key `keep` accepts, with the engine's own bulk call (or its cursor's delete
    /// loop where it has none).
    fn retain(&mut self, keep: impl FnMut(&[u8]) -> bool) -> Result<()>;

    /// Removes every entry with a key in `start..end`, with the engine's own range call.
    fn delete_range(&mut self, start: &[u8], end: &[u8]) -> Result<()>;
}

/// A read transaction.
pub trait ReadTxn {
    /// The benchmark table, open for reading.
    type Table<'t>: ReadTable
    where
        Self: 't;

    /// Opens the benchmark table, which must exist.
    fn table(&self) -> Result<Self::Table<'_>>;
}

/// The benchmark table inside a read transaction.
pub trait ReadTable {
    /// Number of entries.
    fn len(&self) -> Result<u64>;

    /// Looks `key` up and hands its value, in place, to `visit`.
    fn get<R>(&self, key: &[u8], visit: impl FnOnce(&[u8]) -> R) -> Result<Option<R>>;

    /// Hands up to `limit` entries, in key order from `start` included, to `visit`; returns how many.
    fn range_from(&self, start: &[u8], limit: usize, visit: impl FnMut(&[u8], &[u8])) -> Result<usize>;
}

/// The size of the file at `path`.
pub fn file_size(path: &Path) -> Result<FileSize> {
    use std::os::unix::fs::MetadataExt as _;

    use anyhow::Context as _;
    let metadata = std::fs::metadata(path).with_context(|| format!("reading the metadata of {}", path.display()))?;
    Ok(FileSize { len: metadata.len(), allocated: metadata.blocks() * 512 })
}

/// The database file of `engine` in `dir`.
pub fn db_path(engine: EngineKind, dir: &Path) -> std::path::PathBuf {
    dir.join(match engine {
        EngineKind::Redb => "redb.redb",
        EngineKind::Lmdb => "lmdb.mdb",
        EngineKind::MmapkitDb => "mmapkit-db.db",
        EngineKind::MmapkitDbTyped => "mmapkit-db-typed.db",
    })
}

/// How [`with_engine`] opens a database.
#[derive(Debug, Clone, Copy, Default)]
pub struct Opening {
    /// Create it new (or open the one there).
    pub create: bool,
    /// The page cache of an engine that keeps its own (redb), in bytes; `None` for the engine's default.
    pub cache_bytes: Option<usize>,
    /// LMDB only: `MDB_NORDAHEAD` (its map advised `MADV_RANDOM`).
    pub lmdb_no_read_ahead: bool,
    /// Open the existing database for reading only, while another process may hold it for writing (a redb
    /// writer must have [created](redb::Redb::create) it, in the mode that lets it).
    pub read_only: bool,
}

/// Runs `work` on `engine`'s database in `dir`, opened as `opening` says.
pub fn with_engine<T>(
    engine: EngineKind,
    dir: &Path,
    opening: Opening,
    work: impl EngineWork<Output = T>,
) -> Result<T> {
    let Opening { create, cache_bytes, lmdb_no_read_ahead, read_only } = opening;
    anyhow::ensure!(!(create && read_only), "{engine}: a database cannot be both created and opened read-only");
    let path = db_path(engine, dir);
    #[cfg(feature = "mmapkit-db")]
    let open_mmapkit_db = |path: &Path| match (create, read_only) {
        (true, _) => mmapkit_db::MmapkitDb::create(path),
        (false, false) => mmapkit_db::MmapkitDb::open(path),
        (false, true) => mmapkit_db::MmapkitDb::open_read_only(path),
    };
    match engine {
        EngineKind::Redb => {
            let mut db = match (create, read_only) {
                (true, _) => redb::Redb::create(&path)?,
                (false, false) => redb::Redb::open(&path, cache_bytes)?,
                (false, true) => redb::Redb::open_read_only(&path, cache_bytes)?,
            };
            work.run(&mut db)
        }
        EngineKind::Lmdb => {
            let env = lmdb::open_env_with(&path, lmdb_no_read_ahead, read_only)?;
            let mut db =
                if read_only { lmdb::Lmdb::open_existing(&env, &path)? } else { lmdb::Lmdb::new(&env, &path)? };
            work.run(&mut db)
        }
        #[cfg(feature = "mmapkit-db")]
        EngineKind::MmapkitDb => work.run(&mut open_mmapkit_db(&path)?),
        #[cfg(feature = "mmapkit-db")]
        EngineKind::MmapkitDbTyped => work.run(&mut mmapkit_db_typed::MmapkitDbTyped::new(open_mmapkit_db(&path)?)),
        #[cfg(not(feature = "mmapkit-db"))]
        EngineKind::MmapkitDb | EngineKind::MmapkitDbTyped => {
            anyhow::bail!("this binary was built without the mmapkit-db feature")
        }
    }
}

/// Work done on an engine of any kind (a generic closure).
pub trait EngineWork {
    /// What the work returns.
    type Output;
    /// Does the work on `engine`.
    fn run<E: Engine>(self, engine: &mut E) -> Result<Self::Output>;
}

/// Creates `engine` on a new file in `dir` and runs the workload of `plan` on it.
pub fn run(
    engine: EngineKind,
    dir: &Path,
    plan: &crate::workload::Plan,
    progress: impl FnMut(EngineKind, &crate::results::Measurement),
) -> Result<crate::results::EngineRun> {
    use crate::workload::run;
    match engine {
        EngineKind::Redb => run(&mut redb::Redb::create(&dir.join("redb.redb"))?, plan, dir, progress),
        EngineKind::Lmdb => {
            let path = dir.join("lmdb.mdb");
            let env = lmdb::open_env(&path)?;
            run(&mut lmdb::Lmdb::new(&env, &path)?, plan, dir, progress)
        }
        #[cfg(feature = "mmapkit-db")]
        EngineKind::MmapkitDb => run(&mut mmapkit_db::MmapkitDb::create(&db_path(engine, dir))?, plan, dir, progress),
        #[cfg(feature = "mmapkit-db")]
        EngineKind::MmapkitDbTyped => {
            let raw = mmapkit_db::MmapkitDb::create(&db_path(engine, dir))?;
            run(&mut mmapkit_db_typed::MmapkitDbTyped::new(raw), plan, dir, progress)
        }
        #[cfg(not(feature = "mmapkit-db"))]
        EngineKind::MmapkitDb | EngineKind::MmapkitDbTyped => {
            anyhow::bail!("this binary was built without the mmapkit-db feature")
        }
    }
}
