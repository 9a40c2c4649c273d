//! Memory mappings: map, unmap, protect, sync, advise, lock, residency.
//!
//! All of it is POSIX and written once; what differs between systems (the
//! extra `mmap` flags, `msync`'s error reporting, the advice each takes, the
//! huge page size) comes from the per-OS file.

use std::ffi::c_void;
use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};

use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

use crate::advice::{Advice, DestructiveAdvice};
use crate::os;
use crate::unsupported::Unsupported;

/// What a mapping's pages may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// No access at all: address space held in reserve.
    None,
    /// Reads only.
    Read,
    /// Reads and writes.
    ReadWrite,
    /// Reads and execution (code).
    ReadExec,
}

/// Whether writes reach the backing object (and other processes) or stay private.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// `MAP_SHARED`: writes go to the file or shared memory object.
    Shared,
    /// `MAP_PRIVATE`: copy-on-write, writes stay in this process.
    Private,
}

/// Extra behaviour asked of `mmap`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Behavior {
    /// Fault every page in before `mmap` returns (`MAP_POPULATE` on Linux;
    /// elsewhere the pages are read ahead, and `MAP_PREFAULT_READ` maps those
    /// already cached on FreeBSD).
    pub populate: bool,
    /// Do not reserve swap space for the mapping (`MAP_NORESERVE`).
    pub no_reserve: bool,
    /// Huge pages of this size (log2 of bytes), anonymous maps only
    /// (`MAP_HUGETLB`, Linux).
    pub huge_log2: Option<u8>,
    /// Memory for a thread's stack (`MAP_STACK`; Linux and FreeBSD).
    pub stack: bool,
}

/// The size of a base page in bytes (16 KiB on Apple silicon, 4 KiB on most others).
pub fn page_size() -> usize {
    rustix::param::page_size()
}

fn prot_flags(prot: Protection) -> ProtFlags {
    match prot {
        Protection::None => ProtFlags::empty(),
        Protection::Read => ProtFlags::READ,
        Protection::ReadWrite => ProtFlags::READ | ProtFlags::WRITE,
        Protection::ReadExec => ProtFlags::READ | ProtFlags::EXEC,
    }
}

fn map_flags(sharing: Sharing, behavior: Behavior) -> io::Result<MapFlags> {
    let sharing = match sharing {
        Sharing::Shared => MapFlags::SHARED,
        Sharing::Private => MapFlags::PRIVATE,
    };
    Ok(sharing | os::map_flags(behavior)?)
}

fn non_null(ptr: *mut c_void) -> io::Result<NonNull<u8>> {
    NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned a null address"))
}

/// Where the OS has no populate flag: reads the mapping's pages ahead.
fn read_ahead_if_asked(base: NonNull<u8>, len: usize, behavior: Behavior) {
    if behavior.populate && !os::HAS_POPULATE {
        // SAFETY: the range is the mapping just made; WILLNEED reads pages in and changes no contents. A failure
        // only leaves the pages to be read when first touched, which populate is an optimisation of.
        let _ = unsafe { advise(base, len, Advice::WillNeed) };
    }
}

/// Maps `len` bytes of `fd` from `offset` (a multiple of the page size) at an
/// address the kernel chooses. The caller owns the new mapping and unmaps it.
pub fn map_file(
    len: usize,
    prot: Protection,
    sharing: Sharing,
    behavior: Behavior,
    fd: BorrowedFd<'_>,
    offset: u64,
) -> io::Result<NonNull<u8>> {
    let (prot, flags) = (prot_flags(prot), map_flags(sharing, behavior)?);
    // SAFETY: without MAP_FIXED the kernel picks an address range that no existing mapping uses, so no memory that
    // Rust code can see is replaced.
    let ptr = unsafe { rustix::mm::mmap(ptr::null_mut(), len, prot, flags, fd, offset) }?;
    let base = non_null(ptr)?;
    read_ahead_if_asked(base, len, behavior);
    Ok(base)
}

/// Maps `len` bytes of `fd` from `offset` exactly at `addr`, replacing whatever
/// was mapped there.
///
/// # Safety
/// `addr..addr+len` must be page-aligned address space that the caller owns
/// (for example part of its own reservation) and that no live reference points
/// into, since the old contents are discarded.
pub unsafe fn map_file_fixed(
    addr: NonNull<u8>,
    len: usize,
    prot: Protection,
    sharing: Sharing,
    fd: BorrowedFd<'_>,
    offset: u64,
) -> io::Result<()> {
    let flags = map_flags(sharing, Behavior::default())? | MapFlags::FIXED;
    // SAFETY: the caller guarantees the range is its own and unreferenced, so replacing it cannot invalidate memory
    // that anything else relies on.
    unsafe { rustix::mm::mmap(addr.as_ptr().cast(), len, prot_flags(prot), flags, fd, offset) }?;
    Ok(())
}

