//! A robust mutex of mmapkit's own, for systems whose C library has none
//! (macOS): one 32-bit word in shared memory holding its owner's process id.
//! It is portable (an atomic word, the OS's address wait, and a check that a
//! process exists), so the Linux tests run it too.
//!
//! The word:
//!
//! | bits   | meaning                                                        |
//! |--------|----------------------------------------------------------------|
//! | 0..30  | the owner's process id; 0 when free; all ones: not recoverable |
//! | 30     | inconsistent: taken from a dead owner, not yet made consistent |
//! | 31     | waiters: someone may be asleep on the word                     |
//!
//! A locker that finds the word held checks that the owner's process still
//! exists (`kill(pid, 0)`) each time it wakes, at least every
//! [`LIVENESS_SLICE`]; if it does not, the locker takes the lock over and is
//! told [`LockOutcome::OwnerDied`]. What it cannot see: a thread that ended
//! holding the lock while its process goes on; a process that has ended but
//! that its parent has not reaped yet (it still exists); and a process id the
//! system has given to a new process since (the lock looks held: a wait with
//! a timeout ends as `Busy`).

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::process;
use crate::robust_mutex::LockOutcome;
use crate::wait;

const PID_MASK: u32 = (1 << 30) - 1;
const INCONSISTENT: u32 = 1 << 30;
const WAITERS: u32 = 1 << 31;
/// The word of a mutex nobody can take again.
const NOT_RECOVERABLE: u32 = PID_MASK;
/// The longest a locker sleeps before it checks the owner is still there.
pub const LIVENESS_SLICE: Duration = Duration::from_millis(20);

/// The lock word. Initialise with [`init`](Self::init) (all zeros is a free lock).
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct PidMutex(AtomicU32);

impl PidMutex {
    /// Makes the lock free.
    ///
    /// # Safety
    /// No thread in any process may be using it.
    pub unsafe fn init(&self) -> io::Result<()> {
        self.0.store(0, Ordering::Release);
        Ok(())
    }

    /// Locks, waiting at most `timeout` (`None`: forever; zero: one try).
    ///
    /// # Safety
    /// The word must have been initialised, and stay mapped for the call.
    pub unsafe fn lock(&self, timeout: Option<Duration>) -> io::Result<LockOutcome> {
        let me = process::pid();
        if me == 0 || me >= PID_MASK {
            return Err(io::Error::other(format!("process id {me} does not fit the lock word")));
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let try_once = timeout.is_some_and(|t| t.is_zero());
        // Once this thread has waited, it takes the lock with the waiters bit
        // set: others may still be asleep, and its unlock must wake them.
        let mut waited = 0;
        loop {
            let current = self.0.load(Ordering::Acquire);
            let owner = current & PID_MASK;
            if owner == NOT_RECOVERABLE {
                return Ok(LockOutcome::NotRecoverable);
            }
            if owner == 0 {
                if self.take(current, me | waited) {
                    return Ok(LockOutcome::Acquired);
                }
                continue;
            }
            if owner != me && !process::exists(owner) {
                // Its owner is gone: take it over, flags and all, and say so.
                if self.take(current, me | INCONSISTENT | (current & WAITERS) | waited) {
                    return Ok(LockOutcome::OwnerDied);
                }
                continue;
            }
            if try_once {
                return Ok(LockOutcome::Busy);
            }
            let asleep = current | WAITERS;
            if current & WAITERS == 0 && !self.take(current, asleep) {
                continue;
            }
            waited = WAITERS;
            let nap = match deadline {
                None => LIVENESS_SLICE,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(LIVENESS_SLICE),
                    _ => return Ok(LockOutcome::Busy),
                },
            };
            wait::wait(&self.0, asleep, Some(nap))?;
        }
    }

    fn take(&self, current: u32, new: u32) -> bool {
        self.0.compare_exchange(current, new, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// Marks the state consistent after [`LockOutcome::OwnerDied`].
    ///
    /// # Safety
    /// The calling thread must hold the lock, taken with `OwnerDied`.
    pub unsafe fn make_consistent(&self) -> io::Result<()> {
        let current = self.0.load(Ordering::Relaxed);
        if current & INCONSISTENT == 0 || current & PID_MASK != process::pid() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.0.fetch_and(!INCONSISTENT, Ordering::Relaxed);
        Ok(())
    }

    /// Unlocks; after `OwnerDied` without [`make_consistent`](Self::make_consistent),
    /// makes the lock unusable for good.
    ///
    /// # Safety
    /// The calling thread must hold the lock.
    pub unsafe fn unlock(&self) -> io::Result<()> {
        let current = self.0.load(Ordering::Relaxed);
        if current & PID_MASK != process::pid() {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        let (next, wake) = if current & INCONSISTENT != 0 { (NOT_RECOVERABLE, u32::MAX) } else { (0, 1) };
        let before = self.0.swap(next, Ordering::Release);
        if before & WAITERS != 0 || next == NOT_RECOVERABLE {
            wait::wake(&self.0, wake)?;
        }
        Ok(())
    }
}
