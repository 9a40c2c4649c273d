//! What a publisher and a subscriber share: the region, the checked
//! geometry, the pointers into it, how the end waits, and the liveness bytes
//! each end holds (publishers' from `LOCK_BASE`, subscribers' from
//! `LOCK_BASE + MAX_PUBLISHERS`, one per place; the kernel releases them
//! when the holder's process dies, as for a channel's ends).

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use mmapkit_sys::range_lock;
use mmapkit_sys::robust_mutex::RawRobustMutex;

use super::layout::{
    BOARD_HEADER_SIZE, BoardHeader, Checked, ENTRY_SIZE, Entry, LOCK_OFFSET, MAX_PUBLISHERS, SLOT_HEADER, SlotHeader,
    check_geometry, payload_len,
};
use super::options::PubSubOptions;
use crate::channel::Wait;
use crate::error::{Op, Party, Result, ShmError};
use crate::layout::Layout;
use crate::message_type::MessageType;
use crate::region::Region;

/// The first liveness byte.
const LOCK_BASE: u64 = 1 << 40;

/// The layout a publish-subscribe region carries.
pub(super) fn layout() -> Layout {
    Layout::of::<BoardHeader>("mmapkit-shm publish-subscribe board v2")
}

/// The first liveness byte of `party`.
fn lock_base(party: Party) -> u64 {
    match party {
        Party::Subscriber => LOCK_BASE + MAX_PUBLISHERS,
        _ => LOCK_BASE,
    }
}

/// Whether a publisher has attached (`seen`) and none is alive now, on the
/// board whose region's descriptor is `file`.
pub(super) fn publishers_gone(file: BorrowedFd<'_>, seen: &AtomicU32) -> std::io::Result<bool> {
    if seen.load(Ordering::Acquire) == 0 {
        return Ok(false);
    }
    Ok(!range_lock::range_locked_by_other(file, lock_base(Party::Publisher), MAX_PUBLISHERS)?)
}

/// One end's view of a board.
pub(super) struct Board {
    pub(super) region: Region,
    header: *const BoardHeader,
    pub(super) geometry: Checked,
    pub(super) wait: Wait,
    pub(super) peer_check: Duration,
    /// This end's place (its liveness byte, and for a subscriber its entry).
    pub(super) place: u64,
}

// SAFETY: the raw pointer points into `region`, which the Board owns; what it
// reaches is atomics, events and bytes lent out only through `&mut` borrows of
// the end.
unsafe impl Send for Board {}

impl Board {
    /// Makes a board's region with `make` (given its layout, payload length
    /// and initialisation), for messages of `message_type`.
    pub(super) fn create(
        make: impl FnOnce(Layout, usize, &mut dyn FnMut(*mut u8)) -> Result<Region>,
        options: &PubSubOptions,
        message_type: &MessageType,
    ) -> Result<Region> {
        let slots = options.capacity + 1;
        let slot_size = options.max_message as u64;
        let Some(len) = payload_len(slots, slot_size, options.subscribers) else {
            return Err(ShmError::Corrupt {
                region: "a new publish-subscribe board".to_owned(),
                what: format!("{slots} slots of {slot_size} bytes cannot be addressed"),
            });
        };
        let mut init = |payload: *mut u8| {
            // SAFETY: the zeroed payload holds a BoardHeader (FromBytes, so zeroed is valid), not yet published.
            let header = unsafe { &*payload.cast::<BoardHeader>() };
            header.geometry.0.slots.store(slots, Ordering::Relaxed);
            header.geometry.0.slot_size.store(slot_size, Ordering::Relaxed);
            header.geometry.0.subscribers.store(options.subscribers, Ordering::Relaxed);
            message_type.write(&header.message_type);
            // SAFETY: the lock lies inside the unpublished payload, which nobody can use yet.
            let lock = unsafe { &*payload.add(LOCK_OFFSET).cast::<RawRobustMutex>() };
            // SAFETY: as above.
            let _ = unsafe { lock.init() };
        };
        make(layout(), len as usize, &mut init)
    }

