//! The robust mutex across threads and processes, a holder killed with
//! SIGKILL, and events waking another process.

mod common;

use common::{Started, child_command, name_from_env, spawn_until, unique};

use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mmapkit_shm::{Event, LockError, RegionOptions, Shared, ShmMutex};
use zerocopy::{FromBytes, KnownLayout};

#[derive(FromBytes, KnownLayout, Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Account {
    from: u64,
    to: u64,
}

#[derive(FromBytes, KnownLayout)]
#[repr(C)]
struct Mailbox {
    flag: AtomicU32,
    _pad: u32,
    event: Event,
    value: AtomicU64,
}

#[test]
fn threads_serialise_through_the_mutex() {
    let name = unique("threads");
    let mutex =
        // SAFETY: only these tests reach the value, and only through the lock.
        unsafe { ShmMutex::create_named(&name, "Account", &RegionOptions::new(), Account { from: 1000, to: 0 }) }
            .unwrap();
    // SAFETY: only these tests reach the value, and only through the lock.
    let other = unsafe { ShmMutex::<Account>::open_named(&name, "Account", &RegionOptions::new()) }.unwrap();
    std::thread::scope(|s| {
        for handle in [&mutex, &other] {
            s.spawn(move || {
                for _ in 0..500 {
                    let mut account = handle.lock().unwrap();
                    assert!(!account.previous_owner_died());
                    account.from -= 1;
                    std::hint::spin_loop();
                    account.to += 1;
                }
            });
        }
    });
    assert_eq!(*mutex.lock().unwrap(), Account { from: 0, to: 1000 });
}

/// Starts a child that locks the mutex and half-updates it; returns once it
/// holds the lock.
fn start_holder(name: &str) -> Started {
    spawn_until("child_lock_and_hang", name, "holding")
}

/// Starts a holder and kills it with SIGKILL: no unwinding, no unlock.
fn kill_a_holder(name: &str) {
    let Started { child: mut holder, stdout: _out } = start_holder(name);
    holder.kill().unwrap();
    holder.wait().unwrap();
}

#[test]
#[ignore = "child process of the killed-holder tests"]
fn child_lock_and_hang() {
    // SAFETY: only these tests reach the value, and only through the lock.
    let mutex = unsafe { ShmMutex::<Account>::open_named(&name_from_env(), "Account", &RegionOptions::new()) }.unwrap();
    let mut account = mutex.lock().unwrap();
    account.from = account.from.wrapping_sub(100); // ...and dies before `to += 100`
    println!("holding");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn the_next_locker_learns_the_holder_died_and_recovers() {
    let name = unique("killed");
    let mutex =
        // SAFETY: only these tests reach the value, and only through the lock.
        unsafe { ShmMutex::create_named(&name, "Account", &RegionOptions::new(), Account { from: 1000, to: 0 }) }
            .unwrap();
    kill_a_holder(&name);

    let mut account = mutex.lock_timeout(Duration::from_secs(5)).unwrap();
    assert!(account.previous_owner_died());
    assert_eq!(*account, Account { from: 900, to: 0 }, "the half-done update is visible");
    account.to += 100; // repair
    account.make_consistent().unwrap();
    drop(account);

    let account = mutex.lock().unwrap();
    assert!(!account.previous_owner_died());
    assert_eq!(*account, Account { from: 900, to: 100 });
}

#[test]
fn not_repairing_makes_the_mutex_unusable_for_everyone() {
    let name = unique("unrecovered");
    let mutex =
        // SAFETY: only these tests reach the value, and only through the lock.
        unsafe { ShmMutex::create_named(&name, "Account", &RegionOptions::new(), Account { from: 1, to: 0 }) }.unwrap();
    kill_a_holder(&name);
    let account = mutex.lock().unwrap();
    assert!(account.previous_owner_died());
    drop(account); // without make_consistent
    let err = mutex.lock().unwrap_err();
    assert!(matches!(err, LockError::NotRecoverable { .. }), "{err}");
    assert!(matches!(mutex.try_lock(), Err(LockError::NotRecoverable { .. })));
}

#[test]
fn try_lock_and_timeouts_while_another_process_holds_it() {
    let name = unique("busy");
    let mutex =
        // SAFETY: only these tests reach the value, and only through the lock.
        unsafe { ShmMutex::create_named(&name, "Account", &RegionOptions::new(), Account { from: 0, to: 0 }) }.unwrap();
    let Started { child: mut holder, stdout: _out } = start_holder(&name);
    assert!(mutex.try_lock().unwrap().is_none(), "held by the child");
    let start = Instant::now();
    let err = mutex.lock_timeout(Duration::from_millis(200)).unwrap_err();
    assert!(matches!(err, LockError::Timeout(_)), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(190));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let mut account = mutex.lock().unwrap();
    assert!(account.previous_owner_died());
    account.make_consistent().unwrap();
}

#[test]
fn an_event_wakes_another_process() {
    let name = unique("event");
    // SAFETY: Mailbox is used only through its atomics and event.
    let mailbox = unsafe { Shared::<Mailbox>::create_named(&name, "Mailbox", &RegionOptions::new(), |_| {}) }.unwrap();
    let waiter = child_command("child_wait_for_mail", &name).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    mailbox.value.store(1234, Ordering::SeqCst);
    mailbox.flag.store(1, Ordering::SeqCst);
    mailbox.event.notify_all();
    let output = waiter.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("got 1234"), "{stdout}");
}

