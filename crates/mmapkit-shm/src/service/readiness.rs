//! Readiness descriptors for a service's two ends (see `crate::readiness`):
//! a server's is readable while a request waits in some client's place, a
//! client's while its response (or the server's refusal) waits, or once the
//! server it called is gone.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::client::Client;
use super::end::LOCK_BASE;
use super::layout::{DROPPED, PlaceHeader, REQUEST, RESPONSE, state};
use super::server::Server;
use crate::error::{ClientError, Op, Result, ServerError, ShmError};
use crate::readiness::{Bridge, MapPtr, Probe};

impl Server {
    /// A descriptor that is readable while a request waits, for a poll loop
    /// (epoll, kqueue, mio): an eventfd on Linux, a pipe elsewhere. The first
    /// call starts a thread of this process that watches the service for it,
    /// and makes clients wake this server even if it spins. When it is
    /// readable, call [`clear_readiness`](Self::clear_readiness) first, then
    /// take requests until [`try_recv`](Self::try_recv) says `Empty`.
    pub fn readiness(&mut self) -> Result<BorrowedFd<'_>> {
        let bridge = match self.bridge.take() {
            Some(bridge) => bridge,
            None => self.start_bridge()?,
        };
        let bridge: &Bridge = self.bridge.insert(bridge);
        Ok(bridge.as_fd())
    }

    fn start_bridge(&self) -> Result<Bridge> {
        let doorbell = &self.end.header().doorbell.0;
        // From now on every request rings the doorbell's event.
        doorbell.server_may_sleep.store(1, Ordering::SeqCst);
        let requests = MapPtr(&doorbell.requests as *const AtomicU32);
        let places: Vec<MapPtr<PlaceHeader>> =
            (0..self.end.geometry.clients).map(|i| MapPtr(self.end.place(i).0 as *const PlaceHeader)).collect();
        let probe = Probe {
            pending: Box::new(move || {
                // SAFETY: the Server drops the Bridge, whose thread runs this, before its mapping.
                let waiting = places.iter().any(|p| state(unsafe { p.get() }.state.load(Ordering::SeqCst)) == REQUEST);
                // SAFETY: as above.
                waiting.then(|| u64::from(unsafe { requests.get() }.load(Ordering::SeqCst)))
            }),
            // A server waits for no one side: clients come and go.
            gone: Box::new(|| false),
            every: self.end.peer_check,
        };
        // SAFETY: the event and the words the probe reads are in the service's mapping, which this Server keeps
        // until it has dropped the Bridge.
        unsafe { Bridge::start(&doorbell.event, probe) }
            .map_err(|e| ShmError::os(Op::Readiness, &self.end.region.describe(), e))
    }

    /// Drains the [`readiness`](Self::readiness) descriptor (nothing to do
    /// when none was asked for).
    pub fn clear_readiness(&self) -> Result<(), ServerError> {
        match &self.bridge {
            Some(bridge) => bridge.clear().map_err(|error| ServerError::Os {
                op: Op::Readiness,
                region: self.end.region.describe(),
                error,
            }),
            None => Ok(()),
        }
    }
}

impl Client {
    /// A descriptor that is readable while the response to this client's
    /// request (or the server's refusal of it) waits, or once the server is
    /// gone, for a poll loop: an eventfd on Linux, a pipe elsewhere. The
    /// first call starts a thread of this process that watches the
    /// client's place for it. When it is readable, call
    /// [`clear_readiness`](Self::clear_readiness) first, then
    /// [`response_timeout`](Self::response_timeout), which finds the
    /// response at once.
    pub fn readiness(&mut self) -> Result<BorrowedFd<'_>> {
        let bridge = match self.bridge.take() {
            Some(bridge) => bridge,
            None => self.start_bridge()?,
        };
        let bridge: &Bridge = self.bridge.insert(bridge);
        Ok(bridge.as_fd())
    }

    fn start_bridge(&self) -> Result<Bridge> {
        let place = self.end.place(self.end.place).0;
        let word = MapPtr(&place.state as *const AtomicU32);
        let sent = self.sent.clone();
        let seen = MapPtr(&self.end.header().doorbell.0.server_seen as *const AtomicU32);
        let fd = self.end.region.file().as_raw_fd();
        let probe = Probe {
            pending: Box::new(move || {
                // SAFETY: the Client drops the Bridge, whose thread runs this, before its mapping.
                let now = unsafe { word.get() }.load(Ordering::SeqCst);
                // The state word is the same for every response; the count of requests sent is not.
                matches!(state(now), RESPONSE | DROPPED).then(|| sent.load(Ordering::SeqCst))
            }),
            gone: Box::new(move || {
                // SAFETY: the region's descriptor stays open until the Bridge is dropped, as its mapping does.
                let (file, seen) = unsafe { (BorrowedFd::borrow_raw(fd), seen.get()) };
                seen.load(Ordering::Acquire) != 0
                    && !mmapkit_sys::range_lock::range_locked_by_other(file, LOCK_BASE, 1).unwrap_or(false)
            }),
            every: self.end.peer_check,
        };
        // SAFETY: the event and the words the probe reads are in the service's mapping, which this Client keeps
        // until it has dropped the Bridge.
        unsafe { Bridge::start(&place.event, probe) }
            .map_err(|e| ShmError::os(Op::Readiness, &self.end.region.describe(), e))
    }

    /// Drains the [`readiness`](Self::readiness) descriptor (nothing to do
    /// when none was asked for).
    pub fn clear_readiness(&self) -> Result<(), ClientError> {
        match &self.bridge {
            Some(bridge) => bridge.clear().map_err(|error| ClientError::Os {
                op: Op::Readiness,
                region: self.end.region.describe(),
                error,
            }),
            None => Ok(()),
        }
    }
}
