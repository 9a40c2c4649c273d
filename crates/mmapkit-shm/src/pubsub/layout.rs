//! The board's layout in shared memory and the checks on every value a peer
//! can write.
//!
//! The payload of a publish-subscribe region is laid out as:
//!
//! ```text
//! 0      BoardHeader (geometry, tail, events, flags, message type)   1024 bytes
//! 768      the publishers' robust lock (inside the header's space)
//! 1024   subscriber entries: `subscribers` x 128 bytes
//!          cursor u64 (BUSY bit 63) | state u32 | overflow u32 | pid u32 |
//!          pad u32 | bell slot u64
//! ...    slots: `slots` x (64 + slot_size) bytes
//!          seq+1 u64 | len u64 | padding to 64 | slot_size data bytes
//! ```
//!
//! Messages are numbered from 0; `tail` is the number of the next one. The
//! message numbered `s` lives in slot `s % slots`, whose first word holds
//! `s + 1` once it is written (0: never written). A ring of capacity `C`
//! has `C + 1` slots: a publisher writing message `s` overwrites message
//! `s - C - 1`, and does so only once every attached subscriber's cursor is
//! past it. The spare slot is what lets a late joiner take the last `C`
//! messages without a lock: at most one message is being written at any
//! moment (the publishers' lock), and it never overwrites any of the last
//! `C` published.
//!
//! A subscriber's cursor is the number of the next message it reads: every
//! message below it is released. While it holds a message it sets the
//! cursor's `BUSY` bit (compare-and-swap from the plain cursor), and clears
//! it with the cursor moved one on when it lets go. A publisher finding a
//! lose-oldest subscriber's cursor in its way moves it (compare-and-swap
//! from the plain cursor, so never while it is busy) to the oldest message
//! it keeps; the subscriber reads the jump as `Lagged`. A backpressure
//! subscriber's cursor is moved only by itself.
//!
//! A publisher keeps the lowest cursor its last look at the entries found,
//! and looks again only when message `s` would overwrite one at or past it,
//! or a subscriber has joined since (`joins`): cursors only grow, except a
//! joiner's, which steps back over its history. A publisher that had not
//! seen the join may have gone on past it; the joiner then raises its cursor
//! to the oldest message still kept, and until it does, a publisher that
//! finds a cursor more than a ring behind treats it as in its way (moves a
//! lose-oldest one on, waits for a backpressure one).
//!
//! Everything here is read once into a local and checked before it is
//! used: the geometry when an end attaches, each slot's number and length
//! before a message is lent out, each cursor before the publisher acts on
//! it. Positions are compared with wrapping-aware arithmetic that refuses
//! distances over the ring's size.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use zerocopy::{FromBytes, KnownLayout};

use crate::bell::BellSlot;
use crate::event::Event;

/// Bytes before the subscriber entries.
pub(crate) const BOARD_HEADER_SIZE: usize = 1024;
/// Where the publishers' lock sits, inside the header's space.
pub(crate) const LOCK_OFFSET: usize = 768;
/// Bytes per subscriber entry.
pub(crate) const ENTRY_SIZE: usize = 128;
/// Bytes before a slot's data.
pub(crate) const SLOT_HEADER: usize = 64;
/// The most subscribers a board takes.
pub(crate) const MAX_SUBSCRIBERS: u64 = 64;
/// The most publishers a board takes at once.
pub(crate) const MAX_PUBLISHERS: u64 = 64;
/// The most messages a ring keeps.
pub(crate) const MAX_CAPACITY: u64 = 1 << 24;
/// The longest message a slot holds.
pub(crate) const MAX_SLOT: u64 = 1 << 30;
/// Set in a cursor while its subscriber holds the message it points at.
pub(crate) const BUSY: u64 = 1 << 63;
/// The longest type name a board's header keeps.
pub(crate) const TYPE_NAME_LEN: usize = 192;

/// A subscriber entry's state (low byte; the rest counts attachments).
pub(crate) const ENTRY_FREE: u32 = 0;
pub(crate) const ENTRY_ATTACHED: u32 = 1;

/// A subscriber entry's overflow policy word.
pub(crate) const OVERFLOW_BACKPRESSURE: u32 = 0;
pub(crate) const OVERFLOW_LOSE_OLDEST: u32 = 1;

#[derive(FromBytes, KnownLayout)]
#[repr(C, align(128))]
pub(crate) struct Line<T>(pub T);

