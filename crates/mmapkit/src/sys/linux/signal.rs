//! The process-wide SIGBUS handler.
//!
//! Installed once with `SA_SIGINFO | SA_ONSTACK | SA_NODEFER`. For each fault
//! the kernel raises it asks the hook the fault guard registered whether the
//! address is one it repairs; if not, it hands the signal to whatever handler
//! was installed before, the way that handler expects, or, where there was
//! none, restores the default action so the process dies of SIGBUS exactly as
//! it would have without mmapkit. A SIGBUS another process (or this one) sent
//! is never a guarded map's: it has the effect it would have without mmapkit,
//! and the handler stays installed (see `sent`).
//!
//! Everything here runs in signal context: no locks, no allocation, nothing
//! lazily initialised. `OnceLock::get` is a plain atomic load.

use std::ffi::{c_int, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

/// Decides a fault: given the faulting address and `si_code`, returns `true`
/// when it repaired the fault so the access can be retried.
pub(crate) type FaultHook = fn(addr: usize, code: i32) -> bool;

static HOOK: OnceLock<FaultHook> = OnceLock::new();
static PREVIOUS: OnceLock<Action> = OnceLock::new();
static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
/// Our own action, kept to put it back after a sent signal's handler replaced it.
static OURS: OnceLock<Action> = OnceLock::new();

/// A handler installed with `SA_SIGINFO`.
type SigInfoHandler = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);

/// A SIGBUS action: the one that was in place before ours, or ours.
struct Action(libc::sigaction);

// SAFETY: a sigaction is plain data (a handler address, flags and a mask); it
// is written once before our handler is installed and only read afterwards.
unsafe impl Sync for Action {}
// SAFETY: as above.
unsafe impl Send for Action {}

/// `si_code` for a fault past the end of the object (`BUS_ADRERR`).
pub(crate) const BUS_ADRERR: i32 = 2;
/// `si_code` for an object-specific hardware error (`BUS_OBJERR`).
pub(crate) const BUS_OBJERR: i32 = 3;
/// `si_code` for a memory error that consumed poisoned data (`BUS_MCEERR_AR`).
pub(crate) const BUS_MCEERR_AR: i32 = 4;
/// `si_code` for a memory error found in the background (`BUS_MCEERR_AO`).
pub(crate) const BUS_MCEERR_AO: i32 = 5;

/// Installs the SIGBUS handler with `hook`, once per process; later calls
/// return the first call's result and ignore their `hook`.
pub(crate) fn install_sigbus_hook(hook: FaultHook) -> io::Result<()> {
    INSTALLED.get_or_init(|| install(hook)).map_err(io::Error::from_raw_os_error)
}

fn install(hook: FaultHook) -> Result<(), i32> {
    let _ = HOOK.set(hook);
    let mut previous = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `previous`, which is valid writable memory of the right type.
    if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), previous.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL));
    }
    // SAFETY: sigaction filled it in (and zeroed memory is a valid sigaction anyway).
    let _ = PREVIOUS.set(Action(unsafe { previous.assume_init() }));

    // SAFETY: all-zero bytes are a valid sigaction (no handler, empty mask, no flags).
    let mut action: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    action.sa_sigaction = on_sigbus as SigInfoHandler as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    let _ = OURS.set(Action(action));
    // SAFETY: `action` is fully initialised and names a handler with the SA_SIGINFO signature; the old action is not asked for.
    if unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL));
    }
    Ok(())
}

/// Whether mmapkit's handler is the one installed for SIGBUS now. False
/// before the first guarded map, and after another handler replaced it.
pub(crate) fn sigbus_hook_in_place() -> bool {
    current_action().is_some_and(|action| action.sa_sigaction == on_sigbus as SigInfoHandler as usize)
}

/// Whether the calling thread blocks SIGBUS. A fault on such a thread never
/// reaches a handler: the kernel forces the default action and the process dies.
pub(crate) fn sigbus_blocked() -> bool {
    let mut mask = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: a null new set only reads the thread's mask into `mask`, valid writable memory of the right type.
    if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), mask.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: pthread_sigmask filled the set in.
    unsafe { libc::sigismember(mask.as_ptr(), libc::SIGBUS) == 1 }
}

