//! Shared-memory IPC primitives: POSIX shm objects, sealed memfds, futexes,
//! byte-range locks that the kernel drops when a process dies, robust
//! process-shared mutexes, and passing file descriptors over a Unix socket.

use std::ffi::c_int;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::fs::{MemfdFlags, Mode, SealFlags};

use crate::ipc::LockOutcome;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

/// `shm_open` of `name` read-write; with `create`, `O_CREAT|O_EXCL` and `mode`.
pub(crate) fn shm_open(name: &str, create: bool, mode: u32) -> io::Result<OwnedFd> {
    let mut flags = rustix::shm::OFlags::RDWR;
    if create {
        flags |= rustix::shm::OFlags::CREATE | rustix::shm::OFlags::EXCL;
    }
    Ok(rustix::shm::open(name, flags, Mode::from_raw_mode(mode))?)
}

/// `shm_unlink`.
pub(crate) fn shm_unlink(name: &str) -> io::Result<()> {
    Ok(rustix::shm::unlink(name)?)
}

/// A new anonymous memory file that allows sealing (`memfd_create`).
pub(crate) fn memfd(name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?)
}

/// Seals against shrinking (and against further seals being removed).
pub(crate) fn seal_shrink(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::fcntl_add_seals(fd, SealFlags::SHRINK | SealFlags::SEAL)?)
}

/// Whether the file is sealed against shrinking (files that cannot be sealed
/// at all, which `F_GET_SEALS` answers with `EINVAL`, are not).
pub(crate) fn is_sealed_shrink(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match rustix::fs::fcntl_get_seals(fd) {
        Ok(seals) => Ok(seals.contains(SealFlags::SHRINK)),
        Err(rustix::io::Errno::INVAL) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sets the file's length.
pub(crate) fn set_len(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    Ok(rustix::fs::ftruncate(fd, len)?)
}

/// Owner uid, permission bits and length of an open file.
pub(crate) fn owner_mode_len(fd: BorrowedFd<'_>) -> io::Result<(u32, u32, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_uid, st.st_mode & 0o7777, u64::try_from(st.st_size).unwrap_or(0)))
}

/// This process's effective user id.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// This process's id.
pub(crate) fn pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// Opens a new, independent open file description of `fd`'s file (through
/// `/proc/self/fd`), so that locks taken on it are this handle's own.
pub(crate) fn reopen(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(rustix::fs::open(path, rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC, Mode::empty())?)
}

/// Waits while `word` holds `expected`, for at most `timeout`, across processes
/// (a shared futex). Returns early on a wake, a signal, or a changed value.
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

/// Wakes up to `count` waiters on `word`, in any process.
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> io::Result<usize> {
    Ok(rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), count)?)
}

fn range_lock(start: u64, len: u64, kind: c_int) -> libc::flock {
    // SAFETY: all-zero bytes are a valid flock.
    let mut lock: libc::flock = unsafe { MaybeUninit::zeroed().assume_init() };
    lock.l_type = kind as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = start as libc::off_t;
    lock.l_len = len as libc::off_t;
    lock
}

/// Takes a write lock on one byte of the file, owned by this open file
/// description (`F_OFD_SETLK`): the kernel releases it when the last
/// descriptor of it closes, including when the process dies. `Ok(false)` if
/// another description holds it.
pub(crate) fn try_lock_byte(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    let lock = range_lock(byte, 1, libc::F_WRLCK);
    // SAFETY: F_OFD_SETLK reads one valid flock through the pointer.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &lock) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// Whether some other open file description holds a lock on any byte of
/// `start..start+len` (`F_OFD_GETLK`).
pub(crate) fn range_locked_by_other(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<bool> {
    let mut lock = range_lock(start, len, libc::F_WRLCK);
    // SAFETY: F_OFD_GETLK reads and writes one valid flock through the pointer.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(c_int::from(lock.l_type) != libc::F_UNLCK)
}

/// Sends `fd` over a connected Unix stream socket (`SCM_RIGHTS`), with one data byte.
pub(crate) fn send_fd(socket: &UnixStream, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let data = [std::io::IoSlice::new(b"F")];
    rustix::net::sendmsg(socket.as_fd(), &data, &mut control, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Receives one file descriptor sent with [`send_fd`].
pub(crate) fn recv_fd(socket: &UnixStream) -> io::Result<OwnedFd> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let mut data = [std::io::IoSliceMut::new(&mut byte)];
    let received = rustix::net::recvmsg(socket.as_fd(), &mut data, &mut control, RecvFlags::CMSG_CLOEXEC)?;
    if received.bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the socket before sending a descriptor",
        ));
    }
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "the message carried no file descriptor"))
}

