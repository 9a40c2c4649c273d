//! `Database`, the front: opening a file, and the operations on it, each
//! handed to the layer that does it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::check::{self, CheckReport};
use crate::compact;
use crate::error::Result;
use crate::stats::{self, Stats};
use crate::store::reader_slots::ReaderInfo;
use crate::store::{Config, Storage};
use crate::txn::{Engine, OwnedReadTransaction, ReadTransaction, WriteTransaction};

/// Options for opening a database.
#[derive(Default)]
pub struct Builder {
    config: Config,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("reserve", &self.config.reserve)
            .field("read_only", &self.config.read_only)
            .field("write_lock_timeout", &self.config.turn_timeout)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Default options: [`DEFAULT_MAX_SIZE`](crate::DEFAULT_MAX_SIZE) (1 TiB)
    /// of address space reserved for the file to grow into (it costs no
    /// memory), `pwrite`/`fdatasync` storage, read-write.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The most the file can grow to while open: the address space reserved for
    /// its mapping. Reopening with a larger value lifts the limit.
    pub fn max_size(&mut self, bytes: usize) -> &mut Self {
        self.config.reserve = bytes;
        self
    }

    /// Opens the file for reading only: [`Database::begin_write`] gives
    /// [`Error::ReadOnly`](crate::Error::ReadOnly), and the file needs only
    /// read permission and is never written, not even on close. Handles in
    /// other processes may write meanwhile; each read transaction sees the
    /// newest durable commit. The lock file beside the database must be
    /// writable for that; where it cannot be opened for writing (a read-only
    /// directory or file system), the handle takes a shared lock on the
    /// database instead, which keeps writers out while it is open.
    pub fn read_only(&mut self, read_only: bool) -> &mut Self {
        self.config.read_only = read_only;
        self
    }

    /// Whether the kernel reads ahead of the pages a read touches. Off by
    /// default (`MADV_RANDOM` on the map, for all of it and every part growth
    /// maps later): lookups touch pages in no order read-ahead could guess,
    /// and on a file larger than memory it fills the page cache with pages
    /// nobody asked for, so every lookup waits for far more I/O than its own
    /// pages. Turn it on for workloads that mostly scan a file that fits in
    /// memory after a cold start.
    pub fn read_ahead(&mut self, read_ahead: bool) -> &mut Self {
        self.config.read_ahead = read_ahead;
        self
    }

    /// How long [`Database::begin_write`] (and `check` and `stats`) wait for
    /// another handle's turn to write to end: `None` (the default) waits as
    /// long as it takes; `Some(Duration::ZERO)` fails at once. A wait that
    /// runs out is [`Error::Locked`](crate::Error::Locked), naming the
    /// process whose turn it is where it is known.
    pub fn write_lock_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.config.turn_timeout = timeout;
        self
    }

    /// The I/O layer for writes and syncs (for fault-injection tests).
    pub fn storage(&mut self, storage: impl Storage + 'static) -> &mut Self {
        self.config.storage = Arc::new(storage);
        self
    }

    /// Opens the database at `path`, creating it if the file does not exist or is empty.
    ///
    /// # Safety
    /// See [`Database::create`].
    pub unsafe fn create(&self, path: impl AsRef<Path>) -> Result<Database> {
        // SAFETY: the caller upholds `create`'s contract, which is `Engine::open`'s.
        let engine = unsafe { Engine::open(path.as_ref(), &self.config, true) }?;
        Ok(Database { engine })
    }

    /// Opens the existing database at `path`.
    ///
    /// # Safety
    /// See [`Database::create`].
    pub unsafe fn open(&self, path: impl AsRef<Path>) -> Result<Database> {
        // SAFETY: the caller upholds `open`'s contract, which is `Engine::open`'s.
        let engine = unsafe { Engine::open(path.as_ref(), &self.config, false) }?;
        Ok(Database { engine })
    }
}

/// An open database: one file, one writer at a time (among all processes),
/// any number of readers in any number of processes.
///
/// See the [crate documentation](crate) for an example.
pub struct Database {
    engine: Engine,
}