/// Maps `len` bytes of zero-filled anonymous memory at an address the kernel chooses.
pub fn map_anon(len: usize, prot: Protection, sharing: Sharing, behavior: Behavior) -> io::Result<NonNull<u8>> {
    let (prot, flags) = (prot_flags(prot), map_flags(sharing, behavior)?);
    // SAFETY: no MAP_FIXED, so the kernel chooses unused address space.
    let ptr = unsafe { rustix::mm::mmap_anonymous(ptr::null_mut(), len, prot, flags) }?;
    let base = non_null(ptr)?;
    read_ahead_if_asked(base, len, behavior);
    Ok(base)
}

/// Reserves `len` bytes of address space that cannot be accessed and costs no
/// memory, for mappings to be placed into later with [`map_file_fixed`].
pub fn reserve(len: usize) -> io::Result<NonNull<u8>> {
    let behavior = Behavior { no_reserve: os::HAS_NO_RESERVE, ..Behavior::default() };
    map_anon(len, Protection::None, Sharing::Private, behavior)
}

/// Replaces `addr..addr+len` with private zero-filled pages (`MAP_FIXED`):
/// how the fault guard patches pages whose file data is gone. Makes one raw
/// system call and nothing else, so it may be called from a signal handler.
///
/// # Safety
/// The range must be page-aligned and lie in a mapping that the caller may
/// replace: its old contents are discarded.
pub unsafe fn map_zeros_fixed(addr: usize, len: usize, writable: bool) -> bool {
    let prot = if writable { ProtFlags::READ | ProtFlags::WRITE } else { ProtFlags::READ };
    let flags = MapFlags::PRIVATE | MapFlags::FIXED;
    // SAFETY: the caller owns the range and accepts that its contents are replaced.
    unsafe { rustix::mm::mmap_anonymous(addr as *mut c_void, len, prot, flags) }.is_ok()
}

/// Whether this OS can resize a mapping in place, or move it with its
/// contents, in one call (`mremap`: Linux).
pub const HAS_MREMAP: bool = os::HAS_MREMAP;

/// Resizes the mapping at `addr` from `old_len` to `new_len` bytes
/// (`mremap`), in place, or, with `may_move`, at a new address if there is no
/// room where it is; returns where it is now. `Unsupported` where the OS has
/// no `mremap` ([`HAS_MREMAP`]).
///
/// # Safety
/// `addr..addr+old_len` must be a whole mapping the caller owns, with no
/// live reference into it if it may move or shrink.
pub unsafe fn mremap(addr: NonNull<u8>, old_len: usize, new_len: usize, may_move: bool) -> io::Result<NonNull<u8>> {
    // SAFETY: per the caller.
    unsafe { os::mremap(addr, old_len, new_len, may_move) }
}

/// Maps `len` bytes of zero-filled anonymous memory exactly at `addr`, only
/// if nothing is mapped there (`MAP_FIXED_NOREPLACE` on Linux, `MAP_FIXED |
/// MAP_EXCL` on FreeBSD, an address hint checked afterwards on macOS): an
/// error, and nothing changed, if any of the range is taken.
pub fn map_anon_at(addr: NonNull<u8>, len: usize, prot: Protection, sharing: Sharing) -> io::Result<()> {
    let flags = map_flags(sharing, Behavior::default())?;
    os::map_anon_at(addr, len, prot_flags(prot), flags)
}

