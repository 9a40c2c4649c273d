//! The page store: what the layers above know of the file. It opens the file
//! (creating it, or recovering the newest whole commit), hands out snapshots
//! of committed pages, and gives the one writer its pages and commits them.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mmapkit::{Advice, GrowableReadMap};

use super::file_lock;
use super::free_list;
use super::lock_file::LockFile;
use super::meta_page::Meta;
use super::page_file::PageFile;
use super::page_header::{PAGE_SIZE, PageNo};
use super::reader_slots::ReaderTable;
use super::recovery::{self, Picked};
use super::snapshot::SnapshotPages;
use super::txn_pages::TxnPages;
use super::write_io::{FileStorage, Storage};
use super::writer_state::WriterState;
use crate::error::{Error, IoOp, Result};

/// The address space reserved for a database's file to grow into by default:
/// 1 TiB on 64-bit machines (it costs no memory; x86_64 user space has 128 TiB).
pub const DEFAULT_MAX_SIZE: usize = if usize::BITS >= 64 { 1 << 40 } else { 1 << 30 };

/// How to open the file.
#[derive(Clone)]
pub struct Config {
    /// The address space reserved for the file's mapping: the most it can grow to while open.
    pub reserve: usize,
    /// The I/O layer every write and sync goes through.
    pub storage: Arc<dyn Storage>,
    /// Open for reading only, under a shared lock; never write the file.
    pub read_only: bool,
    /// Leave the kernel's read-ahead on for the map (off by default: the
    /// tree's pages are read in no order the kernel could guess, and reading
    /// ahead of them fills a page cache smaller than the file with pages
    /// nobody asked for).
    pub read_ahead: bool,
    /// How long `begin_write` waits for another handle's turn to end
    /// (`None`: as long as it takes).
    pub turn_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            reserve: DEFAULT_MAX_SIZE,
            storage: Arc::new(FileStorage),
            read_only: false,
            read_ahead: false,
            turn_timeout: None,
        }
    }
}

/// The open file, the lock file shared with other processes, and the
/// writer's state behind the writer's lock.
pub struct PageStore {
    file: PageFile,
    /// Held by a write transaction for its whole life.
    writer: Mutex<WriterState>,
    /// The reader slots and published commit shared with other handles;
    /// `None` for a read-only handle that could not open the lock file (it
    /// holds a shared `flock` instead, which keeps writers out).
    table: Option<ReaderTable>,
    /// Set when opening passed over a newer commit that was not all on disk.
    recovery: Option<String>,
    read_only: bool,
    /// How long to wait for the writer's turn (`None`: as long as it takes).
    turn_timeout: Option<Duration>,
    /// The commit opening found, its meta slot and the highest id passed over.
    opened: (Meta, usize, u64),
}

/// Locks `m`, also after a panic elsewhere: the writer's state is updated in
/// single assignments after the fallible work, and a write transaction that
/// unwinds gives the free pages it borrowed back in its `Drop`, so a panic
/// leaves it consistent.
fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The writer's state with the writer's turn held and the state read from
/// the file, for `check` and `stats`; the turn goes back when it is dropped
/// (unless a commit of this handle's is not yet durable).
pub struct HeldTurn<'s> {
    file: &'s PageFile,
    writer: MutexGuard<'s, WriterState>,
    /// The newest commit, where the state was read again from the file.
    pub fresh: Option<Meta>,
}

impl std::ops::Deref for HeldTurn<'_> {
    type Target = WriterState;

    fn deref(&self) -> &WriterState {
        &self.writer
    }
}

impl Drop for HeldTurn<'_> {
    fn drop(&mut self) {
        if self.writer.holds_turn() && !self.writer.unsynced() {
            self.file.end_turn();
            self.writer.set_turn(false);
        }
    }
}

