//! The calling end: [`Client`] takes a place, writes its request in place
//! ([`Client::loan`]) or copies it ([`Client::call_timeout`]), rings the
//! server's doorbell, and waits for its response, which it reads in place
//! ([`Response`]); a server that dies or leaves is reported, not waited on.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::end::{ServiceEnd, layout};
use super::layout::{DROPPED, IDLE, PlaceHeader, REQUEST, RESPONSE, TAKEN, state, with_state};
use super::options::ServiceOptions;
use crate::error::{ClientError, Op, Party, Result};
use crate::pubsub::wait::wait_for;
use crate::region::Region;

/// A client of a service: one call out at a time.
pub struct Client {
    /// The readiness descriptor, if asked for (dropped first: it reads the
    /// mapping).
    pub(super) readiness: crate::readiness::ReadinessCell,
    pub(super) end: ServiceEnd,
    /// Whether a request of ours may still be in the place (sent, and its
    /// response not yet read or given up on).
    out: Cell<bool>,
}

impl Client {
    fn from_region(region: Region, options: &ServiceOptions) -> Result<Client> {
        let end = ServiceEnd::attach(region, options, Party::Client)?;
        let place = end.place(end.place).0;
        place.pid.store(mmapkit_sys::process::pid(), Ordering::Relaxed);
        // A new attachment: whatever the server does for the place's last
        // client no longer lands as ours. A call that client left is settled
        // before our first request.
        let mut word = place.state.load(Ordering::SeqCst);
        loop {
            match place.state.compare_exchange(word, word.wrapping_add(0x100), Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        let out = state(word) != IDLE;
        Ok(Client { readiness: Default::default(), end, out: Cell::new(out) })
    }

    /// Creates the service's named region (`0600`, `O_EXCL`) and attaches as a client.
    ///
    /// # Safety
    /// As for [`Server::create_named`](crate::Server::create_named).
    pub unsafe fn create_named(name: &str, options: &ServiceOptions) -> Result<Client> {
        let region = ServiceEnd::create(
            |layout, len, init| Region::create_named(name, layout, len, &options.region, init),
            options,
        )?;
        Client::from_region(region, options)
    }

    /// Opens the service's named region and attaches as a client.
    ///
    /// # Safety
    /// As for [`Server::create_named`](crate::Server::create_named).
    pub unsafe fn open_named(name: &str, options: &ServiceOptions) -> Result<Client> {
        Client::from_region(Region::open_named(name, layout(), &options.region)?, options)
    }

    /// Opens the named region if it exists, or creates it (reclaiming a stale
    /// name, as [`Region::create_named`] says), and attaches;
    /// `region().created()` tells which.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_or_create_named(name: &str, options: &ServiceOptions) -> Result<Client> {
        crate::region::open_or_create(
            &options.region,
            // SAFETY: this function's contract is theirs.
            || unsafe { Client::create_named(name, options) },
            // SAFETY: as above.
            || unsafe { Client::open_named(name, options) },
        )
    }

    /// This client's place.
    pub fn place(&self) -> u64 {
        self.end.place
    }

    /// The longest request.
    pub fn max_request(&self) -> usize {
        self.end.geometry.request_max
    }

    /// The region underneath.
    pub fn region(&self) -> &Region {
        &self.end.region
    }

    fn header(&self) -> &PlaceHeader {
        self.end.place(self.end.place).0
    }

    fn corrupt(&self, what: String) -> ClientError {
        ClientError::Corrupt { region: self.end.region.describe(), what }
    }

    fn server_gone(&self) -> Result<bool, ClientError> {
        if self.end.header().doorbell.0.server_seen.load(Ordering::Acquire) == 0 {
            return Ok(false);
        }
        let alive = self.end.server_alive().map_err(|error| ClientError::Os {
            op: Op::CheckPeer,
            region: self.end.region.describe(),
            error,
        })?;
        Ok(!alive)
    }

    /// Moves the place from `word` to IDLE; whether it did.
    fn to_idle(&self, word: u32) -> bool {
        let idle = with_state(word, IDLE);
        self.header().state.compare_exchange(word, idle, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Brings the place to IDLE, settling a call still out: a request the
    /// server has not taken is withdrawn, a response or refusal discarded; one
    /// the server is working on is waited for (or given up on if the server
    /// is gone). Returns the IDLE word.
    fn settle(&self, timeout: Option<Duration>) -> Result<u32, ClientError> {
        let place = self.header();
        wait_for(
            self.end.wait,
            self.end.peer_check,
            &place.event,
            timeout,
            || state(place.state.load(Ordering::SeqCst)) != TAKEN,
            |look| {
                let word = place.state.load(Ordering::SeqCst);
                match state(word) {
                    IDLE => Ok(Some(word)),
                    REQUEST | RESPONSE | DROPPED => {
                        let _ = self.to_idle(word);
                        Ok(None)
                    }
                    TAKEN => {
                        if look && self.server_gone()? {
                            let _ = self.to_idle(word);
                        }
                        Ok(None)
                    }
                    other => Err(self.corrupt(format!("client place {} holds state {other}", self.end.place))),
                }
            },
            ClientError::Timeout,
        )
        .inspect(|_| self.out.set(false))
    }

    /// Loans `len` bytes of this client's request room, waiting at most
    /// `timeout` for a call still out (one given up on with a timeout) to
    /// settle.
    pub fn loan_timeout(&mut self, len: usize, timeout: Option<Duration>) -> Result<RequestLoan<'_>, ClientError> {
        let max = self.max_request();
        if len > max {
            return Err(ClientError::MessageTooLarge { len, max });
        }
        let word = self.settle(timeout)?;
        Ok(RequestLoan { client: self, word, len })
    }

    /// Loans `len` bytes of this client's request room.
    pub fn loan(&mut self, len: usize) -> Result<RequestLoan<'_>, ClientError> {
        self.loan_timeout(len, None)
    }

    /// Sends a copy of `request` and waits at most `timeout` in all for the
    /// response.
    pub fn call_timeout(&mut self, request: &[u8], timeout: Option<Duration>) -> Result<Response<'_>, ClientError> {
        let start = std::time::Instant::now();
        let mut loan = self.loan_timeout(request.len(), timeout)?;
        loan.copy_from_slice(request);
        loan.send()?;
        self.response_timeout(timeout.map(|t| t.saturating_sub(start.elapsed())))
    }

