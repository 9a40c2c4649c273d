//! Byte-range locks owned by an open file description (`F_OFD_SETLK`), which
//! the kernel releases when the description's last descriptor closes,
//! including when the process dies by any signal: how a process shows it is
//! alive to the others that share a file. Linux and macOS have them; FreeBSD
//! does not (its byte-range locks belong to a process and drop when it closes
//! any descriptor of the file), so there they are `Unsupported`. macOS takes
//! no such lock on a shared-memory object (`shm_open`): there a lock on one
//! is `Unsupported` too.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use crate::file::FileKind;
use crate::os;
use crate::unsupported::Unsupported;

const FEATURE: &str = "byte-range locks owned by an open file description (F_OFD_SETLK)";
const ON_SHM: &str = "byte-range locks owned by an open file description (F_OFD_SETLK) on a shared-memory object";

/// A lock call's error, told by what the file is: on a shared-memory object
/// with no file-type bits (macOS), the OS has no such locks at all, which is
/// said as `Unsupported` rather than as the error the call gave.
fn lock_error(err: io::Error, kind: Option<FileKind>) -> io::Error {
    match kind {
        Some(FileKind::SharedMemory) => Unsupported::error(ON_SHM),
        _ => err,
    }
}

/// The error of a lock call on `fd` that just failed.
fn failed(fd: BorrowedFd<'_>) -> io::Error {
    let err = io::Error::last_os_error();
    lock_error(err, crate::file::kind(fd).ok())
}