impl PageStore {
    /// Opens the file at `path` (creating it if `create` and it does not
    /// exist or is empty) and returns the store with the newest commit.
    ///
    /// # Safety
    /// No process may modify the file while the store is open other than
    /// through mmapkit-db handles.
    pub unsafe fn open(path: &Path, config: &Config, create: bool) -> Result<(PageStore, Meta)> {
        let io = |op| move |error| Error::io(path, op, error);
        if create && config.read_only {
            return Err(Error::ReadOnly { path: path.to_path_buf() });
        }
        let file =
            OpenOptions::new().read(true).write(!config.read_only).create(create).open(path).map_err(io(IoOp::Open))?;
        let table = match LockFile::open(path) {
            Ok(lock) => Some(ReaderTable::claim(lock)?),
            Err(Error::Io { op: IoOp::OpenLockFile, error, .. })
                if config.read_only
                    && matches!(error.kind(), ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem) =>
            {
                file_lock::lock(&file, path, false)?;
                None
            }
            Err(e) => return Err(e),
        };
        let mut len = file.metadata().map_err(io(IoOp::Stat))?.len();
        if len == 0 {
            if !create {
                return Err(Error::NotADatabase { path: path.to_path_buf(), reason: "the file is empty".into() });
            }
            // Two creators at once: the one with the turn writes the meta pages.
            file_lock::take_turn(&file, path, config.turn_timeout, None)?;
            len = file.metadata().map_err(io(IoOp::Stat))?.len();
            let made = if len == 0 { Self::initialise(&file, path, config) } else { Ok(()) };
            file_lock::end_turn(&file);
            made?;
            len = file.metadata().map_err(io(IoOp::Stat))?.len();
        }
        let Picked { meta, slot, skipped, recovery } = recovery::pick_meta(&file, path, len, None)?;
        // SAFETY: the caller promises that only mmapkit-db handles modify the
        // file, and they write only pages no snapshot in any process refers
        // to (copy-on-write, with freed pages reused only when the reader
        // slots show no reader can see them) and meta pages, which are read
        // with pread (and by `check`, which holds the writer's turn).
        let map = unsafe { GrowableReadMap::new(file, config.reserve) }?;
        if !config.read_ahead {
            map.advise(Advice::Random)?;
        }
        let file = PageFile::new(path.to_path_buf(), map, Arc::clone(&config.storage));
        let writer = match &table {
            Some(_) => WriterState::unread(),
            // No writer can exist while the shared lock is held: the state is the file's for good.
            None => {
                let free = free_list::load(&file.snapshot(meta.page_count), &meta)?;
                WriterState::new(free, slot, meta.txn, skipped.max(meta.txn) + 1)
            }
        };
        let store = PageStore {
            file,
            writer: Mutex::new(writer),
            table,
            recovery,
            read_only: config.read_only,
            turn_timeout: config.turn_timeout,
            opened: (meta, slot, skipped),
        };
        Ok((store, meta))
    }

    /// Writes the two meta pages of an empty database into `file`.
    fn initialise(file: &std::fs::File, path: &Path, config: &Config) -> Result<()> {
        let io = |op| move |error| Error::io(path, op, error);
        let mut first = vec![0u8; 2 * PAGE_SIZE];
        let meta = Meta::empty().encode(&[]);
        first[..meta.len()].copy_from_slice(&meta);
        first[PAGE_SIZE..PAGE_SIZE + meta.len()].copy_from_slice(&meta);
        config.storage.write_at(file, &first, 0).map_err(io(IoOp::Initialise))?;
        config.storage.sync(file).map_err(io(IoOp::Sync))
    }

    /// Takes the writer's turn for `writer` if this handle does not hold it,
    /// and reads the state from the file again if another process may have
    /// changed it since. Returns the newest commit where it was read again.
    fn take_turn(&self, writer: &mut WriterState) -> Result<Option<Meta>> {
        let Some(table) = &self.table else { return Ok(None) };
        if writer.holds_turn() {
            return Ok(None);
        }
        let lock = table.lock_file();
        file_lock::take_turn(self.file.db_file(), self.path(), self.turn_timeout, lock.writer())?;
        writer.set_turn(true);
        lock.set_writer(std::process::id());
        let read = (|| {
            let len = self.file.db_file().metadata().map_err(|e| Error::io(self.path(), IoOp::Stat, e))?.len();
            // A file damaged under the open handle: go on with what the
            // handle knows (for a check to report the damage), as if no one
            // else wrote; or, before it read any state, with what it opened.
            let synced = (!writer.is_stale()).then(|| writer.last_durable());
            let (meta, slot, skipped) = match recovery::pick_meta(self.file.db_file(), self.path(), len, synced) {
                Ok(picked) => (picked.meta, picked.slot, picked.skipped),
                Err(_) if !writer.is_stale() => return Ok(None),
                Err(_) => self.opened,
            };
            if !writer.is_stale() && meta.txn == writer.last_durable() {
                writer.next_at_least(skipped + 1);
                return Ok(None);
            }
            self.file.follow_file()?;
            let free = free_list::load(&self.file.snapshot(meta.page_count), &meta)?;
            writer.reload(WriterState::new(free, slot, meta.txn, skipped.max(meta.txn) + 1));
            // What no reader in any process can see any more is free now.
            writer.release(table.oldest(meta.txn).unwrap_or(u64::MAX).min(meta.txn));
            Ok(Some(meta))
        })();
        match read {
            Ok(fresh) => {
                // A commit whose writer died before publishing it, or a lock
                // file left by another database: publish what the file holds.
                if let Some(meta) = fresh
                    && lock.published() != Some(meta)
                {
                    lock.publish(&meta);
                }
                Ok(fresh)
            }
            Err(e) => {
                self.file.end_turn();
                writer.set_turn(false);
                Err(e)
            }
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// What opening recovered from, if anything (see `Database::recovery`).
    pub fn recovery(&self) -> Option<&str> {
        self.recovery.as_deref()
    }

    /// Whether the file was opened for reading only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The reader slots shared with other handles, if this handle uses them.
    pub fn table(&self) -> Option<&ReaderTable> {
        self.table.as_ref()
    }

    /// The file's length in bytes (the used pages plus space grown ahead).
    pub fn file_len(&self) -> u64 {
        self.file.len()
    }

    /// Whether `meta` (a commit published in the lock file) is one of the
    /// records the file's meta pages hold: a lock file left behind by a
    /// database that was deleted and made again publishes commits of another file.
    pub fn holds_commit(&self, meta: &Meta) -> bool {
        use std::os::unix::fs::FileExt;
        let mut page = vec![0u8; PAGE_SIZE];
        (0..2).any(|slot| {
            self.file.db_file().read_exact_at(&mut page, (slot * PAGE_SIZE) as u64).is_ok()
                && Meta::decode(&page).is_ok_and(|(m, _)| m == *meta)
        })
    }

    /// Maps what the file has grown by, if commit `meta` needs more than is mapped.
    pub fn cover(&self, meta: &Meta) -> Result<()> {
        if meta.page_count * PAGE_SIZE as u64 > self.file.len() {
            self.file.follow_file()?;
        }
        Ok(())
    }

    /// The pages of commit `meta`, each page's checksum checked the first time it is read.
    pub fn snapshot(&self, meta: &Meta) -> SnapshotPages<'_> {
        self.file.snapshot(meta.page_count)
    }

    /// The record in meta slot `slot` as the file holds it now, if it decodes.
    pub fn meta_in_slot(&self, slot: usize) -> Option<Meta> {
        self.file.meta_in_slot(slot)
    }

    /// The writer's state, locked, as it is (possibly not read from the
    /// file yet, or older than another process's commits).
    pub fn writer(&self) -> MutexGuard<'_, WriterState> {
        relock(&self.writer)
    }

