//! LMDB through heed, with LMDB's default durability (no `NOSYNC`-like flags) and a 4 GiB map.
//!
//! The environment is one file (`NO_SUB_DIR`) plus LMDB's lock file beside it (`<file>-lock`).

use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use heed::types::Bytes;
use heed::{CommitOrAbort, CompactionOption, EnvFlags, EnvOpenOptions};

use crate::results::FileSize;

use super::{Engine, EngineKind, ReadTable, ReadTxn, TABLE, WriteTable, WriteTxn, file_size};

/// The map size: the most the database can grow to. LMDB reserves address space, not disk.
const MAP_SIZE: usize = 4 << 30;

/// Opens (creating it) an LMDB environment of one file at `path`.
pub fn open_env(path: &Path) -> Result<heed::Env> {
    open_env_with(path, false, false)
}

/// [`open_env`], with `MDB_NORDAHEAD` when `no_read_ahead`: LMDB then advises its map `MADV_RANDOM`, so a fault
/// reads only its page; with `MDB_RDONLY` when `read_only`: the existing environment, for reading only, beside a
/// writer in another process (the lock file's reader table is shared with it).
pub fn open_env_with(path: &Path, no_read_ahead: bool, read_only: bool) -> Result<heed::Env> {
    let mut options = EnvOpenOptions::new();
    options.map_size(MAP_SIZE).max_dbs(1);
    let mut flags = EnvFlags::NO_SUB_DIR;
    if no_read_ahead {
        flags |= EnvFlags::NO_READ_AHEAD;
    }
    if read_only {
        flags |= EnvFlags::READ_ONLY;
    }
    // SAFETY: NO_SUB_DIR only says where the files live (`path` and `path-lock`), NO_READ_AHEAD only how the map
    // is advised and READ_ONLY that this environment never writes; none of them is one of the flags that weaken
    // durability or locking (NO_SYNC, NO_META_SYNC, NO_LOCK).
    unsafe { options.flags(flags) };
    // SAFETY: the file is in this run's own temporary directory; only LMDB environments of this program map or
    // change it meanwhile (a writer and readers in other processes, which LMDB's lock file coordinates).
    let env = unsafe { options.open(path) };
    env.with_context(|| format!("opening LMDB at {}", path.display()))
}

/// An LMDB environment on one file, with the benchmark's named database.
pub struct Lmdb<'e> {
    env: &'e heed::Env,
    db: heed::Database<'e, Bytes, Bytes>,
    path: PathBuf,
}

impl<'e> Lmdb<'e> {
    /// Creates the benchmark database in `env`, whose file is at `path`.
    pub fn new(env: &'e heed::Env, path: &Path) -> Result<Self> {
        let wtxn = env.write_txn()?;
        let db = env
            .create_databases_and_commit(wtxn, |opener, wtxn| {
                opener.create_database::<Bytes, Bytes>(wtxn, Some(TABLE)).map(CommitOrAbort::<_, ()>::Commit)
            })
            .context("creating the LMDB database")?
            .unwrap_commit();
        Ok(Self { env, db, path: path.to_owned() })
    }

    /// Opens the benchmark database that exists in `env`, whose file is at `path`, without writing.
    pub fn open_existing(env: &'e heed::Env, path: &Path) -> Result<Self> {
        let rtxn = env.read_txn()?;
        let db = env
            .open_databases_and_commit(rtxn, |opener, rtxn| {
                opener.open_database::<Bytes, Bytes>(rtxn, Some(TABLE)).map(CommitOrAbort::<_, ()>::Commit)
            })
            .with_context(|| format!("opening the LMDB database {TABLE:?} in {}", path.display()))?
            .unwrap_commit()
            .with_context(|| format!("no LMDB database {TABLE:?} in {}", path.display()))?;
        Ok(Self { env, db, path: path.to_owned() })
    }
}

impl<'e> Engine for Lmdb<'e> {
    type Write<'a>
        = LmdbWrite<'a>
    where
        Self: 'a;
    type Read<'a>
        = LmdbRead<'a>
    where
        Self: 'a;

    fn kind(&self) -> EngineKind {
        EngineKind::Lmdb
    }

