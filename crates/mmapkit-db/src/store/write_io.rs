//! The I/O layer under the engine: every write and sync of the file goes
//! through a [`Storage`], so tests can fail or drop them at chosen points.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use super::page_header::PAGE_SIZE;

/// Writes and syncs of the database file. The engine never writes through its
/// mapping; it calls these. The default ([`FileStorage`]) is `pwrite` and
/// `fdatasync`. Another implementation can count, fail or drop operations to
/// test what a crash or a failing disk leaves behind (see the crate's fault
/// injection tests); it must keep the file's bytes what the engine would read
/// back, or report an error.
pub trait Storage: Send + Sync {
    /// Writes all of `buf` at byte `offset` of `file`.
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf`, consecutive pages that were never written since
    /// the file was made (a compaction writes its new file so), at byte
    /// `offset` of `file`. The default is [`write_at`](Self::write_at).
    fn write_fresh_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_at(file, buf, offset)
    }
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
/// Writes go out one page ([`WRITE_PIECE`] bytes) per `pwrite`, however long
/// the buffer handed to [`Storage::write_at`]; [`Storage::write_fresh_at`], for
/// pages never written before in a new file, is one `pwrite` of the whole
/// buffer. The measurements behind these rules are in `docs/performance.md`
/// in the repository.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileStorage;

/// The largest single `pwrite` [`FileStorage`] makes: one page.
pub const WRITE_PIECE: usize = PAGE_SIZE;

impl Storage for FileStorage {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        for (k, piece) in buf.chunks(WRITE_PIECE).enumerate() {
            file.write_all_at(piece, offset + (k * WRITE_PIECE) as u64)?;
        }
        Ok(())
    }

    fn write_fresh_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
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
