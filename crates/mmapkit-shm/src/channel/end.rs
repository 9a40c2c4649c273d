//! What a sender and a receiver share: the region, where the ring is, its checked
//! capacity, how the end waits, and its place in the peer watch. Attaching
//! claims the end's liveness byte and marks it attached; dropping the end
//! marks it closed and wakes the other side.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::failure::Failure;
use super::kind::Kind;
use super::options::{ChannelOptions, EarlyWake, Wait};
use super::peer::{self, PeerSeen};
use super::ring::{
    BELLS_OFFSET, Bells, END_ATTACHED, END_CLOSED, LOCKS_OFFSET, Locks, RING_HEADER_SIZE, RingHeader, TYPE_TAG_OFFSET,
    max_message,
};
use crate::bell::{self, BellSlot};
use crate::error::{Op, Result, ShmError};
use crate::layout::Layout;
use crate::peer_watch as watch;
use crate::pubsub::layout::TypeTag;
use crate::region::Region;
use crate::role::Role;

/// One end of a channel: the region, where the ring is, and its checked capacity.
pub(super) struct End {
    pub(super) region: Region,
    ring: *const RingHeader,
    pub(super) data: *mut u8,
    pub(super) capacity: usize,
    pub(super) role: Role,
    pub(super) wait: Wait,
    pub(super) peer_check: Duration,
    /// One-to-one, or many-to-many (whose ends hold their side's lock).
    pub(super) kind: Kind,
    /// The process's peer watch, for an end that may sleep: with it, a wait
    /// with no deadline sleeps with no timeout.
    pub(super) watch: Option<watch::Registration>,
    /// When a sender wakes the receiver before its commit.
    pub(super) early_wake: EarlyWake,
    /// The number of this end's readiness bell, once it has one (zero
    /// before): giving back the side's lock rings the side's other bells.
    pub(super) own_bell: AtomicU64,
}

// SAFETY: the raw pointers point into `region`, which the End owns; the
// shared words they reach are atomics, and the data bytes are handed out only
// through `&mut` borrows of the Sender or Receiver.
unsafe impl Send for End {}

impl End {
    /// Makes the channel's region with `make` (given its layout, its payload
    /// length and the payload's initialisation) and attaches as `role`.
    pub(super) fn create(
        make: impl FnOnce(Layout, usize, &mut dyn FnMut(*mut u8)) -> Result<Region>,
        options: &ChannelOptions,
        role: Role,
    ) -> Result<End> {
        let capacity = options.capacity.max(4096).next_power_of_two();
        let kind = options.kind;
        let message_type = options.message_type;
        let mut init = |payload: *mut u8| {
            // SAFETY: the tag lies inside the unpublished payload's header space, 8-aligned; TypeTag is valid for any
            // bytes.
            message_type.write(unsafe { &*payload.add(TYPE_TAG_OFFSET).cast::<TypeTag>() });
            // SAFETY: the zeroed payload holds a RingHeader (FromBytes, so zeroed is valid) and is not yet published.
            let ring = unsafe { &*payload.cast::<RingHeader>() };
            ring.capacity.0.store(capacity as u64, Ordering::Release);
            if kind == Kind::ManyToMany {
                // SAFETY: the lock area lies inside the unpublished payload; nobody can use the locks before the
                // region is published.
                let locks = unsafe { &*payload.add(LOCKS_OFFSET).cast::<Locks>() };
                // SAFETY: as above.
                let _ = unsafe { locks.send.init() };
                // SAFETY: as above.
                let _ = unsafe { locks.recv.init() };
            }
        };
        let region = make(kind.layout(), RING_HEADER_SIZE + capacity, &mut init)?;
        End::attach(region, options, role)
    }

