//! The page cache seen from outside a mapping: how much of a file is in
//! memory, dropping it (as vmtouch does), and starting its write-back early.

use crate::source::MapSource;
use std::fs::File;

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::options::MapOptions;
use crate::residency::Residency;
use crate::sys;

/// Which pages of `file` are in the page cache now.
///
/// The file is mapped for the duration of the call but its bytes are never
/// read, so this is safe whatever other processes do to the file.
pub fn residency(file: &File) -> Result<Residency> {
    // SAFETY: the map lives only inside this function and its bytes are never dereferenced; mincore reads page-table
    // state, not file contents.
    let map = unsafe { MapOptions::new().map(file) }?;
    map.residency()
}

/// Starts writing the dirty pages of bytes `offset..offset + len` of `file`
/// to disk and returns at once (`sync_file_range(SYNC_FILE_RANGE_WRITE)`);
/// a `len` of 0 means to the end of the file.
///
/// This is a scheduling hint, not durability: it neither waits for the
/// writes nor flushes the disk's cache, and says nothing of the file's
/// metadata. What it buys is overlap: a writer that calls it after each large
/// batch lets the disk work while it prepares the next, so the `fdatasync`
/// at the end has less left to wait for.
pub fn start_writeback(file: &File, offset: u64, len: u64) -> Result<()> {
    let path = || sys::fd_path(file.descriptor());
    if offset.checked_add(len).is_none_or(|end| end > i64::MAX as u64) {
        let kind = ErrorKind::InvalidArgument("the byte range to write back ends past the largest file offset");
        return Err(Error::new(Operation::Writeback, kind).with_path(path()));
    }
    sys::start_writeback(file.descriptor(), offset, len)
        .map_err(|e| Error::os(Operation::Writeback, e).with_path(path()))
}

/// Writes `file`'s dirty pages back, then asks the kernel to drop all of its
/// pages from the page cache (`posix_fadvise(DONTNEED)`). Pages that another
/// process has mapped or locked may stay; check with [`residency`].
pub fn evict(file: &File) -> Result<()> {
    sys::evict(file.descriptor()).map_err(|e| Error::os(Operation::Evict, e).with_path(sys::fd_path(file.descriptor())))
}
