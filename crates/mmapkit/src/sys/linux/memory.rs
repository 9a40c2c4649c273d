//! Memory mappings: map, unmap, protect, sync, advise, lock, residency.

use std::ffi::c_void;
use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};

use rustix::mm::{MapFlags, MprotectFlags, MsyncFlags, ProtFlags};

use crate::advice::{Advice, DestructiveAdvice};
use crate::sys::{Behavior, Protection, Sharing};

/// `MAP_HUGE_SHIFT`: where `mmap` takes log2 of the huge page size.
const MAP_HUGE_SHIFT: u32 = 26;

/// The size of a base page in bytes.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

fn prot_flags(prot: Protection) -> ProtFlags {
    match prot {
        Protection::None => ProtFlags::empty(),
        Protection::Read => ProtFlags::READ,
        Protection::ReadWrite => ProtFlags::READ | ProtFlags::WRITE,
    }
}

fn map_flags(sharing: Sharing, behavior: Behavior) -> MapFlags {
    let mut flags = match sharing {
        Sharing::Shared => MapFlags::SHARED,
        Sharing::Private => MapFlags::PRIVATE,
    };
    if behavior.populate {
        flags |= MapFlags::POPULATE;
    }
    if behavior.no_reserve {
        flags |= MapFlags::NORESERVE;
    }
    if let Some(log2) = behavior.huge_log2 {
        flags |= MapFlags::HUGETLB;
        flags |= MapFlags::from_bits_retain(u32::from(log2) << MAP_HUGE_SHIFT);
    }
    flags
}

fn non_null(ptr: *mut c_void) -> io::Result<NonNull<u8>> {
    NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned a null address"))
}

/// Maps `len` bytes of `fd` from `offset` (a multiple of the page size) at an
/// address the kernel chooses. The caller owns the new mapping and unmaps it.
pub(crate) fn map_file(
    len: usize,
    prot: Protection,
    sharing: Sharing,
    behavior: Behavior,
    fd: BorrowedFd<'_>,
    offset: u64,
) -> io::Result<NonNull<u8>> {
    // SAFETY: without MAP_FIXED the kernel picks an address range that no
    // existing mapping uses, so no memory that Rust code can see is replaced.
    let (prot, flags) = (prot_flags(prot), map_flags(sharing, behavior));
    // SAFETY: (as above) no MAP_FIXED: nothing Rust can see is replaced.
    let ptr = unsafe { rustix::mm::mmap(ptr::null_mut(), len, prot, flags, fd, offset) }?;
    non_null(ptr)
}

/// Maps `len` bytes of `fd` from `offset` exactly at `addr`, replacing whatever
/// was mapped there.
///
/// # Safety
/// `addr..addr+len` must be page-aligned address space that the caller owns
/// (for example part of its own reservation) and that no live reference points
/// into, since the old contents are discarded.
pub(crate) unsafe fn map_file_fixed(
    addr: NonNull<u8>,
    len: usize,
    prot: Protection,
    sharing: Sharing,
    fd: BorrowedFd<'_>,
    offset: u64,
) -> io::Result<()> {
    let flags = map_flags(sharing, Behavior::default()) | MapFlags::FIXED;
    // SAFETY: the caller guarantees the range is its own and unreferenced, so replacing it cannot invalidate memory that anything else relies on.
    unsafe { rustix::mm::mmap(addr.as_ptr().cast(), len, prot_flags(prot), flags, fd, offset) }?;
    Ok(())
}

/// Maps `len` bytes of zero-filled anonymous memory at an address the kernel chooses.
pub(crate) fn map_anon(len: usize, prot: Protection, sharing: Sharing, behavior: Behavior) -> io::Result<NonNull<u8>> {
    // SAFETY: no MAP_FIXED, so the kernel chooses unused address space.
    let (prot, flags) = (prot_flags(prot), map_flags(sharing, behavior));
    // SAFETY: (as above) no MAP_FIXED: the kernel chooses unused address space.
    let ptr = unsafe { rustix::mm::mmap_anonymous(ptr::null_mut(), len, prot, flags) }?;
    non_null(ptr)
}

/// Reserves `len` bytes of address space that cannot be accessed and costs no
/// memory, for mappings to be placed into later with [`map_file_fixed`].
pub(crate) fn reserve(len: usize) -> io::Result<NonNull<u8>> {
    let behavior = Behavior { no_reserve: true, ..Behavior::default() };
    map_anon(len, Protection::None, Sharing::Private, behavior)
}

/// Replaces `addr..addr+len` with private zero-filled pages (`MAP_FIXED`):
/// how the fault guard patches pages whose file data is gone. Makes one raw
/// system call and nothing else, so it may be called from a signal handler.
///
/// # Safety
/// The range must be page-aligned and lie in a mapping that the caller may
/// replace: its old contents are discarded.
pub(crate) unsafe fn map_zeros_fixed(addr: usize, len: usize, writable: bool) -> bool {
    let prot = if writable { ProtFlags::READ | ProtFlags::WRITE } else { ProtFlags::READ };
    let flags = MapFlags::PRIVATE | MapFlags::FIXED;
    // SAFETY: the caller owns the range and accepts that its contents are replaced.
    unsafe { rustix::mm::mmap_anonymous(addr as *mut c_void, len, prot, flags) }.is_ok()
}

/// Unmaps `addr..addr+len`.
///
/// # Safety
/// The range must be a mapping the caller owns, and nothing may use it afterwards.
pub(crate) unsafe fn unmap(addr: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and promises it is no longer used.
    unsafe { rustix::mm::munmap(addr.as_ptr().cast(), len) }?;
    Ok(())
}

