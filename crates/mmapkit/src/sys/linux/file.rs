//! Files: what kind and size they are, their path, allocation and the page
//! cache; and the process page-fault counters that measure it.

use std::io;
use std::num::NonZeroU64;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use rustix::fs::{FallocateFlags, FileType, OFlags};

use crate::sys::{Access, FileInfo, FileKind};

/// The kind and length of an open file.
pub(crate) fn file_info(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    let stat = rustix::fs::fstat(fd)?;
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => FileKind::Regular,
        FileType::BlockDevice => FileKind::BlockDevice,
        FileType::Directory => FileKind::Directory,
        FileType::CharacterDevice => FileKind::CharacterDevice,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        _ => FileKind::Other,
    };
    let len = match kind {
        FileKind::BlockDevice => block_device_len(fd)?,
        // st_size is never negative for the kinds we map; clamp the rest.
        _ => u64::try_from(stat.st_size).unwrap_or(0),
    };
    Ok(FileInfo { kind, len })
}

/// The access mode the file descriptor was opened with.
pub(crate) fn access_mode(fd: BorrowedFd<'_>) -> io::Result<Access> {
    let mode = rustix::fs::fcntl_getfl(fd)? & OFlags::RWMODE;
    Ok(if mode == OFlags::RDWR {
        Access::ReadWrite
    } else if mode == OFlags::WRONLY {
        Access::WriteOnly
    } else {
        Access::ReadOnly
    })
}

/// The size of a block device (`BLKGETSIZE64`), without touching the file offset.
fn block_device_len(fd: BorrowedFd<'_>) -> io::Result<u64> {
    const BLKGETSIZE64: rustix::ioctl::Opcode = rustix::ioctl::opcode::read::<u64>(0x12, 114);
    // SAFETY: BLKGETSIZE64 writes exactly one u64 through the pointer that `Getter` provides, which is what `Getter<_, u64>` declares.
    let len = unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::Getter::<BLKGETSIZE64, u64>::new()) }?;
    Ok(len)
}

/// The path an open file descriptor was opened with, for error messages.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let target = rustix::fs::readlink(link, Vec::new()).ok()?;
    Some(PathBuf::from(std::ffi::OsString::from_vec(target.into_bytes())))
}

/// Makes the file at least `len` bytes long with its blocks allocated
/// (`fallocate`), so that writes through a mapping cannot meet a full disk. Where
/// the filesystem cannot allocate ahead, the file is extended with `ftruncate`.
pub(crate) fn allocate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    match rustix::fs::fallocate(fd, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {
            let current = u64::try_from(rustix::fs::fstat(fd)?.st_size).unwrap_or(0);
            if current < len {
                rustix::fs::ftruncate(fd, len)?;
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes the file's dirty pages back and asks the kernel to drop its cached pages.
pub(crate) fn evict(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::fs::fdatasync(fd)?;
    rustix::fs::fadvise(fd, 0, None::<NonZeroU64>, rustix::fs::Advice::DontNeed)?;
    Ok(())
}

/// Starts writing the dirty pages of bytes `offset..offset + len` to disk
/// and returns without waiting (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`,
/// which rustix lacks).
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

/// Minor and major page faults this process has taken (`getrusage`, which rustix lacks).
pub(crate) fn page_faults() -> io::Result<(u64, u64)> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is valid writable memory for one rusage, which getrusage fills.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getrusage succeeded and filled it (zeroed memory is valid anyway).
    let usage = unsafe { usage.assume_init() };
    Ok((usage.ru_minflt as u64, usage.ru_majflt as u64))
}
