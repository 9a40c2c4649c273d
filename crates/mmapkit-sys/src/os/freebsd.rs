//! FreeBSD.

use std::ffi::{CStr, OsStr, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::fs::{FallocateFlags, MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};
use rustix::net::{RecvFlags, SendFlags};

pub(crate) use super::bsd::*;
use crate::advice::{Advice, DestructiveAdvice};
use crate::fault_signal::FaultClass;
use crate::memory::Behavior;
use crate::unsupported::Unsupported;

pub(crate) const NAME: &str = "FreeBSD";

// --- memory -------------------------------------------------------------------

/// The kernel drops `MAP_NORESERVE`; it is not passed.
pub(crate) const HAS_NO_RESERVE: bool = false;

pub(crate) fn map_flags(behavior: Behavior) -> io::Result<MapFlags> {
    if behavior.huge_log2.is_some() {
        return Err(Unsupported::error("huge pages of a chosen size (MAP_HUGETLB)"));
    }
    if behavior.no_reserve {
        return Err(Unsupported::error("mappings without a swap reservation (MAP_NORESERVE)"));
    }
    // Maps the pages already in the page cache; the rest are read ahead.
    let mut flags = if behavior.populate { MapFlags::PREFAULT_READ } else { MapFlags::empty() };
    if behavior.stack {
        flags |= MapFlags::STACK;
    }
    Ok(flags)
}

/// `MAP_FIXED | MAP_EXCL`: the kernel refuses if any of the range is mapped.
pub(crate) fn map_anon_at(addr: NonNull<u8>, len: usize, prot: ProtFlags, flags: MapFlags) -> io::Result<()> {
    let exclusive = MapFlags::FIXED | MapFlags::from_bits_retain(libc::MAP_EXCL as _);
    // SAFETY: MAP_EXCL makes MAP_FIXED fail rather than replace a mapping, so nothing Rust can see changes.
    unsafe { rustix::mm::mmap_anonymous(addr.as_ptr().cast(), len, prot, flags | exclusive) }?;
    Ok(())
}

/// Seals `F_SEAL_WRITE` and `F_SEAL_SHRINK`; FreeBSD has no fs-verity.
pub(crate) fn why_immutable(fd: BorrowedFd<'_>) -> io::Result<Option<&'static str>> {
    match rustix::fs::fcntl_get_seals(fd) {
        Ok(seals) if seals.contains(SealFlags::WRITE | SealFlags::SHRINK) => {
            Ok(Some("a memfd sealed against writes and shrinking"))
        }
        Ok(_) | Err(rustix::io::Errno::INVAL) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn advice(advice: Advice) -> Option<c_int> {
    match advice {
        Advice::Normal => Some(libc::MADV_NORMAL),
        Advice::Random => Some(libc::MADV_RANDOM),
        Advice::Sequential => Some(libc::MADV_SEQUENTIAL),
        Advice::WillNeed => Some(libc::MADV_WILLNEED),
        Advice::DontDump => Some(libc::MADV_NOCORE),
        Advice::DoDump => Some(libc::MADV_CORE),
        _ => None,
    }
}

/// Only `MADV_FREE`: FreeBSD's `MADV_DONTNEED` is a hint that keeps the contents.
pub(crate) fn destructive_advice(advice: DestructiveAdvice) -> Option<c_int> {
    match advice {
        DestructiveAdvice::Free => Some(libc::MADV_FREE),
        _ => None,
    }
}

// --- files --------------------------------------------------------------------

/// `DIOCGMEDIASIZE`.
pub(crate) fn block_device_len(fd: BorrowedFd<'_>) -> io::Result<u64> {
    const DIOCGMEDIASIZE: rustix::ioctl::Opcode = rustix::ioctl::opcode::read::<libc::off_t>(b'd', 129);
    // SAFETY: DIOCGMEDIASIZE writes exactly one off_t, which is what the `Getter` declares.
    let len = unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::Getter::<DIOCGMEDIASIZE, libc::off_t>::new()) }?;
    u64::try_from(len).map_err(|_| io::Error::other("the device reports a negative size"))
}

/// `F_KINFO` (FreeBSD 13.1 and later).
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    // SAFETY: all-zero bytes are a valid kinfo_file.
    let mut info: libc::kinfo_file = unsafe { std::mem::zeroed() };
    info.kf_structsize = libc::KINFO_FILE_SIZE;
    // SAFETY: F_KINFO fills one kinfo_file of the size given in it.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_KINFO, &mut info) } != 0 {
        return None;
    }
    // SAFETY: the kernel writes a NUL-terminated path into the array.
    let path = unsafe { CStr::from_ptr(info.kf_path.as_ptr()) };
    (!path.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(path.to_bytes())))
}

