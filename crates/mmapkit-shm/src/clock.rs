//! Instants a wait counts to, kept to what the clock can name.

use std::time::{Duration, Instant};

/// When a wait of `timeout` from `start` ends: never for `None`, nor for a
/// timeout past what the clock can name.
pub(crate) fn deadline(start: Instant, timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| start.checked_add(t))
}

/// `start + wait`, or a year from `start` if that is past what the clock can
/// name (and `start` itself if even that is).
pub(crate) fn later(start: Instant, wait: Duration) -> Instant {
    start.checked_add(wait).or_else(|| start.checked_add(Duration::from_secs(365 * 24 * 3600))).unwrap_or(start)
}