#[test]
#[ignore = "child process of an_event_wakes_another_process"]
fn child_wait_for_mail() {
    // SAFETY: as in the parent.
    let mailbox = unsafe { Shared::<Mailbox>::open_named(&name_from_env(), "Mailbox", &RegionOptions::new()) }.unwrap();
    let woken = mailbox.event.wait_until(|| mailbox.flag.load(Ordering::SeqCst) == 1, Some(Duration::from_secs(10)));
    assert!(woken, "never woken");
    println!("got {}", mailbox.value.load(Ordering::SeqCst));
}

#[test]
fn a_timeout_too_long_for_the_clock_waits_without_a_deadline() {
    let name = unique("forever");
    let mutex =
        // SAFETY: only this test reaches the value, and only through the lock.
        unsafe { ShmMutex::create_named(&name, "Account", &RegionOptions::new(), Account { from: 0, to: 0 }) }.unwrap();
    drop(mutex.lock_timeout(Duration::MAX).unwrap());
    let name = unique("forever-event");
    // SAFETY: Mailbox is used only through its atomics and event.
    let mailbox = unsafe { Shared::<Mailbox>::create_named(&name, "Mailbox", &RegionOptions::new(), |_| {}) }.unwrap();
    mailbox.flag.store(1, Ordering::SeqCst);
    assert!(mailbox.event.wait_until(|| mailbox.flag.load(Ordering::SeqCst) == 1, Some(Duration::MAX)));
}

#[test]
fn an_event_wait_times_out_and_no_wake_up_is_lost() {
    let name = unique("timeout");
    // SAFETY: Mailbox is used only through its atomics and event.
    let mailbox = unsafe { Shared::<Mailbox>::create_named(&name, "Mailbox", &RegionOptions::new(), |_| {}) }.unwrap();
    let start = Instant::now();
    assert!(!mailbox.event.wait_until(|| false, Some(Duration::from_millis(100))));
    assert!(start.elapsed() >= Duration::from_millis(95));

    // A notify with nobody waiting, before the wait: the condition carries it.
    mailbox.flag.store(1, Ordering::SeqCst);
    mailbox.event.notify_one();
    let start = Instant::now();
    assert!(mailbox.event.wait_until(|| mailbox.flag.load(Ordering::SeqCst) == 1, Some(Duration::from_secs(10))));
    assert!(start.elapsed() < Duration::from_millis(50));

    // Ping-pong 20,000 times between two threads, each step a wait and a
    // notify: a lost wake-up would stall a step until its 5 s timeout.
    mailbox.value.store(0, Ordering::SeqCst);
    let start = Instant::now();
    std::thread::scope(|s| {
        for parity in 0..2u64 {
            let mailbox = &mailbox;
            s.spawn(move || {
                for step in (parity..20_000).step_by(2) {
                    let turn = mailbox
                        .event
                        .wait_until(|| mailbox.value.load(Ordering::SeqCst) == step, Some(Duration::from_secs(5)));
                    assert!(turn, "step {step} never came: a wake-up was lost");
                    mailbox.value.store(step + 1, Ordering::SeqCst);
                    mailbox.event.notify_all();
                }
            });
        }
    });
    assert_eq!(mailbox.value.load(Ordering::SeqCst), 20_000);
    assert!(start.elapsed() < Duration::from_secs(30));
}
