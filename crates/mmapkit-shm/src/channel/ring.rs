//! The ring's layout in shared memory and the checks on every value a peer
//! can write.
//!
//! The payload of a channel region is a `RingHeader` followed by `capacity`
//! data bytes (a power of two). Positions `head` and `tail` count bytes since
//! the start and only grow (arithmetic on them wraps: a peer that puts them
//! near 2^64 garbles the channel, to `Corrupt` or to nothing more arriving,
//! never to an overflow). A record is an 8-byte header word (`len` in the low
//! half, `kind` in the high half; zero means "nothing here yet") and `len`
//! bytes, padded to 8. A record never wraps: where one would not fit before the
//! end of the data, a padding record fills the end first.
//!
//! The sender writes a record's bytes, zeroes the header word where the next
//! record will go, then stores the record's header word with release order:
//! that store is the commit, so a sender that dies mid-message leaves a zero
//! header and nothing for the receiver to see. Then it stores the new `tail`
//! (release), which is only a hint: a one-to-one receiver that has caught up
//! waits for `tail` to move, which keeps it off the lines the sender is
//! writing, and then reads the header word at `head`, which alone decides
//! what is there. The receiver releases records by storing the new `head`.
//! One header word of free space is always kept, so zeroing the next header
//! never touches a record the receiver has not read.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use zerocopy::{FromBytes, KnownLayout};

use crate::bell::BellSlot;
use crate::event::Event;

/// Bytes before the data.
pub(crate) const RING_HEADER_SIZE: usize = 1024;
/// The size of a record's header.
pub(crate) const RECORD_HEADER: usize = 8;
/// A record carrying a message.
pub(crate) const KIND_MESSAGE: u32 = 0x4d53_4721;
/// A record that fills the data's end so the next one starts at offset 0.
pub(crate) const KIND_PADDING: u32 = 0x5041_4421;

/// An end's state, in the ring header.
pub(crate) const END_NONE: u32 = 0;
pub(crate) const END_ATTACHED: u32 = 1;
pub(crate) const END_CLOSED: u32 = 2;

#[derive(FromBytes, KnownLayout)]
#[repr(C, align(128))]
pub(crate) struct Line<T>(pub T);

/// The ring's control block; each hot word on its own cache line pair.
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub(crate) struct RingHeader {
    /// Data bytes; written by the creator before publishing, read once by each end.
    pub capacity: Line<AtomicU64>,
    /// Bytes the sender has committed (for a sender that attaches later).
    pub tail: Line<AtomicU64>,
    /// Bytes the receiver has released.
    pub head: Line<AtomicU64>,
    /// The receiver sleeps here when the ring is empty.
    pub data_ready: Event,
    /// The sender sleeps here when the ring is full.
    pub space_ready: Event,
    /// `END_*` for the sender and the receiver.
    pub sender_state: AtomicU32,
    pub receiver_state: AtomicU32,
    /// Nonzero once a sender (receiver) that may sleep on a futex has
    /// attached: until then the other side can skip notifying, which keeps a
    /// fence off the spinning fast path. A peer that lies here only slows
    /// its own wake-ups to the periodic liveness check.
    pub sender_may_sleep: AtomicU32,
    pub receiver_may_sleep: AtomicU32,
}

const _: () = assert!(size_of::<RingHeader>() <= RING_HEADER_SIZE);

/// Where a many-to-many channel keeps its two locks, inside the ring header's space.
pub(crate) const LOCKS_OFFSET: usize = 512;

/// The locks of a many-to-many channel: senders take `send` from reserve to
/// commit, receivers take `recv` from receiving to releasing. Both are robust:
/// a holder that dies hands the next taker a consistent ring, because `tail`
/// and `head` change only at commit and release.
#[repr(C)]
pub(crate) struct Locks {
    pub send: mmapkit_sys::robust_mutex::RawRobustMutex,
    pub recv: mmapkit_sys::robust_mutex::RawRobustMutex,
}

const _: () = assert!(size_of::<RingHeader>() <= LOCKS_OFFSET);
const _: () = assert!(LOCKS_OFFSET + size_of::<Locks>() <= RING_HEADER_SIZE);
const _: () = assert!(LOCKS_OFFSET.is_multiple_of(16));

/// Where the ends' bell slots sit, inside the ring header's space, past the
/// locks: each side's ends that wait on a readiness descriptor leave their
/// bell's number in one (see `crate::bell`), and the other side rings them.
pub(crate) const BELLS_OFFSET: usize = 640;
/// Bell slots per side: as many of a side's ends can wait on their
/// descriptors at once and be rung (more are woken by the peer watch's ticks).
pub(crate) const BELLS_PER_SIDE: usize = 8;