    /// Sends a copy of `request` and waits for the response.
    pub fn call(&mut self, request: &[u8]) -> Result<Response<'_>, ClientError> {
        self.call_timeout(request, None)
    }

    /// Waits at most `timeout` for the response to the request sent. A
    /// timeout leaves the call out: wait again, or send another request,
    /// which first settles this one.
    pub fn response_timeout(&mut self, timeout: Option<Duration>) -> Result<Response<'_>, ClientError> {
        if !self.out.get() {
            return Err(ClientError::NothingSent);
        }
        let place = self.header();
        let region = || self.end.region.describe();
        let (word, len) = wait_for(
            self.end.wait,
            self.end.peer_check,
            &place.event,
            timeout,
            || matches!(state(place.state.load(Ordering::SeqCst)), RESPONSE | DROPPED),
            |look| {
                let word = place.state.load(Ordering::SeqCst);
                match state(word) {
                    RESPONSE => {
                        let len = place.response_len.load(Ordering::Acquire);
                        if len > self.end.geometry.response_max as u64 {
                            let _ = self.to_idle(word);
                            self.out.set(false);
                            return Err(self.corrupt(format!(
                                "a response of {len} bytes for client place {}; responses are at most {}",
                                self.end.place, self.end.geometry.response_max
                            )));
                        }
                        Ok(Some((word, len as usize)))
                    }
                    DROPPED => {
                        let _ = self.to_idle(word);
                        self.out.set(false);
                        Err(ClientError::NoResponse { region: region() })
                    }
                    REQUEST | TAKEN => {
                        if look && self.server_gone()? {
                            let _ = self.to_idle(word);
                            self.out.set(false);
                            return Err(ClientError::ServerGone { region: region() });
                        }
                        Ok(None)
                    }
                    other => {
                        self.out.set(false);
                        Err(self.corrupt(format!("client place {} holds state {other} during a call", self.end.place)))
                    }
                }
            },
            ClientError::Timeout,
        )?;
        Ok(Response { client: self, word, len })
    }

    /// Waits for the response to the request sent.
    pub fn response(&mut self) -> Result<Response<'_>, ClientError> {
        self.response_timeout(None)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("region", &self.end.region.describe()).field("place", &self.end.place).finish()
    }
}

/// This client's request room, lent out; [`send`](Self::send) sends it.
pub struct RequestLoan<'a> {
    client: &'a mut Client,
    /// The place's IDLE word.
    word: u32,
    len: usize,
}

impl<'a> RequestLoan<'a> {
    /// Sends the request; wait for its response with
    /// [`Client::response_timeout`].
    pub fn send(mut self) -> Result<(), ClientError> {
        self.ring()
    }

    /// Sends the request and waits at most `timeout` for its response.
    pub fn call(mut self, timeout: Option<Duration>) -> Result<Response<'a>, ClientError> {
        self.ring()?;
        let RequestLoan { client, .. } = self;
        client.response_timeout(timeout)
    }

    /// Publishes the request in the place and rings the server's doorbell.
    fn ring(&mut self) -> Result<(), ClientError> {
        let client = &*self.client;
        let place = client.header();
        place.request_len.store(self.len as u64, Ordering::Relaxed);
        // Before the request is out, so that its response is seen with the new count.
        let sent = with_state(self.word, REQUEST);
        if place.state.compare_exchange(self.word, sent, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            let now = place.state.load(Ordering::SeqCst);
            return Err(client.corrupt(format!(
                "client place {} changed from {:#x} to {now:#x} while its request was written",
                client.end.place, self.word
            )));
        }
        client.out.set(true);
        let doorbell = &client.end.header().doorbell.0;
        doorbell.requests.fetch_add(1, Ordering::SeqCst);
        doorbell.ring();
        Ok(())
    }
}

impl std::ops::Deref for RequestLoan<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let (_, request, _) = self.client.end.place(self.client.end.place);
        // SAFETY: `len` bytes (checked against the request room) of a place in IDLE, which only its client touches
        // (the service's contract).
        unsafe { std::slice::from_raw_parts(request, self.len) }
    }
}

impl std::ops::DerefMut for RequestLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let (_, request, _) = self.client.end.place(self.client.end.place);
        // SAFETY: as above; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(request, self.len) }
    }
}

impl std::fmt::Debug for RequestLoan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLoan").field("len", &self.len).finish()
    }
}

/// A response, read in place; dropping it frees the place for the next call.
pub struct Response<'a> {
    client: &'a mut Client,
    /// The place's RESPONSE word.
    word: u32,
    len: usize,
}

impl std::ops::Deref for Response<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let (_, _, response) = self.client.end.place(self.client.end.place);
        // SAFETY: `len` bytes (checked against the response room) of a place in RESPONSE, which the server no longer
        // touches (the service's contract).
        unsafe { std::slice::from_raw_parts(response, self.len) }
    }
}

impl Drop for Response<'_> {
    fn drop(&mut self) {
        let _ = self.client.to_idle(self.word);
        self.client.out.set(false);
    }
}

impl std::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response").field("len", &self.len).finish()
    }
}
