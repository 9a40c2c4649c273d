//! The process-wide handler for the signal a lost page of a mapped file
//! raises: `SIGBUS`, on Linux, macOS and FreeBSD alike. (`SIGSEGV` is never
//! taken: the kernels raise it for unmapped addresses and, on Linux and
//! FreeBSD, for protection faults, none of which a lost page is; catching it
//! could only hide a real bug.)
//!
//! Installed once with `SA_SIGINFO | SA_ONSTACK | SA_NODEFER`. For each
//! fault the kernel raises it asks the hook the fault guard registered
//! whether the address is one it repairs; if not, it hands
//! the signal to whatever handler was installed before, the way that handler
//! expects, or, where there was none, restores the default action so the
//! process dies of the signal exactly as it would have without mmapkit. A
//! signal another process (or this one) sent is never a guarded map's: it has
//! the effect it would have without mmapkit, and the handler stays installed
//! (see `sent`).
//!
//! Everything here runs in signal context: no locks, no allocation, nothing
//! lazily initialised. `OnceLock::get` is a plain atomic load.

use std::ffi::{c_int, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

use crate::os;

/// What the kernel said of a fault's cause, from its `si_code`, as far as
/// this OS tells: Linux tells the cases apart; macOS and FreeBSD report a
/// page past the end of the file and a failed read the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultClass {
    /// No data behind the page: the file is shorter, or (where the OS does
    /// not tell them apart) its data could not be read or allocated.
    NoData,
    /// The storage reported an error for the page.
    StorageError,
    /// A hardware memory error.
    Hardware,
    /// The kernel had no memory to bring the page in (FreeBSD's
    /// `BUS_OOMERR`): the data could not be read or the hole not allocated.
    OutOfMemory,
    /// Another `si_code`, as the kernel gave it.
    Other(i32),
}

/// One fault, as the hook sees it.
#[derive(Clone, Copy, Debug)]
pub struct FaultEvent {
    /// The faulting address.
    pub addr: usize,
    /// Its cause, as the OS tells it.
    pub class: FaultClass,
}

/// Decides a fault: returns `true` when it repaired the fault so the access
/// can be run again. Runs in signal context.
pub type FaultHook = fn(&FaultEvent) -> bool;

static HOOK: OnceLock<FaultHook> = OnceLock::new();
/// The action in place before ours, per signal of `os::FAULT_SIGNALS`.
static PREVIOUS: [OnceLock<Action>; os::FAULT_SIGNALS.len()] = [const { OnceLock::new() }; os::FAULT_SIGNALS.len()];
static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
/// Our own action, kept to put it back after a sent signal's handler replaced it.
static OURS: OnceLock<Action> = OnceLock::new();

/// A handler installed with `SA_SIGINFO`.
type SigInfoHandler = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);

/// A signal action: the one that was in place before ours, or ours.
struct Action(libc::sigaction);

// SAFETY: a sigaction is plain data (a handler address, flags and a mask); it
// is written once before our handler is installed and only read afterwards.
unsafe impl Sync for Action {}
// SAFETY: as above.
unsafe impl Send for Action {}

fn ours() -> usize {
    on_fault as SigInfoHandler as usize
}

/// Installs the handler with `hook` for every signal a lost page raises on
/// this OS, once per process; later calls return the first call's result
/// and ignore their `hook`.
pub fn install(hook: FaultHook) -> io::Result<()> {
    INSTALLED.get_or_init(|| install_once(hook)).map_err(io::Error::from_raw_os_error)
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}

fn install_once(hook: FaultHook) -> Result<(), i32> {
    let _ = HOOK.set(hook);
    // SAFETY: all-zero bytes are a valid sigaction (no handler, empty mask, no flags).
    let mut action: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    action.sa_sigaction = ours();
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    let _ = OURS.set(Action(action));
    for (slot, &sig) in os::FAULT_SIGNALS.iter().enumerate() {
        let previous = current_action(sig).ok_or_else(last_errno)?;
        let _ = PREVIOUS[slot].set(Action(previous));
        // SAFETY: `action` is fully initialised and names a handler with the SA_SIGINFO signature; the old action
        // is not asked for.
        if unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) } != 0 {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// Whether mmapkit's handler is the one installed now for every signal a
/// lost page raises. False before [`install`], and after another handler
/// replaced it.
pub fn in_place() -> bool {
    os::FAULT_SIGNALS.iter().all(|&sig| current_action(sig).is_some_and(|action| action.sa_sigaction == ours()))
}

/// Whether the calling thread blocks a signal a lost page raises. A fault
/// on such a thread never reaches a handler: the kernel forces the default
/// action and the process dies.
pub fn blocked_here() -> bool {
    let mut mask = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: a null new set only reads the thread's mask into `mask`, valid writable memory of the right type.
    if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), mask.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: pthread_sigmask filled the set in.
    os::FAULT_SIGNALS.iter().any(|&sig| unsafe { libc::sigismember(mask.as_ptr(), sig) } == 1)
}

