//! Readiness descriptors for a service's two ends (see `crate::readiness`):
//! a server's is readable while a request waits in some client's place, a
//! client's while its response (or the server's refusal) waits, or once the
//! server it called is gone. Each is the end's bell, rung by the other
//! side's process: no thread of this one is in between.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::client::Client;
use super::end::LOCK_BASE;
use super::end::ServiceEnd;
use super::layout::{DROPPED, REQUEST, RESPONSE, state};
use super::server::Server;
use crate::error::{ClientError, Op, Result, ServerError, ShmError};
use crate::readiness::{MapPtr, Readiness};

impl Server {
    /// A descriptor that is readable while a request waits, for a poll loop
    /// (epoll, kqueue, mio): the server's bell, which clients ring. The first
    /// call makes clients wake this server even if it spins. When it is
    /// readable, call [`clear_readiness`](Self::clear_readiness) first, then
    /// take requests until [`try_recv`](Self::try_recv) says `Empty`.
    pub fn readiness(&mut self) -> Result<BorrowedFd<'_>> {
        let end = &self.end;
        self.readiness.fd(|| start_server_readiness(end))
    }

    /// Drains the [`readiness`](Self::readiness) descriptor and readies it
    /// for the next request (nothing to do when none was asked for).
    pub fn clear_readiness(&self) -> Result<(), ServerError> {
        self.readiness.clear().map_err(|error| ServerError::Os {
            op: Op::Readiness,
            region: self.end.region.describe(),
            error,
        })
    }
}

impl Client {
    /// A descriptor that is readable while the response to this client's
    /// request (or the server's refusal of it) waits, or once the server is
    /// gone, for a poll loop: the client's bell, which the server rings (the
    /// process's peer watch tells of the server's death). When it is
    /// readable, call [`clear_readiness`](Self::clear_readiness) first, then
    /// [`response_timeout`](Self::response_timeout), which finds the
    /// response at once.
    pub fn readiness(&mut self) -> Result<BorrowedFd<'_>> {
        let end = &self.end;
        self.readiness.fd(|| start_client_readiness(end))
    }

    /// Drains the [`readiness`](Self::readiness) descriptor and readies it
    /// for the next response (nothing to do when none was asked for).
    pub fn clear_readiness(&self) -> Result<(), ClientError> {
        self.readiness.clear().map_err(|error| ClientError::Os {
            op: Op::Readiness,
            region: self.end.region.describe(),
            error,
        })
    }
}

/// The server's bell, armed in the doorbell (clients ring it), and rung at
/// once if a request is already waiting.
fn start_server_readiness(end: &ServiceEnd) -> Result<Readiness> {
    let doorbell = &end.header().doorbell.0;
    // From now on every request rings the doorbell.
    doorbell.server_may_sleep.store(1, Ordering::SeqCst);
    let slot = std::slice::from_ref(&doorbell.server_bell);
    // A server waits for no one side: clients come and go.
    // SAFETY: the bell slot is in the service's mapping, which the Server that holds `end` keeps until it
    // has dropped the Readiness.
    let readiness = unsafe { Readiness::start(slot, None, end.peer_check) };
    let os = |e| ShmError::os(Op::Readiness, &end.region.describe(), e);
    let readiness = readiness.map_err(os)?;
    let waiting = (0..end.geometry.clients).any(|i| state(end.place(i).0.state.load(Ordering::SeqCst)) == REQUEST);
    if waiting {
        readiness.ring_here().map_err(os)?;
    }
    Ok(readiness)
}

/// The client's bell, armed in its place (the server rings it), and rung
/// at once if its response is already waiting.
fn start_client_readiness(end: &ServiceEnd) -> Result<Readiness> {
    let place = end.place(end.place).0;
    let seen = MapPtr(&end.header().doorbell.0.server_seen as *const AtomicU32);
    let fd = end.region.file().as_raw_fd();
    let here = Box::new(move || {
        // SAFETY: the region's descriptor stays open, and its mapping alive, until the Readiness is dropped.
        let (file, seen) = unsafe { (BorrowedFd::borrow_raw(fd), seen.get()) };
        seen.load(Ordering::Acquire) == 0
            || mmapkit_sys::range_lock::range_locked_by_other(file, LOCK_BASE, 1).unwrap_or(false)
    });
    // SAFETY: the bell slot and the word the look reads are in the service's mapping, which the Client that holds
    // `end` keeps until it has dropped the Readiness.
    let readiness = unsafe { Readiness::start(std::slice::from_ref(&place.bell), Some(here), end.peer_check) };
    let os = |e| ShmError::os(Op::Readiness, &end.region.describe(), e);
    let readiness = readiness.map_err(os)?;
    if matches!(state(place.state.load(Ordering::SeqCst)), RESPONSE | DROPPED) {
        readiness.ring_here().map_err(os)?;
    }
    Ok(readiness)
}