    /// Attaches to a board's region as `party`: checks the geometry and the
    /// message type, and claims a place (a liveness byte).
    pub(super) fn attach(
        region: Region,
        options: &PubSubOptions,
        party: Party,
        message_type: &MessageType,
    ) -> Result<Board> {
        let describe = region.describe();
        let corrupt = |what: String| ShmError::Corrupt { region: describe.clone(), what };
        if region.payload_len() < BOARD_HEADER_SIZE {
            return Err(corrupt(format!("a payload of {} bytes cannot hold a board header", region.payload_len())));
        }
        let header = region.payload_ptr().cast::<BoardHeader>().cast_const();
        // SAFETY: the payload is at least BOARD_HEADER_SIZE bytes, 128-aligned, mapped as long as `region`;
        // BoardHeader is valid for any bytes.
        let h = unsafe { &*header };
        let geometry = check_geometry(
            h.geometry.0.slots.load(Ordering::Acquire),
            h.geometry.0.slot_size.load(Ordering::Acquire),
            h.geometry.0.subscribers.load(Ordering::Acquire),
            region.payload_len(),
        )
        .map_err(corrupt)?;
        message_type.check(&h.message_type, &describe, geometry.slot_size, 64)?;
        let places = match party {
            Party::Subscriber => geometry.subscribers,
            _ => MAX_PUBLISHERS,
        };
        let mut place = None;
        for i in 0..places {
            let taken = range_lock::try_lock_byte(region.file(), lock_base(party) + i)
                .map_err(|e| ShmError::os(Op::ClaimEnd, &describe, e))?;
            if taken {
                place = Some(i);
                break;
            }
        }
        let Some(place) = place else {
            return Err(ShmError::NoPlaceFree { region: describe, party, max: places });
        };
        Ok(Board { header, geometry, wait: options.wait, peer_check: options.peer_check, place, region })
    }

    /// The board's header.
    #[inline]
    pub(super) fn header(&self) -> &BoardHeader {
        // SAFETY: checked in `attach`; mapped while `self.region` lives.
        unsafe { &*self.header }
    }

    /// Subscriber entry `i` (below the checked count).
    #[inline]
    pub(super) fn entry(&self, i: u64) -> &Entry {
        debug_assert!(i < self.geometry.subscribers);
        let offset = BOARD_HEADER_SIZE + i as usize * ENTRY_SIZE;
        // SAFETY: the entries lie inside the payload (checked in `attach`), 128-aligned; Entry is valid for any
        // bytes and made of atomics.
        unsafe { &*self.region.payload_ptr().add(offset).cast::<Entry>() }
    }

    /// The publishers' lock.
    pub(super) fn lock(&self) -> &RawRobustMutex {
        // SAFETY: the lock lies inside the header's space (checked in `attach`), initialised before publishing.
        unsafe { &*self.region.payload_ptr().add(LOCK_OFFSET).cast::<RawRobustMutex>() }
    }

    /// The header of the slot holding message `seq`, and its data.
    #[inline]
    pub(super) fn slot(&self, seq: u64) -> (&SlotHeader, *mut u8) {
        let index = (seq % self.geometry.slots) as usize;
        let offset = self.geometry.slots_offset() + index * self.geometry.stride();
        // SAFETY: every slot lies inside the payload (checked in `attach`); a slot starts 64-aligned (the payload
        // is 128-aligned, the entries and strides multiples of 64) and SlotHeader is atomics.
        let at = unsafe { self.region.payload_ptr().add(offset) };
        // SAFETY: as above.
        (unsafe { &*at.cast::<SlotHeader>() }, at.wrapping_add(SLOT_HEADER))
    }

    /// The region's descriptor.
    pub(super) fn file(&self) -> BorrowedFd<'_> {
        self.region.file()
    }

    /// Whether the subscriber in place `i` is alive: its liveness byte is held.
    pub(super) fn subscriber_alive(&self, i: u64) -> std::io::Result<bool> {
        range_lock::range_locked_by_other(self.file(), lock_base(Party::Subscriber) + i, 1)
    }

    /// Whether any publisher that attached is gone with none left.
    pub(super) fn publishers_gone(&self) -> std::io::Result<bool> {
        publishers_gone(self.file(), &self.header().publishers_seen)
    }

    /// This subscriber's cursor.
    #[inline]
    pub(super) fn cursor(&self) -> &AtomicU64 {
        &self.entry(self.place).cursor
    }
}
