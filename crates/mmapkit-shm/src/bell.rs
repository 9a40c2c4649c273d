//! Bells: how a peer process wakes an end that waits in a poll loop or on
//! an async runtime, with no thread of the waiting process in between.
//!
//! The waiting end owns a [`Doorbell`] (a named FIFO, see
//! `mmapkit_sys::bell_fifo`) and, before it waits, leaves the bell's number
//! in a [`BellSlot`] of the shared memory (arming it), then looks once more at
//! what it waits for. A peer that makes that true looks at the slots after
//! it, takes the number out and rings the bell: one byte written into the
//! FIFO. A full fence sits between the store and the look on both sides (as
//! in [`Event`](crate::event::Event)), so one of the two always sees the
//! other: the end finds what it waits for, or the peer finds the end's
//! number. The number is taken out by the ring, so an arming costs the peer
//! at most one write, and an end that does not wait costs it a load.
//!
//! A peer that writes a slot can make a ringer ring another of this user's
//! bells (a spurious wake-up) or none (the end then waits until its peer
//! check or timeout): never write anywhere else (the ringer opens only
//! FIFOs of this user's, at paths it makes from the number).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::sync::{Mutex, OnceLock};

use mmapkit_sys::bell_fifo::{self, BellFifo};
use zerocopy::{FromBytes, KnownLayout};

/// A place in shared memory where a waiting end leaves its bell's number
/// (zero: none).
#[derive(FromBytes, KnownLayout, Debug)]
#[repr(transparent)]
pub(crate) struct BellSlot(AtomicU64);

/// Rings the bells armed in `slots` and empties them. Call it after making
/// true what their ends wait for.
pub(crate) fn ring<'a>(slots: impl IntoIterator<Item = &'a BellSlot>) {
    ring_except(slots, 0);
}

/// [`ring`], leaving bell `own` (the caller's own, zero for none) alone.
pub(crate) fn ring_except<'a>(slots: impl IntoIterator<Item = &'a BellSlot>, own: u64) {
    fence(Ordering::SeqCst);
    for slot in slots {
        let armed = slot.0.load(Ordering::Relaxed);
        if armed != 0 && armed != own {
            let id = slot.0.swap(0, Ordering::SeqCst);
            if id != 0 {
                ring_id(id);
            }
        }
    }
}

/// Descriptors of bells this process rang, kept for the next ring (the
/// newest last).
static RINGERS: Mutex<Vec<(u64, OwnedFd)>> = Mutex::new(Vec::new());
/// How many descriptors [`RINGERS`] keeps.
const KEPT: usize = 32;

/// Rings bell `id`: through a kept descriptor, or one opened now. A bell
/// that cannot be opened (its end is gone) is rung by nobody.
fn ring_id(id: u64) {
    // A list held by another thread (or by one that was forked away)
    // is not waited for: the bell is opened afresh.
    let mut kept = RINGERS.try_lock().ok();
    if let Some(kept) = kept.as_mut()
        && let Some(at) = kept.iter().position(|(kept_id, _)| *kept_id == id)
    {
        if bell_fifo::ring(kept[at].1.as_fd()).is_ok() {
            return;
        }
        kept.remove(at);
    }
    let Ok(fd) = bell_fifo::open_bell(id) else { return };
    let _ = bell_fifo::ring(fd.as_fd());
    if let Some(kept) = kept.as_mut() {
        if kept.len() == KEPT {
            kept.remove(0);
        }
        kept.push((id, fd));
    }
}

/// A bell this process owns, and its number.
#[derive(Debug)]
pub(crate) struct Doorbell {
    fifo: BellFifo,
    id: u64,
}