/// The bell slots of both sides.
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub(crate) struct Bells {
    pub receivers: [BellSlot; BELLS_PER_SIDE],
    pub senders: [BellSlot; BELLS_PER_SIDE],
}

/// Where a channel's message type sits, inside the ring header's space,
/// past the bells (zeroed, that is raw bytes, for untyped channels).
pub(crate) const TYPE_TAG_OFFSET: usize = 768;

const _: () = assert!(LOCKS_OFFSET + size_of::<Locks>() <= BELLS_OFFSET);
const _: () = assert!(BELLS_OFFSET + size_of::<Bells>() <= TYPE_TAG_OFFSET);
const _: () = assert!(BELLS_OFFSET.is_multiple_of(64));
const _: () = assert!(TYPE_TAG_OFFSET + size_of::<crate::pubsub::layout::TypeTag>() <= RING_HEADER_SIZE);

/// Rounds a message length up to its record's size.
#[inline]
pub(crate) fn record_size(len: usize) -> usize {
    RECORD_HEADER + len.next_multiple_of(8)
}

/// The longest message a ring of `capacity` bytes carries: half the ring,
/// so that a record plus the padding before it always fits in an empty ring.
#[inline]
pub(crate) fn max_message(capacity: usize) -> usize {
    capacity / 2 - RECORD_HEADER
}

/// Checks the distance between the two positions: a peer writing nonsense
/// into `head` is caught here, before any offset is computed.
#[inline]
pub(crate) fn check_positions(head: u64, tail: u64, capacity: usize) -> Result<usize, String> {
    match tail.checked_sub(head) {
        Some(used) if used <= capacity as u64 => Ok(used as usize),
        _ => Err(format!("head {head} and tail {tail} are more than the capacity {capacity} apart")),
    }
}

/// A record's header, as read once from shared memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    pub len: usize,
    pub kind: u32,
}

/// Validates the record found at data offset `offset`: it must lie inside the
/// data, whatever a peer wrote. Returns its size.
pub(crate) fn check_record(record: Record, offset: usize, capacity: usize) -> Result<usize, String> {
    let to_end = capacity - offset;
    match record.kind {
        KIND_PADDING => {
            let size = RECORD_HEADER + record.len;
            if size != to_end {
                return Err(format!(
                    "a padding record at offset {offset} of {} bytes does not end the data",
                    record.len
                ));
            }
            Ok(size)
        }
        KIND_MESSAGE => {
            if record.len > max_message(capacity) {
                return Err(format!("a message at offset {offset} claims {} bytes, over the limit", record.len));
            }
            let size = record_size(record.len);
            if size > to_end {
                return Err(format!(
                    "a message at offset {offset} of {} bytes runs past the end of the data",
                    record.len
                ));
            }
            Ok(size)
        }
        other => Err(format!("unknown record kind {other:#x} at offset {offset}")),
    }
}

/// The header word of the record at `ptr`.
///
/// # Safety
/// `ptr` must point to 8 readable, 8-aligned bytes of a mapping that outlives `'a`.
#[inline]
unsafe fn word<'a>(ptr: *const u8) -> &'a AtomicU64 {
    // SAFETY: per the caller; AtomicU64 tolerates concurrent writers.
    unsafe { &*ptr.cast::<AtomicU64>() }
}

/// Reads the record header at `ptr` once (acquire): `None` if nothing is committed there.
///
/// # Safety
/// As for `word`.
pub(crate) unsafe fn read_record(ptr: *const u8) -> Option<Record> {
    // SAFETY: per the caller.
    let raw = unsafe { word(ptr) }.load(Ordering::Acquire);
    (raw != 0).then_some(Record { len: raw as u32 as usize, kind: (raw >> 32) as u32 })
}

/// Reads the record header at data offset `offset` once, as [`read_record`];
/// when nothing is there yet, also prefetches the next cache line, where a
/// short message's tail will be, so that a polling receiver gets it together
/// with the header's line instead of after it. A prefetch is a hint, not a
/// read: the sender may be writing that line (reserved space) right now.
///
/// # Safety
/// `data` must point to `capacity` readable bytes of a mapping, 8-aligned,
/// and `offset` must be 8-aligned and below `capacity`.
pub(crate) unsafe fn poll_record(data: *const u8, offset: usize, capacity: usize) -> Option<Record> {
    // SAFETY: per the caller, `offset..offset + 8` is inside the data.
    let found = unsafe { read_record(data.add(offset)) };
    let next_line = (offset | 63) + 1;
    if found.is_none() && next_line < capacity {
        mmapkit::prefetch(data.wrapping_add(next_line));
    }
    found
}

