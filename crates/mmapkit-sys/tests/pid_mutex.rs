//! mmapkit's own robust mutex (the one macOS uses, where the C library has
//! none), run here on Linux: it excludes, times out, and tells the next
//! locker when its owner's process died, across processes.
//!
//! The owner that dies is a child process (this test binary again, running an
//! `#[ignore]`d test), killed with `SIGKILL` while it holds the lock.

use std::cell::UnsafeCell;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use mmapkit_sys::PidMutex;
use mmapkit_sys::memory::{self, Behavior, Protection, Sharing};
use mmapkit_sys::robust_mutex::LockOutcome;

/// A page of `path`, mapped shared, holding the lock at its start.
struct SharedLock {
    base: NonNull<u8>,
    len: usize,
}

impl SharedLock {
    fn map(path: &Path) -> SharedLock {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).unwrap();
        let len = memory::page_size();
        file.set_len(len as u64).unwrap();
        let base = memory::map_file(len, Protection::ReadWrite, Sharing::Shared, Behavior::default(), file.as_fd(), 0)
            .unwrap();
        SharedLock { base, len }
    }

    fn lock(&self) -> &PidMutex {
        // SAFETY: the page is mapped for as long as `self`, aligned, and a PidMutex is an atomic word valid for any
        // bytes.
        unsafe { &*self.base.as_ptr().cast::<PidMutex>() }
    }
}

impl Drop for SharedLock {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer borrowed.
        let _ = unsafe { memory::unmap(self.base, self.len) };
    }
}

#[test]
fn threads_take_turns_and_every_increment_survives() {
    struct Counter {
        lock: PidMutex,
        value: UnsafeCell<u64>,
    }
    // SAFETY: `value` is only touched while `lock` is held.
    unsafe impl Sync for Counter {}
    let counter = Counter { lock: PidMutex::default(), value: UnsafeCell::new(0) };
    // SAFETY: nothing uses the lock yet.
    unsafe { counter.lock.init() }.unwrap();
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 20_000;
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let counter = &counter;
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    // SAFETY: initialised above and alive for the scope.
                    assert_eq!(unsafe { counter.lock.lock(None) }.unwrap(), LockOutcome::Acquired);
                    // SAFETY: the lock is held.
                    unsafe { *counter.value.get() += 1 };
                    // SAFETY: held by this thread.
                    unsafe { counter.lock.unlock() }.unwrap();
                }
            });
        }
    });
    assert_eq!(counter.value.into_inner(), THREADS * ROUNDS);
}

#[test]
fn a_held_lock_is_busy_for_a_try_and_after_a_timeout() {
    let lock = PidMutex::default();
    // SAFETY: a fresh lock, used only by this test.
    unsafe {
        lock.init().unwrap();
        assert_eq!(lock.lock(None).unwrap(), LockOutcome::Acquired);
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: initialised, alive for the scope.
            assert_eq!(unsafe { lock.lock(Some(Duration::ZERO)) }.unwrap(), LockOutcome::Busy);
            let start = Instant::now();
            // SAFETY: as above.
            assert_eq!(unsafe { lock.lock(Some(Duration::from_millis(80))) }.unwrap(), LockOutcome::Busy);
            assert!(start.elapsed() >= Duration::from_millis(80), "gave up after {:?}", start.elapsed());
        });
    });
    // SAFETY: held by this thread.
    unsafe { lock.unlock() }.unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { lock.lock(Some(Duration::ZERO)) }.unwrap(), LockOutcome::Acquired);
}

/// Starts the child that takes the lock in `path` and waits until it holds it.
fn child_holding(path: &Path) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_takes_the_lock_and_waits", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("MMAPKIT_LOCK_FILE", path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let held = lines.any(|line| line.is_ok_and(|l| l.contains("holding the lock")));
    assert!(held, "the child never took the lock");
    child
}

#[test]
#[ignore = "child process of the owner-death tests"]
fn child_takes_the_lock_and_waits() {
    let shared = SharedLock::map(Path::new(&std::env::var_os("MMAPKIT_LOCK_FILE").unwrap()));
    // SAFETY: the parent initialised the lock before starting this process.
    assert_eq!(unsafe { shared.lock().lock(None) }.unwrap(), LockOutcome::Acquired);
    println!("holding the lock");
    std::thread::sleep(Duration::from_secs(60));
}

fn kill_and_reap(mut child: std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_next_locker_learns_the_owner_died_and_may_make_the_state_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lock");
    let shared = SharedLock::map(&path);
    let lock = shared.lock();
    // SAFETY: no process uses the lock yet.
    unsafe { lock.init() }.unwrap();
    kill_and_reap(child_holding(&path));
    // SAFETY: initialised above; the mapping lives in `shared`.
    unsafe {
        assert_eq!(lock.lock(Some(Duration::from_secs(5))).unwrap(), LockOutcome::OwnerDied);
        lock.make_consistent().unwrap();
        lock.unlock().unwrap();
        assert_eq!(lock.lock(Some(Duration::ZERO)).unwrap(), LockOutcome::Acquired);
        lock.unlock().unwrap();
    }
}

#[test]
fn a_lock_left_inconsistent_is_not_recoverable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lock");
    let shared = SharedLock::map(&path);
    let lock = shared.lock();
    // SAFETY: no process uses the lock yet.
    unsafe { lock.init() }.unwrap();
    kill_and_reap(child_holding(&path));
    // SAFETY: as above.
    unsafe {
        assert_eq!(lock.lock(None).unwrap(), LockOutcome::OwnerDied);
        lock.unlock().unwrap();
        assert_eq!(lock.lock(None).unwrap(), LockOutcome::NotRecoverable);
        assert_eq!(lock.lock(Some(Duration::ZERO)).unwrap(), LockOutcome::NotRecoverable);
    }
}

#[test]
fn a_locker_asleep_behind_an_owner_learns_of_its_death_soon_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lock");
    let shared = SharedLock::map(&path);
    let lock = shared.lock();
    // SAFETY: no process uses the lock yet.
    unsafe { lock.init() }.unwrap();
    let child = child_holding(&path);
    let killed = std::thread::scope(|s| {
        let killer = s.spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let at = Instant::now();
            kill_and_reap(child);
            at
        });
        // SAFETY: initialised above; the mapping lives in `shared`.
        let outcome = unsafe { lock.lock(Some(Duration::from_secs(10))) }.unwrap();
        assert_eq!(outcome, LockOutcome::OwnerDied);
        (killer.join().unwrap(), Instant::now())
    });
    let (at, woke) = killed;
    let after = woke.saturating_duration_since(at);
    assert!(after < Duration::from_secs(2), "the waiter took {after:?} to notice the owner's death");
}
