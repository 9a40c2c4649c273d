//! A mutex in shared memory whose owner's death is noticed: the next locker
//! is told ([`LockOutcome::OwnerDied`]) and decides whether the state it
//! protects is consistent.
//!
//! On Linux and FreeBSD it is the C library's robust, process-shared pthread
//! mutex: the kernel learns of an owner's death, a thread's as well as a
//! process's, from the robust-futex list. macOS has no robust mutex; there it
//! is mmapkit's own lock word holding its owner's process id (see
//! `pid_mutex.rs`), which notices a process that has ended but not a thread
//! that ended holding it, and keeps a lock held by a process id the system
//! has since given to another process looking held (waits with a timeout
//! then end as `Busy`).

use std::io;
use std::time::Duration;

use crate::os;

/// The outcome of taking a [`RawRobustMutex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOutcome {
    /// Taken.
    Acquired,
    /// Taken, but the previous owner died holding it: the state it protects
    /// may be half-changed.
    OwnerDied,
    /// Not taken: another holder has it (one try) or the timeout passed.
    Busy,
    /// Unusable: an owner died and nobody marked the state consistent.
    NotRecoverable,
}

/// A robust, process-shared mutex, to be placed in shared memory. Its size
/// and layout are this OS's (a `pthread_mutex_t` on Linux and FreeBSD, a
/// 32-bit word on macOS).
#[repr(transparent)]
pub struct RawRobustMutex(os::RobustMutex);

impl RawRobustMutex {
    /// Initialises the mutex in place.
    ///
    /// # Safety
    /// No thread in any process may be using the mutex.
    pub unsafe fn init(&self) -> io::Result<()> {
        // SAFETY: per the caller.
        unsafe { self.0.init() }
    }

    /// Locks, waiting at most `timeout` (`None`: forever; zero: one try).
    ///
    /// # Safety
    /// The mutex must have been initialised with [`init`](Self::init) (in
    /// this or another process) and not destroyed.
    pub unsafe fn lock(&self, timeout: Option<Duration>) -> io::Result<LockOutcome> {
        // SAFETY: per the caller.
        unsafe { self.0.lock(timeout) }
    }

    /// Marks the state it protects consistent after [`LockOutcome::OwnerDied`].
    ///
    /// # Safety
    /// The calling thread must hold the mutex, taken with `OwnerDied`.
    pub unsafe fn make_consistent(&self) -> io::Result<()> {
        // SAFETY: per the caller.
        unsafe { self.0.make_consistent() }
    }

    /// Unlocks. After `OwnerDied` without [`make_consistent`](Self::make_consistent),
    /// this makes the mutex permanently unusable ([`LockOutcome::NotRecoverable`]).
    ///
    /// # Safety
    /// The calling thread must hold the mutex.
    pub unsafe fn unlock(&self) -> io::Result<()> {
        // SAFETY: per the caller.
        unsafe { self.0.unlock() }
    }
}