/// What a receiver's quick look at `head` found.
pub(crate) enum Peek {
    /// A committed message of `len` bytes that lies inside the data.
    Message { len: usize },
    /// Nothing committed yet.
    Nothing,
    /// Padding, or a record that fails the checks: the full path
    /// ([`check_record`]) reads it again and handles it or says what is wrong.
    Other,
}

/// The receiver's fast look at the record at data offset `offset`: the header
/// word is loaded once (acquire) and a message's length checked against the
/// limit and the end of the data before it is used.
///
/// # Safety
/// As for [`poll_record`].
#[inline(always)]
pub(crate) unsafe fn peek_record(data: *const u8, offset: usize, capacity: usize) -> Peek {
    // SAFETY: per the caller, `offset..offset + 8` is inside the data.
    let raw = unsafe { word(data.add(offset)) }.load(Ordering::Acquire);
    let (len, kind) = (raw as u32 as usize, (raw >> 32) as u32);
    if raw == 0 {
        Peek::Nothing
    } else if kind == KIND_MESSAGE && len <= max_message(capacity) && record_size(len) <= capacity - offset {
        Peek::Message { len }
    } else {
        Peek::Other
    }
}

/// Commits a record: stores its header word with release order, after its bytes.
///
/// # Safety
/// As for `word`; the bytes must be free space the receiver has not reached.
#[inline]
pub(crate) unsafe fn commit_record(ptr: *mut u8, len: usize, kind: u32) {
    // SAFETY: per the caller.
    unsafe { word(ptr) }.store((u64::from(kind) << 32) | len as u64, Ordering::Release);
}

/// Zeroes a header word ahead of the commit that makes it reachable.
///
/// # Safety
/// As for `commit_record`.
#[inline]
pub(crate) unsafe fn clear_record(ptr: *mut u8) {
    // SAFETY: per the caller.
    unsafe { word(ptr) }.store(0, Ordering::Relaxed);
}

impl RingHeader {
    /// The capacity as the creator wrote it (read once by each end).
    pub fn capacity(&self) -> u64 {
        self.capacity.0.load(Ordering::Acquire)
    }

    /// The receiver's head (acquire), as a multiple of 8.
    #[inline]
    pub fn head(&self) -> u64 {
        aligned(self.head.0.load(Ordering::Acquire))
    }

    /// The sender's tail (acquire), as a multiple of 8.
    #[inline]
    pub fn tail(&self) -> u64 {
        aligned(self.tail.0.load(Ordering::Acquire))
    }
}

/// A position read from shared memory, rounded down to a multiple of 8. An
/// honest end only ever stores multiples of 8 (every record size is one), so
/// this changes nothing for them; for a peer that stores anything else, it
/// keeps every offset derived from the position 8-aligned, as the header
/// words read and written there must be.
#[inline]
fn aligned(position: u64) -> u64 {
    position & !(RECORD_HEADER as u64 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_more_than_a_ring_apart_are_refused() {
        assert_eq!(check_positions(10, 10, 64), Ok(0));
        assert_eq!(check_positions(10, 74, 64), Ok(64));
        assert!(check_positions(10, 75, 64).is_err());
        assert!(check_positions(11, 10, 64).is_err());
        assert!(check_positions(0, u64::MAX, 64).is_err());
    }

    #[test]
    fn records_must_stay_inside_the_data() {
        let msg = |len| Record { len, kind: KIND_MESSAGE };
        assert_eq!(check_record(msg(5), 0, 64), Ok(16));
        assert_eq!(check_record(msg(24), 0, 64), Ok(32));
        assert!(check_record(msg(30), 48, 64).is_err(), "past the end of the data");
        assert!(check_record(msg(1 << 31), 0, 64).is_err(), "over the limit");
        let pad = |len| Record { len, kind: KIND_PADDING };
        assert_eq!(check_record(pad(8), 48, 64), Ok(16));
        assert!(check_record(pad(0), 48, 64).is_err(), "padding must reach the end");
        assert!(check_record(Record { len: 0, kind: 7 }, 0, 64).is_err());
    }
}
