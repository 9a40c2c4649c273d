//! This process, its children after `fork`, other processes' existence, and
//! the CPU a thread runs on.

use std::io;

use crate::os;

/// This process's id.
pub fn pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// This process's effective group id.
pub fn effective_gid() -> u32 {
    rustix::process::getegid().as_raw()
}

/// Whether this process is in group `gid`: its effective group or one of its
/// supplementary groups (`getgroups`).
pub fn in_group(gid: u32) -> io::Result<bool> {
    if effective_gid() == gid {
        return Ok(true);
    }
    Ok(rustix::process::getgroups()?.iter().any(|g| g.as_raw() == gid))
}

/// Whether a process with id `pid` exists (`kill(pid, 0)`): one that has
/// ended but is not yet reaped by its parent still does.
pub fn exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        // It exists, but belongs to someone we may not signal.
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Registers `handler` to run in the child process after a `fork`
/// (`pthread_atfork`), for state that must not be trusted there, such as
/// threads the parent started. It stays registered for the life of the
/// process. The handler runs in a child of a possibly multi-threaded
/// process, so it may only do what is async-signal-safe (storing to an
/// atomic is). A child made by a raw `clone` system call or by `_Fork`
/// does not run it.
pub fn on_fork_in_child(handler: extern "C" fn()) -> io::Result<()> {
    // SAFETY: pthread_atfork only records the handler; a plain `extern "C" fn()` is what it calls.
    match unsafe { libc::pthread_atfork(None, None, Some(handler)) } {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code)),
    }
}

/// Restricts the calling thread to one CPU (`sched_setaffinity` on Linux and
/// FreeBSD; `Unsupported` on macOS, which has no thread affinity).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    os::pin_current_thread(cpu)
}