/// What the creator sets once, before publishing the region.
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub(crate) struct Geometry {
    /// Slots in the ring (its capacity plus one).
    pub slots: AtomicU64,
    /// Data bytes per slot, a multiple of 64.
    pub slot_size: AtomicU64,
    /// Subscriber entries.
    pub subscribers: AtomicU64,
}

/// The message type a board was made for: a zeroed tag is raw bytes.
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub(crate) struct TypeTag {
    pub size: AtomicU64,
    pub align: AtomicU64,
    pub fingerprint: AtomicU64,
    pub name_len: AtomicU32,
    pub _pad: u32,
    pub name: [u8; TYPE_NAME_LEN],
}

/// The board's control block.
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub(crate) struct BoardHeader {
    pub geometry: Line<Geometry>,
    /// The number of the next message to publish.
    pub tail: Line<AtomicU64>,
    /// Subscribers sleep here for a message.
    pub data_ready: Event,
    /// Publishers sleep here for a subscriber to move on.
    pub space_ready: Event,
    /// Nonzero once a subscriber (publisher) that may sleep has attached;
    /// until then the other side skips notifying.
    pub subscribers_may_sleep: AtomicU32,
    pub publishers_may_sleep: AtomicU32,
    /// Nonzero once any publisher has attached: before that, no publisher
    /// alive is "not yet", not "gone".
    pub publishers_seen: AtomicU32,
    /// Bumped by every subscriber that attaches: a publisher's record of the
    /// lowest cursor holds until then (cursors only grow otherwise).
    pub joins: AtomicU32,
    /// Nonzero once a subscriber has asked for a readiness descriptor:
    /// publishers then ring the entries' bells.
    pub subscriber_bells: AtomicU32,
    pub message_type: TypeTag,
}

const _: () = assert!(size_of::<BoardHeader>() <= LOCK_OFFSET);
const _: () = assert!(LOCK_OFFSET + size_of::<mmapkit_sys::robust_mutex::RawRobustMutex>() <= BOARD_HEADER_SIZE);

/// A subscriber's entry.
#[derive(FromBytes, KnownLayout)]
#[repr(C, align(128))]
pub(crate) struct Entry {
    /// The number of the next message it reads, with `BUSY` while it holds one.
    pub cursor: AtomicU64,
    /// `ENTRY_*` in the low byte, an attachment count above it.
    pub state: AtomicU32,
    /// `OVERFLOW_*`; any other value counts as backpressure.
    pub overflow: AtomicU32,
    /// The attached subscriber's process id, for diagnostics.
    pub pid: AtomicU32,
    pub _pad: u32,
    /// Where the subscriber leaves its bell's number while it waits on its
    /// readiness descriptor (see `crate::bell`).
    pub bell: BellSlot,
}

const _: () = assert!(size_of::<Entry>() == ENTRY_SIZE);

/// A slot's header: which message it holds (plus one) and how long it is.
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub(crate) struct SlotHeader {
    pub seq: AtomicU64,
    pub len: AtomicU64,
}

const _: () = assert!(size_of::<SlotHeader>() <= SLOT_HEADER);

/// The checked geometry, as each end reads it once when it attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checked {
    pub slots: u64,
    pub slot_size: usize,
    pub subscribers: u64,
}

impl Checked {
    /// Bytes from one slot to the next.
    pub fn stride(&self) -> usize {
        SLOT_HEADER + self.slot_size
    }

    /// The messages the ring keeps.
    pub fn capacity(&self) -> u64 {
        self.slots - 1
    }

    /// Where the slots start in the payload.
    pub fn slots_offset(&self) -> usize {
        BOARD_HEADER_SIZE + self.subscribers as usize * ENTRY_SIZE
    }
}

/// The payload bytes a board of this geometry takes, if they can be named.
pub(crate) fn payload_len(slots: u64, slot_size: u64, subscribers: u64) -> Option<u64> {
    let entries = subscribers.checked_mul(ENTRY_SIZE as u64)?;
    let ring = slots.checked_mul(slot_size.checked_add(SLOT_HEADER as u64)?)?;
    (BOARD_HEADER_SIZE as u64).checked_add(entries)?.checked_add(ring)
}

