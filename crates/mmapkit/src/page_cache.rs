//! The page cache seen from outside a mapping: how much of a file is in
//! memory, and dropping it (as vmtouch does).

use std::fs::File;
use std::os::fd::AsFd;

use crate::error::{Error, Operation, Result};
use crate::options::MapOptions;
use crate::residency::Residency;
use crate::sys;

/// Which pages of `file` are in the page cache now.
///
/// The file is mapped for the duration of the call but its bytes are never
/// read, so this is safe whatever other processes do to the file.
pub fn residency(file: &File) -> Result<Residency> {
    // SAFETY: the map lives only inside this function and its bytes are never dereferenced; mincore reads page-table state, not file contents.
    let map = unsafe { MapOptions::new().map(file) }?;
    map.residency()
}

/// Writes `file`'s dirty pages back, then asks the kernel to drop all of its
/// pages from the page cache (`posix_fadvise(DONTNEED)`). Pages that another
/// process has mapped or locked may stay; check with [`residency`].
pub fn evict(file: &File) -> Result<()> {
    sys::evict(file.as_fd()).map_err(|e| Error::os(Operation::Evict, e).with_path(sys::fd_path(file.as_fd())))
}
