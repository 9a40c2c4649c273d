//! Linux.

use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::fs::{FallocateFlags, MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, MremapFlags, MsyncFlags, ProtFlags};
use rustix::net::{RecvFlags, SendFlags};

use crate::advice::{Advice, DestructiveAdvice};
use crate::fault_signal::FaultClass;
use crate::memory::Behavior;

pub(crate) const NAME: &str = "Linux";

// --- memory -------------------------------------------------------------------

/// `MAP_HUGE_SHIFT`: where `mmap` takes log2 of the huge page size.
const MAP_HUGE_SHIFT: u32 = 26;
pub(crate) const HAS_POPULATE: bool = true;
pub(crate) const HAS_NO_RESERVE: bool = true;

pub(crate) fn map_flags(behavior: Behavior) -> io::Result<MapFlags> {
    let mut flags = MapFlags::empty();
    if behavior.populate {
        flags |= MapFlags::POPULATE;
    }
    if behavior.no_reserve {
        flags |= MapFlags::NORESERVE;
    }
    if let Some(log2) = behavior.huge_log2 {
        flags |= MapFlags::HUGETLB | MapFlags::from_bits_retain(u32::from(log2) << MAP_HUGE_SHIFT);
    }
    if behavior.stack {
        flags |= MapFlags::STACK;
    }
    Ok(flags)
}

pub(crate) const HAS_MREMAP: bool = true;

/// # Safety
/// As `crate::memory::mremap`.
pub(crate) unsafe fn mremap(
    addr: NonNull<u8>,
    old_len: usize,
    new_len: usize,
    may_move: bool,
) -> io::Result<NonNull<u8>> {
    let flags = if may_move { MremapFlags::MAYMOVE } else { MremapFlags::empty() };
    // SAFETY: the caller owns the whole mapping and keeps no reference into what may move or go.
    let ptr = unsafe { rustix::mm::mremap(addr.as_ptr().cast(), old_len, new_len, flags) }?;
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mremap returned a null address"))
}

/// `MAP_FIXED_NOREPLACE`: the kernel refuses (`EEXIST`) if any of the range is mapped.
pub(crate) fn map_anon_at(addr: NonNull<u8>, len: usize, prot: ProtFlags, flags: MapFlags) -> io::Result<()> {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, so nothing Rust can see changes.
    unsafe { rustix::mm::mmap_anonymous(addr.as_ptr().cast(), len, prot, flags | MapFlags::FIXED_NOREPLACE) }?;
    Ok(())
}

/// # Safety
/// `addr` is page-aligned and the range lies in a live mapping.
pub(crate) unsafe fn msync(addr: NonNull<u8>, len: usize, wait: bool) -> io::Result<()> {
    let flags = if wait { MsyncFlags::SYNC } else { MsyncFlags::ASYNC };
    // SAFETY: msync only reads page-table state of a range the caller keeps mapped.
    unsafe { rustix::mm::msync(addr.as_ptr().cast(), len, flags) }?;
    Ok(())
}

pub(crate) fn advice(advice: Advice) -> Option<c_int> {
    Some(match advice {
        Advice::Normal => libc::MADV_NORMAL,
        Advice::Random => libc::MADV_RANDOM,
        Advice::Sequential => libc::MADV_SEQUENTIAL,
        Advice::WillNeed => libc::MADV_WILLNEED,
        Advice::DontFork => libc::MADV_DONTFORK,
        Advice::DoFork => libc::MADV_DOFORK,
        Advice::Mergeable => libc::MADV_MERGEABLE,
        Advice::Unmergeable => libc::MADV_UNMERGEABLE,
        Advice::HugePage => libc::MADV_HUGEPAGE,
        Advice::NoHugePage => libc::MADV_NOHUGEPAGE,
        Advice::DontDump => libc::MADV_DONTDUMP,
        Advice::DoDump => libc::MADV_DODUMP,
        Advice::KeepOnFork => libc::MADV_KEEPONFORK,
        Advice::Cold => libc::MADV_COLD,
        Advice::PageOut => libc::MADV_PAGEOUT,
        Advice::PopulateRead => libc::MADV_POPULATE_READ,
        Advice::PopulateWrite => libc::MADV_POPULATE_WRITE,
    })
}

