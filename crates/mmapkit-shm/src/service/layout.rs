//! The service's layout in shared memory and the checks on every value a
//! peer can write.
//!
//! ```text
//! 0      ServiceHeader: geometry (clients, request_max, response_max),
//!        the doorbell (a request counter and the event the server sleeps
//!        on), server flags, the request and response types
//!        (zeroed: raw bytes)                                    1024 bytes
//! 1024   client places: `clients` x (128 + request_max + response_max)
//!          state u32 | pid u32 | request len u64 | response len u64 | event |
//!          bell slot
//!          request_max bytes of request, response_max bytes of response
//! ```
//!
//! Each client place carries at most one call at a time, through a state
//! word: an attachment count above the low byte, and in it
//!
//! ```text
//! IDLE --client sends--> REQUEST --server takes--> TAKEN --server responds--> RESPONSE
//!   ^                       |                        |-- server drops it ---> DROPPED
//!   |                       |-- client cancels --> IDLE        (client reads, then IDLE)
//! ```
//!
//! The client touches the request bytes only in IDLE and the response bytes
//! only in RESPONSE; the server touches both only in TAKEN. Every step is a
//! compare-and-swap of the whole word, so a step meant for one attachment of
//! the place never lands on the next one's. Lengths are read once and checked
//! against the place's sizes before any byte is lent out.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use zerocopy::{FromBytes, KnownLayout};

use crate::bell::{self, BellSlot};
use crate::event::Event;
use crate::pubsub::layout::TypeTag;

/// Bytes before the client places.
pub(crate) const SERVICE_HEADER_SIZE: usize = 1024;
/// Bytes of a place before its request.
pub(crate) const PLACE_HEADER: usize = 128;
/// The most client places a service takes.
pub(crate) const MAX_CLIENTS: u64 = 64;
/// The longest request or response.
pub(crate) const MAX_MESSAGE: u64 = 1 << 30;

pub(crate) const IDLE: u32 = 0;
pub(crate) const REQUEST: u32 = 1;
pub(crate) const TAKEN: u32 = 2;
pub(crate) const RESPONSE: u32 = 3;
pub(crate) const DROPPED: u32 = 4;

/// The state in a state word.
#[inline]
pub(crate) fn state(word: u32) -> u32 {
    word & 0xff
}

/// The word with its state replaced.
#[inline]
pub(crate) fn with_state(word: u32, state: u32) -> u32 {
    (word & !0xff) | state
}

#[derive(FromBytes, KnownLayout)]
#[repr(C, align(128))]
pub(crate) struct Line<T>(pub T);

/// What the creator sets once, before publishing the region.
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub(crate) struct Geometry {
    pub clients: AtomicU64,
    pub request_max: AtomicU64,
    pub response_max: AtomicU64,
}

/// Where a client rings for the server.
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub(crate) struct Doorbell {
    /// Bumped by every request sent.
    pub requests: AtomicU32,
    /// Nonzero once a server that may sleep has attached.
    pub server_may_sleep: AtomicU32,
    /// The server sleeps here.
    pub event: Event,
    /// Nonzero once a server has attached.
    pub server_seen: AtomicU32,
    /// Where the server leaves its bell's number while it waits on its
    /// readiness descriptor (see `crate::bell`).
    pub server_bell: BellSlot,
}

impl Doorbell {
    /// Wakes a server asleep on the event or waiting on its bell (once a
    /// server that may sleep has attached).
    pub(crate) fn ring(&self) {
        if self.server_may_sleep.load(Ordering::Relaxed) != 0 {
            self.event.notify_all();
            bell::ring(std::slice::from_ref(&self.server_bell));
        }
    }
}

#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub(crate) struct ServiceHeader {
    pub geometry: Line<Geometry>,
    pub doorbell: Line<Doorbell>,
    /// The request type the creator's end was made for (zeroed: raw bytes).
    pub request_type: TypeTag,
    /// The response type the creator's end was made for (zeroed: raw bytes).
    pub response_type: TypeTag,
}

