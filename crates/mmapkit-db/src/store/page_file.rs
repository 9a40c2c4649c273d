//! The database file as pages: read through a read-only mapping that grows in
//! place, written only through the [`Storage`] (never through the mapping),
//! with the bits that remember which pages' checksums have matched.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mmapkit::GrowableReadMap;

use super::meta_page::Meta;
use super::page_header::{PAGE_SIZE, PageNo};
use super::snapshot::SnapshotPages;
use super::verified::Verified;
use super::write_io::Storage;
use crate::error::{Error, IoOp, Result};

/// The mapped file and the I/O layer its writes go through.
pub struct PageFile {
    path: PathBuf,
    map: GrowableReadMap,
    /// Pages whose checksum reads have checked; forgotten as they are rewritten.
    verified: Verified,
    storage: Arc<dyn Storage>,
}

impl PageFile {
    /// The file at `path`, mapped as `map`, written through `storage`.
    pub fn new(path: PathBuf, map: GrowableReadMap, storage: Arc<dyn Storage>) -> PageFile {
        let verified = Verified::new(map.capacity());
        PageFile { path, map, verified, storage }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes, as mapped (the used pages plus space grown ahead).
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Pages `0..page_count`, each page's checksum checked the first time it is read.
    pub fn snapshot(&self, page_count: u64) -> SnapshotPages<'_> {
        SnapshotPages::new(&self.map, &self.path, page_count, Some(&self.verified))
    }

    /// The record in meta slot `slot` as the file holds it now, if it decodes.
    pub fn meta_in_slot(&self, slot: usize) -> Option<Meta> {
        let at = slot * PAGE_SIZE;
        let (meta, _) = Meta::decode(self.map.get(at..at + PAGE_SIZE)?).ok()?;
        Some(meta)
    }

    /// The database file (its `flock` is the writer's turn).
    pub fn db_file(&self) -> &std::fs::File {
        self.map.file()
    }

    /// Gives the writer's turn back.
    pub fn end_turn(&self) {
        super::file_lock::end_turn(self.map.file());
    }

    /// Maps what the file has grown by under another process's commits.
    pub fn follow_file(&self) -> Result<()> {
        self.map.follow_file()?;
        Ok(())
    }

    fn io(&self, op: IoOp) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |error| Error::io(&self.path, op, error)
    }

    /// Writes pages (and runs) at their places in the file, each from its
    /// own buffer, growing the file (and the mapping) first.
    pub fn write_pages(&self, pages: &[(PageNo, &[u8])], page_count: u64) -> Result<()> {
        self.grow_for(page_count)?;
        for &(n, bytes) in pages {
            self.verified.forget(n, (bytes.len() / PAGE_SIZE) as u64);
        }
        let file = self.map.file();
        for &(n, bytes) in pages {
            self.storage.write_at(file, bytes, n * PAGE_SIZE as u64).map_err(self.io(IoOp::WritePages))?;
        }
        // What is in the file now is what was sealed just before: each page
        // (or run, by its first page) matches its checksum.
        for &(n, bytes) in pages {
            self.verified.insert(n, super::page_header::stored_checksum(bytes));
        }
        Ok(())
    }

    /// Writes `bytes`, a page or run, at page `start`, growing the file to
    /// `page_count` pages first if it is shorter. Reads check its checksum the
    /// first time, as for any page they find in the file.
    pub fn write_ahead(&self, start: PageNo, bytes: &[u8], page_count: u64) -> Result<()> {
        self.grow_for(page_count)?;
        self.verified.forget(start, (bytes.len() / PAGE_SIZE) as u64);
        self.storage.write_at(self.map.file(), bytes, start * PAGE_SIZE as u64).map_err(self.io(IoOp::WritePages))
    }

    /// Writes `bytes`, consecutive pages and runs never written before (in a
    /// file made for the transaction), at page `start` in one
    /// [`Storage::write_fresh_at`], growing the file to `page_count` pages first.
    pub fn write_fresh_ahead(&self, start: PageNo, bytes: &[u8], page_count: u64) -> Result<()> {
        self.grow_for(page_count)?;
        self.verified.forget(start, (bytes.len() / PAGE_SIZE) as u64);
        let file = self.map.file();
        self.storage.write_fresh_at(file, bytes, start * PAGE_SIZE as u64).map_err(self.io(IoOp::WritePages))
    }

    /// Lets the disk start on pages `start..start + count`, written ahead,
    /// before the commit's sync.
    pub fn start_writeback(&self, start: PageNo, count: u64) {
        let (offset, len) = (start * PAGE_SIZE as u64, count * PAGE_SIZE as u64);
        self.storage.start_writeback(self.map.file(), offset, len);
    }

    /// Grows the file (sparse) and its map to hold `page_count` pages: to
    /// the next whole MiB past them, so that a file is never more than a MiB
    /// longer than its pages (the space a file system reports for it is its
    /// length, holes or not), while commits that add a page or two grow it
    /// only every 256 pages. The last OS page of the map stays unused until
    /// the next growth, so reads of the newest pages take the cheap check
    /// that the file was not cut (see `snapshot.rs`).
    fn grow_for(&self, page_count: u64) -> Result<()> {
        let needed = page_count * PAGE_SIZE as u64;
        let len = self.map.len() as u64;
        if needed > len {
            let grown = (needed + PAGE_SIZE as u64).next_multiple_of(1 << 20).min(self.map.capacity() as u64);
            self.map.grow_sparse_to(grown.max(needed))?;
        }
        Ok(())
    }

    /// Writes `meta` to `slot` and makes it and every page written before it
    /// durable. With `written` listed in the record one sync does (opening
    /// checks those pages); an empty list means sync the pages first.
    pub fn write_meta_durably(&self, meta: &Meta, written: &[(PageNo, u64)], slot: usize) -> Result<()> {
        let file = self.map.file();
        if written.is_empty() {
            self.storage.sync(file).map_err(self.io(IoOp::SyncPages))?;
        }
        let record = meta.encode(written);
        self.storage.write_at(file, &record, (slot * PAGE_SIZE) as u64).map_err(self.io(IoOp::WriteMetaPage))?;
        self.storage.sync(file).map_err(self.io(IoOp::Sync))
    }

    /// Cuts the file to its first `page_count` pages, giving the free pages
    /// past them back to the file system. It takes `&mut self`: no snapshot
    /// of this handle is alive, so nothing here reads past the new end (the
    /// caller makes sure no other handle can). A failure leaves the file as
    /// long as it was, which is harmless.
    pub fn truncate_to(&mut self, page_count: u64) {
        let _ = self.map.file().set_len(page_count * PAGE_SIZE as u64);
    }
}
