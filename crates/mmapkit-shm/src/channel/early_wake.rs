//! When a sender wakes a sleeping receiver before its message is written:
//! for which messages ([`EARLY_WAKE_LEN`]), and what the policy
//! ([`EarlyWake`]) decides on ([`WakeCost`]).

use std::time::Duration;

use super::options::EarlyWake;

/// A one-to-one channel's messages of this many bytes or more may wake a
/// sleeping receiver when they are reserved, not only when they are
/// committed, so that the receiver's CPU starts coming out of idle while the
/// message is written. To the receiver this is a spurious wake-up: it
/// looks, finds nothing yet, and sleeps until the commit's notify, unless
/// the commit came first. Many-to-many channels never do it: the commit's
/// notify could wake another receiver than the early one, and the senders'
/// lock is held across both.
///
/// It pays where idle CPUs halt and costs where they poll, so by default
/// the sender does it only while waking the receiver is slow
/// ([`EarlyWake::WhenWakingIsSlow`]). The measurements behind this are in
/// docs/performance.md, "Waking the receiver early".
pub(super) const EARLY_WAKE_LEN: usize = 4096;

/// A wake-up system call this slow (smoothed) means the receiver's CPU was
/// halted and had to be interrupted. The wake-up times this bar separates
/// are in docs/performance.md, "Waking the receiver early".
const SLOW_WAKE: Duration = Duration::from_micros(3);

/// Longer wake-ups count as this long: the sender may have been preempted
/// in the call, and one such sample should not hold the average up.
const LONGEST_COUNTED: Duration = Duration::from_micros(10);

/// How long the sender's wake-up system calls that found the receiver
/// asleep took, smoothed over the last eight or so.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct WakeCost {
    smoothed_ns: u32,
}

impl WakeCost {
    /// Folds in one wake-up that took `took`.
    pub(super) fn note(&mut self, took: Duration) {
        let took = took.min(LONGEST_COUNTED).as_nanos() as u64;
        self.smoothed_ns = ((u64::from(self.smoothed_ns) * 7 + took) / 8) as u32;
    }

    /// Whether `policy` wakes the receiver early, given the wake-ups so far.
    pub(super) fn wakes_early(self, policy: EarlyWake) -> bool {
        match policy {
            EarlyWake::WhenWakingIsSlow => Duration::from_nanos(self.smoothed_ns.into()) >= SLOW_WAKE,
            EarlyWake::Always => true,
            EarlyWake::Never => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_wake_ups_turn_it_on_and_fast_ones_off_again() {
        let mut cost = WakeCost::default();
        assert!(!cost.wakes_early(EarlyWake::WhenWakingIsSlow), "a fresh sender has seen no slow wake-up");
        assert!(cost.wakes_early(EarlyWake::Always));
        let mut slow_needed = 0;
        while !cost.wakes_early(EarlyWake::WhenWakingIsSlow) {
            cost.note(Duration::from_nanos(6_500));
            slow_needed += 1;
            assert!(slow_needed < 100, "6.5 µs wake-ups never counted as slow");
        }
        // Smoothed over about eight: one slow wake-up is not enough, a dozen is.
        assert!((2..=12).contains(&slow_needed), "{slow_needed} slow wake-ups");
        let mut fast_needed = 0;
        while cost.wakes_early(EarlyWake::WhenWakingIsSlow) {
            cost.note(Duration::from_nanos(1_000));
            fast_needed += 1;
            assert!(fast_needed < 100, "1 µs wake-ups never counted as fast");
        }
        assert!(!cost.wakes_early(EarlyWake::Never));
        // A wake-up of any length counts as at most 10 µs: one preemption
        // in the call does not hold waking early on for long.
        cost.note(Duration::MAX);
        assert!(cost.wakes_early(EarlyWake::WhenWakingIsSlow));
        let mut back = 0;
        while cost.wakes_early(EarlyWake::WhenWakingIsSlow) {
            cost.note(Duration::from_nanos(1_000));
            back += 1;
        }
        assert!(back <= 6, "{back} fast wake-ups to forget one endless one");
    }
}
