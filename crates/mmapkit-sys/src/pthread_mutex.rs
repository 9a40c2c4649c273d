//! The C library's robust, process-shared pthread mutex (Linux, FreeBSD):
//! the kernel tells the next locker when an owner dies holding it.

use std::cell::UnsafeCell;
use std::ffi::c_int;
use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use crate::robust_mutex::LockOutcome;

/// A `pthread_mutex_t` made with `PTHREAD_PROCESS_SHARED` and `PTHREAD_MUTEX_ROBUST`.
#[repr(transparent)]
pub(crate) struct PthreadRobust(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a process-shared pthread mutex is designed to be used from any
// thread of any process; all access goes through the pthread calls.
unsafe impl Sync for PthreadRobust {}
// SAFETY: as above.
unsafe impl Send for PthreadRobust {}

impl PthreadRobust {
    fn ptr(&self) -> *mut libc::pthread_mutex_t {
        self.0.get()
    }

    /// # Safety
    /// No thread may be using the mutex.
    pub(crate) unsafe fn init(&self) -> io::Result<()> {
        // SAFETY: per the caller.
        unsafe { robust_mutex_init(self.ptr()) }
    }

    /// # Safety
    /// The mutex was initialised and stays mapped.
    pub(crate) unsafe fn lock(&self, timeout: Option<Duration>) -> io::Result<LockOutcome> {
        // SAFETY: per the caller.
        unsafe { robust_mutex_lock(self.ptr(), timeout) }
    }

    /// # Safety
    /// The calling thread holds it, taken with `OwnerDied`.
    pub(crate) unsafe fn make_consistent(&self) -> io::Result<()> {
        // SAFETY: per the caller.
        check(unsafe { libc::pthread_mutex_consistent(self.ptr()) })
    }

    /// # Safety
    /// The calling thread holds it.
    pub(crate) unsafe fn unlock(&self) -> io::Result<()> {
        // SAFETY: per the caller.
        check(unsafe { libc::pthread_mutex_unlock(self.ptr()) })
    }
}

/// Initialises a robust, process-shared mutex in place.
///
/// # Safety
/// `mutex` must point to writable memory for a `pthread_mutex_t` that no
/// thread is using.
unsafe fn robust_mutex_init(mutex: *mut libc::pthread_mutex_t) -> io::Result<()> {
    let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: `attr` is initialised by pthread_mutexattr_init before any other use and destroyed at the end; `mutex` is
    // valid per the caller.
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
unsafe fn robust_mutex_lock(mutex: *mut libc::pthread_mutex_t, timeout: Option<Duration>) -> io::Result<LockOutcome> {
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
                // SAFETY: as above (a deadline past what the clock can name is no deadline).
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
