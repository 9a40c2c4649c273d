//! `Event`: a futex-based signal that lives in shared memory, for one process
//! to wake another. No lost wake-ups: a waiter takes a token before checking
//! its condition, and a notify that happens after the token makes the wait
//! return at once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use zerocopy::{FromBytes, KnownLayout};

/// A wake-up signal placed in shared memory (zeroed memory is a valid, idle
/// event). Any bit pattern a peer writes is a valid event: at worst it causes a
/// spurious wake-up.
#[derive(FromBytes, KnownLayout, Debug)]
#[repr(C)]
pub struct Event {
    /// Bumped by every notify; waiters sleep while it holds their token.
    seq: AtomicU32,
    /// Threads (in any process) inside `wait`, so notify can skip the syscall.
    waiters: AtomicU32,
}

/// What a waiter saw before checking its condition; see [`Event::token`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventToken(u32);

impl Event {
    /// Takes a token. Check your condition after this; if it does not hold,
    /// [`wait`](Self::wait) with the token, and a notify made in between is
    /// not missed.
    pub fn token(&self) -> EventToken {
        EventToken(self.seq.load(Ordering::SeqCst))
    }

    /// Sleeps until a notify after `token`, or until `timeout` passes
    /// (`None`: no limit). Returns `true` if notified, `false` on timeout.
    pub fn wait(&self, token: EventToken, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let notified = loop {
            if self.seq.load(Ordering::SeqCst) != token.0 {
                break true;
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => break false,
                },
                None => None,
            };
            // A failing futex (it cannot, for a mapped word) degrades to a short sleep.
            if mmapkit::ipc::futex_wait(&self.seq, token.0, left).is_err() {
                std::thread::sleep(Duration::from_micros(100));
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        notified
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }

    fn notify(&self, count: u32) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) != 0 {
            let _ = mmapkit::ipc::futex_wake(&self.seq, count);
        }
    }
}
