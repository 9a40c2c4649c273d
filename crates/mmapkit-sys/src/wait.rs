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

/// Wakes up to `count` threads, in any process, waiting on `word`
/// (`u32::MAX`: every one). Returns how many were woken where the OS tells
/// (Linux), and `None` where it does not. A `count` of 0 wakes none and makes
/// no call (Linux's futex would wake one).
pub fn wake(word: &AtomicU32, count: u32) -> io::Result<Option<usize>> {
    if count == 0 {
        return Ok(Some(0));
    }
    os::futex_wake(word, count)
}

/// The count a wake passes to a kernel that reads it as a signed `int`
/// (Linux's `futex`, FreeBSD's `_umtx_op`): a count past `i32::MAX` would
/// arrive negative, and wake one thread instead of all.
#[cfg_attr(target_os = "macos", allow(dead_code))]
pub(crate) fn kernel_count(count: u32) -> u32 {
    count.min(i32::MAX as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_past_the_kernels_int_is_clamped_and_others_pass_through() {
        assert_eq!(kernel_count(u32::MAX), i32::MAX as u32);
        assert_eq!(kernel_count(i32::MAX as u32 + 1), i32::MAX as u32);
        assert_eq!(kernel_count(3), 3);
    }
}
