//! The process-wide SIGBUS handler.
//!
//! Installed once with `SA_SIGINFO | SA_ONSTACK | SA_NODEFER`. For each fault
//! the kernel raises (not a signal another process sent) it asks the hook the
//! fault guard registered whether the address is one it repairs; if not, it
//! hands the signal to whatever handler was installed before, the way that
//! handler expects, or, where there was none, restores the default action so
//! the process dies of SIGBUS exactly as it would have without mmapkit.
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
static PREVIOUS: OnceLock<PreviousAction> = OnceLock::new();
static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();

/// A handler installed with `SA_SIGINFO`.
type SigInfoHandler = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);

/// The SIGBUS action that was in place before ours.
struct PreviousAction(libc::sigaction);

// SAFETY: a sigaction is plain data (a handler address, flags and a mask); it
// is written once before our handler is installed and only read afterwards.
unsafe impl Sync for PreviousAction {}
// SAFETY: as above.
unsafe impl Send for PreviousAction {}

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
    let _ = PREVIOUS.set(PreviousAction(unsafe { previous.assume_init() }));

    // SAFETY: all-zero bytes are a valid sigaction (no handler, empty mask, no flags).
    let mut action: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    action.sa_sigaction = on_sigbus as SigInfoHandler as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is fully initialised and names a handler with the SA_SIGINFO signature; the old action is not asked for.
    if unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL));
    }
    Ok(())
}

extern "C" fn on_sigbus(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: for an SA_SIGINFO handler the kernel passes a valid siginfo.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // A positive si_code means the kernel raised it for a fault; zero or less
    // means a process sent it (kill, sigqueue), which is never ours to repair.
    if code > 0 && HOOK.get().is_some_and(|hook| hook(addr, code)) {
        return;
    }
    chain(sig, info, context, code);
}

/// Passes a signal the hook declined to the previous action.
fn chain(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void, code: i32) {
    let previous = PREVIOUS.get().map(|p| &p.0);
    match previous {
        Some(prev) if prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN => {
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
        _ => {
            // No handler before ours: restore the default action. Returning
            // re-runs the faulting access, which now kills the process with
            // SIGBUS; a signal that was sent, not raised by a fault, is raised
            // again so that it is just as fatal.
            // SAFETY: all-zero bytes are a valid sigaction; SIG_DFL is 0.
            let mut default: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
            default.sa_sigaction = libc::SIG_DFL;
            // SAFETY: `default` is a valid action; sigaction and raise are async-signal-safe.
            unsafe {
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
                if code <= 0 {
                    libc::raise(libc::SIGBUS);
                }
            }
        }
    }
}
