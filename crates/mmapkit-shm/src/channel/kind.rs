//! The two kinds of channel: one sender and one receiver, or up to
//! [`MAX_ENDS`] of each. Their regions have different layouts, so an end of
//! one kind refuses a channel of the other.

use super::ring::RingHeader;
use crate::layout::Layout;

/// How many senders, and how many receivers, a many-to-many channel takes.
pub(super) const MAX_ENDS: u64 = 64;

/// One-to-one or many-to-many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// One sender and one receiver: no locks; the receiver waits on the
    /// sender's tail, and a sender may wake it early for a large message.
    OneToOne,
    /// Up to [`MAX_ENDS`] of each: an end holds its side's lock from
    /// reserving to committing, or from receiving to releasing.
    ManyToMany,
}

impl Kind {
    /// The layout a region of this kind of channel carries.
    pub(crate) fn layout(self) -> Layout {
        Layout::of::<RingHeader>(match self {
            Kind::OneToOne => "mmapkit-shm spsc channel v3",
            Kind::ManyToMany => "mmapkit-shm mpmc channel v2",
        })
    }

    /// How many ends of each role the channel takes: one liveness byte each.
    pub(super) fn ends(self) -> u64 {
        match self {
            Kind::OneToOne => 1,
            Kind::ManyToMany => MAX_ENDS,
        }
    }
}