    fn begin_write(&self) -> Result<LmdbWrite<'_>> {
        Ok(LmdbWrite { txn: self.env.write_txn()?, db: self.db })
    }

    fn begin_read(&self) -> Result<LmdbRead<'_>> {
        Ok(LmdbRead { txn: self.env.read_txn()?, db: self.db })
    }

    fn file_size(&self) -> Result<FileSize> {
        file_size(&self.path)
    }

    fn compact(&mut self, dir: &Path) -> Result<FileSize> {
        let dest = dir.join("lmdb-compacted.mdb");
        let mut file = File::create_new(&dest).with_context(|| format!("creating {}", dest.display()))?;
        self.env.copy_to_file(&mut file, CompactionOption::Enabled).context("copying LMDB with compaction")?;
        // mdb_env_copyfd2 does not sync; the other engines' compactions are durable when they return.
        file.sync_all().with_context(|| format!("syncing {}", dest.display()))?;
        file_size(&dest)
    }
}

/// An LMDB write transaction.
pub struct LmdbWrite<'e> {
    txn: heed::RwTxn<'e>,
    db: heed::Database<'e, Bytes, Bytes>,
}

impl<'e> WriteTxn for LmdbWrite<'e> {
    type Table<'t>
        = LmdbWriteTable<'t, 'e>
    where
        Self: 't;

    fn table(&mut self) -> Result<LmdbWriteTable<'_, 'e>> {
        Ok(LmdbWriteTable { txn: &mut self.txn, db: self.db })
    }

    fn commit(self) -> Result<()> {
        Ok(self.txn.commit()?)
    }
}

/// The benchmark database in an LMDB write transaction.
pub struct LmdbWriteTable<'t, 'e> {
    txn: &'t mut heed::RwTxn<'e>,
    db: heed::Database<'e, Bytes, Bytes>,
}

impl WriteTable for LmdbWriteTable<'_, '_> {
    fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.db.put(self.txn, key, value)?)
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.db.delete(self.txn, key)?)
    }

    /// LMDB has no retain: a write cursor over every entry, deleting those not kept.
    fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) -> Result<()> {
        let mut cursor = self.db.iter_mut(self.txn)?;
        while let Some(entry) = cursor.next() {
            let (key, _) = entry?;
            if !keep(key) {
                // SAFETY: `key` and the value, the only references into the database this loop takes, are not used
                // after this deletion; the next entry comes from the cursor afresh.
                unsafe { cursor.del_current()? };
            }
        }
        Ok(())
    }

    /// heed's `Database::delete_range` (a write cursor over the range, deleting each entry).
    fn delete_range(&mut self, start: &[u8], end: &[u8]) -> Result<()> {
        self.db.delete_range(self.txn, &(Bound::Included(start), Bound::Excluded(end)))?;
        Ok(())
    }
}

/// An LMDB read transaction.
pub struct LmdbRead<'e> {
    txn: heed::RoTxn<'e, heed::WithTls>,
    db: heed::Database<'e, Bytes, Bytes>,
}

impl<'e> ReadTxn for LmdbRead<'e> {
    type Table<'t>
        = LmdbReadTable<'t, 'e>
    where
        Self: 't;

    fn table(&self) -> Result<LmdbReadTable<'_, 'e>> {
        Ok(LmdbReadTable { txn: &self.txn, db: self.db })
    }
}

/// The benchmark database in an LMDB read transaction.
pub struct LmdbReadTable<'t, 'e> {
    txn: &'t heed::RoTxn<'e, heed::WithTls>,
    db: heed::Database<'e, Bytes, Bytes>,
}

impl ReadTable for LmdbReadTable<'_, '_> {
    fn len(&self) -> Result<u64> {
        Ok(self.db.len(self.txn)?)
    }

    fn get<R>(&self, key: &[u8], visit: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.db.get(self.txn, key)?.map(visit))
    }

    fn range_from(&self, start: &[u8], limit: usize, mut visit: impl FnMut(&[u8], &[u8])) -> Result<usize> {
        let mut seen = 0;
        for item in self.db.range(self.txn, &(Bound::Included(start), Bound::Unbounded))?.take(limit) {
            let (key, value) = item?;
            visit(key, value);
            seen += 1;
        }
        Ok(seen)
    }
}
