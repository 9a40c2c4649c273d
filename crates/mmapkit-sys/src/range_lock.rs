//! Byte-range locks owned by an open file description (`F_OFD_SETLK`), which
//! the kernel releases when the description's last descriptor closes,
//! including when the process dies by any signal: how a process shows it is
//! alive to the others that share a file. Linux and macOS have them; FreeBSD
//! does not (its byte-range locks belong to a process and drop when it closes
//! any descriptor of the file), so there they are `Unsupported`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::os;
use crate::unsupported::Unsupported;

const FEATURE: &str = "byte-range locks owned by an open file description (F_OFD_SETLK)";

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
        _ => Err(err),
    }
}

/// Whether some other open file description holds a lock on any byte of
/// `start..start+len`.
pub fn range_locked_by_other(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<bool> {
    let (_, get) = os::OFD_LOCKS.ok_or_else(|| Unsupported::error(FEATURE))?;
    let mut lock = write_lock(start, len)?;
    // SAFETY: the get-lock command reads and writes one valid flock through the pointer.
    if unsafe { libc::fcntl(fd.as_raw_fd(), get, &mut lock) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // As above: a `short` against an `int` or a `short`.
    #[allow(clippy::unnecessary_cast)]
    let unlocked = lock.l_type as i32 == libc::F_UNLCK as i32;
    Ok(!unlocked)
}

/// A new, independent open file description of `fd`'s file, so that locks
/// taken on it are its own (through `/proc/self/fd` on Linux; elsewhere by
/// opening the path the descriptor reports again, which a rename in between
/// would defeat).
pub fn reopen(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    os::reopen(fd)
}
