//! How many waiters a wake-up reaches: `wake(word, u32::MAX)` wakes every
//! thread waiting on the word, and `wake(word, 0)` wakes none.
//!
//! Each waiter makes exactly one wait call, with a long timeout that only
//! keeps a broken wake from hanging the test. The test wakes only once every
//! waiter is asleep in the kernel (its `/proc` state is `S`), so the count
//! the kernel reports is exact. Linux only: that state comes from `/proc`.
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mmapkit_sys::wait;

/// Far longer than the test takes: a waiter that is never woken returns then.
const WAITER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the test waits for something that should happen at once, before
/// it calls it a failure.
const GIVE_UP: Duration = Duration::from_secs(20);

/// Whether the thread `tid` of this process is asleep (state `S`).
fn asleep(tid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else { return false };
    // "tid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
}

/// Waits until `done` holds, or gives up after [`GIVE_UP`].
fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + GIVE_UP;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Starts one thread per slot of `tids` (each stores its thread id there)
/// that waits once on `word` (holding 0), and returns once every one of them
/// is asleep in that wait.
fn sleeping_waiters<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    word: &'s AtomicU32,
    returned: &'s AtomicU32,
    tids: &'s [AtomicI32],
) {
    for tid in tids {
        scope.spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid.store(unsafe { libc::gettid() }, Ordering::SeqCst);
            wait::wait(word, 0, Some(WAITER_TIMEOUT)).expect("wait");
            returned.fetch_add(1, Ordering::SeqCst);
        });
    }
    eventually("every waiter sleeps in its wait", || {
        tids.iter().all(|tid| {
            let tid = tid.load(Ordering::SeqCst);
            tid != 0 && asleep(tid)
        })
    });
}

#[test]
fn a_wake_of_u32_max_wakes_every_waiter() {
    let (word, returned) = (AtomicU32::new(0), AtomicU32::new(0));
    let tids = [AtomicI32::new(0), AtomicI32::new(0), AtomicI32::new(0)];
    std::thread::scope(|s| {
        sleeping_waiters(s, &word, &returned, &tids);
        assert_eq!(wait::wake(&word, u32::MAX).expect("wake"), Some(3), "one wake of u32::MAX wakes all three");
        eventually("all three waiters return", || returned.load(Ordering::SeqCst) == 3);
    });
}

#[test]
fn a_wake_of_zero_wakes_no_one() {
    let (word, returned) = (AtomicU32::new(0), AtomicU32::new(0));
    let tids = [AtomicI32::new(0)];
    std::thread::scope(|s| {
        sleeping_waiters(s, &word, &returned, &tids);
        assert_eq!(wait::wake(&word, 0).expect("wake none"), Some(0));
        // Had the waiter been woken, it would have left the kernel's queue in
        // that call, and this wake would find no one.
        assert_eq!(wait::wake(&word, u32::MAX).expect("wake all"), Some(1), "the waiter was still waiting");
        eventually("the waiter returns", || returned.load(Ordering::SeqCst) == 1);
    });
}
