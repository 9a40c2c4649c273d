//! The fault guard's SIGBUS handler among the program's other signal
//! handling: it passes every signal that is not its own to the handler that
//! was there before (or lets the default action kill the process), a sent
//! SIGBUS does what it would do without mmapkit and leaves the guard in
//! place, and the two ways a program can switch the guard off (a handler
//! installed after it, a thread that blocks SIGBUS) are refused at map time.
//! Every case that could kill the test runner runs in a child process.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use common::{TestFile, assert_child_passed, block_sigbus, describe, pattern_byte, run_child, truncate};
use mmapkit::{ErrorKind, GuardProblem, Map, MapOptions};

const PAGE: usize = 4096;

/// Sums every page's first byte through plain slice reads (which fault).
fn touch_every_page(bytes: &[u8]) -> u64 {
    bytes.iter().step_by(PAGE).map(|&b| u64::from(b)).sum()
}

/// Installs `handler` for SIGBUS with `SA_SIGINFO` (or `SIG_IGN` with `None`).
fn install_handler(handler: Option<extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)>) {
    // SAFETY: zeroed is a valid sigaction; the handler has the SA_SIGINFO signature.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = match handler {
            Some(h) => h as usize,
            None => libc::SIG_IGN,
        };
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()), 0);
    }
}

/// Sends this process a SIGBUS: to the process, as `kill -BUS` does (any
/// thread may take it, later), or to this thread with `raise` (handled before
/// it returns).
fn send_sigbus(how: &str) {
    let sent = match how {
        // SAFETY: kill on our own pid with a valid signal number; what it does is under test.
        "kill" => unsafe { libc::kill(libc::getpid(), libc::SIGBUS) },
        // SAFETY: raise with a valid signal number; what it does is under test.
        "raise" => unsafe { libc::raise(libc::SIGBUS) },
        other => panic!("no way to send called {other}"),
    };
    assert_eq!(sent, 0);
}

/// Waits (up to 5 s) until `count` reaches `expected`: a signal sent to the
/// process is handled by whichever thread takes it.
fn wait_for(count: &AtomicU32, expected: u32) -> u32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while count.load(Ordering::SeqCst) < expected && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    count.load(Ordering::SeqCst)
}

/// Truncates a guarded map's file and reads every page: the guard must still
/// turn the lost pages into a reported fault.
fn the_guard_still_holds() {
    let tf = TestFile::new(16 * PAGE);
    let map = install_guard(&tf);
    truncate(&tf.path, PAGE as u64);
    assert_eq!(touch_every_page(&map), u64::from(pattern_byte(0)));
    assert_eq!(map.fault().map(|f| f.offset()), Some(PAGE), "the guard did not record the truncation");
}

// --- chaining to the handlers that were there before ---------------------------

/// Makes a guarded map, so that mmapkit's handler is installed.
fn install_guard(tf: &TestFile) -> Map {
    // SAFETY: nothing changes the file.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    assert!(map.fault().is_none());
    map
}

#[test]
fn a_null_page_read_still_dies_of_sigsegv() {
    let output = run_child("child_null_read", &[]);
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "{}", describe(&output));
}

#[test]
#[ignore = "child process of a_null_page_read_still_dies_of_sigsegv"]
fn child_null_read() {
    let tf = TestFile::new(PAGE);
    let _map = install_guard(&tf);
    // SAFETY: deliberately unsound: the parent test checks that this read, from the unmapped page at address 16, still
    // kills the process.
    let value = unsafe { std::ptr::read_volatile(16 as *const u8) };
    println!("read {value} from the null page");
}