    /// Attaches to a channel's region as `role`: checks the ring header,
    /// claims a liveness byte, and joins the peer watch if the end may sleep.
    pub(super) fn attach(region: Region, options: &ChannelOptions, role: Role) -> Result<End> {
        let describe = region.describe();
        let corrupt = |what: String| ShmError::Corrupt { region: describe.clone(), what };
        if region.payload_len() < RING_HEADER_SIZE {
            return Err(corrupt(format!("the payload of {} bytes cannot hold a ring header", region.payload_len())));
        }
        let ring = region.payload_ptr().cast::<RingHeader>().cast_const();
        // SAFETY: the payload is at least RING_HEADER_SIZE bytes, 128-aligned, mapped as long as `region`;
        // RingHeader is valid for any bytes.
        let header = unsafe { &*ring };
        let capacity = header.capacity();
        let fits = (RING_HEADER_SIZE as u64).checked_add(capacity).is_some_and(|n| n <= region.payload_len() as u64);
        if !capacity.is_power_of_two() || capacity < 64 || !fits {
            return Err(corrupt(format!("a ring capacity of {capacity} bytes does not fit the region")));
        }
        // SAFETY: the tag lies inside the ring header's space, checked above to be in the payload.
        let tag = unsafe { &*region.payload_ptr().add(TYPE_TAG_OFFSET).cast::<TypeTag>() };
        options.message_type.check(tag, &describe, max_message(capacity as usize), 8)?;
        let mine = if role == Role::Sender { &header.sender_state } else { &header.receiver_state };
        let claimed =
            peer::claim(region.file(), role, options.kind).map_err(|e| ShmError::os(Op::ClaimEnd, &describe, e))?;
        if !claimed {
            return Err(ShmError::EndTaken { region: describe, role });
        }
        if options.populate {
            // A hint: a kernel without MADV_POPULATE_WRITE maps pages as they are reached instead.
            let _ = region.populate(RING_HEADER_SIZE + (capacity as usize).min(options.capacity));
        }
        if options.wait != Wait::Spin {
            let may_sleep = if role == Role::Sender { &header.sender_may_sleep } else { &header.receiver_may_sleep };
            may_sleep.store(1, Ordering::SeqCst);
        }
        mine.store(END_ATTACHED, Ordering::Release);
        let watch = if options.wait == Wait::Spin || !options.peer_watch {
            None
        } else {
            let (peer_state, event) = match role {
                Role::Sender => (&header.receiver_state, &header.space_ready),
                Role::Receiver => (&header.sender_state, &header.data_ready),
            };
            // SAFETY: the End owns `region` (its descriptor, and its mapping where the event and the state word
            // are) and drops the registration first, so they outlive the look and the registration.
            unsafe {
                let look = peer::watch_look(&region, peer_state, role.other(), options.kind);
                watch::register(look, watch::Wake::Event(event), options.peer_check)
            }
        };
        Ok(End {
            data: region.payload_ptr().wrapping_add(RING_HEADER_SIZE),
            region,
            ring,
            capacity: capacity as usize,
            role,
            wait: options.wait,
            peer_check: options.peer_check,
            kind: options.kind,
            watch,
            early_wake: options.early_wake,
            own_bell: AtomicU64::new(0),
        })
    }

    /// The ring's header.
    #[inline]
    pub(super) fn ring(&self) -> &RingHeader {
        // SAFETY: checked in `attach`; mapped while `self.region` lives.
        unsafe { &*self.ring }
    }

    /// The bell slots of both sides.
    pub(super) fn bells(&self) -> &Bells {
        // SAFETY: the bells lie inside RING_HEADER_SIZE (checked in `attach`), 64-aligned in the 128-aligned
        // payload; Bells is atomics, valid for any bytes.
        unsafe { &*self.region.payload_ptr().add(BELLS_OFFSET).cast::<Bells>() }
    }

    /// The bell slots of `role`'s ends.
    pub(super) fn bells_of(&self, role: Role) -> &[BellSlot] {
        let bells = self.bells();
        if role == Role::Sender { &bells.senders } else { &bells.receivers }
    }

    /// The error for values in the ring that the protocol never writes.
    pub(super) fn corrupt(&self, what: String) -> Failure {
        Failure::Corrupt { region: self.region.describe(), what }
    }

    fn peer_state(&self) -> &AtomicU32 {
        match self.role {
            Role::Sender => &self.ring().receiver_state,
            Role::Receiver => &self.ring().sender_state,
        }
    }

    /// Whether the other end closed, or attached and then died (for a
    /// many-to-many channel: whether every end of the other kind is gone).
    pub(super) fn peer_gone(&self) -> Result<bool, Failure> {
        let peer = self.role.other();
        match peer::look_at_peer(self.region.file(), self.peer_state(), peer, self.kind) {
            Ok(PeerSeen::Here) => Ok(false),
            Ok(PeerSeen::Gone) => Ok(true),
            Ok(PeerSeen::BadState(word)) => Err(self.corrupt(format!("the {peer} state word holds {word}"))),
            Err(e) => Err(Failure::os(Op::CheckPeer, self.region.describe(), e)),
        }
    }

    /// The error for an operation that found the other end gone.
    pub(super) fn gone(&self) -> Failure {
        Failure::PeerGone { region: self.region.describe(), peer: self.role.other() }
    }
}

impl Drop for End {
    fn drop(&mut self) {
        // Out of the watch before anything else, while the region is mapped.
        self.watch = None;
        let (mine, theirs) = match self.role {
            Role::Sender => (&self.ring().sender_state, &self.ring().data_ready),
            Role::Receiver => (&self.ring().receiver_state, &self.ring().space_ready),
        };
        mine.store(END_CLOSED, Ordering::Release);
        theirs.notify_all();
        bell::ring(self.bells_of(self.role.other()));
    }
}