/// Checks the geometry a board's header holds against the payload's length.
pub(crate) fn check_geometry(slots: u64, slot_size: u64, subscribers: u64, payload: usize) -> Result<Checked, String> {
    if !(2..=MAX_CAPACITY + 1).contains(&slots) {
        return Err(format!("a ring of {slots} slots (2 to {} are allowed)", MAX_CAPACITY + 1));
    }
    if slot_size == 0 || !slot_size.is_multiple_of(64) || slot_size > MAX_SLOT {
        return Err(format!("a slot of {slot_size} bytes (a multiple of 64 up to {MAX_SLOT} is allowed)"));
    }
    if !(1..=MAX_SUBSCRIBERS).contains(&subscribers) {
        return Err(format!("{subscribers} subscriber entries (1 to {MAX_SUBSCRIBERS} are allowed)"));
    }
    match payload_len(slots, slot_size, subscribers) {
        Some(need) if need <= payload as u64 => Ok(Checked { slots, slot_size: slot_size as usize, subscribers }),
        _ => Err(format!(
            "{slots} slots of {slot_size} bytes and {subscribers} subscriber entries do not fit a payload of {payload} \
             bytes"
        )),
    }
}

/// How a cursor stands towards the message `s` about to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Past the message that `s` overwrites (or ahead of `s`, which no
    /// honest cursor is: a peer's scribble there holds no publisher back).
    Clear,
    /// At or before the overwritten message, free to be moved.
    Behind,
    /// At or before it, and holding a message.
    BusyBehind,
}

/// Where `cursor` stands when message `s` is written into a ring of
/// `slots` slots, overwriting message `s - slots`.
pub(crate) fn standing(cursor: u64, s: u64, slots: u64) -> Standing {
    // A cursor that keeps up is never past `s` nor more than `slots` behind
    // it (message `s - 1` was written only once every cursor was past
    // `s - 1 - slots`): exactly `slots` behind is the one in the way. A
    // joiner's cursor, stepping back over history while a publisher that had
    // not yet seen the join went on, can be further behind for a moment; it
    // is in the way too, until the joiner raises it (or, lose-oldest, a
    // publisher moves it on).
    let position = cursor & !BUSY;
    if position > s || s - position < slots {
        return Standing::Clear;
    }
    if cursor & BUSY != 0 { Standing::BusyBehind } else { Standing::Behind }
}

impl BoardHeader {
    /// The number of the next message (acquire).
    pub fn tail(&self) -> u64 {
        self.tail.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_must_fit_and_stay_in_its_bounds() {
        let need = payload_len(5, 64, 2).unwrap() as usize;
        assert_eq!(need, 1024 + 2 * 128 + 5 * 128);
        assert_eq!(check_geometry(5, 64, 2, need), Ok(Checked { slots: 5, slot_size: 64, subscribers: 2 }));
        assert!(check_geometry(5, 64, 2, need - 1).is_err(), "one byte short");
        assert!(check_geometry(1, 64, 2, need).is_err(), "one slot");
        assert!(check_geometry(5, 65, 2, need).is_err(), "not a multiple of 64");
        assert!(check_geometry(5, 0, 2, need).is_err());
        assert!(check_geometry(5, 64, 0, need).is_err());
        assert!(check_geometry(5, 64, 65, usize::MAX).is_err());
        assert!(check_geometry(u64::MAX, 64, 2, usize::MAX).is_err());
        assert!(check_geometry(5, u64::MAX - 63, 2, usize::MAX).is_err());
    }

    #[test]
    fn a_cursor_holds_back_only_the_message_that_would_overwrite_its_own() {
        // Five slots: writing message 9 overwrites message 4.
        assert_eq!(standing(5, 9, 5), Standing::Clear);
        assert_eq!(standing(4, 9, 5), Standing::Behind);
        assert_eq!(standing(4 | BUSY, 9, 5), Standing::BusyBehind);
        assert_eq!(standing(5 | BUSY, 9, 5), Standing::Clear);
        assert_eq!(standing(9, 9, 5), Standing::Clear);
        // Early on, nothing is overwritten.
        assert_eq!(standing(0, 3, 5), Standing::Clear);
        assert_eq!(standing(0, 5, 5), Standing::Behind);
        // Past the tail (a scribble) holds nothing back; further behind than a
        // ring (a joiner's for a moment, or a scribble) is in the way.
        assert_eq!(standing(100, 9, 5), Standing::Clear, "ahead of the tail");
        assert_eq!(standing(3, 9, 5), Standing::Behind, "more than a ring behind");
        assert_eq!(standing(3 | BUSY, 9, 5), Standing::BusyBehind);
        assert_eq!(standing(0, 1 << 40, 5), Standing::Behind);
    }
}