#[test]
fn a_stack_overflow_still_gets_rusts_message() {
    let output = run_child("child_stack_overflow", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has overflowed its stack"), "{}", describe(&output));
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{}", describe(&output));
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, buf: &mut [u8; 1024]) -> u64 {
    let mut local = [0u8; 1024];
    local[(depth % 1024) as usize] = buf[0].wrapping_add(1);
    std::hint::black_box(&mut local);
    recurse(depth + 1, &mut local) + u64::from(local[0])
}

#[test]
#[ignore = "child process of a_stack_overflow_still_gets_rusts_message"]
fn child_stack_overflow() {
    let tf = TestFile::new(PAGE);
    let _map = install_guard(&tf);
    // Run in a thread of known stack size so the overflow comes quickly.
    let handle = std::thread::Builder::new().stack_size(256 * 1024).spawn(|| recurse(0, &mut [0u8; 1024])).unwrap();
    println!("{:?}", handle.join());
}

/// Maps `tf` with a raw `mmap` (no mmapkit), truncates it, and touches the lost page.
fn raw_mapping_fault(tf: &TestFile) {
    let file = tf.open();
    use std::os::fd::AsRawFd;
    let (len, fd) = (4 * PAGE, file.as_raw_fd());
    // SAFETY: a plain read-only mapping of 4 pages of our own file.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, fd, 0) };
    assert_ne!(ptr, libc::MAP_FAILED);
    truncate(&tf.path, 0);
    // SAFETY: deliberately faults: the page's file data is gone, and the parent test checks what the process does about
    // it.
    let value = unsafe { std::ptr::read_volatile(ptr.cast::<u8>().add(2 * PAGE)) };
    println!("read {value} past the end of a raw mapping");
}

static OWN_HANDLER_RAN: AtomicBool = AtomicBool::new(false);

extern "C" fn own_sigbus_handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    OWN_HANDLER_RAN.store(true, Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    // SAFETY: _exit is async-signal-safe; the exit status tells the parent this ran.
    unsafe { libc::_exit(if code == 2 { 42 } else { 43 }) };
}

#[test]
fn a_handler_installed_before_mmapkit_still_runs_for_other_faults() {
    let output = run_child("child_own_handler_first", &[]);
    assert_eq!(output.status.code(), Some(42), "{}", describe(&output));
}

#[test]
#[ignore = "child process of a_handler_installed_before_mmapkit_still_runs_for_other_faults"]
fn child_own_handler_first() {
    install_handler(Some(own_sigbus_handler));
    let guarded = TestFile::new(16 * PAGE);
    let map = install_guard(&guarded);
    // mmapkit still repairs its own mappings...
    truncate(&guarded.path, PAGE as u64);
    assert_eq!(touch_every_page(&map), u64::from(pattern_byte(0)));
    assert!(map.fault().is_some());
    assert!(!OWN_HANDLER_RAN.load(Ordering::SeqCst), "mmapkit's own faults must not reach the program's handler");
    // ...and hands every other fault to the handler that was there first.
    raw_mapping_fault(&TestFile::new(4 * PAGE));
}

#[test]
fn a_fault_outside_guarded_maps_still_dies_of_sigbus() {
    let output = run_child("child_raw_fault", &[]);
    assert_eq!(output.status.signal(), Some(libc::SIGBUS), "{}", describe(&output));
}

#[test]
#[ignore = "child process of a_fault_outside_guarded_maps_still_dies_of_sigbus"]
fn child_raw_fault() {
    let tf = TestFile::new(PAGE);
    let _map = install_guard(&tf);
    raw_mapping_fault(&TestFile::new(4 * PAGE));
}

#[test]
fn an_unguarded_map_dies_of_sigbus_as_documented() {
    let output = run_child("child_unguarded", &[]);
    assert_eq!(output.status.signal(), Some(libc::SIGBUS), "{}", describe(&output));
}

#[test]
#[ignore = "child process of an_unguarded_map_dies_of_sigbus_as_documented"]
fn child_unguarded() {
    let tf = TestFile::new(4 * PAGE);
    let _guarded = install_guard(&TestFile::new(PAGE));
    // SAFETY: deliberately broken: the parent checks that the truncation kills us.
    let map = unsafe { MapOptions::new().unguarded(true).map(&tf.open()) }.unwrap();
    truncate(&tf.path, 0);
    println!("{}", touch_every_page(&map));
}

// --- a SIGBUS sent by a process ------------------------------------------------

#[test]
fn a_sent_sigbus_ends_the_process_as_the_default_action_would() {
    for how in ["raise", "kill"] {
        let output = run_child("child_sent_sigbus_with_rusts_handler", &[("MMAPKIT_SEND", how.as_ref())]);
        assert_eq!(output.status.signal(), Some(libc::SIGBUS), "{how}: {}", describe(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("survived"), "{how}: the process ran on after a sent SIGBUS: {}", describe(&output));
    }
}

/// Rust's runtime installed its stack-overflow handler before mmapkit's; it
/// answers a SIGBUS that is not a stack overflow by resetting SIGBUS to the
/// default action, for the faulting access to kill the process when it runs
/// again. A sent signal has no access to run again: the process must end
/// now, not run on with the guard gone.
#[test]
#[ignore = "child process of a_sent_sigbus_ends_the_process_as_the_default_action_would"]
fn child_sent_sigbus_with_rusts_handler() {
    let how = common::child_env("MMAPKIT_SEND");
    let tf = TestFile::new(4 * PAGE);
    let _map = install_guard(&tf);
    send_sigbus(how.to_str().unwrap());
    // Another thread may take a signal sent to the process: give it time.
    std::thread::sleep(std::time::Duration::from_secs(2));
    println!("survived the sent SIGBUS");
    // Had it run on, the guard would be gone: show what that costs.
    the_guard_still_holds();
}

static SENT_SEEN: AtomicU32 = AtomicU32::new(0);

/// A program's own handler that takes sent SIGBUS signals and returns.
extern "C" fn counting_handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    if unsafe { (*info).si_code } <= 0 {
        SENT_SEEN.fetch_add(1, Ordering::SeqCst);
    } else {
        // SAFETY: _exit is async-signal-safe; a fault here would be a guard that failed to catch its own.
        unsafe { libc::_exit(44) };
    }
}

/// Like `counting_handler`, but it also sets SIGBUS to be ignored from now on.
extern "C" fn ignoring_handler(_sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    SENT_SEEN.fetch_add(1, Ordering::SeqCst);
    // SAFETY: zeroed is a valid sigaction; sigaction is async-signal-safe.
    unsafe {
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        libc::sigaction(libc::SIGBUS, &ignore, std::ptr::null_mut());
    }
}

#[test]
fn a_sent_sigbus_reaches_the_programs_own_handler_and_the_guard_stays() {
    for case in ["counting", "ignoring", "ignored"] {
        let output = run_child("child_sent_sigbus_with_own_handler", &[("MMAPKIT_HANDLER", case.as_ref())]);
        assert_child_passed(&output);
    }
}

/// The program handled (or ignored) SIGBUS before the first guarded map. A
/// sent SIGBUS goes to its handler, or is ignored; whatever that handler
/// does to the disposition, the guard still catches the next truncation.
#[test]
#[ignore = "child process of a_sent_sigbus_reaches_the_programs_own_handler_and_the_guard_stays"]
fn child_sent_sigbus_with_own_handler() {
    let case = common::child_env("MMAPKIT_HANDLER");
    let case = case.to_str().unwrap();
    match case {
        "counting" => install_handler(Some(counting_handler)),
        "ignoring" => install_handler(Some(ignoring_handler)),
        "ignored" => install_handler(None),
        other => panic!("unknown case {other}"),
    }
    let tf = TestFile::new(4 * PAGE);
    let _map = install_guard(&tf);
    for how in ["raise", "kill", "raise"] {
        send_sigbus(how);
    }
    if case == "ignored" {
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(SENT_SEEN.load(Ordering::SeqCst), 0);
    } else {
        assert_eq!(wait_for(&SENT_SEEN, 3), 3, "{case}: the program's handler saw the wrong number of signals");
    }
    the_guard_still_holds();
}

// --- what switches the guard off, refused at map time ---------------------------

#[test]
fn a_thread_that_blocks_sigbus_gets_an_error_instead_of_a_guarded_map() {
    let tf = TestFile::new(4 * PAGE);
    let file = tf.open();
    std::thread::spawn(move || {
        block_sigbus();
        // SAFETY: nothing changes the file.
        let err = unsafe { Map::new(&file) }.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::GuardUnavailable(GuardProblem::SignalBlocked)), "{err}");
        let message = err.to_string();
        assert!(message.contains("this thread blocks SIGBUS"), "{message}");
        assert!(message.contains(&tf.path.display().to_string()), "the error names the file: {message}");
        // SAFETY: as above. (An unguarded map is still there for the asking.)
        let map = unsafe { MapOptions::new().unguarded(true).map(&file) }.unwrap();
        assert_eq!(map[1], pattern_byte(1));
    })
    .join()
    .unwrap();
}

