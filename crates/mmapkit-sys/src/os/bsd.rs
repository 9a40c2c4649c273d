//! What macOS and FreeBSD share where they both differ from Linux.

use std::ffi::c_int;
use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use crate::unsupported::Unsupported;

/// No `MAP_POPULATE`: the pages are read ahead (`MADV_WILLNEED`) instead.
pub(crate) const HAS_POPULATE: bool = false;

/// `msync` through libc: rustix's BSD backend reports its errors as `-1`.
///
/// # Safety
/// `addr` is page-aligned and the range lies in a live mapping.
pub(crate) unsafe fn msync(addr: NonNull<u8>, len: usize, wait: bool) -> io::Result<()> {
    let flags = if wait { libc::MS_SYNC } else { libc::MS_ASYNC };
    // SAFETY: msync only reads page-table state of a range the caller keeps mapped.
    if unsafe { libc::msync(addr.as_ptr().cast(), len, flags) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Huge pages of a size the caller picks (Linux's `MAP_HUGETLB`).
pub(crate) fn default_huge_page_size() -> io::Result<usize> {
    Err(Unsupported::error("huge pages of a chosen size (MAP_HUGETLB)"))
}

pub(crate) fn start_writeback(_fd: BorrowedFd<'_>, _offset: u64, _len: u64) -> io::Result<()> {
    Err(Unsupported::error("starting the write-back of a byte range (sync_file_range)"))
}

/// No `mremap`: shrinking unmaps the tail; growing maps more after the end
/// where the address space is free, or moves by copying.
pub(crate) const HAS_MREMAP: bool = false;

/// # Safety
/// As `crate::memory::mremap`.
pub(crate) unsafe fn mremap(_addr: NonNull<u8>, _old: usize, _new: usize, _may_move: bool) -> io::Result<NonNull<u8>> {
    Err(Unsupported::error("resizing a mapping in one call (mremap)"))
}

/// No `/proc/self/maps`.
pub(crate) fn mapped_path(_addr: usize) -> Option<std::path::PathBuf> {
    None
}

/// No `/proc/locks` to ask.
pub(crate) fn flock_holder(_fd: BorrowedFd<'_>) -> Option<u32> {
    None
}

/// The path the descriptor reports, if any (none for a memfd or shm object
/// on FreeBSD, whose `F_KINFO` path is empty): a rename in between would
/// defeat a reopen by it.
pub(crate) fn reopen_path(fd: BorrowedFd<'_>) -> Option<std::path::PathBuf> {
    super::fd_path(fd)
}

/// A lost page raises `SIGBUS`: on macOS every bad access but one to an
/// unmapped address does (XNU's `ux_exception`), and FreeBSD's
/// `vm_fault_trap` gives `SIGBUS` for a page past the end of its object
/// (`BUS_OBJERR`) or one it had no memory for (`BUS_OOMERR`). `SIGSEGV` means
/// an unmapped address or (FreeBSD) a protection fault: never a lost page.
pub(crate) const FAULT_SIGNALS: &[c_int] = &[libc::SIGBUS];

/// Sent by a process: `si_code` zero or less, or one of the `SI_*` codes
/// (`SI_USER`, `SI_QUEUE`, ... from 0x10001 on), which faults never carry.
pub(crate) fn is_sent(code: c_int) -> bool {
    code <= 0 || code >= 0x10001
}