    /// The writer's state with the writer's turn held and the state read
    /// again from the file where another process may have changed it: what
    /// `check` and `stats` read. Writers in every process wait meanwhile.
    pub fn held_turn(&self) -> Result<HeldTurn<'_>> {
        let mut writer = relock(&self.writer);
        let fresh = self.take_turn(&mut writer)?;
        Ok(HeldTurn { file: &self.file, writer, fresh })
    }

    /// Takes the writer's lock and turn, waiting while another write
    /// transaction (in any process) is open, and gives the new transaction
    /// its pages. `newest` is called with the turn held, given the newest
    /// commit where the state was read again from the file: it gives the
    /// commit to start from.
    pub fn begin_write(&self, newest: impl FnOnce(Option<Meta>) -> Meta) -> Result<TxnPages<'_>> {
        if self.read_only {
            return Err(Error::ReadOnly { path: self.path().to_path_buf() });
        }
        let mut writer = relock(&self.writer);
        if let Some(cause) = writer.poisoned() {
            return Err(Error::Poisoned { path: self.path().to_path_buf(), cause: cause.to_string() });
        }
        let fresh = self.take_turn(&mut writer)?;
        let meta = newest(fresh);
        let oldest_reader = self.table.as_ref().and_then(|t| t.oldest(writer.last_durable()));
        Ok(TxnPages::begin(&self.file, writer, meta, oldest_reader))
    }

    /// Commits `pages` with `catalog` as the catalog's root: durably (the
    /// free list written, the meta page synced, the commit published to
    /// other processes) if `durable`, else only for this handle's new readers
    /// to see. Returns the commit's meta record, for the caller to publish;
    /// on an error nothing of it is visible.
    pub fn commit(&self, pages: &mut TxnPages<'_>, catalog: PageNo, durable: bool) -> Result<Meta> {
        // A durable commit writes the free list its meta page names: the ready
        // list, and a segment of what was freed since the last durable commit.
        let txn = pages.txn();
        let saved = durable.then(|| free_list::save(pages, txn));
        let meta = pages.write_commit(catalog, saved)?;
        if durable && let Some(table) = &self.table {
            table.lock_file().publish(&meta);
        }
        Ok(meta)
    }

    /// Gives the free pages at the end of the file back to the file system,
    /// if `current` (the newest commit) is durable, no write failed, no other
    /// handle is attached and no other writer has the turn. It takes `&mut
    /// self`: no snapshot or transaction of this handle is alive.
    pub fn close(&mut self, current: &Meta) {
        let writer = relock(&self.writer);
        let durable = writer.poisoned().is_none() && writer.last_durable() == current.txn && !writer.is_stale();
        let held = writer.holds_turn();
        drop(writer);
        let Some(table) = &self.table else {
            if durable {
                self.file.truncate_to(current.page_count);
            }
            return;
        };
        if !durable || table.others_attached() {
            return;
        }
        if !held && file_lock::lock(self.file.db_file(), self.path(), true).is_err() {
            return;
        }
        let newest = self
            .file
            .db_file()
            .metadata()
            .ok()
            .and_then(|m| recovery::pick_meta(self.file.db_file(), self.path(), m.len(), Some(current.txn)).ok())
            .map(|p| p.meta.txn);
        if newest == Some(current.txn) {
            self.file.truncate_to(current.page_count);
        }
        self.file.end_turn();
    }
}