/// A write lock on `start..start+len`.
fn write_lock(start: u64, len: u64) -> io::Result<libc::flock> {
    let (Ok(start), Ok(len)) = (libc::off_t::try_from(start), libc::off_t::try_from(len)) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: all-zero bytes are a valid flock (FreeBSD's has one more field, zeroed as it should be).
    let mut lock: libc::flock = unsafe { MaybeUninit::zeroed().assume_init() };
    // `l_type` is a `short`; the lock constants are `int` on Linux and `short` on the BSDs.
    #[allow(clippy::unnecessary_cast)]
    {
        lock.l_type = libc::F_WRLCK as _;
    }
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = start;
    lock.l_len = len;
    Ok(lock)
}

/// Takes a write lock on byte `byte` of the file for this open file
/// description. `Ok(false)` if another description holds it.
pub fn try_lock_byte(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    let (set, _) = os::OFD_LOCKS.ok_or_else(|| Unsupported::error(FEATURE))?;
    let lock = write_lock(byte, 1)?;
    // SAFETY: the set-lock command reads one valid flock through the pointer.
    if unsafe { libc::fcntl(fd.as_raw_fd(), set, &lock) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(lock_error(err, crate::file::kind(fd).ok())),
    }
}

/// Releases this open file description's lock on byte `byte` (nothing
/// happens if it holds none there).
pub fn unlock_byte(fd: BorrowedFd<'_>, byte: u64) -> io::Result<()> {
    let (set, _) = os::OFD_LOCKS.ok_or_else(|| Unsupported::error(FEATURE))?;
    let mut lock = write_lock(byte, 1)?;
    // As in `write_lock`: a `short` on every OS, from an `int` or a `short`.
    #[allow(clippy::unnecessary_cast)]
    {
        lock.l_type = libc::F_UNLCK as _;
    }
    // SAFETY: the set-lock command reads one valid flock through the pointer.
    if unsafe { libc::fcntl(fd.as_raw_fd(), set, &lock) } == 0 { Ok(()) } else { Err(failed(fd)) }
}

/// Takes a write lock on `start..start+len` for this open file description,
/// all or nothing. `Ok(false)` if another description holds any byte of it.
pub fn try_lock_range(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<bool> {
    let (set, _) = os::OFD_LOCKS.ok_or_else(|| Unsupported::error(FEATURE))?;
    let lock = write_lock(start, len)?;
    // SAFETY: the set-lock command reads one valid flock through the pointer.
    if unsafe { libc::fcntl(fd.as_raw_fd(), set, &lock) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(lock_error(err, crate::file::kind(fd).ok())),
    }
}

/// How many bytes of `start..start+len` other open file descriptions hold
/// locks on: one `F_OFD_GETLK` per lock found and per gap between them (the
/// kernel reports any one conflicting lock, not the lowest).
pub fn count_locked_by_other(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<u64> {
    let (_, get) = os::OFD_LOCKS.ok_or_else(|| Unsupported::error(FEATURE))?;
    let mut todo = vec![(start, start.saturating_add(len))];
    let mut count = 0;
    while let Some((from, to)) = todo.pop() {
        if from >= to {
            continue;
        }
        let mut lock = write_lock(from, to - from)?;
        // SAFETY: the get-lock command reads and writes one valid flock through the pointer.
        if unsafe { libc::fcntl(fd.as_raw_fd(), get, &mut lock) } != 0 {
            return Err(failed(fd));
        }
        // As above: a `short` against an `int` or a `short`.
        #[allow(clippy::unnecessary_cast)]
        if lock.l_type as i32 == libc::F_UNLCK as i32 {
            continue;
        }
        // The lock found may reach outside the range asked about (the kernel
        // merges a description's adjacent locks): count only its part inside.
        let lock_start = u64::try_from(lock.l_start).unwrap_or(from);
        let lock_end = match u64::try_from(lock.l_len).unwrap_or(0) {
            0 => to,
            n => lock_start.saturating_add(n),
        };
        let found = lock_start.clamp(from, to - 1);
        let found_end = lock_end.clamp(found + 1, to);
        count += found_end - found;
        todo.push((from, found));
        todo.push((found_end, to));
    }
    Ok(count)
}

/// Whether some other open file description holds a lock on any byte of
/// `start..start+len`.
pub fn range_locked_by_other(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<bool> {
    let (_, get) = os::OFD_LOCKS.ok_or_else(|| Unsupported::error(FEATURE))?;
    let mut lock = write_lock(start, len)?;
    // SAFETY: the get-lock command reads and writes one valid flock through the pointer.
    if unsafe { libc::fcntl(fd.as_raw_fd(), get, &mut lock) } != 0 {
        return Err(failed(fd));
    }
    // As above: a `short` against an `int` or a `short`.
    #[allow(clippy::unnecessary_cast)]
    let unlocked = lock.l_type as i32 == libc::F_UNLCK as i32;
    Ok(!unlocked)
}

/// A descriptor of `fd`'s file for this process to take its locks through.
///
/// Where the OS has these locks and `fd` is a regular file whose path the OS
/// reports, a new, independent open file description, whose locks are its
/// own: opened through `/proc/self/fd` on Linux, elsewhere by the path the
/// descriptor reports (which a rename in between would defeat).
///
/// Otherwise (FreeBSD, which has no such locks; a shared-memory object or
/// memfd whose path the OS does not report; macOS's `shm_open` objects) a
/// duplicate (`dup`): it shares `fd`'s open file description, and so, for a
/// descriptor received from another process, that process's: the file
/// offset, the status flags, and any lock taken through either are one. Such
/// a descriptor maps the file as well as a reopened one, but cannot show
/// this process alive apart from the sender: locks on it are `Unsupported`
/// there in any case.
pub fn reopen(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let kind = crate::file::kind(fd)?;
    reopen_by(fd, path_to_reopen(os::OFD_LOCKS.is_some(), kind, || os::reopen_path(fd)))
}

/// The path to open `fd`'s file again by, or `None` to duplicate `fd`.
fn path_to_reopen(has_locks: bool, kind: FileKind, path: impl FnOnce() -> Option<PathBuf>) -> Option<PathBuf> {
    (has_locks && kind == FileKind::Regular).then(path).flatten()
}

/// A new open file description through `path`, or a duplicate of `fd`.
fn reopen_by(fd: BorrowedFd<'_>, path: Option<PathBuf>) -> io::Result<OwnedFd> {
    Ok(match path {
        Some(path) => {
            rustix::fs::open(path, rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())?
        }
        None => rustix::io::fcntl_dupfd_cloexec(fd, 0)?,
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use rustix::fs::SeekFrom;

    use super::*;

    /// Whether `a` and `b` share one open file description (a seek on one
    /// moves the other).
    fn shared(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
        rustix::fs::seek(a, SeekFrom::Start(0)).unwrap();
        rustix::fs::seek(b, SeekFrom::Start(5)).unwrap();
        rustix::fs::seek(a, SeekFrom::Current(0)).unwrap() == 5
    }

    fn file() -> std::fs::File {
        let file = tempfile::tempfile().unwrap();
        file.set_len(4096).unwrap();
        file
    }

    #[test]
    fn a_known_path_is_reopened_only_where_locks_exist_and_for_regular_files() {
        let path = || Some(PathBuf::from("/some/file"));
        assert_eq!(path_to_reopen(true, FileKind::Regular, path), path());
        assert_eq!(path_to_reopen(true, FileKind::Regular, || None), None, "no path: duplicated");
        assert_eq!(path_to_reopen(false, FileKind::Regular, path), None, "no such locks: duplicated");
        assert_eq!(path_to_reopen(true, FileKind::SharedMemory, path), None, "a shm object: duplicated");
    }

    #[test]
    fn a_duplicate_shares_the_description_and_a_reopen_does_not() {
        let file = file();
        let fd = file.as_fd();
        let dup = reopen_by(fd, None).unwrap();
        assert!(shared(fd, dup.as_fd()), "a duplicate shares the open file description");
        let own = reopen_by(fd, os::reopen_path(fd)).unwrap();
        assert!(!shared(fd, own.as_fd()), "a reopen is a description of its own");
        let memfd = crate::shm::anonymous("reopen", 4096).unwrap();
        assert!(!shared(memfd.as_fd(), reopen(memfd.as_fd()).unwrap().as_fd()), "Linux reopens a memfd by /proc");
    }

    #[test]
    fn locks_on_a_reopened_description_are_its_own() {
        let file = file();
        let own = reopen(file.as_fd()).unwrap();
        assert!(try_lock_byte(file.as_fd(), 7).unwrap());
        assert!(!try_lock_byte(own.as_fd(), 7).unwrap(), "the other description holds the byte");
        assert!(range_locked_by_other(own.as_fd(), 0, 16).unwrap());
        assert!(!range_locked_by_other(file.as_fd(), 0, 16).unwrap(), "a description's own lock is not another's");
        unlock_byte(file.as_fd(), 7).unwrap();
        assert!(!range_locked_by_other(own.as_fd(), 0, 16).unwrap(), "the byte was let go");
        assert!(try_lock_byte(own.as_fd(), 7).unwrap());
    }

    #[test]
    fn a_range_lock_is_all_or_nothing_and_held_bytes_are_counted() {
        let file = file();
        let a = reopen(file.as_fd()).unwrap();
        let b = reopen(file.as_fd()).unwrap();
        assert!(try_lock_byte(a.as_fd(), 3).unwrap());
        assert!(try_lock_byte(a.as_fd(), 9).unwrap());
        assert!(try_lock_range(b.as_fd(), 10, 6).unwrap(), "no byte of 10..16 is held");
        assert!(!try_lock_range(b.as_fd(), 0, 10).unwrap(), "bytes 3 and 9 are held");
        assert!(try_lock_byte(b.as_fd(), 0).unwrap());
        assert_eq!(count_locked_by_other(file.as_fd(), 0, 10).unwrap(), 3, "3 and 9 by a, 0 by b");
        assert_eq!(count_locked_by_other(file.as_fd(), 0, 16).unwrap(), 9, "and 10..16 by b");
        assert_eq!(count_locked_by_other(file.as_fd(), 4, 5).unwrap(), 0, "none in 4..9");
        drop(a);
        assert_eq!(count_locked_by_other(file.as_fd(), 0, 10).unwrap(), 1, "a's locks went with a");
        assert!(try_lock_byte(b.as_fd(), 1).unwrap(), "merged with b's lock on byte 0");
        assert_eq!(count_locked_by_other(file.as_fd(), 1, 9).unwrap(), 1, "only the part of 0..2 inside 1..10");
    }

    #[test]
    fn a_lock_error_on_a_shared_memory_object_is_unsupported_by_name() {
        let err = lock_error(io::Error::from_raw_os_error(libc::EINVAL), Some(FileKind::SharedMemory));
        let unsupported = Unsupported::of(&err).expect("an Unsupported");
        assert_eq!((unsupported.feature, unsupported.os), (ON_SHM, crate::OS));
        let err = lock_error(io::Error::from_raw_os_error(libc::EINVAL), Some(FileKind::Regular));
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "other files keep the OS's error");
    }
}
