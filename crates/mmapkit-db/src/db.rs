//! `Database`: opening the file, the writer's state, and the published
//! snapshot that read transactions start from.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use mmapkit::GrowableReadMap;

use crate::error::{Error, Result};
use crate::freelist::{self, FreePages};
use crate::lock;
use crate::meta::Meta;
use crate::page::{self, HEADER, Kind, PAGE_SIZE, PageNo, read_u64};
use crate::pages::MapPages;
use crate::read::ReadTransaction;
use crate::storage::{FileStorage, Storage};
use crate::verified::Verified;
use crate::write::WriteTransaction;

/// The address space reserved for a database's file to grow into by default:
/// 1 TiB on 64-bit machines (it costs no memory; x86_64 user space has 128 TiB).
pub const DEFAULT_MAX_SIZE: usize = if usize::BITS >= 64 { 1 << 40 } else { 1 << 30 };

/// Options for opening a database.
pub struct Builder {
    reserve: usize,
    storage: Box<dyn Storage>,
    read_only: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder { reserve: DEFAULT_MAX_SIZE, storage: Box::new(FileStorage), read_only: false }
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("reserve", &self.reserve).finish_non_exhaustive()
    }
}

impl Builder {
    /// Default options: [`DEFAULT_MAX_SIZE`] (1 TiB) of address space reserved
    /// for the file to grow into (it costs no memory), `pwrite`/`fdatasync`
    /// storage, read-write.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The most the file can grow to while open: the address space reserved for
    /// its mapping. Reopening with a larger value lifts the limit.
    pub fn max_size(mut self, bytes: usize) -> Builder {
        self.reserve = bytes;
        self
    }

    /// Opens the file for reading only, under a shared lock: any number of
    /// read-only handles (in any process) may be open at once, but no writer;
    /// [`Database::begin_write`] gives [`Error::ReadOnly`]. The file needs only
    /// read permission and is never written, not even on close.
    pub fn read_only(mut self, read_only: bool) -> Builder {
        self.read_only = read_only;
        self
    }

    /// The I/O layer for writes and syncs (for fault-injection tests).
    pub fn storage(mut self, storage: impl Storage + 'static) -> Builder {
        self.storage = Box::new(storage);
        self
    }

    /// Opens the database at `path`, creating it if the file does not exist or is empty.
    ///
    /// # Safety
    /// See [`Database::create`].
    pub unsafe fn create(self, path: impl AsRef<Path>) -> Result<Database> {
        // SAFETY: the caller upholds `create`'s contract, which is `open_with`'s.
        unsafe { self.open_with(path.as_ref(), true) }
    }

    /// Opens the existing database at `path`.
    ///
    /// # Safety
    /// See [`Database::create`].
    pub unsafe fn open(self, path: impl AsRef<Path>) -> Result<Database> {
        // SAFETY: the caller upholds `open`'s contract, which is `open_with`'s.
        unsafe { self.open_with(path.as_ref(), false) }
    }

    /// # Safety
    /// No other process may modify the file while it is open.
    unsafe fn open_with(self, path: &Path, create: bool) -> Result<Database> {
        let path = path.to_path_buf();
        let io = |op| {
            let path = path.clone();
            move |source| Error::Io { path, op, source }
        };
        if create && self.read_only {
            return Err(Error::ReadOnly { path });
        }
        let file =
            OpenOptions::new().read(true).write(!self.read_only).create(create).open(&path).map_err(io("open"))?;
        lock::lock(&file, &path, !self.read_only)?;
        let mut len = file.metadata().map_err(io("stat"))?.len();
        if len == 0 {
            if !create {
                return Err(Error::NotADatabase { path, reason: "the file is empty".into() });
            }
            let mut first = vec![0u8; 2 * PAGE_SIZE];
            let meta = Meta::empty().encode(&[]);
            first[..meta.len()].copy_from_slice(&meta);
            first[PAGE_SIZE..PAGE_SIZE + meta.len()].copy_from_slice(&meta);
            self.storage.write_at(&file, &first, 0).map_err(io("initialise"))?;
            self.storage.sync(&file).map_err(io("sync"))?;
            len = first.len() as u64;
        }
        let Picked { meta, slot, skipped, recovery } = pick_meta(&file, &path, len)?;
        // The caller promises no other process modifies the file; this process
        // writes only pages no snapshot refers to (copy-on-write, with freed
        // pages reused only when no reader can see them) and meta pages, which
        // SAFETY: are read with pread (and by `check`, which holds the writer lock).
        let map = unsafe { GrowableReadMap::new(file, self.reserve) }?;
        let verified = Verified::new(map.capacity());
        let pages = MapPages { map: &map, path: &path, page_count: meta.page_count, verified: Some(&verified) };
        let free = freelist::load(&pages, &meta)?;
        Ok(Database {
            writer: Mutex::new(Writer {
                free,
                durable_slot: slot,
                last_durable: meta.txn,
                next_txn: skipped.max(meta.txn) + 1,
                poisoned: None,
                spare: Vec::new(),
            }),
            read_only: self.read_only,
            recovery,
            shared: Mutex::new(Shared { current: meta, readers: BTreeMap::new() }),
            storage: self.storage,
            map,
            verified,
            path,
        })
    }
}

