//! Asking the CPU to bring a cache line close before it is read.

/// Starts loading the cache line holding `ptr` into the nearest cache, and
/// returns at once. A hint: it never faults, reads nothing into the program
/// and changes no memory, so any address is allowed, mapped or not, even one
/// another thread or process is writing. Does nothing off x86_64.
#[inline]
pub fn prefetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is in every x86_64 CPU, and `prefetcht0` neither dereferences nor faults on any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

#[cfg(test)]
mod tests {
    use super::prefetch;

    #[test]
    fn any_address_is_a_harmless_hint() {
        let bytes = [7u8; 256];
        for line in (0..bytes.len()).step_by(64) {
            prefetch(bytes[line..].as_ptr());
        }
        // Addresses nothing is mapped at do not fault either.
        prefetch(std::ptr::null());
        prefetch(usize::MAX as *const u8);
        assert_eq!(bytes, [7u8; 256], "a prefetch changes nothing");
    }
}
