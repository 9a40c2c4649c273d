//! Per-operation times with the clock's own cost taken off, so that fast
//! operations are not reported as slow as the clock.

use std::time::Instant;

/// What reading the clock twice costs, in nanoseconds (the median of many
/// tries): subtracted from every per-operation time, so that fast operations
/// are not reported as slow as the clock.
pub fn clock_overhead_ns() -> u64 {
    static OVERHEAD: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *OVERHEAD.get_or_init(|| {
        let mut samples: Vec<u64> = (0..2_001)
            .map(|_| {
                let start = Instant::now();
                start.elapsed().as_nanos() as u64
            })
            .collect();
        samples.sort_unstable();
        samples[samples.len() / 2]
    })
}

/// The time since `start`, less the clock's own cost.
pub fn op_time(start: Instant) -> u64 {
    (start.elapsed().as_nanos() as u64).saturating_sub(clock_overhead_ns())
}