/// The meta record an open starts from.
struct Picked {
    meta: Meta,
    slot: usize,
    /// The highest transaction id seen in a record that was passed over: new
    /// commits take ids above it, so none can make that record look whole.
    skipped: u64,
    /// Why a newer record was passed over, if one was.
    recovery: Option<String>,
}

/// Reads both meta pages and picks the newest whose commit fully reached the
/// disk. A newer record whose listed pages are not all there (a crash between
/// its write and its sync, or damage to one of them) is passed over and left
/// as it is; the next commit overwrites it.
fn pick_meta(file: &File, path: &Path, len: u64) -> Result<Picked> {
    let not_db = |reason: String| Error::NotADatabase { path: path.to_path_buf(), reason };
    if len < 2 * PAGE_SIZE as u64 {
        return Err(not_db(format!("{len} bytes is shorter than the two {PAGE_SIZE}-byte meta pages")));
    }
    let mut found = Vec::new();
    let mut reasons = Vec::new();
    let mut skipped = 0;
    // Records that need more pages than the file has, with their ids.
    let mut too_long = Vec::new();
    for slot in 0..2 {
        let mut buf = vec![0u8; PAGE_SIZE];
        file.read_exact_at(&mut buf, (slot * PAGE_SIZE) as u64).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            op: "read meta page",
            source,
        })?;
        let decoded = Meta::decode(&buf);
        if let Ok((meta, _)) = &decoded {
            skipped = skipped.max(meta.txn);
        }
        match decoded {
            Ok((meta, _)) if meta.page_count.saturating_mul(PAGE_SIZE as u64) > len => too_long.push((
                meta.txn,
                format!(
                    "meta page {slot} (transaction {}) needs {} pages but the file has {} bytes (truncated?)",
                    meta.txn, meta.page_count, len
                ),
            )),
            Ok((meta, written)) => found.push((meta, written, slot)),
            Err(why) => reasons.push(format!("meta page {slot}: {why}")),
        }
    }
    found.sort_by_key(|(meta, _, _)| std::cmp::Reverse(meta.txn));
    let mut passed_over = Vec::new();
    for (meta, written, slot) in &found {
        match written_pages_intact(file, meta, written) {
            Ok(()) => {
                // A newer commit not all on disk is worth telling even though
                // the open succeeded. (An older record needing more pages than
                // the file kept is not news, and a meta page that does not
                // decode cannot be told apart from a torn write of a commit
                // that never returned.)
                passed_over.extend(too_long.iter().filter(|(txn, _)| *txn > meta.txn).map(|(_, why)| why.clone()));
                let recovery = (!passed_over.is_empty()).then(|| {
                    format!(
                        "opened transaction {} from meta page {slot}, passing over {}",
                        meta.txn,
                        passed_over.join("; ")
                    )
                });
                return Ok(Picked { meta: *meta, slot: *slot, skipped, recovery });
            }
            Err(why) => passed_over.push(format!("transaction {} (meta page {slot}): {why}", meta.txn)),
        }
    }
    reasons.extend(too_long.into_iter().map(|(_, why)| why));
    reasons.extend(passed_over);
    Err(not_db(reasons.join("; ")))
}

/// Whether every page a single-sync commit wrote carries its id and checksum.
fn written_pages_intact(file: &File, meta: &Meta, written: &[(PageNo, u64)]) -> Result<(), String> {
    for &(p, sum) in written {
        let mut header = [0u8; HEADER];
        file.read_exact_at(&mut header, p * PAGE_SIZE as u64).map_err(|e| format!("page {p}: {e}"))?;
        let pages = if page::kind_byte(&header) == Kind::Overflow as u8 { page::link(&header) } else { 1 };
        if p.checked_add(pages).is_none_or(|end| end > meta.page_count) {
            return Err(format!("written page {p} runs past the end"));
        }
        let mut bytes = vec![0u8; pages as usize * PAGE_SIZE];
        file.read_exact_at(&mut bytes, p * PAGE_SIZE as u64).map_err(|e| format!("page {p}: {e}"))?;
        if read_u64(&bytes, 16) != meta.txn || read_u64(&bytes, 0) != sum || !page::checksum_ok(&bytes) {
            return Err(format!("page {p} of the commit never reached the disk"));
        }
    }
    Ok(())
}

