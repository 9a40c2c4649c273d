//! Files: what kind and size they are, their path, their length and blocks,
//! durable syncs and the page cache; and the page-fault counters that measure
//! it. The common part is POSIX; block device sizes, paths, allocation,
//! eviction and write-back hints come from the per-OS file.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use rustix::fs::{FileType, OFlags};

use crate::os;

/// An open file as the calls here take it: a borrowed descriptor on Unix.
pub type Descriptor<'a> = BorrowedFd<'a>;

/// The kind of object a file descriptor refers to, as far as mapping cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    Regular,
    /// A block device.
    BlockDevice,
    /// A directory.
    Directory,
    /// A character device.
    CharacterDevice,
    /// A pipe (FIFO).
    Fifo,
    /// A socket.
    Socket,
    /// A POSIX shared-memory object whose mode has no file-type bits, as
    /// macOS gives its `shm_open` objects (Linux and FreeBSD report theirs as
    /// regular files). Mapped like a regular file, to its `st_size`.
    SharedMemory,
    /// Anything else.
    Other,
}

impl FileKind {
    /// A noun phrase for error messages ("a directory").
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Regular => "a regular file",
            FileKind::BlockDevice => "a block device",
            FileKind::Directory => "a directory",
            FileKind::CharacterDevice => "a character device",
            FileKind::Fifo => "a pipe (FIFO)",
            FileKind::Socket => "a socket",
            FileKind::SharedMemory => "a shared-memory object",
            FileKind::Other => "not a regular file",
        }
    }
}

/// The access mode a file descriptor was opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `O_RDONLY`.
    ReadOnly,
    /// `O_WRONLY`.
    WriteOnly,
    /// `O_RDWR`.
    ReadWrite,
}

impl Access {
    /// Whether the descriptor may be read.
    pub fn can_read(self) -> bool {
        self != Access::WriteOnly
    }

    /// Whether the descriptor may be written.
    pub fn can_write(self) -> bool {
        self != Access::ReadOnly
    }
}

/// What mapping needs to know about an open file (one `fstat`).
#[derive(Clone, Copy, Debug)]
pub struct FileInfo {
    /// What it is.
    pub kind: FileKind,
    /// Length in bytes (for a block device, the device size).
    pub len: u64,
}

/// The kind and length of an open file.
pub fn file_info(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    let stat = rustix::fs::fstat(fd)?;
    let kind = kind_of(stat.st_mode);
    let len = match kind {
        FileKind::BlockDevice => os::block_device_len(fd)?,
        // st_size is never negative for the kinds we map; clamp the rest.
        _ => u64::try_from(stat.st_size).unwrap_or(0),
    };
    Ok(FileInfo { kind, len })
}

/// The kind of an open file, without its length (one `fstat`).
pub(crate) fn kind(fd: BorrowedFd<'_>) -> io::Result<FileKind> {
    Ok(kind_of(rustix::fs::fstat(fd)?.st_mode))
}

/// The kind a `st_mode` names. No file-type bits at all is a shared-memory
/// object (macOS), not an unknown kind.
fn kind_of(mode: rustix::fs::RawMode) -> FileKind {
    if mode & libc::S_IFMT == 0 {
        return FileKind::SharedMemory;
    }
    match FileType::from_raw_mode(mode) {
        FileType::RegularFile => FileKind::Regular,
        FileType::BlockDevice => FileKind::BlockDevice,
        FileType::Directory => FileKind::Directory,
        FileType::CharacterDevice => FileKind::CharacterDevice,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        _ => FileKind::Other,
    }
}

/// The access mode the file descriptor was opened with.
pub fn access_mode(fd: BorrowedFd<'_>) -> io::Result<Access> {
    let mode = rustix::fs::fcntl_getfl(fd)? & OFlags::RWMODE;
    Ok(if mode == OFlags::RDWR {
        Access::ReadWrite
    } else if mode == OFlags::WRONLY {
        Access::WriteOnly
    } else {
        Access::ReadOnly
    })
}

/// Who owns a file, its permission bits, and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStatus {
    /// Owner's user id.
    pub owner: u32,
    /// Owning group's id.
    pub group: u32,
    /// Permission bits (`0o600` and so on).
    pub mode: u32,
    /// Length in bytes.
    pub len: u64,
}

/// The [`FileStatus`] of an open file (`fstat`).
pub fn file_status(fd: BorrowedFd<'_>) -> io::Result<FileStatus> {
    let st = rustix::fs::fstat(fd)?;
    // `mode_t` is 16 bits on macOS, 32 elsewhere.
    #[allow(clippy::useless_conversion)]
    let mode = u32::from(st.st_mode) & 0o7777;
    Ok(FileStatus { owner: st.st_uid, group: st.st_gid, mode, len: u64::try_from(st.st_size).unwrap_or(0) })
}

