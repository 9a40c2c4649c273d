//! macOS.

use std::ffi::{OsStr, c_int, c_void};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rustix::mm::{MapFlags, ProtFlags};
use rustix::net::{RecvFlags, SendFlags};

pub(crate) use super::bsd::*;
use crate::advice::{Advice, DestructiveAdvice};
use crate::fault_signal::FaultClass;
use crate::memory::Behavior;
use crate::unsupported::Unsupported;

pub(crate) const NAME: &str = "macOS";

// --- memory -------------------------------------------------------------------

pub(crate) const HAS_NO_RESERVE: bool = true;

pub(crate) fn map_flags(behavior: Behavior) -> io::Result<MapFlags> {
    if behavior.huge_log2.is_some() {
        return Err(Unsupported::error("huge pages of a chosen size (MAP_HUGETLB)"));
    }
    if behavior.stack {
        return Err(Unsupported::error("stack mappings (MAP_STACK)"));
    }
    Ok(if behavior.no_reserve { MapFlags::NORESERVE } else { MapFlags::empty() })
}

pub(crate) fn advice(advice: Advice) -> Option<c_int> {
    match advice {
        Advice::Normal => Some(libc::MADV_NORMAL),
        Advice::Random => Some(libc::MADV_RANDOM),
        Advice::Sequential => Some(libc::MADV_SEQUENTIAL),
        Advice::WillNeed => Some(libc::MADV_WILLNEED),
        _ => None,
    }
}

/// Only `MADV_FREE`: macOS's `MADV_DONTNEED` is a hint that keeps the contents.
pub(crate) fn destructive_advice(advice: DestructiveAdvice) -> Option<c_int> {
    match advice {
        DestructiveAdvice::Free => Some(libc::MADV_FREE),
        _ => None,
    }
}

/// An address hint, checked: macOS has no flag that refuses a taken range.
pub(crate) fn map_anon_at(addr: NonNull<u8>, len: usize, prot: ProtFlags, flags: MapFlags) -> io::Result<()> {
    // SAFETY: without MAP_FIXED the address is only a hint: nothing mapped is replaced.
    let got = unsafe { rustix::mm::mmap_anonymous(addr.as_ptr().cast(), len, prot, flags) }?;
    if got == addr.as_ptr().cast() {
        return Ok(());
    }
    // SAFETY: `got` is the mapping just made, which nothing refers to.
    unsafe { rustix::mm::munmap(got, len) }?;
    Err(io::Error::from_raw_os_error(libc::EEXIST))
}

/// No seals, no fs-verity.
pub(crate) fn why_immutable(_fd: BorrowedFd<'_>) -> io::Result<Option<&'static str>> {
    Ok(None)
}

// --- files --------------------------------------------------------------------

/// `DKIOCGETBLOCKCOUNT` blocks of `DKIOCGETBLOCKSIZE` bytes.
pub(crate) fn block_device_len(fd: BorrowedFd<'_>) -> io::Result<u64> {
    const DKIOCGETBLOCKSIZE: rustix::ioctl::Opcode = rustix::ioctl::opcode::read::<u32>(b'd', 24);
    const DKIOCGETBLOCKCOUNT: rustix::ioctl::Opcode = rustix::ioctl::opcode::read::<u64>(b'd', 25);
    // SAFETY: each request writes exactly one value of the type its `Getter` declares.
    let size = unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::Getter::<DKIOCGETBLOCKSIZE, u32>::new()) }?;
    // SAFETY: as above.
    let count = unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::Getter::<DKIOCGETBLOCKCOUNT, u64>::new()) }?;
    count.checked_mul(u64::from(size)).ok_or_else(|| io::Error::other("the device reports a size past 2^64 bytes"))
}

/// `F_GETPATH`.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    let path = rustix::fs::getpath(fd).ok()?;
    Some(PathBuf::from(OsStr::from_bytes(path.to_bytes())))
}

/// `F_PREALLOCATE` for the bytes past the physical end (the blocks the file
/// has, `st_blocks` × 512: a sparse file's length says nothing of them), then
/// `ftruncate`.
pub(crate) fn allocate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let stat = rustix::fs::fstat(fd)?;
    let physical = u64::try_from(stat.st_blocks).unwrap_or(0).saturating_mul(512);
    if physical >= len {
        return crate::file::extend_to(fd, len);
    }
    let more = libc::off_t::try_from(len - physical).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut store = libc::fstore_t {
        fst_flags: libc::F_ALLOCATEALL,
        fst_posmode: libc::F_PEOFPOSMODE,
        fst_offset: 0,
        fst_length: more,
        fst_bytesalloc: 0,
    };
    // SAFETY: F_PREALLOCATE reads and writes one valid fstore_t through the pointer.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_PREALLOCATE, &mut store) } == -1 {
        let err = io::Error::last_os_error();
        // A filesystem that cannot allocate ahead still takes the length.
        if err.raw_os_error() != Some(libc::ENOTSUP) {
            return Err(err);
        }
    }
    crate::file::extend_to(fd, len)
}

/// `F_FULLFSYNC`: `fsync` on macOS leaves the data in the drive's cache.
pub(crate) fn sync_data(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::fcntl_fullfsync(fd)?)
}

