//! A write transaction's pages: copies it owns (dirty pages, written at
//! commit) over the snapshot it started from, the page allocator, and how the
//! pages reach the file.
//!
//! A page is in `dirty` exactly when this transaction allocated it, so a page
//! of the committed tree is never changed: the first change copies it to a new
//! page (copy-on-write) and frees the old one for after the commit.
//!
//! Pages reach the file in one of two ways. A commit writes every dirty page,
//! then the meta page (see `meta_page.rs` for when one sync does). A bulk
//! build instead has each page written as soon as it is final
//! ([`TxnPages::write_ahead`]), so that it never holds the whole tree in
//! memory: those pages go past the last page any snapshot or durable state
//! uses (the end of the file, less free pages at its end), so nothing can see
//! them until the commit's meta record points at them, and a commit that
//! wrote ahead syncs its pages before it writes that record.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::MutexGuard;

use super::free_pages::{FreePages, SavedList};
use super::meta_page::{MAX_WRITTEN, Meta};
use super::page_file::PageFile;
use super::page_header::{self, Kind, PAGE_SIZE, PageNo};
use super::page_source::{PageSource, run_value};
use super::snapshot::SnapshotPages;
use super::writer_state::WriterState;
use crate::error::{Error, Result};

/// Page buffers a writer keeps between transactions (8 MiB).
const MAX_SPARE: usize = 2048;

/// Pages written ahead before the disk is asked to start on them (8 MiB).
const WRITEBACK_EVERY: u64 = (8 << 20) / PAGE_SIZE as u64;

/// Bytes of consecutive pages written ahead that a transaction writing a new
/// file ([`TxnPages::write_ahead_in_runs`]) gathers for one write (1 MiB).
const AHEAD_RUN: usize = 1 << 20;

/// Hashes the page numbers that key a transaction's dirty pages: one
/// multiply and a fold of the high half into the low, far cheaper than the
/// standard library's keyed hash, which every page lookup of a write would
/// pay. Page numbers come from the engine and the file; a damaged file can at
/// worst make lookups slower, never wrong.
#[derive(Clone, Copy, Default)]
pub struct PageHasher(u64);

impl Hasher for PageHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

/// A transaction's own pages (and overflow runs, by first page).
type DirtyPages = HashMap<PageNo, Box<[u8]>, BuildHasherDefault<PageHasher>>;

/// The pages a write transaction sees and changes. It holds the writer's
/// lock; dropping it without a commit gives the writer its free pages back as
/// they were.
pub struct TxnPages<'db> {
    file: &'db PageFile,
    writer: MutexGuard<'db, WriterState>,
    /// The commit the transaction started from.
    meta: Meta,
    /// That commit's pages.
    base: SnapshotPages<'db>,
    /// Pages (and overflow runs, keyed by first page) allocated by this transaction.
    dirty: DirtyPages,
    /// Free pages from earlier commits, as of the transaction's start.
    free: FreePages,
    /// Pages this transaction allocated and freed again: reusable at once.
    recycled: FreePages,
    /// Pages of the committed state freed by this transaction.
    freed: Vec<(PageNo, u64)>,
    /// Extents taken from `free`, to give back if the transaction aborts.
    taken: Vec<(PageNo, u64)>,
    /// Page buffers to reuse (from earlier transactions and freed dirty
    /// pages): a batch of inserts would otherwise allocate and fault in
    /// megabytes of fresh memory every time.
    spare: Vec<Box<[u8]>>,
    /// High-water mark: pages `0..page_count` are allocated or free.
    page_count: u64,
    /// Where the file ended once the free pages at its end were trimmed.
    trimmed_from: PageNo,
    /// Where pages written ahead of the commit (by [`place_ahead`](Self::place_ahead))
    /// begin: every page from here on that is not dirty was written ahead.
    ahead_from: Option<PageNo>,
    /// The first page written ahead since write-back was last started.
    unflushed_from: Option<PageNo>,
    /// Pages written ahead and not yet handed to the file, consecutive from
    /// `gathered_from`; only after [`write_ahead_in_runs`](Self::write_ahead_in_runs).
    gathered: Vec<u8>,
    /// The first page in `gathered`.
    gathered_from: PageNo,
    /// Whether pages written ahead are gathered into runs of [`AHEAD_RUN`] bytes.
    in_runs: bool,
    /// Set once a commit has handed the free pages back to the writer.
    committed: bool,
}

