//! The I/O layer under the engine: every write and sync of the file goes
//! through a [`Storage`], so tests can fail or drop them at chosen points.

use std::fs::File;
use std::io;
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
    /// Makes every write so far durable (`fdatasync`).
    fn sync(&self, file: &File) -> io::Result<()>;
}

/// Plain `pwrite` and `fdatasync`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileStorage;

impl Storage for FileStorage {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
}