impl Doorbell {
    /// A new bell, numbered by this process's id and a count that starts
    /// at a random place (so that a later process with the same pid does not
    /// take the numbers that a ringer may still hold descriptors for).
    pub(crate) fn new() -> std::io::Result<Doorbell> {
        static COUNT: OnceLock<AtomicU32> = OnceLock::new();
        let count = COUNT.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            AtomicU32::new(std::collections::hash_map::RandomState::new().build_hasher().finish() as u32)
        });
        // Never zero, which means "no bell" in a slot (nor a number taken twice).
        let n = std::iter::repeat_with(|| count.fetch_add(1, Ordering::Relaxed)).find(|&n| n != 0).unwrap_or(1);
        let id = (u64::from(mmapkit_sys::process::pid()) << 32) | u64::from(n);
        Ok(Doorbell { fifo: BellFifo::create(id)?, id })
    }

    /// The bell's number.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Leaves this bell's number in one of `slots` (the one that holds it
    /// already, or a free one); whether there was one. The caller then looks
    /// again at what it waits for.
    pub(crate) fn arm(&self, slots: &[BellSlot]) -> bool {
        let armed = slots.iter().any(|slot| slot.0.load(Ordering::SeqCst) == self.id)
            || slots.iter().any(|slot| slot.0.compare_exchange(0, self.id, Ordering::SeqCst, Ordering::SeqCst).is_ok());
        fence(Ordering::SeqCst);
        armed
    }

    /// Takes this bell's number out of `slots`, wherever it is.
    pub(crate) fn disarm(&self, slots: &[BellSlot]) {
        for slot in slots {
            let _ = slot.0.compare_exchange(self.id, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// Rings this bell from its own process.
    pub(crate) fn ring_here(&self) -> std::io::Result<()> {
        self.fifo.ring()
    }

    /// Drains the bell.
    pub(crate) fn clear(&self) -> std::io::Result<()> {
        self.fifo.clear()
    }
}

impl AsFd for Doorbell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fifo.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmapkit_sys::notify_fd::wait_readable;
    use std::time::Duration;

    fn readable(bell: &Doorbell) -> bool {
        wait_readable(bell.as_fd(), Some(Duration::ZERO)).unwrap()
    }

    fn slots(n: usize) -> Vec<BellSlot> {
        (0..n).map(|_| BellSlot(AtomicU64::new(0))).collect()
    }

    #[test]
    fn an_armed_bell_is_rung_once_and_an_unarmed_one_not_at_all() {
        let bell = Doorbell::new().unwrap();
        let slots = slots(1);
        ring(&slots);
        assert!(!readable(&bell), "not armed");
        assert!(bell.arm(&slots));
        ring(&slots);
        assert!(readable(&bell));
        bell.clear().unwrap();
        ring(&slots);
        assert!(!readable(&bell), "the ring took the number out");
        assert!(bell.arm(&slots));
        bell.disarm(&slots);
        ring(&slots);
        assert!(!readable(&bell), "disarmed");
    }

    #[test]
    fn bells_share_a_table_until_it_is_full_and_each_armed_one_is_rung() {
        let bells: Vec<Doorbell> = (0..3).map(|_| Doorbell::new().unwrap()).collect();
        let slots = slots(2);
        assert!(bells[0].arm(&slots));
        assert!(bells[0].arm(&slots), "arming twice takes one slot");
        assert!(bells[1].arm(&slots));
        assert!(!bells[2].arm(&slots), "two slots, two bells");
        ring(&slots);
        assert!(readable(&bells[0]) && readable(&bells[1]) && !readable(&bells[2]));
        assert!(bells[2].arm(&slots), "the ring freed the slots");
    }

    #[test]
    fn a_number_that_names_no_bell_rings_nothing_and_fails_nothing() {
        let slots = slots(1);
        let gone = Doorbell::new().unwrap();
        assert!(gone.arm(&slots));
        drop(gone);
        ring(&slots);
        slots[0].0.store(u64::MAX, Ordering::SeqCst);
        ring(&slots);
        assert_eq!(slots[0].0.load(Ordering::SeqCst), 0);
    }
}