/// Sets the file's permission bits to exactly `mode` (`fchmod`), whatever
/// the umask took from them when it was made.
pub fn set_mode(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(fd, rustix::fs::Mode::from_raw_mode(mode as _))?)
}

/// Sets the file's length (`ftruncate`).
pub fn set_len(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    Ok(rustix::fs::ftruncate(fd, len)?)
}

/// The path an open file descriptor was opened with, for error messages:
/// `/proc/self/fd` on Linux, `F_GETPATH` on macOS, `F_KINFO` on FreeBSD.
pub fn fd_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    os::fd_path(fd)
}

/// Makes the file at least `len` bytes long with its blocks allocated, so that
/// writes through a mapping cannot meet a full disk (`fallocate` on Linux,
/// `F_PREALLOCATE` on macOS, `posix_fallocate` on FreeBSD). Never shortens
/// it. Where the filesystem cannot allocate ahead, the file is extended with
/// `ftruncate`.
pub fn allocate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    os::allocate(fd, len)
}

/// Extends the file to `len` bytes with `ftruncate` when it is shorter: the
/// fallback where blocks cannot be allocated ahead.
pub(crate) fn extend_to(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let current = u64::try_from(rustix::fs::fstat(fd)?.st_size).unwrap_or(0);
    if current < len {
        rustix::fs::ftruncate(fd, len)?;
    }
    Ok(())
}

/// Makes every write to the file so far durable, through the drive's own
/// cache: `fdatasync` on Linux and FreeBSD, `fcntl(F_FULLFSYNC)` on macOS,
/// whose `fsync` leaves data in the drive's cache.
pub fn sync_data(fd: BorrowedFd<'_>) -> io::Result<()> {
    os::sync_data(fd)
}

/// Writes the file's dirty pages back, then asks the kernel to drop its pages
/// from the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`; `Unsupported`
/// on macOS, which has no way to drop a file's cached pages).
pub fn evict(fd: BorrowedFd<'_>) -> io::Result<()> {
    os::evict(fd)
}

/// Starts writing the dirty pages of bytes `offset..offset + len` to disk
/// and returns without waiting (`sync_file_range`, Linux; `Unsupported`
/// elsewhere).
pub fn start_writeback(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    os::start_writeback(fd, offset, len)
}

/// The process holding a `flock` on the file, where the OS tells
/// (`/proc/locks` on Linux; `None` elsewhere, and when no one holds one).
pub fn flock_holder(fd: BorrowedFd<'_>) -> Option<u32> {
    os::flock_holder(fd)
}

/// Why the file's bytes cannot change while it is open, if the OS says they
/// cannot: `"a memfd sealed against writes and shrinking"` (seals
/// `F_SEAL_WRITE` and `F_SEAL_SHRINK`, Linux and FreeBSD) or `"an fs-verity
/// file"` (Linux: read-only for good, its contents checked against a
/// signed hash on every read). `None` for any other file.
pub fn why_immutable(fd: BorrowedFd<'_>) -> io::Result<Option<&'static str>> {
    os::why_immutable(fd)
}

/// The path of the file mapped at `addr`, where the OS can tell from the
/// address alone (`/proc/self/maps` on Linux; `None` elsewhere, and for
/// anonymous memory): for error messages about a live mapping.
pub fn mapped_path(addr: usize) -> Option<PathBuf> {
    os::mapped_path(addr)
}

/// Minor and major page faults this process has taken (`getrusage`, which rustix lacks).
pub fn page_faults() -> io::Result<(u64, u64)> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is valid writable memory for one rusage, which getrusage fills.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getrusage succeeded and filled it (zeroed memory is valid anyway).
    let usage = unsafe { usage.assume_init() };
    Ok((usage.ru_minflt as u64, usage.ru_majflt as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mode_without_type_bits_is_a_shared_memory_object() {
        assert_eq!(kind_of(0o600), FileKind::SharedMemory);
        assert_eq!(FileKind::SharedMemory.describe(), "a shared-memory object");
        assert_eq!(kind_of(libc::S_IFREG | 0o644), FileKind::Regular);
        assert_eq!(kind_of(libc::S_IFDIR | 0o755), FileKind::Directory);
        assert_eq!(kind_of(libc::S_IFSOCK | 0o600), FileKind::Socket);
    }

    #[test]
    fn a_memfd_and_a_file_are_regular_here() {
        let file = tempfile::tempfile().unwrap();
        use std::os::fd::AsFd;
        assert_eq!(kind(file.as_fd()).unwrap(), FileKind::Regular);
        let memfd = crate::shm::anonymous("kind", 4096).unwrap();
        assert_eq!(file_info(memfd.as_fd()).unwrap().kind, FileKind::Regular);
    }
}