/// The action installed now for `sig`. Async-signal-safe.
fn current_action(sig: c_int) -> Option<libc::sigaction> {
    let mut action = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `action`, valid writable memory of the right type.
    if unsafe { libc::sigaction(sig, std::ptr::null(), action.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: sigaction filled it in.
    Some(unsafe { action.assume_init() })
}

extern "C" fn on_fault(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: for an SA_SIGINFO handler the kernel passes a valid siginfo.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if os::is_sent(code) {
        sent(sig, info, context);
        return;
    }
    let event = FaultEvent { addr, class: os::fault_class(code) };
    if !HOOK.get().is_some_and(|hook| hook(&event)) {
        chain_fault(sig, info, context);
    }
}

/// The action that was in place before ours for `sig`, if it was a handler.
fn previous_handler(sig: c_int) -> Option<&'static libc::sigaction> {
    previous(sig).filter(|prev| prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN)
}

fn previous(sig: c_int) -> Option<&'static libc::sigaction> {
    let slot = os::FAULT_SIGNALS.iter().position(|&s| s == sig)?;
    PREVIOUS[slot].get().map(|p| &p.0)
}

/// Calls the previous handler the way it was installed to be called: with
/// the signals its action's `sa_mask` names blocked, and the signal itself
/// too unless it asked for `SA_NODEFER`, as the kernel would have blocked
/// them had it run that handler itself. The thread's mask is put back when
/// the handler returns (a handler that jumps out restores its own).
fn call(prev: &libc::sigaction, sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let mut block = prev.sa_mask;
    if prev.sa_flags & libc::SA_NODEFER == 0 {
        // SAFETY: `block` is an initialised sigset_t (a copy of the action's mask) and `sig` a valid signal.
        unsafe { libc::sigaddset(&mut block, sig) };
    }
    let mut before = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: both sets are valid memory of the right type; SIG_BLOCK adds `block` to the thread's mask, as the
    // kernel does on entry to a handler, and writes the mask it replaced to `before`. pthread_sigmask is
    // async-signal-safe.
    let masked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &block, before.as_mut_ptr()) } == 0;
    run(prev, sig, info, context);
    if masked {
        // SAFETY: `before` was filled in by the call above; setting it back is what the kernel does on return.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, before.as_ptr(), std::ptr::null_mut()) };
    }
}

/// Runs the previous handler with the arguments its flags say it takes.
fn run(prev: &libc::sigaction, sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO the stored address is a three-argument handler, installed by the program for
        // exactly this call.
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
/// with the signal as it would have without mmapkit.
fn chain_fault(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    match previous_handler(sig) {
        Some(prev) => call(prev, sig, info, context),
        None => set_default(sig),
    }
}

/// A signal that a process sent (`kill`, `raise`, `sigqueue`: its `si_code`
/// says so), which is never a guarded map's fault. It does what it would do
/// without mmapkit, and never leaves the guard uninstalled behind it:
/// - the action before ours was `SIG_IGN`: nothing happens;
/// - it was `SIG_DFL` (no handler): the default action is restored and the
///   signal raised again, so the process ends with it (`SIGBUS`'s default:
///   terminate, with a core dump where enabled), as it would have without
///   mmapkit;
/// - it was a handler: that handler runs, once, with its own `sa_mask` (and
///   the signal, unless `SA_NODEFER`) blocked, as [`call`] does. When it
///   returns: if the action now in place is ours, nothing more; if it is
///   `SIG_DFL` (the handler reset it, as Rust's own stack-overflow handler
///   does for the faulting access to kill the process when it runs again,
///   which a sent signal has no access to do), the process ends with the
///   signal now; if it installed anything else, mmapkit's handler is put back
///   in its place.
fn sent(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    if previous(sig).is_some_and(|prev| prev.sa_sigaction == libc::SIG_IGN) {
        return;
    }
    let Some(prev) = previous_handler(sig) else { die_of(sig) };
    call(prev, sig, info, context);
    let Some(now) = current_action(sig) else { return };
    if now.sa_sigaction == ours() {
        return;
    }
    if now.sa_sigaction == libc::SIG_DFL {
        die_of(sig);
    }
    if let Some(action) = OURS.get() {
        // SAFETY: `action` is the valid action installed at first; sigaction is async-signal-safe.
        unsafe { libc::sigaction(sig, &action.0, std::ptr::null_mut()) };
    }
}

/// Restores the default action of `sig`.
fn set_default(sig: c_int) {
    // SAFETY: all-zero bytes are a valid sigaction; SIG_DFL is 0.
    let mut default: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    default.sa_sigaction = libc::SIG_DFL;
    // SAFETY: `default` is a valid action; sigaction is async-signal-safe.
    unsafe { libc::sigaction(sig, &default, std::ptr::null_mut()) };
}

/// Ends the process with `sig`, as its default action does.
fn die_of(sig: c_int) -> ! {
    set_default(sig);
    // SAFETY: raise and _exit are async-signal-safe. (Our handler runs with SA_NODEFER, so the signal is not
    // blocked here, and raising it with the default action in place ends the process at once.)
    unsafe {
        libc::raise(sig);
        // Only reached if the program blocked the signal in its own handler's mask.
        libc::_exit(128 + sig)
    }
}