/// `posix_fallocate`, which some filesystems (ZFS) refuse: then `ftruncate`.
pub(crate) fn allocate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    match rustix::fs::fallocate(fd, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::OPNOTSUPP => crate::file::extend_to(fd, len),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn sync_data(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::fdatasync(fd)?)
}

pub(crate) fn evict(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::fs::fdatasync(fd)?;
    rustix::fs::fadvise(fd, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(())
}

// --- shared memory ------------------------------------------------------------

pub(crate) const SHM_NAME_MAX: Option<usize> = None;
pub(crate) const CAN_SEAL: bool = true;

pub(crate) fn anonymous_shared(label: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::memfd_create(label, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?)
}

pub(crate) fn seal_shrink(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::fcntl_add_seals(fd, SealFlags::SHRINK | SealFlags::SEAL)?)
}

pub(crate) fn cannot_shrink(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match rustix::fs::fcntl_get_seals(fd) {
        Ok(seals) => Ok(seals.contains(SealFlags::SHRINK)),
        Err(rustix::io::Errno::INVAL) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

// --- waiting on a word ------------------------------------------------------

/// `UMTX_OP_WAIT_UINT`, shared across processes (the `_PRIVATE` ops are not).
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    let mut ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as _,
    });
    // A relative timeout: its size in `uaddr`, the timespec in `uaddr2`.
    let (size, ts_ptr) = match ts.as_mut() {
        Some(ts) => (std::mem::size_of::<libc::timespec>() as *mut c_void, (ts as *mut libc::timespec).cast()),
        None => (std::ptr::null_mut(), std::ptr::null_mut()),
    };
    // SAFETY: the word is live and aligned; the timespec, when given, outlives the call.
    let rc = unsafe {
        libc::_umtx_op(word.as_ptr().cast(), libc::UMTX_OP_WAIT_UINT, libc::c_ulong::from(expected), size, ts_ptr)
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ETIMEDOUT) | Some(libc::EINTR) => Ok(()),
        _ => Err(err),
    }
}

/// `UMTX_OP_WAKE`, which does not say how many it woke.
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> io::Result<Option<usize>> {
    let count = crate::wait::kernel_count(count);
    let null = std::ptr::null_mut();
    let rc =
        // SAFETY: the word is live and aligned; wake reads no other memory.
        unsafe { libc::_umtx_op(word.as_ptr().cast(), libc::UMTX_OP_WAKE, libc::c_ulong::from(count), null, null) };
    if rc == 0 { Ok(None) } else { Err(io::Error::last_os_error()) }
}

pub(crate) type RobustMutex = crate::pthread_mutex::PthreadRobust;

// --- locks and descriptors ------------------------------------------------------

/// FreeBSD's byte-range locks belong to a process, not an open file description.
pub(crate) const OFD_LOCKS: Option<(c_int, c_int)> = None;

pub(crate) const SEND_FLAGS: SendFlags = SendFlags::NOSIGNAL;
pub(crate) const RECV_FLAGS: RecvFlags = RecvFlags::CMSG_CLOEXEC;

pub(crate) fn prepare_to_send(_socket: BorrowedFd<'_>) -> io::Result<()> {
    Ok(())
}

pub(crate) fn received(_fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(())
}

pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    Ok(rustix::thread::sched_setaffinity(None, &set)?)
}

// --- faults ---------------------------------------------------------------------

/// `BUS_OOMERR` from `<sys/signal.h>`: `vm_fault_trap` had no memory for the page.
const BUS_OOMERR: c_int = 100;

/// `BUS_OBJERR` is given for a page past the end of the file and for a
/// failed read alike, so both are no data; `BUS_OOMERR` says the kernel had
/// no memory to bring the page in.
pub(crate) fn fault_class(code: c_int) -> FaultClass {
    match code {
        BUS_OOMERR => FaultClass::OutOfMemory,
        _ => FaultClass::NoData,
    }
}