/// An open database: one file, one writer at a time, any number of readers.
///
/// See the [crate documentation](crate) for an example.
pub struct Database {
    pub(crate) path: PathBuf,
    pub(crate) map: GrowableReadMap,
    /// Pages whose checksum reads have checked; forgotten as they are rewritten.
    pub(crate) verified: Verified,
    pub(crate) storage: Box<dyn Storage>,
    /// Held by the write transaction for its whole life.
    pub(crate) writer: Mutex<Writer>,
    pub(crate) shared: Mutex<Shared>,
    /// Set when opening passed over a newer commit that was not all on disk.
    pub(crate) recovery: Option<String>,
    pub(crate) read_only: bool,
}

/// What only the writer touches.
pub(crate) struct Writer {
    /// Free pages, and the pages the persisted free list is written on.
    pub free: FreePages,
    /// The meta slot holding the last durable commit.
    pub durable_slot: usize,
    pub last_durable: u64,
    /// The id the next commit takes (above any passed-over record's).
    pub next_txn: u64,
    /// Set when a write or sync failed: what is on disk is unknown.
    pub poisoned: Option<String>,
    /// Page buffers for the next transaction's copies (see `Store::spare`):
    /// up to 8 MiB kept for as long as the database is open.
    pub spare: Vec<Box<[u8]>>,
}

/// The published state: the newest commit, and the snapshots readers hold.
pub(crate) struct Shared {
    pub current: Meta,
    /// Snapshot transaction id → open read transactions on it.
    pub readers: BTreeMap<u64, usize>,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state behind these locks is updated in single assignments after the
    // fallible work, and a write transaction that unwinds gives the free pages
    // it borrowed back in its `Drop`, so a panic elsewhere leaves it consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Database {
    /// Opens the database at `path` with default options, creating it when the
    /// file does not exist or is empty. A second opener (in this process or
    /// another) gets [`Error::Locked`] with the holder's pid.
    ///
    /// # Safety
    /// Reads hand out slices of the mapped file. No other process may modify
    /// the file while this handle is open: the exclusive lock keeps out every
    /// other mmapkit-db handle, but not a program that ignores it. Truncation
    /// is not a hazard: the fault guard turns it into errors.
    pub unsafe fn create(path: impl AsRef<Path>) -> Result<Database> {
        // SAFETY: same contract.
        unsafe { Builder::new().create(path) }
    }

    /// Opens the existing database at `path` with default options.
    ///
    /// # Safety
    /// As for [`Database::create`].
    pub unsafe fn open(path: impl AsRef<Path>) -> Result<Database> {
        // SAFETY: same contract.
        unsafe { Builder::new().open(path) }
    }

    /// Options for opening.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What opening recovered from, if anything: a newer commit whose pages
    /// were not all on disk (a crash before its sync completed, or a damaged
    /// page), passed over in favour of the one before. `None` after a clean
    /// close. [`check`](Self::check) repeats it in its report.
    pub fn recovery(&self) -> Option<&str> {
        self.recovery.as_deref()
    }