pub(crate) fn evict(_fd: BorrowedFd<'_>) -> io::Result<()> {
    Err(Unsupported::error("dropping a file's pages from the page cache (posix_fadvise)"))
}

// --- shared memory ------------------------------------------------------------

/// `PSHMNAMLEN`.
pub(crate) const SHM_NAME_MAX: Option<usize> = Some(31);
/// No seals; a shared-memory object's size can be set only once, though.
pub(crate) const CAN_SEAL: bool = false;

/// A shared-memory object under a fresh name, unlinked at once.
pub(crate) fn anonymous_shared(_label: &str) -> io::Result<OwnedFd> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let flags = rustix::shm::OFlags::RDWR | rustix::shm::OFlags::CREATE | rustix::shm::OFlags::EXCL;
    loop {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let seed = (u64::from(crate::process::pid()) << 32) ^ nanos.as_nanos() as u64;
        let name = format!("/mmk.{:016x}", seed ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(17));
        match rustix::shm::open(name.as_str(), flags, rustix::fs::Mode::from_raw_mode(0o600)) {
            Ok(fd) => {
                rustix::shm::unlink(name.as_str())?;
                return Ok(fd);
            }
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Nothing to do: once its size is set, a shared-memory object keeps it.
pub(crate) fn seal_shrink(_fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(())
}

/// A descriptor received from elsewhere cannot be shown to be one that
/// cannot shrink: callers map it under the fault guard.
pub(crate) fn cannot_shrink(_fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(false)
}

// --- waiting on a word ------------------------------------------------------

unsafe extern "C" {
    /// `__ulock_wait(operation, addr, value, timeout in µs; 0: none)`.
    fn __ulock_wait(operation: u32, addr: *mut c_void, value: u64, timeout: u32) -> c_int;
    /// `__ulock_wake(operation, addr, wake value)`.
    fn __ulock_wake(operation: u32, addr: *mut c_void, wake_value: u64) -> c_int;
}

/// Compare a 32-bit word, across processes (the word's VM object and offset).
const UL_COMPARE_AND_WAIT_SHARED: u32 = 3;
const ULF_WAKE_ALL: u32 = 0x0000_0100;
/// Errors come back as negative return values, not in `errno`.
const ULF_NO_ERRNO: u32 = 0x0100_0000;

pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    // 0 waits forever: a timeout rounds up to 1 µs, and one past u32::MAX µs
    // (71 minutes) ends early, which callers allow.
    let micros = timeout.map_or(0, |t| t.as_micros().clamp(1, u128::from(u32::MAX)) as u32);
    let addr = word.as_ptr().cast::<c_void>();
    // SAFETY: `addr` is a live, aligned 32-bit word for the call; the kernel only reads it.
    let rc = unsafe { __ulock_wait(UL_COMPARE_AND_WAIT_SHARED | ULF_NO_ERRNO, addr, u64::from(expected), micros) };
    match -rc {
        // EFAULT: the kernel could not read the word without taking a page
        // fault under its lock (the page was not resident); the wait ends
        // early, as a spurious wake-up, and the caller reads the word again.
        errno if rc >= 0 || matches!(errno, libc::ETIMEDOUT | libc::EINTR | libc::EFAULT) => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// One waiter, or all of them: the OS wakes no other number.
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> io::Result<Option<usize>> {
    let all = if count > 1 { ULF_WAKE_ALL } else { 0 };
    let addr = word.as_ptr().cast::<c_void>();
    // SAFETY: as for the wait; the kernel only looks the word up.
    let rc = unsafe { __ulock_wake(UL_COMPARE_AND_WAIT_SHARED | ULF_NO_ERRNO | all, addr, 0) };
    match -rc {
        _ if rc >= 0 => Ok(None),
        errno if errno == libc::ENOENT => Ok(Some(0)),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

pub(crate) type RobustMutex = crate::pid_mutex::PidMutex;

// --- locks and descriptors ------------------------------------------------------

pub(crate) const OFD_LOCKS: Option<(c_int, c_int)> = Some((libc::F_OFD_SETLK, libc::F_OFD_GETLK));

/// No `MSG_NOSIGNAL`: the socket is set not to raise `SIGPIPE` instead.
pub(crate) const SEND_FLAGS: SendFlags = SendFlags::empty();
/// No `MSG_CMSG_CLOEXEC`: `FD_CLOEXEC` is set once the descriptor is here.
pub(crate) const RECV_FLAGS: RecvFlags = RecvFlags::empty();

pub(crate) fn prepare_to_send(socket: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_nosigpipe(socket, true)?)
}

pub(crate) fn received(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::io::fcntl_setfd(fd.as_fd(), rustix::io::FdFlags::CLOEXEC)?)
}

pub(crate) fn pin_current_thread(_cpu: usize) -> io::Result<()> {
    Err(Unsupported::error("pinning a thread to a CPU"))
}

// --- faults ---------------------------------------------------------------------

/// The `si_code` of a lost page does not say why (macOS gives one code per
/// CPU for every `SIGBUS`): every such fault is one of no data.
pub(crate) fn fault_class(_code: c_int) -> FaultClass {
    FaultClass::NoData
}
