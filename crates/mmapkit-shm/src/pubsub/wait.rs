//! How a publisher or subscriber (or a service's server or client) waits: it spins, sleeps on the board's
//! event, or spins and then sleeps, as its [`Wait`] says, keeps to its
//! deadline, and every `peer_check` tells its attempt to look at whether the
//! peers it waits on are alive. A sleep is a futex wait timed for the next
//! look, so nothing a peer does (or fails to do) makes it endless.

use std::time::{Duration, Instant};

use super::board::Board;
use crate::channel::Wait;
use crate::event::Event;

impl Board {
    /// [`wait_for`] with this end's way of waiting and peer check.
    pub(super) fn wait_for<T, E>(
        &self,
        event: &Event,
        timeout: Option<Duration>,
        ready: impl Fn() -> bool,
        attempt: impl FnMut(bool) -> Result<Option<T>, E>,
        timed_out: impl FnOnce(Duration) -> E,
    ) -> Result<T, E> {
        wait_for(self.wait, self.peer_check, event, timeout, ready, attempt, timed_out)
    }
}

/// Retries `attempt` until it yields (its argument: whether to look at the
/// peers this time, which comes every `peer_check` from the first pause),
/// waiting on `event` as `wait` says until `ready` says an attempt could
/// succeed; `timed_out` makes the error for a passed deadline.
pub(crate) fn wait_for<T, E>(
    wait: Wait,
    peer_check: Duration,
    event: &Event,
    timeout: Option<Duration>,
    ready: impl Fn() -> bool,
    mut attempt: impl FnMut(bool) -> Result<Option<T>, E>,
    timed_out: impl FnOnce(Duration) -> E,
) -> Result<T, E> {
    let mut spins: u32 = 0;
    // (deadline, next look at the peers), once the clock has been read.
    let mut clock: Option<(Option<Instant>, Instant)> = None;
    let mut look = false;
    loop {
        if let Some(value) = attempt(look)? {
            return Ok(value);
        }
        look = false;
        let spinning = match wait {
            Wait::Spin => true,
            Wait::Block => false,
            Wait::SpinThenBlock(n) => spins < n,
        };
        spins = spins.saturating_add(1);
        if spinning && spins % 256 != 1 {
            std::hint::spin_loop();
            continue;
        }
        let now = Instant::now();
        // The first look at the peers (a system call) comes one peer check
        // after the first pause, so that a wait that ends soon makes none.
        let (deadline, next_look) = clock.get_or_insert_with(|| {
            (timeout.and_then(|t| now.checked_add(t)), now.checked_add(peer_check).unwrap_or(now))
        });
        if deadline.is_some_and(|d| now >= d) {
            return Err(timed_out(timeout.unwrap_or_default()));
        }
        if now >= *next_look {
            look = true;
            *next_look = now.checked_add(peer_check).unwrap_or(now);
            continue;
        }
        if !spinning {
            let until_look = next_look.saturating_duration_since(now);
            let nap = deadline.map_or(until_look, |d| d.saturating_duration_since(now).min(until_look));
            event.wait_until(&ready, Some(nap.max(Duration::from_micros(50))));
        }
    }
}
