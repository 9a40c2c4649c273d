//! Waiting on a 32-bit word in shared memory until another process changes
//! it: `futex` on Linux, `__ulock_wait` / `__ulock_wake` with the shared
//! flag on macOS, `_umtx_op` (`UMTX_OP_WAIT_UINT` / `UMTX_OP_WAKE`) on
//! FreeBSD. The word must lie in a `MAP_SHARED` mapping for other processes'
//! wake-ups to reach it.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use crate::os;

/// Blocks while `word` holds `expected`, for at most `timeout` (`None`:
/// until woken). May return early (a wake-up, a signal, the value changed
/// first, or the timeout): callers check the word again.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    os::futex_wait(word, expected, timeout)
}

/// Wakes up to `count` threads, in any process, waiting on `word`. Returns
/// how many were woken where the OS tells (Linux), and `None` where it does
/// not.
pub fn wake(word: &AtomicU32, count: u32) -> io::Result<Option<usize>> {
    os::futex_wake(word, count)
}