impl<'db> TxnPages<'db> {
    /// The pages of a transaction starting from commit `meta`, with the
    /// writer's free pages. Segments freed up to the oldest reader's snapshot
    /// (and the last durable commit) become ready first; free pages at the end
    /// of the file are trimmed off, so new pages go there only when needed.
    pub(super) fn begin(
        file: &'db PageFile,
        mut writer: MutexGuard<'db, WriterState>,
        meta: Meta,
        oldest_reader: Option<u64>,
    ) -> TxnPages<'db> {
        // Pages freed up to `upto` are in no reader's snapshot and not in the
        // durable state: their segments become ready (costing what they hold).
        let upto = oldest_reader.unwrap_or(u64::MAX).min(writer.last_durable());
        let (mut free, spare) = writer.check_out(upto);
        let page_count = free.trim_tail(meta.page_count);
        TxnPages {
            file,
            writer,
            meta,
            base: file.snapshot(meta.page_count),
            dirty: DirtyPages::default(),
            free,
            recycled: FreePages::default(),
            freed: Vec::new(),
            taken: Vec::new(),
            spare,
            page_count,
            trimmed_from: page_count,
            ahead_from: None,
            unflushed_from: None,
            gathered: Vec::new(),
            gathered_from: 0,
            in_runs: false,
            committed: false,
        }
    }

    /// The id this transaction's commit will have.
    pub fn txn(&self) -> u64 {
        self.writer.next_txn()
    }

    /// The commit the transaction started from.
    pub fn start(&self) -> &Meta {
        &self.meta
    }

    /// The database file, with the lifetime of the database (for parsing a
    /// copy of a page while the pages are changed).
    pub fn file_path(&self) -> &'db Path {
        self.file.path()
    }

    /// Allocates `n` contiguous pages, zeroed, owned by this transaction.
    pub fn alloc(&mut self, n: u64) -> PageNo {
        let start = self.place(n);
        let bytes = if n == 1 {
            let mut page = self.buffer();
            page.fill(0);
            page
        } else {
            vec![0u8; n as usize * PAGE_SIZE].into_boxed_slice()
        };
        self.dirty.insert(start, bytes);
        start
    }

    /// A page-sized buffer with any contents: a spare one, or a new one.
    fn buffer(&mut self) -> Box<[u8]> {
        self.spare.pop().unwrap_or_else(|| vec![0u8; PAGE_SIZE].into_boxed_slice())
    }

    /// Where `n` new contiguous pages go: recycled, free, or past the end.
    fn place(&mut self, n: u64) -> PageNo {
        if let Some(start) = self.recycled.take(n) {
            return start;
        }
        if let Some(start) = self.free.take(n) {
            self.taken.push((start, n));
            return start;
        }
        self.page_count += n;
        self.page_count - n
    }

    /// Places `n` pages past the end for bytes written to the file before the
    /// commit. They are final: this transaction can no longer read, change or
    /// free them (it refuses with an error naming the page).
    fn place_ahead(&mut self, n: u64) -> PageNo {
        self.ahead_from.get_or_insert(self.page_count);
        self.page_count += n;
        self.page_count - n
    }

    /// Whether page `n` was written ahead.
    fn is_ahead(&self, n: PageNo) -> bool {
        self.ahead_from.is_some_and(|from| n >= from) && !self.dirty.contains_key(&n)
    }

    fn written_ahead(&self, n: PageNo) -> Error {
        self.corrupt(n, format!("page {n} was written ahead of the commit and is final"))
    }

    /// Frees `n` pages starting at `start` (a page or a whole run).
    pub fn free(&mut self, start: PageNo, n: u64) {
        if let Some(bytes) = self.dirty.remove(&start) {
            if bytes.len() == PAGE_SIZE {
                self.spare.push(bytes);
            }
            self.recycled.add_ready(start, n);
        } else {
            self.freed.push((start, n));
        }
    }

    /// A page of this transaction's to change: `n` itself if this transaction
    /// owns it, else a copy of page `n` on a new page (and `n` freed), made
    /// once `check` has accepted the page's bytes.
    pub fn owned(&mut self, n: PageNo, check: impl FnOnce(&[u8]) -> Result<()>) -> Result<PageNo> {
        if self.dirty.contains_key(&n) {
            return Ok(n);
        }
        if self.is_ahead(n) {
            return Err(self.written_ahead(n));
        }
        let copy = {
            let bytes = self.base.page(n)?;
            check(bytes)?;
            // A spare buffer, or a new one made from the bytes (not zeroed first).
            match self.spare.pop() {
                Some(mut spare) => {
                    spare.copy_from_slice(bytes);
                    spare
                }
                None => Box::from(bytes),
            }
        };
        self.base.check_fault()?;
        let new = self.place(1);
        self.dirty.insert(new, copy);
        self.free(n, 1);
        Ok(new)
    }

    /// A page of this transaction's to write anew in place of page `n`: `n`
    /// itself if this transaction owns it, else a new page (and `n` freed),
    /// its bytes left as they are for the caller to overwrite whole.
    pub fn rewritten(&mut self, n: PageNo) -> Result<PageNo> {
        if self.dirty.contains_key(&n) {
            return Ok(n);
        }
        if self.is_ahead(n) {
            return Err(self.written_ahead(n));
        }
        let bytes = self.buffer();
        let new = self.place(1);
        self.dirty.insert(new, bytes);
        self.free(n, 1);
        Ok(new)
    }

    /// Whether this transaction owns page `n` (allocated it).
    pub fn owns(&self, n: PageNo) -> bool {
        self.dirty.contains_key(&n)
    }

    /// A page buffer to build a node in (its bytes are whatever it held),
    /// for [`install`](Self::install) or [`give_back`](Self::give_back).
    pub fn take_buffer(&mut self) -> Box<[u8]> {
        self.buffer()
    }

    /// Keeps a buffer from [`take_buffer`](Self::take_buffer) for reuse.
    pub fn give_back(&mut self, bytes: Box<[u8]>) {
        if bytes.len() == PAGE_SIZE && self.spare.len() < MAX_SPARE {
            self.spare.push(bytes);
        }
    }

    /// Puts `bytes`, a node built from what page `n` held, in the place of
    /// `n`: `n` itself when this transaction owns it (its old bytes become a
    /// spare buffer), else a new page, `n` freed. Returns the page.
    pub fn install(&mut self, n: PageNo, bytes: Box<[u8]>) -> Result<PageNo> {
        if let Some(old) = self.dirty.get_mut(&n) {
            let old = std::mem::replace(old, bytes);
            self.give_back(old);
            return Ok(n);
        }
        if self.is_ahead(n) {
            return Err(self.written_ahead(n));
        }
        // The node was built from the mapped page: a fault there would have
        // left the bytes it read undefined.
        self.base.check_fault()?;
        let new = self.place(1);
        self.dirty.insert(new, bytes);
        self.free(n, 1);
        Ok(new)
    }

    /// The bytes of a page this transaction owns.
    pub fn page_mut(&mut self, n: PageNo) -> &mut [u8] {
        self.dirty.get_mut(&n).expect("page_mut is called only on owned pages")
    }

    /// Every page (and run) this transaction owns, in no order.
    pub fn dirty_pages_mut(&mut self) -> impl Iterator<Item = &mut [u8]> + '_ {
        self.dirty.values_mut().map(|bytes| &mut bytes[..])
    }

    /// Writes a new overflow run holding `value`; returns its first page.
    pub fn write_run(&mut self, value: &[u8]) -> PageNo {
        let pages = page_header::run_pages(value.len());
        let start = self.alloc(pages);
        let run = self.page_mut(start);
        page_header::init(run, Kind::Overflow, pages);
        run[page_header::HEADER..page_header::HEADER + value.len()].copy_from_slice(value);
        start
    }

    /// Gives a finished page or run (whole pages, header set) the next number
    /// past the end, seals it and writes it to the file at once; every 8 MiB
    /// written ahead, the disk is asked to start on them.
    /// After [`write_ahead_in_runs`](Self::write_ahead_in_runs) the pages are
    /// gathered and written a run of [`AHEAD_RUN`] bytes at a time instead.
    pub fn write_ahead(&mut self, bytes: &mut [u8]) -> Result<PageNo> {
        let n = self.place_ahead((bytes.len() / PAGE_SIZE) as u64);
        page_header::seal(bytes, self.txn());
        if self.in_runs {
            // Pages placed ahead are consecutive: each goes right after the one before.
            if self.gathered.is_empty() {
                self.gathered_from = n;
            }
            self.gathered.extend_from_slice(bytes);
            if self.gathered.len() >= AHEAD_RUN {
                self.write_gathered()?;
            }
        } else {
            self.file.write_ahead(n, bytes, self.page_count)?;
        }
        let from = *self.unflushed_from.get_or_insert(n);
        if self.page_count - from >= WRITEBACK_EVERY {
            self.start_writeback()?;
        }
        Ok(n)
    }

    /// Has pages written ahead gathered and written a run of [`AHEAD_RUN`]
    /// bytes at a time through [`Storage::write_fresh_at`](super::Storage::write_fresh_at),
    /// for a transaction that writes a file made just before it (a
    /// compaction's), where those pages were never written before.
    pub fn write_ahead_in_runs(&mut self) {
        self.in_runs = true;
        self.gathered.reserve(AHEAD_RUN + PAGE_SIZE);
    }

    /// Writes the gathered pages (if any) to the file.
    fn write_gathered(&mut self) -> Result<()> {
        if !self.gathered.is_empty() {
            let end = self.gathered_from + (self.gathered.len() / PAGE_SIZE) as u64;
            let written = self.file.write_fresh_ahead(self.gathered_from, &self.gathered, end);
            self.gathered.clear();
            written?;
        }
        Ok(())
    }

    /// Writes the pages written ahead and still gathered, then asks the disk
    /// to start on the pages written ahead since it last was. Reads and the
    /// commit find every page written ahead in the file after this.
    pub fn start_writeback(&mut self) -> Result<()> {
        self.write_gathered()?;
        if let Some(from) = self.unflushed_from.take() {
            self.file.start_writeback(from, self.page_count - from);
        }
        Ok(())
    }

    /// The writer's free pages, as this transaction has taken from them.
    pub(super) fn free_pages(&self) -> &FreePages {
        &self.free
    }

    /// Pages this transaction allocated and freed again.
    pub(super) fn recycled(&self) -> &FreePages {
        &self.recycled
    }

    /// Pages of the committed state this transaction freed.
    pub(super) fn freed(&self) -> &[(PageNo, u64)] {
        &self.freed
    }

    /// Frees the last durable commit's free-list pages that the new list does
    /// not reach: pages of the committed state (in use until now, so not this
    /// transaction's).
    pub(super) fn free_superseded_list(&mut self) {
        self.freed.extend(self.free.superseded().iter().map(|&p| (p, 1)));
    }

    /// Writes the commit: every page sealed with the commit's id and written,
    /// then, for a durable commit (`saved`: the free list it wrote), the meta
    /// page in the slot not holding the last durable commit, synced. Returns
    /// the commit's meta record; the writer's state records the commit. On an
    /// error from the disk the writer refuses further writes.
    pub(super) fn write_commit(&mut self, catalog: PageNo, saved: Option<SavedList>) -> Result<Meta> {
        self.write_gathered()?;
        let txn = self.txn();
        let durable = saved.is_some();
        let mut meta = Meta { txn, catalog, ..self.meta };
        if let Some(saved) = &saved {
            meta.freelist = saved.first;
            meta.free_list_pages = saved.pages;
        }
        meta.page_count = self.page_count;

        let mut dirty: Vec<(PageNo, Box<[u8]>)> = std::mem::take(&mut self.dirty).into_iter().collect();
        dirty.sort_unstable_by_key(|(n, _)| *n);
        for (_, bytes) in &mut dirty {
            page_header::seal(bytes, txn);
        }
        let pages: Vec<(PageNo, &[u8])> = dirty.iter().map(|(n, b)| (*n, &b[..])).collect();
        let written = self.file.write_pages(&pages, meta.page_count).and_then(|()| {
            if durable {
                let slot = 1 - self.writer.durable_slot();
                // One sync suffices only when every page the new meta needs
                // is this commit's, listed with its checksum: not after
                // unsynced (`Durability::None`) commits, nor for big commits
                // or ones that wrote pages ahead.
                let one_sync = pages.len() <= MAX_WRITTEN
                    && self.meta.txn == self.writer.last_durable()
                    && self.ahead_from.is_none();
                let written: Vec<(PageNo, u64)> = if one_sync {
                    pages.iter().map(|(n, b)| (*n, page_header::stored_checksum(b))).collect()
                } else {
                    Vec::new()
                };
                self.file.write_meta_durably(&meta, &written, slot)?;
                self.writer.made_durable(txn, slot);
            }
            Ok(())
        });
        if let Err(e) = written {
            if !matches!(e, Error::Map(_)) {
                // Growing the map failed before anything was written; any
                // other failure leaves the disk in an unknown state.
                self.writer.poison(e.to_string());
            }
            return Err(e);
        }
        drop(pages);
        let room = MAX_SPARE.saturating_sub(self.spare.len());
        self.spare.extend(dirty.into_iter().map(|(_, b)| b).filter(|b| b.len() == PAGE_SIZE).take(room));
        let mut free = std::mem::take(&mut self.free);
        for (start, len) in self.recycled.ready_extents() {
            free.add_ready(start, len);
        }
        match saved {
            Some(saved) => free.saved(saved.list, saved.segment),
            None => free.add_unsaved(std::mem::take(&mut self.freed)),
        }
        self.writer.check_in(free);
        self.committed = true;
        self.writer.committed(txn);
        Ok(meta)
    }

    /// A copy of the transaction's pages and allocator as they are now, to
    /// go back to with [`restore`](Self::restore). It copies every page the
    /// transaction has changed.
    pub fn save(&self) -> SavedPages {
        SavedPages {
            dirty: self.dirty.clone(),
            free: self.free.clone(),
            recycled: self.recycled.clone(),
            freed: self.freed.clone(),
            taken: self.taken.clone(),
            page_count: self.page_count,
            ahead_from: self.ahead_from,
            unflushed_from: self.unflushed_from,
        }
    }

    /// Goes back to the state `saved` copied: pages allocated since are
    /// forgotten (those taken from the free pages go back to them), pages
    /// freed since are in use again, and changed pages hold what they held.
    pub fn restore(&mut self, saved: &SavedPages) {
        let old = std::mem::replace(&mut self.dirty, saved.dirty.clone());
        let room = MAX_SPARE.saturating_sub(self.spare.len());
        self.spare.extend(old.into_values().filter(|b| b.len() == PAGE_SIZE).take(room));
        self.free = saved.free.clone();
        self.recycled = saved.recycled.clone();
        self.freed = saved.freed.clone();
        self.taken = saved.taken.clone();
        self.page_count = saved.page_count;
        self.ahead_from = saved.ahead_from;
        self.unflushed_from = saved.unflushed_from;
    }

    /// The high-water mark, the free pages and the recycled pages, for tests
    /// that set up a state to commit.
    #[cfg(test)]
    pub(super) fn parts_for_test(&mut self) -> (&mut u64, &mut FreePages, &mut FreePages) {
        (&mut self.page_count, &mut self.free, &mut self.recycled)
    }
}

