//! Whether the other end of a channel is alive: its state word in the ring
//! header, then the byte-range lock each end holds on a liveness byte of the
//! region's file, which the kernel releases when the end's process dies.
//!
//! The liveness bytes sit far past the end of the file: senders' from
//! `LOCK_BASE`, receivers' from `LOCK_BASE + MAX_ENDS`, one per end a
//! channel of its kind takes.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use mmapkit_sys::range_lock;

use super::kind::{Kind, MAX_ENDS};
use super::ring::{END_ATTACHED, END_CLOSED, END_NONE};
use crate::peer_watch::Look;
use crate::readiness::MapPtr;
use crate::region::Region;
use crate::role::Role;

/// The first liveness byte.
const LOCK_BASE: u64 = 1 << 40;

/// The first of `role`'s liveness bytes.
fn lock_base(role: Role) -> u64 {
    match role {
        Role::Sender => LOCK_BASE,
        Role::Receiver => LOCK_BASE + MAX_ENDS,
    }
}

/// Claims a liveness byte for an end of `role` on the region whose file is
/// `file`: the only one of a one-to-one channel, the first free one of a
/// many-to-many channel's. `false` if every one is taken.
pub(super) fn claim(file: BorrowedFd<'_>, role: Role, kind: Kind) -> io::Result<bool> {
    for slot in 0..kind.ends() {
        if range_lock::try_lock_byte(file, lock_base(role) + slot)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What a look at the other kind of end found.
pub(super) enum PeerSeen {
    /// Not attached yet, or attached and alive (for many: at least one).
    Here,
    /// Closed, or attached and dead (for many: every one).
    Gone,
    /// The state word holds no state.
    BadState(u32),
}

/// Looks at the `peer` ends of the channel whose region is `file`, through
/// their state word `state` and their liveness bytes. A many-to-many
/// channel's state word says only what the last end of the role to attach
/// or close did, so there the bytes decide even after a close.
pub(super) fn look_at_peer(file: BorrowedFd<'_>, state: &AtomicU32, peer: Role, kind: Kind) -> io::Result<PeerSeen> {
    match state.load(Ordering::Acquire) {
        END_NONE => Ok(PeerSeen::Here),
        END_CLOSED if kind == Kind::OneToOne => Ok(PeerSeen::Gone),
        END_ATTACHED | END_CLOSED => {
            let alive = range_lock::range_locked_by_other(file, lock_base(peer), kind.ends())?;
            Ok(if alive { PeerSeen::Here } else { PeerSeen::Gone })
        }
        other => Ok(PeerSeen::BadState(other)),
    }
}

/// A look at the `peer` ends of the channel in `region`, through their state
/// word `state`, for the peer watch: whether they are here (an error in the
/// look counts as not, which wakes the end to look itself).
///
/// # Safety
///
/// `region`'s descriptor and mapping (where `state` is) stay alive while the
/// look is kept.
pub(super) unsafe fn watch_look(region: &Region, state: &AtomicU32, peer: Role, kind: Kind) -> Look {
    let fd = region.file().as_raw_fd();
    let state = MapPtr(state as *const AtomicU32);
    Box::new(move || {
        // SAFETY: the caller keeps the descriptor open and the mapping alive while the look is kept.
        let (file, state) = unsafe { (BorrowedFd::borrow_raw(fd), state.get()) };
        matches!(look_at_peer(file, state, peer, kind), Ok(PeerSeen::Here))
    })
}
