//! How an end waits for room or for a message: it spins, sleeps on the
//! ring's event, or spins and then sleeps, as its [`Wait`] says, and between
//! attempts keeps to its deadline and looks at whether the peer is alive (or
//! is told by the peer watch).

use std::time::{Duration, Instant};

use super::end::End;
use super::failure::Failure;
use super::options::Wait;
use crate::clock::{deadline, later};
use crate::event::Event;
use crate::peer_watch as watch;

impl End {
    /// Retries `attempt` until it yields, waiting on `event` as the strategy
    /// says (`ready` is a cheap look at whether `attempt` could succeed now),
    /// and fails on the deadline or when the peer is gone, after a
    /// `last_look` for what it left.
    ///
    /// The `timeout` counts from `since`, or else from the first look at the
    /// clock: at once when blocking, after 64 turns (a few microseconds) when
    /// spinning, so that a message that comes while spinning is taken without
    /// reading the clock at all. A spinning turn is the attempt and a pause;
    /// everything else is in [`pace`](Self::pace), out of line.
    #[inline(always)]
    pub(super) fn wait_for<T>(
        &self,
        event: &Event,
        timeout: Option<Duration>,
        since: Option<Instant>,
        ready: impl Fn() -> bool,
        mut attempt: impl FnMut() -> Result<Option<T>, Failure>,
        last_look: impl FnOnce() -> Result<Option<T>, Failure>,
    ) -> Result<T, Failure> {
        // (deadline, next liveness check), once the clock has been read.
        let mut clock = since.map(|s| (deadline(s, timeout), later(s, self.peer_check)));
        let mut spins: u32 = 0;
        loop {
            if let Some(value) = attempt()? {
                return Ok(value);
            }
            let spinning = match self.wait {
                Wait::Spin => true,
                Wait::Block => false,
                Wait::SpinThenBlock(n) => spins < n,
            };
            spins = spins.wrapping_add(u32::from(spinning));
            if spinning && spins % 1024 != 64 {
                std::hint::spin_loop();
                continue;
            }
            if self.pace(event, timeout, &mut clock, spinning, &ready)? == Paced::PeerGone {
                // One last look: the peer may have left work before it went.
                return last_look()?.ok_or_else(|| self.gone());
            }
        }
    }

    /// The part of a wait that reads the clock: the deadline, the peer's
    /// liveness, and (when not spinning) a nap on the event.
    #[inline(never)]
    fn pace(
        &self,
        event: &Event,
        timeout: Option<Duration>,
        clock: &mut Option<(Option<Instant>, Instant)>,
        spinning: bool,
        ready: &dyn Fn() -> bool,
    ) -> Result<Paced, Failure> {
        let now = Instant::now();
        let (deadline, next_check) = clock.get_or_insert((deadline(now, timeout), later(now, self.peer_check)));
        if deadline.is_some_and(|d| now >= d) {
            return Err(Failure::Timeout(timeout.unwrap_or_default()));
        }
        let woken = self.watch.as_ref().is_some_and(|w| w.take_wake());
        if woken || now >= *next_check {
            if self.peer_gone()? {
                return Ok(Paced::PeerGone);
            }
            *next_check = later(now, self.peer_check);
        }
        if spinning {
            std::hint::spin_loop();
        } else {
            // An end made before a fork has no watch in the child.
            let watch = self.watch.as_deref().filter(|_| watch::watching_here());
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let nap = match watch {
                // The watch looks at the peer: sleep until the deadline, if any.
                Some(_) => left,
                None => {
                    let until_check = next_check.saturating_duration_since(Instant::now());
                    Some(left.map_or(until_check, |left| left.min(until_check)))
                }
            };
            if let Some(watch) = watch {
                watch.set_sleeping(true);
            }
            event.wait_until(
                || ready() || watch.is_some_and(watch::Watched::woken),
                nap.map(|nap| nap.max(Duration::from_micros(50))),
            );
            if let Some(watch) = watch {
                watch.set_sleeping(false);
            }
        }
        Ok(Paced::Again)
    }
}

/// What a wait does after [`End::pace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Paced {
    /// Look again.
    Again,
    /// The peer is gone: one last look, then `PeerGone`.
    PeerGone,
}
