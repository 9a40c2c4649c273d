//! The page store: what the layers above know of the file. It opens the file
//! (creating it, or recovering the newest whole commit), hands out snapshots
//! of committed pages, and gives the one writer its pages and commits them.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use mmapkit::{Advice, GrowableReadMap};

use super::file_lock;
use super::free_list;
use super::meta_page::Meta;
use super::page_file::PageFile;
use super::page_header::{PAGE_SIZE, PageNo};
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
}

impl Default for Config {
    fn default() -> Self {
        Config { reserve: DEFAULT_MAX_SIZE, storage: Arc::new(FileStorage), read_only: false, read_ahead: false }
    }
}

/// The open file, and the writer's state behind the writer's lock.
pub struct PageStore {
    file: PageFile,
    /// Held by a write transaction for its whole life.
    writer: Mutex<WriterState>,
    /// Set when opening passed over a newer commit that was not all on disk.
    recovery: Option<String>,
    read_only: bool,
}

/// Locks `m`, also after a panic elsewhere: the writer's state is updated in
/// single assignments after the fallible work, and a write transaction that
/// unwinds gives the free pages it borrowed back in its `Drop`, so a panic
/// leaves it consistent.
fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PageStore {
    /// Opens the file at `path` (creating it if `create` and it does not
    /// exist or is empty) and returns the store with the commit it recovered.
    ///
    /// # Safety
    /// No other process may modify the file while the store is open.
    pub unsafe fn open(path: &Path, config: &Config, create: bool) -> Result<(PageStore, Meta)> {
        let io = |op| move |error| Error::io(path, op, error);
        if create && config.read_only {
            return Err(Error::ReadOnly { path: path.to_path_buf() });
        }
        let file =
            OpenOptions::new().read(true).write(!config.read_only).create(create).open(path).map_err(io(IoOp::Open))?;
        file_lock::lock(&file, path, !config.read_only)?;
        let mut len = file.metadata().map_err(io(IoOp::Stat))?.len();
        if len == 0 {
            if !create {
                return Err(Error::NotADatabase { path: path.to_path_buf(), reason: "the file is empty".into() });
            }
            let mut first = vec![0u8; 2 * PAGE_SIZE];
            let meta = Meta::empty().encode(&[]);
            first[..meta.len()].copy_from_slice(&meta);
            first[PAGE_SIZE..PAGE_SIZE + meta.len()].copy_from_slice(&meta);
            config.storage.write_at(&file, &first, 0).map_err(io(IoOp::Initialise))?;
            config.storage.sync(&file).map_err(io(IoOp::Sync))?;
            len = first.len() as u64;
        }
        let Picked { meta, slot, skipped, recovery } = recovery::pick_meta(&file, path, len)?;
        // SAFETY: the caller promises that no other process modifies the
        // file, and this process writes only pages no snapshot refers to
        // (copy-on-write, with freed pages reused only when no reader can see
        // them) and meta pages, which are read with pread (and by `check`,
        // which holds the writer's lock).
        let map = unsafe { GrowableReadMap::new(file, config.reserve) }?;
        if !config.read_ahead {
            map.advise(Advice::Random)?;
        }
        let file = PageFile::new(path.to_path_buf(), map, Arc::clone(&config.storage));
        let free = free_list::load(&file.snapshot(meta.page_count), &meta)?;
        let writer = WriterState::new(free, slot, meta.txn, skipped.max(meta.txn) + 1);
        Ok((PageStore { file, writer: Mutex::new(writer), recovery, read_only: config.read_only }, meta))
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

    /// The file's length in bytes (the used pages plus space grown ahead).
    pub fn file_len(&self) -> u64 {
        self.file.len()
    }

    /// The pages of commit `meta`, each page's checksum checked the first time it is read.
    pub fn snapshot(&self, meta: &Meta) -> SnapshotPages<'_> {
        self.file.snapshot(meta.page_count)
    }

    /// The record in meta slot `slot` as the file holds it now, if it decodes.
    pub fn meta_in_slot(&self, slot: usize) -> Option<Meta> {
        self.file.meta_in_slot(slot)
    }

    /// The writer's state, locked: what `check` and `stats` read. A write
    /// transaction holds this lock for its whole life.
    pub fn writer(&self) -> MutexGuard<'_, WriterState> {
        relock(&self.writer)
    }

    /// Takes the writer's lock, waiting while another write transaction is
    /// open, and gives the new transaction its pages. `newest` is called
    /// under the lock: it gives the commit to start from and the oldest
    /// snapshot a reader holds, if any.
    pub fn begin_write(&self, newest: impl FnOnce() -> (Meta, Option<u64>)) -> Result<TxnPages<'_>> {
        if self.read_only {
            return Err(Error::ReadOnly { path: self.path().to_path_buf() });
        }
        let writer = relock(&self.writer);
        if let Some(cause) = writer.poisoned() {
            return Err(Error::Poisoned { path: self.path().to_path_buf(), cause: cause.to_string() });
        }
        let (meta, oldest_reader) = newest();
        Ok(TxnPages::begin(&self.file, writer, meta, oldest_reader))
    }

    /// Commits `pages` with `catalog` as the catalog's root: durably (the
    /// free list written, the meta page synced) if `durable`, else only for
    /// new readers to see. Returns the commit's meta record, for the caller to
    /// publish; on an error nothing of it is visible.
    pub fn commit(&self, pages: &mut TxnPages<'_>, catalog: PageNo, durable: bool) -> Result<Meta> {
        // A durable commit writes the free list its meta page names: the ready
        // list, and a segment of what was freed since the last durable commit.
        let txn = pages.txn();
        let saved = durable.then(|| free_list::save(pages, txn));
        pages.write_commit(catalog, saved)
    }

    /// Gives the free pages at the end of the file back to the file system,
    /// if `current` (the newest commit) is durable and no write failed. It
    /// takes `&mut self`: no snapshot or transaction is alive.
    pub fn close(&mut self, current: &Meta) {
        let writer = relock(&self.writer);
        let trim = writer.poisoned().is_none() && writer.last_durable() == current.txn;
        drop(writer);
        if trim {
            self.file.truncate_to(current.page_count);
        }
    }
}