#[test]
fn a_fault_on_a_thread_that_blocks_sigbus_kills_the_process() {
    let output = run_child("child_fault_with_sigbus_blocked", &[]);
    assert_eq!(output.status.signal(), Some(libc::SIGBUS), "{}", describe(&output));
}

/// The documented limit: the map was made on a thread that does not block
/// SIGBUS, and read on one that does. The kernel does not deliver a fault's
/// SIGBUS to a thread that blocks it; it ends the process.
#[test]
#[ignore = "child process of a_fault_on_a_thread_that_blocks_sigbus_kills_the_process"]
fn child_fault_with_sigbus_blocked() {
    let tf = TestFile::new(16 * PAGE);
    let map = install_guard(&tf);
    truncate(&tf.path, PAGE as u64);
    std::thread::scope(|s| {
        s.spawn(|| {
            block_sigbus();
            println!("{}", touch_every_page(&map));
        });
    });
}

#[test]
fn a_handler_installed_after_the_guard_makes_new_guarded_maps_an_error() {
    assert_child_passed(&run_child("child_handler_installed_after", &[]));
}

#[test]
#[ignore = "child process of a_handler_installed_after_the_guard_makes_new_guarded_maps_an_error"]
fn child_handler_installed_after() {
    let tf = TestFile::new(4 * PAGE);
    let _first = install_guard(&tf);
    install_handler(Some(counting_handler));
    // SAFETY: nothing changes the file.
    let err = unsafe { Map::new(&tf.open()) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::GuardUnavailable(GuardProblem::HandlerReplaced)), "{err}");
    assert!(err.to_string().contains("SIGBUS handler has been replaced"), "{err}");
    // SAFETY: as above.
    let map = unsafe { MapOptions::new().unguarded(true).map(&tf.open()) }.unwrap();
    assert_eq!(map[1], pattern_byte(1));
}