/// Initialises a robust, process-shared mutex in place.
///
/// # Safety
/// `mutex` must point to writable memory for a `pthread_mutex_t` that no
/// thread is using.
pub(crate) unsafe fn robust_mutex_init(mutex: *mut libc::pthread_mutex_t) -> io::Result<()> {
    let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: `attr` is initialised by pthread_mutexattr_init before any other use and destroyed at the end; `mutex` is valid per the caller.
    unsafe {
        check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
        let result = check(libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED))
            .and_then(|()| check(libc::pthread_mutexattr_setrobust(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ROBUST)))
            .and_then(|()| check(libc::pthread_mutex_init(mutex, attr.as_ptr())));
        libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
        result
    }
}

fn check(rc: c_int) -> io::Result<()> {
    if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
}

fn lock_outcome(rc: c_int) -> io::Result<LockOutcome> {
    match rc {
        0 => Ok(LockOutcome::Acquired),
        libc::EOWNERDEAD => Ok(LockOutcome::OwnerDied),
        libc::EBUSY | libc::ETIMEDOUT => Ok(LockOutcome::Busy),
        libc::ENOTRECOVERABLE => Ok(LockOutcome::NotRecoverable),
        other => Err(io::Error::from_raw_os_error(other)),
    }
}

/// Locks a robust mutex, waiting at most `timeout` (`None`: forever; zero: try once).
///
/// # Safety
/// `mutex` must point to a mutex initialised by [`robust_mutex_init`] that
/// stays mapped for the duration of the call.
pub(crate) unsafe fn robust_mutex_lock(
    mutex: *mut libc::pthread_mutex_t,
    timeout: Option<Duration>,
) -> io::Result<LockOutcome> {
    let rc = match timeout {
        None => {
            // SAFETY: the caller guarantees an initialised, mapped mutex.
            unsafe { libc::pthread_mutex_lock(mutex) }
        }
        Some(t) if t.is_zero() => {
            // SAFETY: as above.
            unsafe { libc::pthread_mutex_trylock(mutex) }
        }
        Some(t) => {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
            let deadline = Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
                .checked_add(t)
                .filter(|d| d.as_secs() <= libc::time_t::MAX as u64);
            match deadline {
                // A deadline past what the clock can name is no deadline.
                // SAFETY: as above.
                None => unsafe { libc::pthread_mutex_lock(mutex) },
                Some(deadline) => {
                    let abs = libc::timespec {
                        tv_sec: deadline.as_secs() as libc::time_t,
                        tv_nsec: deadline.subsec_nanos() as _,
                    };
                    // SAFETY: as above; `abs` is a valid timespec.
                    unsafe { libc::pthread_mutex_timedlock(mutex, &abs) }
                }
            }
        }
    };
    lock_outcome(rc)
}

/// Marks a mutex taken with `OwnerDied` consistent again.
///
/// # Safety
/// The calling thread must hold `mutex`, taken with `LockOutcome::OwnerDied`.
pub(crate) unsafe fn robust_mutex_consistent(mutex: *mut libc::pthread_mutex_t) -> io::Result<()> {
    // SAFETY: per the caller.
    check(unsafe { libc::pthread_mutex_consistent(mutex) })
}

/// Unlocks a robust mutex.
///
/// # Safety
/// The calling thread must hold `mutex`.
pub(crate) unsafe fn robust_mutex_unlock(mutex: *mut libc::pthread_mutex_t) -> io::Result<()> {
    // SAFETY: per the caller.
    check(unsafe { libc::pthread_mutex_unlock(mutex) })
}

/// Registers `handler` to run in the child after every `fork` (`pthread_atfork`).
pub(crate) fn on_fork_in_child(handler: extern "C" fn()) -> io::Result<()> {
    // SAFETY: pthread_atfork only records the handler; a plain `extern "C" fn()` is what it calls.
    match unsafe { libc::pthread_atfork(None, None, Some(handler)) } {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code)),
    }
}

/// Restricts the calling thread to CPU `cpu`.
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    Ok(rustix::thread::sched_setaffinity(None, &set)?)
}