/// Unmaps `addr..addr+len`.
///
/// # Safety
/// The range must be a mapping the caller owns, and nothing may use it afterwards.
pub unsafe fn unmap(addr: NonNull<u8>, len: usize) -> io::Result<()> {
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
pub unsafe fn protect(addr: NonNull<u8>, len: usize, prot: Protection) -> io::Result<()> {
    let flags = match prot {
        Protection::None => MprotectFlags::empty(),
        Protection::Read => MprotectFlags::READ,
        Protection::ReadWrite => MprotectFlags::READ | MprotectFlags::WRITE,
        Protection::ReadExec => MprotectFlags::READ | MprotectFlags::EXEC,
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
pub unsafe fn sync(addr: NonNull<u8>, len: usize, wait: bool) -> io::Result<()> {
    // SAFETY: as the caller guarantees; msync only reads page-table state.
    unsafe { os::msync(addr, len, wait) }
}

/// `madvise` with a raw advice value, which the per-OS file chose. It is
/// `libc::madvise`, not rustix's: on macOS and FreeBSD rustix gives advice
/// through `posix_madvise`, whose DONTNEED is only a hint there, and which
/// has no FREE.
///
/// # Safety
/// `addr` must be page-aligned, the range must lie in a live mapping, and
/// whatever `advice` does to the contents must be allowed by the caller.
unsafe fn madvise(addr: NonNull<u8>, len: usize, advice: i32) -> io::Result<()> {
    // SAFETY: the range is mapped (caller); the advice's effect on contents is the caller's to allow.
    let rc = unsafe { libc::madvise(addr.as_ptr().cast(), len, advice) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Gives the kernel advice that never changes what the bytes read as; an
/// `Unsupported` error for advice this OS does not take.
///
/// # Safety
/// `addr` must be page-aligned and the range must lie in a live mapping.
pub unsafe fn advise(addr: NonNull<u8>, len: usize, advice: Advice) -> io::Result<()> {
    let code = os::advice(advice).ok_or_else(|| Unsupported::error(advice_name(advice)))?;
    // SAFETY: the range is mapped (caller), and every `Advice` leaves contents as they are.
    unsafe { madvise(addr, len, code) }
}

/// Gives the kernel advice that may change what the bytes read as (zeros, or
/// the file's contents instead of private changes); an `Unsupported` error
/// for advice this OS does not take with that effect.
///
/// # Safety
/// `addr` must be page-aligned, the range must lie in a live mapping, and no
/// reference into the range may be live.
pub unsafe fn advise_destructive(addr: NonNull<u8>, len: usize, advice: DestructiveAdvice) -> io::Result<()> {
    let code = os::destructive_advice(advice).ok_or_else(|| Unsupported::error(destructive_name(advice)))?;
    // SAFETY: the caller guarantees no reference observes the contents changing.
    unsafe { madvise(addr, len, code) }
}

fn advice_name(advice: Advice) -> &'static str {
    match advice {
        Advice::Normal => "MADV_NORMAL",
        Advice::Random => "MADV_RANDOM",
        Advice::Sequential => "MADV_SEQUENTIAL",
        Advice::WillNeed => "MADV_WILLNEED",
        Advice::DontFork => "MADV_DONTFORK",
        Advice::DoFork => "MADV_DOFORK",
        Advice::Mergeable => "MADV_MERGEABLE",
        Advice::Unmergeable => "MADV_UNMERGEABLE",
        Advice::HugePage => "MADV_HUGEPAGE",
        Advice::NoHugePage => "MADV_NOHUGEPAGE",
        Advice::DontDump => "MADV_DONTDUMP",
        Advice::DoDump => "MADV_DODUMP",
        Advice::KeepOnFork => "MADV_KEEPONFORK",
        Advice::Cold => "MADV_COLD",
        Advice::PageOut => "MADV_PAGEOUT",
        Advice::PopulateRead => "MADV_POPULATE_READ",
        Advice::PopulateWrite => "MADV_POPULATE_WRITE",
    }
}

fn destructive_name(advice: DestructiveAdvice) -> &'static str {
    match advice {
        DestructiveAdvice::DontNeed => "MADV_DONTNEED (discarding the pages)",
        DestructiveAdvice::Free => "MADV_FREE",
        DestructiveAdvice::Remove => "MADV_REMOVE",
        DestructiveAdvice::WipeOnFork => "MADV_WIPEONFORK",
    }
}

/// Locks the pages of the range in memory (`mlock`).
///
/// # Safety
/// The range must lie in a live mapping.
pub unsafe fn lock(addr: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: mlock changes residency only, never contents; the range is mapped.
    unsafe { rustix::mm::mlock(addr.as_ptr().cast(), len) }?;
    Ok(())
}

/// Unlocks the pages of the range (`munlock`).
///
/// # Safety
/// The range must lie in a live mapping.
pub unsafe fn unlock(addr: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: munlock changes residency only, never contents; the range is mapped.
    unsafe { rustix::mm::munlock(addr.as_ptr().cast(), len) }?;
    Ok(())
}

/// Fills `out` with one byte per page of the range, bit 0 set where the page is
/// resident in memory (`mincore`; other bits, which some systems set, cleared).
///
/// # Safety
/// `addr` must be page-aligned and the range must lie in a live mapping.
pub unsafe fn residency(addr: NonNull<u8>, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let pages = len.div_ceil(page_size());
    out.clear();
    out.resize(pages, 0);
    // SAFETY: `out` holds one byte for each of the `pages` pages mincore reports on (its element type is
    // `unsigned char` on Linux and `char` on the BSDs: one byte either way), and the range is mapped (caller);
    // mincore writes nothing else.
    let rc = unsafe { libc::mincore(addr.as_ptr().cast(), len, out.as_mut_ptr().cast()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    for page in out.iter_mut() {
        *page &= 1;
    }
    Ok(())
}

/// The system's default huge page size in bytes, for `MAP_HUGETLB`.
pub fn default_huge_page_size() -> io::Result<usize> {
    os::default_huge_page_size()
}
