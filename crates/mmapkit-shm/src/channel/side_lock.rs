//! The side locks of a many-to-many channel: senders hold theirs from
//! reserving to committing, receivers theirs from receiving to releasing.
//! A one-to-one channel has none.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mmapkit_sys::robust_mutex::{LockOutcome, RawRobustMutex};

use super::end::End;
use super::failure::Failure;
use super::kind::Kind;
use super::ring::{LOCKS_OFFSET, Locks};
use crate::error::Op;
use crate::region::Region;
use crate::role::Role;

/// Whether an end holds its side's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SideLock {
    /// A one-to-one channel: there is no lock.
    Unneeded,
    /// Taken; `after_death` if its last holder died holding it.
    Held { after_death: bool },
    /// Another end of this side kept it for the whole timeout.
    Busy,
}

impl End {
    fn locks(&self) -> &Locks {
        // SAFETY: a many-to-many ring's payload holds the locks at LOCKS_OFFSET (inside RING_HEADER_SIZE, checked
        // in `attach`), initialised before the region was published, so they are in bounds and initialised.
        unsafe { &*self.region.payload_ptr().add(LOCKS_OFFSET).cast::<Locks>() }
    }

    fn role_lock(&self) -> &RawRobustMutex {
        let locks = self.locks();
        if self.role == Role::Sender { &locks.send } else { &locks.recv }
    }

    /// Takes this role's lock (many-to-many channels only), waiting at most `timeout`.
    pub(super) fn take_role_lock(&self, timeout: Option<Duration>) -> Result<SideLock, Failure> {
        match self.kind {
            Kind::OneToOne => Ok(SideLock::Unneeded),
            Kind::ManyToMany => take(self.role_lock(), &self.region, timeout),
        }
    }

    /// Gives back this role's lock, taken with [`take_role_lock`](Self::take_role_lock),
    /// and rings the bells of this side's other ends, which may be waiting
    /// for it (for room, or a message, that the holder kept from them).
    pub(super) fn give_role_lock(&self) {
        give(self.role_lock());
        let ring = self.ring();
        let may_sleep = if self.role == Role::Sender { &ring.sender_may_sleep } else { &ring.receiver_may_sleep };
        if may_sleep.load(Ordering::Relaxed) != 0 {
            crate::bell::ring_except(self.bells_of(self.role), self.own_bell.load(Ordering::Relaxed));
        }
    }
}

/// Takes a robust lock, waiting at most `timeout` (`None`: as long as it
/// takes; zero: one try). A holder's death is repaired by construction (the
/// ring's positions change only at commit and release; a sender that died
/// between its commit and its store of `tail` is caught up with by
/// [`catch_up`](super::catch_up::catch_up)). `Busy` if another holder kept
/// it for the whole timeout.
fn take(lock: &RawRobustMutex, region: &Region, timeout: Option<Duration>) -> Result<SideLock, Failure> {
    // SAFETY: the locks are initialised by the creator before publishing.
    match unsafe { lock.lock(timeout) }.map_err(|e| Failure::os(Op::Lock, region.describe(), e))? {
        LockOutcome::Acquired => Ok(SideLock::Held { after_death: false }),
        LockOutcome::OwnerDied => {
            // SAFETY: we hold it, taken with OwnerDied.
            unsafe { lock.make_consistent() }.map_err(|e| Failure::os(Op::Recover, region.describe(), e))?;
            Ok(SideLock::Held { after_death: true })
        }
        LockOutcome::NotRecoverable => Err(Failure::NotRecoverable { region: region.describe() }),
        LockOutcome::Busy => Ok(SideLock::Busy),
    }
}

/// Releases a robust lock taken with [`take`].
fn give(lock: &RawRobustMutex) {
    // SAFETY: callers hold the lock, on this thread (the guards are not Send).
    let _ = unsafe { lock.unlock() };
}