/// The SIGBUS action installed now. Async-signal-safe.
fn current_action() -> Option<libc::sigaction> {
    let mut action = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `action`, valid writable memory of the right type.
    if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), action.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: sigaction filled it in.
    Some(unsafe { action.assume_init() })
}

extern "C" fn on_sigbus(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: for an SA_SIGINFO handler the kernel passes a valid siginfo.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // A positive si_code means the kernel raised it for a fault; zero or less
    // means a process sent it (kill, raise, sigqueue), which is never a fault
    // of a guarded map.
    if code <= 0 {
        sent(sig, info, context);
    } else if !HOOK.get().is_some_and(|hook| hook(addr, code)) {
        chain_fault(sig, info, context);
    }
}

/// The action that was in place before ours, if it was a handler.
fn previous_handler() -> Option<&'static libc::sigaction> {
    PREVIOUS.get().map(|p| &p.0).filter(|prev| prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN)
}

/// Whether SIGBUS was ignored before ours was installed.
fn previously_ignored() -> bool {
    PREVIOUS.get().is_some_and(|p| p.0.sa_sigaction == libc::SIG_IGN)
}

/// Calls the previous handler the way it was installed to be called.
fn call(prev: &libc::sigaction, sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO the stored address is a three-argument handler, installed by the program for exactly this call.
        let handler: SigInfoHandler = unsafe { std::mem::transmute(prev.sa_sigaction) };
        handler(sig, info, context);
    } else {
        // SAFETY: without SA_SIGINFO the stored address is a one-argument handler.
        let handler: extern "C" fn(c_int) = unsafe { std::mem::transmute(prev.sa_sigaction) };
        handler(sig);
    }
}

/// A fault that is not a guarded map's: it goes to the handler installed
/// before ours, or, where there was none, the default action is restored so
/// that the faulting access, run again when this returns, kills the process
/// with SIGBUS as it would have without mmapkit.
fn chain_fault(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    match previous_handler() {
        Some(prev) => call(prev, sig, info, context),
        None => set_default(),
    }
}

/// A SIGBUS that a process sent. It does what it would do without mmapkit,
/// and never leaves the guard uninstalled behind it:
/// - ignored, if SIGBUS was ignored before;
/// - the process ends with SIGBUS, if there was no handler before;
/// - otherwise the previous handler runs. If it returns with SIGBUS reset
///   to the default action (as Rust's own stack-overflow handler does, for
///   the faulting access to kill the process when it runs again: a sent
///   signal has no access to run again), that action is taken now, and the
///   process ends with SIGBUS. If it installed anything else, mmapkit's
///   handler is put back.
fn sent(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    if previously_ignored() {
        return;
    }
    let Some(prev) = previous_handler() else { die_of_sigbus() };
    call(prev, sig, info, context);
    let Some(now) = current_action() else { return };
    if now.sa_sigaction == on_sigbus as SigInfoHandler as usize {
        return;
    }
    if now.sa_sigaction == libc::SIG_DFL {
        die_of_sigbus();
    }
    if let Some(ours) = OURS.get() {
        // SAFETY: `ours` is the valid action installed at first; sigaction is async-signal-safe.
        unsafe { libc::sigaction(libc::SIGBUS, &ours.0, std::ptr::null_mut()) };
    }
}

/// Restores SIGBUS's default action.
fn set_default() {
    // SAFETY: all-zero bytes are a valid sigaction; SIG_DFL is 0.
    let mut default: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    default.sa_sigaction = libc::SIG_DFL;
    // SAFETY: `default` is a valid action; sigaction is async-signal-safe.
    unsafe { libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut()) };
}

/// Ends the process with SIGBUS, as the default action does.
fn die_of_sigbus() -> ! {
    set_default();
    // Our handler runs with SA_NODEFER, so SIGBUS is not blocked here, and
    // raising it with the default action in place ends the process at once.
    // SAFETY: raise and _exit are async-signal-safe.
    unsafe {
        libc::raise(libc::SIGBUS);
        // Only reached if the program blocked SIGBUS in its own handler's mask.
        libc::_exit(128 + libc::SIGBUS)
    }
}