const _: () = assert!(size_of::<ServiceHeader>() <= SERVICE_HEADER_SIZE);

/// A client place's header (places are 64-aligned: their sizes are multiples of 64).
#[derive(FromBytes, KnownLayout)]
#[repr(C, align(64))]
pub(crate) struct PlaceHeader {
    pub state: AtomicU32,
    /// The attached client's process id, for diagnostics.
    pub pid: AtomicU32,
    pub request_len: AtomicU64,
    pub response_len: AtomicU64,
    /// The client sleeps here for its response.
    pub event: Event,
    /// Where the client leaves its bell's number while it waits on its
    /// readiness descriptor.
    pub bell: BellSlot,
}

impl PlaceHeader {
    /// Wakes the client, asleep on the event or waiting on its bell.
    pub(crate) fn wake(&self) {
        self.event.notify_all();
        bell::ring(std::slice::from_ref(&self.bell));
    }
}

const _: () = assert!(size_of::<PlaceHeader>() <= PLACE_HEADER);

/// The checked geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checked {
    pub clients: u64,
    pub request_max: usize,
    pub response_max: usize,
}

impl Checked {
    /// Bytes from one place to the next.
    pub fn stride(&self) -> usize {
        PLACE_HEADER + self.request_max + self.response_max
    }
}

/// The payload a service of this geometry takes, if it can be named.
pub(crate) fn payload_len(clients: u64, request_max: u64, response_max: u64) -> Option<u64> {
    let stride = (PLACE_HEADER as u64).checked_add(request_max)?.checked_add(response_max)?;
    (SERVICE_HEADER_SIZE as u64).checked_add(clients.checked_mul(stride)?)
}

/// Checks the geometry a service's header holds against the payload's length.
pub(crate) fn check_geometry(
    clients: u64,
    request_max: u64,
    response_max: u64,
    payload: usize,
) -> Result<Checked, String> {
    if !(1..=MAX_CLIENTS).contains(&clients) {
        return Err(format!("{clients} client places (1 to {MAX_CLIENTS} are allowed)"));
    }
    for (what, len) in [("request", request_max), ("response", response_max)] {
        if len == 0 || !len.is_multiple_of(64) || len > MAX_MESSAGE {
            return Err(format!("a {what} room of {len} bytes (a multiple of 64 up to {MAX_MESSAGE} is allowed)"));
        }
    }
    match payload_len(clients, request_max, response_max) {
        Some(need) if need <= payload as u64 => {
            Ok(Checked { clients, request_max: request_max as usize, response_max: response_max as usize })
        }
        _ => Err(format!(
            "{clients} places of {request_max}-byte requests and {response_max}-byte responses do not fit a payload \
             of {payload} bytes"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_must_fit_and_stay_in_its_bounds() {
        let need = payload_len(2, 64, 128).unwrap() as usize;
        assert_eq!(need, 1024 + 2 * (128 + 64 + 128));
        assert!(check_geometry(2, 64, 128, need).is_ok());
        assert!(check_geometry(2, 64, 128, need - 1).is_err());
        assert!(check_geometry(0, 64, 128, need).is_err());
        assert!(check_geometry(65, 64, 128, usize::MAX).is_err());
        assert!(check_geometry(2, 63, 128, need).is_err());
        assert!(check_geometry(2, 64, 0, need).is_err());
        assert!(check_geometry(u64::MAX, 64, 64, usize::MAX).is_err());
        assert!(check_geometry(2, u64::MAX - 63, 64, usize::MAX).is_err());
    }

    #[test]
    fn states_keep_the_attachment_count() {
        let word = 0x0300 | TAKEN;
        assert_eq!(state(word), TAKEN);
        assert_eq!(with_state(word, RESPONSE), 0x0300 | RESPONSE);
    }
}