    /// Starts a read transaction on the newest committed state. It never waits
    /// for the writer, and the writer never waits for it.
    pub fn begin_read(&self) -> Result<ReadTransaction<'_>> {
        let meta = {
            let mut shared = relock(&self.shared);
            let meta = shared.current;
            *shared.readers.entry(meta.txn).or_insert(0) += 1;
            meta
        };
        Ok(ReadTransaction::new(self, meta))
    }

    /// Starts the write transaction, waiting while another one is open.
    pub fn begin_write(&self) -> Result<WriteTransaction<'_>> {
        if self.read_only {
            return Err(Error::ReadOnly { path: self.path.clone() });
        }
        let mut writer = relock(&self.writer);
        if let Some(cause) = &writer.poisoned {
            return Err(Error::Poisoned { path: self.path.clone(), cause: cause.clone() });
        }
        let (meta, oldest_reader) = {
            let shared = relock(&self.shared);
            (shared.current, shared.readers.keys().next().copied())
        };
        // Pages freed up to `upto` are in no reader's snapshot and not in the
        // durable state: their segments become ready (costing what they hold).
        let upto = oldest_reader.unwrap_or(u64::MAX).min(writer.last_durable);
        writer.free.release(upto);
        Ok(WriteTransaction::new(self, writer, meta))
    }

    pub(crate) fn end_read(&self, txn: u64) {
        let mut shared = relock(&self.shared);
        if let Some(n) = shared.readers.get_mut(&txn) {
            *n -= 1;
            if *n == 0 {
                shared.readers.remove(&txn);
            }
        }
    }

    pub(crate) fn publish(&self, meta: Meta) {
        relock(&self.shared).current = meta;
    }

    pub(crate) fn pages_of(&self, meta: &Meta) -> MapPages<'_> {
        MapPages { map: &self.map, path: &self.path, page_count: meta.page_count, verified: Some(&self.verified) }
    }

    /// Writes pages (and runs) at their places in the file, each from its
    /// own buffer, growing the file (and the mapping) first.
    pub(crate) fn write_pages(&self, pages: &[(PageNo, &[u8])], page_count: u64) -> Result<()> {
        self.grow_for(page_count)?;
        for &(n, bytes) in pages {
            self.verified.forget(n, (bytes.len() / PAGE_SIZE) as u64);
        }
        let io = |source| Error::Io { path: self.path.clone(), op: "write pages", source };
        let file = self.map.file();
        for &(n, bytes) in pages {
            self.storage.write_at(file, bytes, n * PAGE_SIZE as u64).map_err(io)?;
        }
        // What is in the file now is what was sealed just before: each page
        // (or run, by its first page) matches its checksum.
        for &(n, _) in pages {
            self.verified.insert(n);
        }
        Ok(())
    }

    /// Writes `bytes`, a page or run, at page `start`, growing the file to
    /// `page_count` pages first if it is shorter. Reads check its checksum the
    /// first time, as for any page they find in the file.
    pub(crate) fn write_ahead(&self, start: PageNo, bytes: &[u8], page_count: u64) -> Result<()> {
        self.grow_for(page_count)?;
        self.verified.forget(start, (bytes.len() / PAGE_SIZE) as u64);
        let io = |source| Error::Io { path: self.path.clone(), op: "write pages", source };
        self.storage.write_at(self.map.file(), bytes, start * PAGE_SIZE as u64).map_err(io)
    }

    /// Lets the disk start on pages `start..start + count`, written ahead,
    /// before the commit's sync.
    pub(crate) fn start_writeback(&self, start: PageNo, count: u64) {
        let (offset, len) = (start * PAGE_SIZE as u64, count * PAGE_SIZE as u64);
        self.storage.start_writeback(self.map.file(), offset, len);
    }

    /// Grows the file (sparse) and its map to hold `page_count` pages.
    fn grow_for(&self, page_count: u64) -> Result<()> {
        let needed = page_count * PAGE_SIZE as u64;
        let len = self.map.len() as u64;
        if needed > len {
            // Grow ahead by half the file (at most 1 GiB) so growth is rare.
            let ahead = (len / 2).clamp(1 << 20, 1 << 30);
            let target = (needed + ahead).next_multiple_of(1 << 20).min(self.map.capacity() as u64).max(needed);
            self.map.grow_sparse_to(target)?;
        }
        Ok(())
    }

    /// Writes `meta` to `slot` and makes it and every page written before it
    /// durable. With `written` listed in the record one sync does (opening
    /// checks those pages); an empty list means sync the pages first.
    pub(crate) fn write_meta_durably(&self, meta: &Meta, written: &[(PageNo, u64)], slot: usize) -> Result<()> {
        let file = self.map.file();
        let io = |op| move |source| Error::Io { path: self.path.clone(), op, source };
        if written.is_empty() {
            self.storage.sync(file).map_err(io("sync pages"))?;
        }
        self.storage.write_at(file, &meta.encode(written), (slot * PAGE_SIZE) as u64).map_err(io("write meta page"))?;
        self.storage.sync(file).map_err(io("sync"))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.read_only {
            return;
        }
        // Commits made with `Durability::None` become durable now, and free
        // pages at the end of the file are given back to the file system.
        let needs_commit = {
            let writer = relock(&self.writer);
            writer.poisoned.is_none() && relock(&self.shared).current.txn > writer.last_durable
        };
        if needs_commit && let Ok(txn) = self.begin_write() {
            // Nothing to report to: a failure leaves the last durable commit, as a crash would.
            let _ = txn.commit();
        }
        let current = relock(&self.shared).current;
        let writer = relock(&self.writer);
        if writer.poisoned.is_none() && writer.last_durable == current.txn {
            let page_count = current.page_count;
            // No transaction is alive (they borrow `self`): nothing reads past the end.
            let _ = self.map.file().set_len(page_count * PAGE_SIZE as u64);
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("path", &self.path).finish_non_exhaustive()
    }
}