pub(crate) fn destructive_advice(advice: DestructiveAdvice) -> Option<c_int> {
    Some(match advice {
        DestructiveAdvice::DontNeed => libc::MADV_DONTNEED,
        DestructiveAdvice::Free => libc::MADV_FREE,
        DestructiveAdvice::Remove => libc::MADV_REMOVE,
        DestructiveAdvice::WipeOnFork => libc::MADV_WIPEONFORK,
    })
}

/// From `Hugepagesize` in `/proc/meminfo`.
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

// --- files --------------------------------------------------------------------

/// `BLKGETSIZE64`, without touching the file offset.
pub(crate) fn block_device_len(fd: BorrowedFd<'_>) -> io::Result<u64> {
    const BLKGETSIZE64: rustix::ioctl::Opcode = rustix::ioctl::opcode::read::<u64>(0x12, 114);
    // SAFETY: BLKGETSIZE64 writes exactly one u64 through the pointer that `Getter` provides, which is what
    // `Getter<_, u64>` declares.
    let len = unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::Getter::<BLKGETSIZE64, u64>::new()) }?;
    Ok(len)
}

pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let target = rustix::fs::readlink(link, Vec::new()).ok()?;
    Some(proc_path(target.into_bytes()))
}

/// A path as `/proc` shows it, without the " (deleted)" the kernel adds to
/// an unlinked file's (a memfd's too).
fn proc_path(mut bytes: Vec<u8>) -> PathBuf {
    const DELETED: &[u8] = b" (deleted)";
    if bytes.ends_with(DELETED) {
        bytes.truncate(bytes.len() - DELETED.len());
    }
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// Undoes the octal escapes (`\ooo`) `/proc/self/maps` writes for bytes it
/// cannot show, such as a newline (`\012`), in a path. (The kernel leaves a
/// backslash as it is, so a name that holds `\012` itself reads back as a newline.)
fn unescape_octal(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let digits =
            bytes.get(at + 1..at + 4).filter(|d| bytes[at] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match digits.and_then(|d| u8::try_from(d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0'))).ok()) {
            Some(byte) => {
                out.push(byte);
                at += 4;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    out
}

pub(crate) fn allocate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    match rustix::fs::fallocate(fd, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => crate::file::extend_to(fd, len),
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

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which rustix lacks.
pub(crate) fn start_writeback(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: sync_file_range takes no pointers; a bad descriptor or range is an error return.
    if unsafe { libc::sync_file_range(fd.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The pid `/proc/locks` gives for a `flock` on the file's inode.
pub(crate) fn flock_holder(fd: BorrowedFd<'_>) -> Option<u32> {
    let stat = rustix::fs::fstat(fd).ok()?;
    let dev = stat.st_dev;
    let id = format!("{:02x}:{:02x}:{}", rustix::fs::major(dev), rustix::fs::minor(dev), stat.st_ino);
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // "1: FLOCK  ADVISORY  WRITE 4242 08:01:123456 0 EOF"
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = fields.iter().position(|f| *f == id)?;
        if at == 0 || fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        fields[at - 1].parse().ok()
    })
}

/// Seals `F_SEAL_WRITE` and `F_SEAL_SHRINK` (not `F_SEAL_FUTURE_WRITE`, which
/// leaves earlier writable mappings writable), or `STATX_ATTR_VERITY`.
pub(crate) fn why_immutable(fd: BorrowedFd<'_>) -> io::Result<Option<&'static str>> {
    match rustix::fs::fcntl_get_seals(fd) {
        Ok(seals) if seals.contains(SealFlags::WRITE | SealFlags::SHRINK) => {
            return Ok(Some("a memfd sealed against writes and shrinking"));
        }
        Ok(_) | Err(rustix::io::Errno::INVAL) => {}
        Err(e) => return Err(e.into()),
    }
    let flags = rustix::fs::AtFlags::EMPTY_PATH;
    match rustix::fs::statx(fd, "", flags, rustix::fs::StatxFlags::BASIC_STATS) {
        Ok(stx) if stx.stx_attributes.contains(rustix::fs::StatxAttributes::VERITY) => Ok(Some("an fs-verity file")),
        Ok(_) | Err(rustix::io::Errno::NOSYS) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The line of `/proc/self/maps` whose range holds `addr`, if it names a file.
/// The path is given as [`fd_path`] gives it: unescaped, without " (deleted)".
pub(crate) fn mapped_path(addr: usize) -> Option<PathBuf> {
    // As bytes: a path need not be UTF-8.
    let maps = std::fs::read("/proc/self/maps").ok()?;
    maps.split(|&b| b == b'\n').find_map(|line| {
        // "7f1c2a000000-7f1c2a100000 r--s 00000000 08:01 1234   /path/to/file"
        let mut fields = line.splitn(6, |&b| b == b' ');
        let range = std::str::from_utf8(fields.next()?).ok()?;
        let (start, end) = range.split_once('-')?;
        let (start, end) = (usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?);
        if !(start..end).contains(&addr) {
            return None;
        }
        // The path is what follows the fifth field and the spaces that pad it, spaces and all.
        let rest = fields.nth(4)?;
        let path = &rest[rest.iter().position(|&b| b != b' ')?..];
        path.starts_with(b"/").then(|| proc_path(unescape_octal(path)))
    })
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

/// Sealed against shrinking (files that cannot be sealed at all, which
/// `F_GET_SEALS` answers with `EINVAL`, are not).
pub(crate) fn cannot_shrink(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match rustix::fs::fcntl_get_seals(fd) {
        Ok(seals) => Ok(seals.contains(SealFlags::SHRINK)),
        Err(rustix::io::Errno::INVAL) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

// --- waiting on a word ------------------------------------------------------

pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    let timespec = timeout.map(|t| rustix::time::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    match rustix::thread::futex::wait(word, rustix::thread::futex::Flags::empty(), expected, timespec.as_ref()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR | rustix::io::Errno::TIMEDOUT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> io::Result<Option<usize>> {
    let count = crate::wait::kernel_count(count);
    Ok(Some(rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), count)?))
}

pub(crate) type RobustMutex = crate::pthread_mutex::PthreadRobust;

// --- locks and descriptors ------------------------------------------------------

pub(crate) const OFD_LOCKS: Option<(c_int, c_int)> = Some((libc::F_OFD_SETLK, libc::F_OFD_GETLK));

/// `/proc/self/fd/N`: opening it makes a new open file description of the
/// same file, even an unlinked one or a memfd.
pub(crate) fn reopen_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    Some(PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())))
}

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

/// A lost page raises `SIGBUS` only.
pub(crate) const FAULT_SIGNALS: &[c_int] = &[libc::SIGBUS];

/// `si_code` zero or less: a process sent it (`kill`, `sigqueue`, `tgkill`).
pub(crate) fn is_sent(code: c_int) -> bool {
    code <= 0
}

pub(crate) fn fault_class(code: c_int) -> FaultClass {
    match code {
        libc::BUS_ADRERR => FaultClass::NoData,
        libc::BUS_OBJERR => FaultClass::StorageError,
        libc::BUS_MCEERR_AR | libc::BUS_MCEERR_AO => FaultClass::Hardware,
        other => FaultClass::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::memory::{self, Protection, Sharing};

    #[test]
    fn a_descriptor_and_a_mapping_give_the_same_path_before_and_after_an_unlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("line\nbreak (deleted)x");
        std::fs::write(&path, [7u8; 4096]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let fd = file.as_fd();
        let map = memory::map_file(4096, Protection::Read, Sharing::Shared, Behavior::default(), fd, 0).unwrap();
        let addr = map.as_ptr() as usize;
        assert_eq!(fd_path(fd).as_deref(), Some(path.as_path()));
        assert_eq!(mapped_path(addr).as_deref(), Some(path.as_path()), "the newline is unescaped");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(fd_path(fd).as_deref(), Some(path.as_path()), "no \" (deleted)\" once unlinked");
        assert_eq!(mapped_path(addr).as_deref(), Some(path.as_path()));
        // SAFETY: the mapping made above, unused from here on.
        unsafe { memory::unmap(map, 4096) }.unwrap();
    }

    #[test]
    fn octal_escapes_are_undone_and_other_backslashes_kept() {
        assert_eq!(unescape_octal(b"/a\\012b"), b"/a\nb");
        assert_eq!(unescape_octal(b"/a\\01"), b"/a\\01");
        assert_eq!(unescape_octal(b"/a\\x12\\"), b"/a\\x12\\");
        assert_eq!(unescape_octal(b"/a\\777"), b"/a\\777", "not a byte: kept as it is");
    }
}
