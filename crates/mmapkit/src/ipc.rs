//! Operating-system building blocks for sharing memory between processes:
//! POSIX shared-memory objects, sealed memfds, cross-process futexes, locks the
//! kernel releases when their owner dies, robust process-shared mutexes, and
//! passing descriptors over Unix sockets. `mmapkit-shm` builds its regions,
//! locks, events and channels on these; they are public so that it (and other
//! crates) need no system calls of their own.

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use crate::sys;

/// The outcome of taking a [`RawRobustMutex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOutcome {
    /// Taken.
    Acquired,
    /// Taken, but the previous owner died holding it (`EOWNERDEAD`): the state
    /// it protects may be half-changed.
    OwnerDied,
    /// Not taken: another holder has it (one try) or the timeout passed.
    Busy,
    /// Unusable: an owner died and nobody marked the state consistent.
    NotRecoverable,
}

/// Creates the POSIX shared-memory object `name` (`/dev/shm/NAME`) with
/// `O_CREAT | O_EXCL` and permission bits `mode`: an error if it exists.
pub fn shm_create(name: &str, mode: u32) -> io::Result<OwnedFd> {
    sys::shm_open(name, true, mode)
}

/// Opens the existing POSIX shared-memory object `name` for reading and writing.
pub fn shm_open(name: &str) -> io::Result<OwnedFd> {
    sys::shm_open(name, false, 0)
}

/// Removes the name of a POSIX shared-memory object; mappings of it stay valid.
pub fn shm_unlink(name: &str) -> io::Result<()> {
    sys::shm_unlink(name)
}

/// A new anonymous memory file of `len` bytes, sealed against shrinking (so a
/// mapping of it can never fault by truncation). Only its descriptor names it.
pub fn memfd_sealed(name: &str, len: u64) -> io::Result<OwnedFd> {
    let fd = sys::memfd(name)?;
    sys::set_len(fd.as_fd(), len)?;
    sys::seal_shrink(fd.as_fd())?;
    Ok(fd)
}

/// Whether a file is sealed against shrinking (`F_GET_SEALS`).
pub fn is_sealed_against_shrinking<F: AsFd>(file: &F) -> io::Result<bool> {
    sys::is_sealed_shrink(file.as_fd())
}

/// Sets a file's length (`ftruncate`).
pub fn set_len<F: AsFd>(file: &F, len: u64) -> io::Result<()> {
    sys::set_len(file.as_fd(), len)
}

/// Who owns a file, its permission bits, and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStatus {
    /// Owner's user id.
    pub owner: u32,
    /// Permission bits (`0o600` and so on).
    pub mode: u32,
    /// Length in bytes.
    pub len: u64,
}

/// The [`FileStatus`] of an open file (`fstat`).
pub fn file_status<F: AsFd>(file: &F) -> io::Result<FileStatus> {
    let (owner, mode, len) = sys::owner_mode_len(file.as_fd())?;
    Ok(FileStatus { owner, mode, len })
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    sys::euid()
}

/// This process's id.
pub fn process_id() -> u32 {
    sys::pid()
}

/// A new, independent open file description of the same file, so that
/// [`try_lock_byte`] locks taken through it belong to it alone.
pub fn reopen<F: AsFd>(file: &F) -> io::Result<OwnedFd> {
    sys::reopen(file.as_fd())
}

/// Blocks while `word` holds `expected`, for at most `timeout`; any process
/// that maps the same memory can wake it with [`futex_wake`]. May return early
/// (a wake-up, a signal, or the value changed first): callers re-check.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    sys::futex_wait(word, expected, timeout)
}

/// Wakes up to `count` threads, in any process, waiting on `word`.
pub fn futex_wake(word: &AtomicU32, count: u32) -> io::Result<usize> {
    sys::futex_wake(word, count)
}

/// Takes an exclusive lock on byte `byte` of `file` for this open file
/// description (`F_OFD_SETLK`). The kernel releases it when the description's
/// last descriptor closes, which includes the process dying by any signal.
/// `Ok(false)` if another description holds it.
pub fn try_lock_byte<F: AsFd>(file: &F, byte: u64) -> io::Result<bool> {
    sys::try_lock_byte(file.as_fd(), byte)
}

