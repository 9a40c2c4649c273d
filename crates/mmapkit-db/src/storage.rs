//! The I/O layer under the engine: every write and sync of the file goes
//! through a [`Storage`], so tests can fail or drop them at chosen points.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

/// Writes and syncs of the database file. The engine never writes through its
/// mapping; it calls these. The default ([`FileStorage`]) is `pwrite` and
/// `fdatasync`. Another implementation can count, fail or drop operations to
/// test what a crash or a failing disk leaves behind (see the crate's fault
/// injection tests); it must keep the file's bytes what the engine would read
/// back, or report an error.
pub trait Storage: Send + Sync {
    /// Writes all of `buf` at byte `offset` of `file`.
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every write so far durable, through the drive's cache.
    fn sync(&self, file: &File) -> io::Result<()>;

    /// A hint that bytes `offset..offset + len`, just written, can go to disk
    /// now, before the next [`sync`](Self::sync), so the disk works while the
    /// engine prepares more. It changes nothing a sync promises; the default
    /// does nothing.
    fn start_writeback(&self, file: &File, offset: u64, len: u64) {
        let _ = (file, offset, len);
    }
}

/// Plain `pwrite`, and a sync that reaches the disk itself: `fdatasync` on
/// Linux and FreeBSD, `fcntl(F_FULLFSYNC)` on macOS (whose `fsync` leaves the
/// data in the drive's cache).
///
/// Writes go out one page ([`WRITE_PIECE`] bytes) per `pwrite`. The kernel
/// caches a range written in one big `pwrite` as large folios (Linux 6.18's
/// ext4 does), and we found later 4 KiB writes into such a range slow: in a
/// scratch probe (not in the repository: 1,000,000 random inserts in one
/// transaction, 1,000 single-insert commits, then 100 commits of 1,000
/// inserts, with 621 MB reaching the disk every time), the 100 batches took
/// 4.2-4.9 s over four runs when the pages went out in writes of up to 8 MiB,
/// 2.8-3.4 s over six runs in 64 KiB pieces, and 2.2-3.1 s over four runs in
/// 4 KiB pieces. That the folios are the cause is our reading of where the
/// kernel spent its time, not something we could see directly; one page per
/// write is the simplest rule that keeps the writes small.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileStorage;

/// The largest single `pwrite` [`FileStorage`] makes: one page.
pub const WRITE_PIECE: usize = crate::page::PAGE_SIZE;

impl Storage for FileStorage {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        for (k, piece) in buf.chunks(WRITE_PIECE).enumerate() {
            file.write_all_at(piece, offset + (k * WRITE_PIECE) as u64)?;
        }
        Ok(())
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        mmapkit_sys::file::sync_data(file.as_fd())
    }

    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`. A failure here is not
    /// reported: the writes are still in the page cache, and the sync that
    /// must follow reports any error the disk gives.
    fn start_writeback(&self, file: &File, offset: u64, len: u64) {
        let _ = mmapkit::page_cache::start_writeback(file, offset, len);
    }
}
