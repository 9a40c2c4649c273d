//! The fault handler passes a signal that is not its own to the handler that
//! was installed before it the way the kernel would have run that handler:
//! with the signals of its `sa_mask` blocked, and the signal itself too unless
//! it was installed with `SA_NODEFER`; the thread's mask is back as it was
//! once the handler returns. Checked for a sent `SIGBUS` (`raise`) and for a
//! real fault outside every guarded map.
//!
//! Each case runs in a child process (this test binary again, running an
//! `#[ignore]`d test): the handler is installed once per process, and a fault
//! ends the child.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicI32, Ordering};

use mmapkit_sys::fault_signal;

/// Whether SIGUSR1 and SIGBUS were blocked while the previous handler ran (-1: it did not run).
static USR1_BLOCKED: AtomicI32 = AtomicI32::new(-1);
static BUS_BLOCKED: AtomicI32 = AtomicI32::new(-1);

/// Whether `sig` is blocked on the calling thread now. Async-signal-safe.
fn blocked(sig: libc::c_int) -> bool {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: a null new set only reads the thread's mask into `set`, valid memory of the right type.
    assert_eq!(unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), set.as_mut_ptr()) }, 0);
    // SAFETY: pthread_sigmask filled the set in.
    unsafe { libc::sigismember(set.as_ptr(), sig) == 1 }
}

/// The program's own SIGBUS handler, installed before the fault handler. For
/// a sent signal it records what was blocked and returns; for a fault it
/// ends the process with a status that says it (40 + 2 × SIGUSR1 blocked +
/// SIGBUS blocked).
extern "C" fn previous(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let (usr1, bus) = (blocked(libc::SIGUSR1), blocked(libc::SIGBUS));
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    if unsafe { (*info).si_code } > 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(40 + 2 * i32::from(usr1) + i32::from(bus)) };
    }
    USR1_BLOCKED.store(i32::from(usr1), Ordering::SeqCst);
    BUS_BLOCKED.store(i32::from(bus), Ordering::SeqCst);
}

/// Installs `previous` for SIGBUS with SIGUSR1 in its mask, then the fault
/// handler (with a hook that takes no fault as its own) on top of it.
fn install_both(nodefer: bool) {
    // SAFETY: zeroed is a valid sigaction; the handler has the SA_SIGINFO signature; the sets are initialised
    // before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = previous as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | if nodefer { libc::SA_NODEFER } else { 0 };
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, libc::SIGUSR1);
        assert_eq!(libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()), 0);
    }
    fault_signal::install(|_| false).expect("install the fault handler");
    assert!(fault_signal::in_place());
}

fn run_child(name: &str) -> Output {
    let exe = std::env::current_exe().expect("current test binary");
    Command::new(exe)
        .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .output()
        .expect("spawn child test process")
}

fn assert_passed(output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    assert!(stdout.contains("1 passed"), "child ran no test:\n{stdout}");
}

/// Raises SIGBUS and checks what the previous handler saw blocked.
fn sent_sigbus_sees(nodefer: bool) {
    install_both(nodefer);
    // SAFETY: raise with a valid signal number; the previous handler takes it and returns.
    assert_eq!(unsafe { libc::raise(libc::SIGBUS) }, 0);
    assert_eq!(USR1_BLOCKED.load(Ordering::SeqCst), 1, "the previous handler's sa_mask was not in force");
    let expected = if nodefer { 0 } else { 1 };
    assert_eq!(BUS_BLOCKED.load(Ordering::SeqCst), expected, "SIGBUS itself blocked unless SA_NODEFER");
    assert!(!blocked(libc::SIGUSR1) && !blocked(libc::SIGBUS), "the thread's mask is back as it was");
    assert!(fault_signal::in_place(), "the fault handler stays installed");
}

#[test]
fn a_sent_sigbus_runs_the_previous_handler_under_its_mask() {
    assert_passed(&run_child("child_sent_deferred"));
}

#[test]
#[ignore = "child process of a_sent_sigbus_runs_the_previous_handler_under_its_mask"]
fn child_sent_deferred() {
    sent_sigbus_sees(false);
}

#[test]
fn a_previous_handler_with_sa_nodefer_runs_with_the_signal_unblocked() {
    assert_passed(&run_child("child_sent_nodefer"));
}

#[test]
#[ignore = "child process of a_previous_handler_with_sa_nodefer_runs_with_the_signal_unblocked"]
fn child_sent_nodefer() {
    sent_sigbus_sees(true);
}

#[test]
fn a_fault_passed_on_runs_the_previous_handler_under_its_mask() {
    let output = run_child("child_fault");
    assert_eq!(
        output.status.code(),
        Some(43),
        "expected the previous handler to exit with SIGUSR1 and SIGBUS blocked (43); {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
#[ignore = "child process of a_fault_passed_on_runs_the_previous_handler_under_its_mask"]
fn child_fault() {
    use std::os::fd::AsRawFd;
    install_both(false);
    let page = mmapkit_sys::memory::page_size();
    let file = tempfile::tempfile().unwrap();
    file.set_len(2 * page as u64).unwrap();
    let ptr =
        // SAFETY: a plain read-only shared mapping of two pages of our own file.
        unsafe { libc::mmap(std::ptr::null_mut(), 2 * page, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0) };
    assert_ne!(ptr, libc::MAP_FAILED);
    file.set_len(0).unwrap();
    // SAFETY: deliberately faults (the page's file data is gone); the previous handler ends the process.
    let value = unsafe { std::ptr::read_volatile(ptr.cast::<u8>().add(page)) };
    println!("read {value} past the end of the file: the fault was not raised");
}