/// Changes the protection of `addr..addr+len`.
///
/// # Safety
/// The range must lie in a mapping the caller owns; making pages read-only
/// while a `&mut` to them is live, or inaccessible while any reference is, is
/// the caller's to prevent.
pub(crate) unsafe fn protect(addr: NonNull<u8>, len: usize, prot: Protection) -> io::Result<()> {
    let flags = match prot {
        Protection::None => MprotectFlags::empty(),
        Protection::Read => MprotectFlags::READ,
        Protection::ReadWrite => MprotectFlags::READ | MprotectFlags::WRITE,
    };
    // SAFETY: the caller owns the range and has no reference the new protection breaks.
    unsafe { rustix::mm::mprotect(addr.as_ptr().cast(), len, flags) }?;
    Ok(())
}

/// Writes dirty pages of `addr..addr+len` back to the file; with `wait`, returns
/// only once they are on disk (`MS_SYNC`), otherwise starts the write-back (`MS_ASYNC`).
///
/// # Safety
/// `addr` must be page-aligned and the range must lie in a live mapping.
pub(crate) unsafe fn sync(addr: NonNull<u8>, len: usize, wait: bool) -> io::Result<()> {
    let flags = if wait { MsyncFlags::SYNC } else { MsyncFlags::ASYNC };
    // SAFETY: msync only reads page-table state of a range the caller keeps mapped.
    unsafe { rustix::mm::msync(addr.as_ptr().cast(), len, flags) }?;
    Ok(())
}

fn linux_advice(advice: Advice) -> rustix::mm::Advice {
    use rustix::mm::Advice as A;
    match advice {
        Advice::Normal => A::Normal,
        Advice::Random => A::Random,
        Advice::Sequential => A::Sequential,
        Advice::WillNeed => A::WillNeed,
        Advice::DontFork => A::LinuxDontFork,
        Advice::DoFork => A::LinuxDoFork,
        Advice::Mergeable => A::LinuxMergeable,
        Advice::Unmergeable => A::LinuxUnmergeable,
        Advice::HugePage => A::LinuxHugepage,
        Advice::NoHugePage => A::LinuxNoHugepage,
        Advice::DontDump => A::LinuxDontDump,
        Advice::DoDump => A::LinuxDoDump,
        Advice::KeepOnFork => A::LinuxKeepOnFork,
        Advice::Cold => A::LinuxCold,
        Advice::PageOut => A::LinuxPageOut,
        Advice::PopulateRead => A::LinuxPopulateRead,
        Advice::PopulateWrite => A::LinuxPopulateWrite,
    }
}

fn linux_destructive_advice(advice: DestructiveAdvice) -> rustix::mm::Advice {
    use rustix::mm::Advice as A;
    match advice {
        DestructiveAdvice::DontNeed => A::LinuxDontNeed,
        DestructiveAdvice::Free => A::LinuxFree,
        DestructiveAdvice::Remove => A::LinuxRemove,
        DestructiveAdvice::WipeOnFork => A::LinuxWipeOnFork,
    }
}

/// Gives the kernel advice that never changes what the bytes read as.
///
/// # Safety
/// `addr` must be page-aligned and the range must lie in a live mapping.
pub(crate) unsafe fn advise(addr: NonNull<u8>, len: usize, advice: Advice) -> io::Result<()> {
    // SAFETY: the range is mapped (caller), and every `Advice` leaves contents as they are.
    unsafe { rustix::mm::madvise(addr.as_ptr().cast(), len, linux_advice(advice)) }?;
    Ok(())
}

/// Gives the kernel advice that may change what the bytes read as (zeros, or
/// the file's contents instead of private changes).
///
/// # Safety
/// `addr` must be page-aligned, the range must lie in a live mapping, and no
/// reference into the range may be live.
pub(crate) unsafe fn advise_destructive(addr: NonNull<u8>, len: usize, advice: DestructiveAdvice) -> io::Result<()> {
    // SAFETY: the caller guarantees no reference observes the contents changing.
    unsafe { rustix::mm::madvise(addr.as_ptr().cast(), len, linux_destructive_advice(advice)) }?;
    Ok(())
}

/// Locks the pages of the range in memory (`mlock`).
///
/// # Safety
/// The range must lie in a live mapping.
pub(crate) unsafe fn lock(addr: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: mlock changes residency only, never contents; the range is mapped.
    unsafe { rustix::mm::mlock(addr.as_ptr().cast(), len) }?;
    Ok(())
}

/// Unlocks the pages of the range (`munlock`).
///
/// # Safety
/// The range must lie in a live mapping.
pub(crate) unsafe fn unlock(addr: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: munlock changes residency only, never contents; the range is mapped.
    unsafe { rustix::mm::munlock(addr.as_ptr().cast(), len) }?;
    Ok(())
}

/// Fills `out` with one byte per page of the range, bit 0 set where the page is
/// resident in memory (`mincore`).
///
/// # Safety
/// `addr` must be page-aligned and the range must lie in a live mapping.
pub(crate) unsafe fn residency(addr: NonNull<u8>, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let pages = len.div_ceil(page_size());
    out.clear();
    out.resize(pages, 0);
    // SAFETY: `out` holds one byte for each of the `pages` pages mincore reports on, and the range is mapped (caller); mincore writes nothing else.
    let rc = unsafe { libc::mincore(addr.as_ptr().cast(), len, out.as_mut_ptr()) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// The system's default huge page size in bytes, from `/proc/meminfo`.
pub(crate) fn default_huge_page_size() -> io::Result<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("Hugepagesize:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<usize>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "this kernel reports no huge page size"))
}
