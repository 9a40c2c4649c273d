//! What a server and a client share: the region, the checked geometry, the
//! places' pointers, how the end waits, and the liveness bytes (the
//! server's at `LOCK_BASE`, client `i`'s at `LOCK_BASE + 1 + i`, released
//! by the kernel when the holder's process dies).

use std::sync::atomic::Ordering;
use std::time::Duration;

use mmapkit_sys::range_lock;

use super::layout::{
    Checked, PLACE_HEADER, PlaceHeader, SERVICE_HEADER_SIZE, ServiceHeader, check_geometry, payload_len,
};
use super::options::ServiceOptions;
use crate::channel::Wait;
use crate::error::{Op, Party, Result, ShmError};
use crate::layout::Layout;
use crate::message_type::MessageType;
use crate::pubsub::layout::TypeTag;
use crate::region::Region;

/// The first liveness byte.
pub(super) const LOCK_BASE: u64 = 1 << 40;

/// The layout a service region carries.
pub(super) fn layout() -> Layout {
    Layout::of::<ServiceHeader>("mmapkit-shm request-response service v3")
}

/// One end's view of a service.
pub(super) struct ServiceEnd {
    pub(super) region: Region,
    header: *const ServiceHeader,
    pub(super) geometry: Checked,
    pub(super) wait: Wait,
    pub(super) peer_check: Duration,
    /// A client's place (the server's is 0, unused).
    pub(super) place: u64,
}

// SAFETY: the raw pointer points into `region`, which the end owns; what it
// reaches is atomics, events and bytes lent out only through `&mut` borrows of
// the end.
unsafe impl Send for ServiceEnd {}

/// Checks one of the header's two types against the end's, saying which
/// of the two (`what`: requests or responses) differs.
fn check_type(what: &str, ours: &MessageType, tag: &TypeTag, region: &str, room: usize) -> Result<()> {
    ours.check(tag, region, room, 64).map_err(|error| match error {
        ShmError::WrongMessageType { region, ours, theirs } => ShmError::WrongMessageType {
            region,
            ours: format!("{what} of {ours}"),
            theirs: format!("{what} of {theirs}"),
        },
        other => other,
    })
}

impl ServiceEnd {
    /// Makes a service's region with `make`.
    pub(super) fn create(
        make: impl FnOnce(Layout, usize, &mut dyn FnMut(*mut u8)) -> Result<Region>,
        options: &ServiceOptions,
    ) -> Result<Region> {
        let (clients, request, response) = (options.clients, options.max_request as u64, options.max_response as u64);
        let Some(len) = payload_len(clients, request, response) else {
            return Err(ShmError::Corrupt {
                region: "a new service".to_owned(),
                what: format!("{clients} places of {request} and {response} bytes cannot be addressed"),
            });
        };
        let mut init = |payload: *mut u8| {
            // SAFETY: the zeroed payload holds a ServiceHeader (FromBytes, so zeroed is valid), not yet published.
            let header = unsafe { &*payload.cast::<ServiceHeader>() };
            header.geometry.0.clients.store(clients, Ordering::Relaxed);
            header.geometry.0.request_max.store(request, Ordering::Relaxed);
            header.geometry.0.response_max.store(response, Ordering::Relaxed);
            options.request_type.write(&header.request_type);
            options.response_type.write(&header.response_type);
        };
        make(layout(), len as usize, &mut init)
    }

    /// Attaches to a service's region as `party`: checks the geometry and
    /// claims the server's byte or a client's.
    pub(super) fn attach(region: Region, options: &ServiceOptions, party: Party) -> Result<ServiceEnd> {
        let describe = region.describe();
        let corrupt = |what: String| ShmError::Corrupt { region: describe.clone(), what };
        if region.payload_len() < SERVICE_HEADER_SIZE {
            return Err(corrupt(format!("a payload of {} bytes cannot hold a service header", region.payload_len())));
        }
        let header = region.payload_ptr().cast::<ServiceHeader>().cast_const();
        // SAFETY: the payload is at least SERVICE_HEADER_SIZE bytes, 128-aligned, mapped as long as `region`;
        // ServiceHeader is valid for any bytes.
        let h = unsafe { &*header };
        let geometry = check_geometry(
            h.geometry.0.clients.load(Ordering::Acquire),
            h.geometry.0.request_max.load(Ordering::Acquire),
            h.geometry.0.response_max.load(Ordering::Acquire),
            region.payload_len(),
        )
        .map_err(corrupt)?;
        // Requests and responses start 64-aligned (places are, and their sizes are multiples of 64).
        let (request_room, response_room) = (geometry.request_max, geometry.response_max);
        check_type("requests", &options.request_type, &h.request_type, &describe, request_room)?;
        check_type("responses", &options.response_type, &h.response_type, &describe, response_room)?;
        let (first, places) = match party {
            Party::Server => (LOCK_BASE, 1),
            _ => (LOCK_BASE + 1, geometry.clients),
        };
        let mut place = None;
        for i in 0..places {
            let taken = range_lock::try_lock_byte(region.file(), first + i)
                .map_err(|e| ShmError::os(Op::ClaimEnd, &describe, e))?;
            if taken {
                place = Some(i);
                break;
            }
        }
        let Some(place) = place else {
            return Err(ShmError::NoPlaceFree { region: describe, party, max: places });
        };
        Ok(ServiceEnd { header, geometry, wait: options.wait, peer_check: options.peer_check, place, region })
    }

    /// The service's header.
    #[inline]
    pub(super) fn header(&self) -> &ServiceHeader {
        // SAFETY: checked in `attach`; mapped while `self.region` lives.
        unsafe { &*self.header }
    }

    /// Client place `i` (below the checked count): its header, its request
    /// bytes and its response bytes.
    #[inline]
    pub(super) fn place(&self, i: u64) -> (&PlaceHeader, *mut u8, *mut u8) {
        debug_assert!(i < self.geometry.clients);
        let offset = SERVICE_HEADER_SIZE + i as usize * self.geometry.stride();
        // SAFETY: every place lies inside the payload (checked in `attach`), 64-aligned (the payload is 128-aligned,
        // the header and the sizes multiples of 64); PlaceHeader is atomics and an event, valid for any bytes.
        let at = unsafe { self.region.payload_ptr().add(offset) };
        let request = at.wrapping_add(PLACE_HEADER);
        // SAFETY: as above.
        (unsafe { &*at.cast::<PlaceHeader>() }, request, request.wrapping_add(self.geometry.request_max))
    }

    /// Whether the server is alive (its byte held by another description).
    pub(super) fn server_alive(&self) -> std::io::Result<bool> {
        range_lock::range_locked_by_other(self.region.file(), LOCK_BASE, 1)
    }

    /// Whether client `i` is alive.
    pub(super) fn client_alive(&self, i: u64) -> std::io::Result<bool> {
        range_lock::range_locked_by_other(self.region.file(), LOCK_BASE + 1 + i, 1)
    }
}