/// A write transaction's pages and allocator at one moment
/// ([`TxnPages::save`]).
#[derive(Clone)]
pub struct SavedPages {
    dirty: DirtyPages,
    free: FreePages,
    recycled: FreePages,
    freed: Vec<(PageNo, u64)>,
    taken: Vec<(PageNo, u64)>,
    page_count: u64,
    ahead_from: Option<PageNo>,
    unflushed_from: Option<PageNo>,
}

impl SavedPages {
    /// Bytes of page copies it holds.
    pub fn bytes(&self) -> usize {
        self.dirty.values().map(|b| b.len()).sum()
    }
}

impl Drop for TxnPages<'_> {
    /// Keeps page buffers for the next transaction, up to a limit, and unless
    /// the transaction committed, gives the writer its free pages back as they
    /// were, with those trimmed from the end of the file and those taken.
    /// Gives the writer's turn back unless a commit is not yet durable.
    fn drop(&mut self) {
        let mut spare = std::mem::take(&mut self.spare);
        let room = MAX_SPARE.saturating_sub(spare.len());
        spare.extend(std::mem::take(&mut self.dirty).into_values().filter(|b| b.len() == PAGE_SIZE).take(room));
        spare.truncate(MAX_SPARE);
        self.writer.keep_spare(spare);
        if self.writer.holds_turn() && (!self.writer.unsynced() || self.writer.poisoned().is_some()) {
            self.file.end_turn();
            self.writer.set_turn(false);
        }
        if self.committed {
            return;
        }
        let mut free = std::mem::take(&mut self.free);
        for (start, len) in std::mem::take(&mut self.taken) {
            free.add_ready(start, len);
        }
        free.add_ready(self.trimmed_from, self.meta.page_count - self.trimmed_from);
        self.writer.check_in(free);
    }
}

impl PageSource for TxnPages<'_> {
    fn path(&self) -> &Path {
        self.file.path()
    }

    fn page(&self, n: PageNo) -> Result<&[u8]> {
        match self.dirty.get(&n) {
            Some(p) => Ok(&p[..PAGE_SIZE]),
            None if self.is_ahead(n) => Err(self.written_ahead(n)),
            None => self.base.page(n),
        }
    }

    fn run(&self, n: PageNo, len: usize) -> Result<&[u8]> {
        match self.dirty.get(&n) {
            Some(run) if run.len() as u64 == page_header::run_pages(len) * PAGE_SIZE as u64 => {
                run_value(run, n, len, self)
            }
            Some(_) => Err(self.corrupt(n, format!("page {n} is not an overflow run of a {len}-byte value"))),
            None if self.is_ahead(n) => Err(self.written_ahead(n)),
            None => self.base.run(n, len),
        }
    }

    fn check_fault(&self) -> Result<()> {
        self.base.check_fault()
    }
}