impl Database {
    /// Opens the database at `path` with default options, creating it when the
    /// file does not exist or is empty, and the lock file beside it
    /// (`<path>-lock`). Any number of handles, in this process or others, may
    /// have the database open; they take turns to write (see
    /// [`begin_write`](Self::begin_write)).
    ///
    /// # Safety
    /// Reads hand out slices of the mapped file. Nothing but mmapkit-db
    /// handles may modify the file while this handle is open: they write only
    /// pages no read transaction in any process can see, and never the bytes
    /// a slice refers to, but a program that writes the file by other means
    /// cannot be stopped. Truncation is not a hazard: the fault guard turns it
    /// into errors.
    pub unsafe fn create(path: impl AsRef<Path>) -> Result<Database> {
        // SAFETY: this function's contract is `Builder::create`'s.
        unsafe { Builder::new().create(path) }
    }

    /// Opens the existing database at `path` with default options.
    ///
    /// # Safety
    /// As for [`Database::create`].
    pub unsafe fn open(path: impl AsRef<Path>) -> Result<Database> {
        // SAFETY: this function's contract is `Builder::open`'s.
        unsafe { Builder::new().open(path) }
    }

    /// Options for opening.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.engine.store().path()
    }

    /// What opening recovered from, if anything: a newer commit whose pages
    /// were not all on disk (a crash before its sync completed, or a damaged
    /// page), passed over in favour of the one before. `None` after a clean
    /// close. [`check`](Self::check) repeats it in its report.
    pub fn recovery(&self) -> Option<&str> {
        self.engine.store().recovery()
    }

    /// Starts a read transaction on the newest committed state: this
    /// handle's newest commit, or the newest durable commit of a handle in
    /// another process (commits made there with `Durability::None` are seen
    /// once a durable one covers them). It never waits for a writer, and no
    /// writer waits for it. An error only if the file grew and the new part
    /// cannot be mapped.
    pub fn begin_read(&self) -> Result<ReadTransaction<'_>> {
        ReadTransaction::begin(&self.engine)
    }

    /// [`begin_read`](Self::begin_read) on a shared database: a transaction
    /// that owns a share of it, `Send + 'static`.
    pub fn begin_read_owned(self: &Arc<Self>) -> Result<OwnedReadTransaction> {
        OwnedReadTransaction::begin(self)
    }

    /// Starts the write transaction. Only one handle, among all processes,
    /// writes at a time: this waits while another write transaction is open
    /// (in this process or another), or while another handle has commits
    /// made with `Durability::None` that are not yet durable, for as long as
    /// [`Builder::write_lock_timeout`] says. The state is read again from
    /// the file when another process committed since this handle's last turn.
    pub fn begin_write(&self) -> Result<WriteTransaction<'_>> {
        WriteTransaction::begin(&self.engine)
    }

    /// The reader slots of every handle that has the database open, in any
    /// process: its pid, its oldest open read transaction and that
    /// transaction's age, and whether the process is alive. Empty for a
    /// read-only handle that could not open the lock file.
    pub fn readers(&self) -> Result<Vec<ReaderInfo>> {
        self.engine.store().table().map_or(Ok(Vec::new()), |t| t.list())
    }

    /// Clears the reader slots of processes that died with the database
    /// open, which would otherwise keep the pages their snapshots could see
    /// from being reused (writers also clear such a slot when it holds them
    /// back). Returns what the cleared slots held.
    pub fn clear_stale_readers(&self) -> Result<Vec<ReaderInfo>> {
        self.engine.store().table().map_or(Ok(Vec::new()), |t| t.clear_stale())
    }

    /// Sizes and counts, from the newest commit.
    pub fn stats(&self) -> Result<Stats> {
        stats::stats(&self.engine)
    }

    /// Verifies the newest commit: every page's checksum, every node's
    /// structure and key order, separator ranges, equal leaf depths, each
    /// table's entry count against the catalog, overflow runs, the free list,
    /// and that every page is in use or free exactly once. Writers wait while
    /// it runs; readers do not.
    pub fn check(&self) -> Result<CheckReport> {
        check::check(&self.engine)
    }

    /// Writes a compacted copy of the newest commit to `dest`, which must not
    /// exist. The tree is rebuilt bottom-up from the keys in order, so pages
    /// are full and none is free; the copy is durable when this returns.
    pub fn compact_to(&self, dest: impl AsRef<Path>) -> Result<()> {
        compact::compact_to(&self.engine, dest.as_ref())
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("path", &self.path()).finish_non_exhaustive()
    }
}