/// Whether another open file description holds a lock on byte `byte` of `file`.
pub fn byte_locked_by_other<F: AsFd>(file: &F, byte: u64) -> io::Result<bool> {
    sys::range_locked_by_other(file.as_fd(), byte, 1)
}

/// Whether another open file description holds a lock on any byte of
/// `start..start+len` of `file`.
pub fn range_locked_by_other<F: AsFd>(file: &F, start: u64, len: u64) -> io::Result<bool> {
    sys::range_locked_by_other(file.as_fd(), start, len)
}

/// Sends a descriptor over a connected Unix stream socket (`SCM_RIGHTS`).
pub fn send_fd<F: AsFd>(socket: &UnixStream, file: &F) -> io::Result<()> {
    sys::send_fd(socket, file.as_fd())
}

/// Receives a descriptor sent with [`send_fd`].
pub fn recv_fd(socket: &UnixStream) -> io::Result<OwnedFd> {
    sys::recv_fd(socket)
}

/// Registers `handler` to run in the child process after a `fork`
/// (`pthread_atfork`), for state that must not be trusted there, such as
/// threads the parent started. It stays registered for the life of the
/// process. The handler runs in a child of a possibly multi-threaded
/// process, so it may only do what is async-signal-safe (storing to an
/// atomic is). A child made by a raw `clone` system call or by `_Fork`
/// does not run it.
pub fn on_fork_in_child(handler: extern "C" fn()) -> io::Result<()> {
    sys::on_fork_in_child(handler)
}

/// Restricts the calling thread to one CPU (`sched_setaffinity`), as a
/// benchmark does to keep two processes on two cores.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    sys::pin_current_thread(cpu)
}

/// A robust, process-shared mutex word (glibc's `pthread_mutex_t` made with
/// `PTHREAD_PROCESS_SHARED` and `PTHREAD_MUTEX_ROBUST`), to be placed in
/// shared memory. If its owner dies, the next locker is told
/// ([`LockOutcome::OwnerDied`]) by the kernel's robust-futex list, which works
/// across pid namespaces and never confuses a reused pid.
#[repr(transparent)]
pub struct RawRobustMutex(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a process-shared pthread mutex is designed to be used from any
// thread of any process; all access goes through the pthread calls.
unsafe impl Sync for RawRobustMutex {}
// SAFETY: as above.
unsafe impl Send for RawRobustMutex {}

impl RawRobustMutex {
    fn ptr(&self) -> *mut libc::pthread_mutex_t {
        self.0.get()
    }

    /// Initialises the mutex in place.
    ///
    /// # Safety
    /// No thread in any process may be using the mutex.
    pub unsafe fn init(&self) -> io::Result<()> {
        // SAFETY: the caller guarantees exclusive use; the pointer is valid.
        unsafe { sys::robust_mutex_init(self.ptr()) }
    }

    /// Locks, waiting at most `timeout` (`None`: forever; zero: one try).
    ///
    /// # Safety
    /// The mutex must have been initialised with [`init`](Self::init) (in
    /// this or another process) and not destroyed.
    pub unsafe fn lock(&self, timeout: Option<Duration>) -> io::Result<LockOutcome> {
        // SAFETY: per the caller.
        unsafe { sys::robust_mutex_lock(self.ptr(), timeout) }
    }

    /// Marks the state it protects consistent after [`LockOutcome::OwnerDied`].
    ///
    /// # Safety
    /// The calling thread must hold the mutex, taken with `OwnerDied`.
    pub unsafe fn make_consistent(&self) -> io::Result<()> {
        // SAFETY: per the caller.
        unsafe { sys::robust_mutex_consistent(self.ptr()) }
    }

    /// Unlocks. After `OwnerDied` without [`make_consistent`](Self::make_consistent),
    /// this makes the mutex permanently unusable ([`LockOutcome::NotRecoverable`]).
    ///
    /// # Safety
    /// The calling thread must hold the mutex.
    pub unsafe fn unlock(&self) -> io::Result<()> {
        // SAFETY: per the caller.
        unsafe { sys::robust_mutex_unlock(self.ptr()) }
    }
}
