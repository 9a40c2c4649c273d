//! `Event`: a futex-based signal that lives in shared memory, for one process
//! to wake another.
//!
//! A waiter says what it waits for (a condition it can check); a notifier
//! first makes the condition true, then notifies. The waiter registers before
//! its last check of the condition, and the notifier looks for registered
//! waiters after making it true, with a full fence on both sides, so one of
//! them always sees the other: no wake-up is lost. When nobody waits, a
//! notify costs a fence and one load, which keeps spinning peers fast.

use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

use zerocopy::{FromBytes, KnownLayout};

/// A wake-up signal placed in shared memory (zeroed memory is a valid, idle
/// event). Any bit pattern a peer writes is a valid event: at worst it causes a
/// spurious wake-up or a wait that ends at its timeout.
#[derive(FromBytes, KnownLayout, Debug)]
#[repr(C)]
pub struct Event {
    /// Bumped by every notify that finds a waiter; waiters sleep on it.
    seq: AtomicU32,
    /// Threads (in any process) inside `wait_until`.
    waiters: AtomicU32,
}

impl Event {
    /// Waits until `ready()` returns true, or `timeout` passes (`None`: no
    /// limit). Returns whether it became ready. `ready` must check state that
    /// the notifier changes before it calls [`notify_one`](Self::notify_one)
    /// or [`notify_all`](Self::notify_all).
    pub fn wait_until(&self, mut ready: impl FnMut() -> bool, timeout: Option<Duration>) -> bool {
        // A timeout past what the clock can name is no timeout.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if ready() {
                return true;
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
                None => None,
            };
            let seq = self.seq.load(Ordering::SeqCst);
            self.waiters.fetch_add(1, Ordering::SeqCst);
            if ready() {
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            // A failing futex (it cannot, for a mapped word) degrades to a short sleep.
            if mmapkit_sys::wait::wait(&self.seq, seq, left).is_err() {
                std::thread::sleep(Duration::from_micros(100));
            }
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Wakes one waiter. Call it after making its condition true; a call
    /// before (to start a waiter's wake-up early) costs that waiter only a
    /// spurious wake-up: it finds its condition false and waits again.
    pub fn notify_one(&self) {
        self.notify(1, false);
    }

    /// Wakes every waiter. Call it after making their condition true.
    pub fn notify_all(&self) {
        self.notify(u32::MAX, false);
    }

    /// [`notify_one`](Self::notify_one), and how long its wake-up system
    /// call took, if it woke a waiter asleep on the futex.
    pub(crate) fn notify_one_timed(&self) -> Option<Duration> {
        self.notify(1, true)
    }

    fn notify(&self, count: u32, timed: bool) -> Option<Duration> {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.seq.fetch_add(1, Ordering::SeqCst);
        let start = timed.then(Instant::now);
        let woken = mmapkit_sys::wait::wake(&self.seq, count);
        // Where the OS does not say how many it woke, a waiter was there to wake.
        start.filter(|_| woken.is_ok_and(|n| n.is_none_or(|n| n > 0))).map(|start| start.elapsed())
    }

    /// The sequence word, bumped by every notify that finds a waiter.
    #[cfg(test)]
    pub(crate) fn seq(&self) -> u32 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Counts a waiter that is not there, as one about to sleep would be.
    #[cfg(test)]
    pub(crate) fn pretend_a_waiter(&self) {
        self.waiters.fetch_add(1, Ordering::SeqCst);
    }
}
