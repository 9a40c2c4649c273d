//! The serving end: [`Server`] finds a client place holding a request,
//! takes it, and lends it out as a [`Request`]; the response is written in
//! place ([`Request::loan_response`]) or copied ([`Request::respond`]), and
//! a request dropped without one tells its client so.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::end::{ServiceEnd, layout};
use super::layout::{DROPPED, REQUEST, RESPONSE, TAKEN, state, with_state};
use super::options::ServiceOptions;
use crate::channel::Wait;
use crate::error::{Op, Party, Result, ServerError};
use crate::pubsub::wait::wait_for;
use crate::region::Region;

/// The server of a service: one at a time; it answers each client's
/// requests, one at a time per client, in place.
pub struct Server {
    /// The readiness descriptor, if asked for (dropped first: it reads the
    /// mapping).
    pub(super) readiness: crate::readiness::ReadinessCell,
    pub(super) end: ServiceEnd,
    /// Where the next scan for requests starts (round robin over places).
    next_scan: Cell<u64>,
    /// The doorbell's count at the start of the last scan.
    rung: Cell<u32>,
}

/// A request found and taken: its place, the state word it was taken with,
/// and its length.
struct Taken {
    place: u64,
    word: u32,
    len: usize,
}

impl Server {
    fn from_region(region: Region, options: &ServiceOptions) -> Result<Server> {
        let end = ServiceEnd::attach(region, options, Party::Server)?;
        let doorbell = &end.header().doorbell.0;
        if end.wait != Wait::Spin {
            doorbell.server_may_sleep.store(1, Ordering::SeqCst);
        }
        doorbell.server_seen.store(1, Ordering::SeqCst);
        // A request a dead server had taken gets no response: its client is told.
        for i in 0..end.geometry.clients {
            let (place, _, _) = end.place(i);
            let word = place.state.load(Ordering::SeqCst);
            if state(word) == TAKEN
                && place
                    .state
                    .compare_exchange(word, with_state(word, DROPPED), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                place.wake();
            }
        }
        Ok(Server { readiness: Default::default(), end, next_scan: Cell::new(0), rung: Cell::new(0) })
    }

    /// Creates the service's named region (`0600`, `O_EXCL`) and attaches as its server.
    ///
    /// # Safety
    /// Every process that opens the region must follow this crate's
    /// request-response protocol (any mmapkit-shm process does): a peer that
    /// writes a request's or response's bytes while they are lent out breaks
    /// the `&[u8]` and `&mut [u8]` handed out. States and lengths are checked
    /// regardless, so a broken peer cannot make this end read or write out of
    /// bounds.
    pub unsafe fn create_named(name: &str, options: &ServiceOptions) -> Result<Server> {
        let region = ServiceEnd::create(
            |layout, len, init| Region::create_named(name, layout, len, &options.region, init),
            options,
        )?;
        Server::from_region(region, options)
    }

    /// Opens the service's named region and attaches as its server (a
    /// second live server is refused with `NoPlaceFree`).
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_named(name: &str, options: &ServiceOptions) -> Result<Server> {
        Server::from_region(Region::open_named(name, layout(), &options.region)?, options)
    }

    /// Opens the named region if it exists, or creates it (reclaiming a stale
    /// name, as [`Region::create_named`] says), and attaches;
    /// `region().created()` tells which.
    ///
    /// # Safety
    /// As for [`create_named`](Self::create_named).
    pub unsafe fn open_or_create_named(name: &str, options: &ServiceOptions) -> Result<Server> {
        crate::region::open_or_create(
            &options.region,
            // SAFETY: this function's contract is theirs.
            || unsafe { Server::create_named(name, options) },
            // SAFETY: as above.
            || unsafe { Server::open_named(name, options) },
        )
    }

    /// The longest response.
    pub fn max_response(&self) -> usize {
        self.end.geometry.response_max
    }

    /// The region underneath.
    pub fn region(&self) -> &Region {
        &self.end.region
    }

    fn corrupt(&self, what: String) -> ServerError {
        ServerError::Corrupt { region: self.end.region.describe(), what }
    }

    /// One scan of the places for a request, from where the last one left off.
    fn find(&self) -> Result<Option<Taken>, ServerError> {
        self.rung.set(self.end.header().doorbell.0.requests.load(Ordering::SeqCst));
        let clients = self.end.geometry.clients;
        for k in 0..clients {
            let i = (self.next_scan.get() + k) % clients;
            let (place, _, _) = self.end.place(i);
            let word = place.state.load(Ordering::SeqCst);
            if state(word) != REQUEST {
                continue;
            }
            let taken = with_state(word, TAKEN);
            if place.state.compare_exchange(word, taken, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                // The client cancelled it, or left.
                continue;
            }
            self.next_scan.set(i + 1);
            let len = place.request_len.load(Ordering::Acquire);
            if len > self.end.geometry.request_max as u64 {
                let _ =
                    place.state.compare_exchange(taken, with_state(word, DROPPED), Ordering::SeqCst, Ordering::SeqCst);
                place.wake();
                return Err(self.corrupt(format!(
                    "client {i} sent a request of {len} bytes; requests are at most {}",
                    self.end.geometry.request_max
                )));
            }
            return Ok(Some(Taken { place: i, word: taken, len: len as usize }));
        }
        Ok(None)
    }

    /// The next request, if one is waiting.
    pub fn try_recv(&mut self) -> Result<Request<'_>, ServerError> {
        match self.find()? {
            Some(taken) => Ok(self.request(taken)),
            None => Err(ServerError::Empty),
        }
    }

    /// The next request, waiting at most `timeout` (`None`: as long as it takes).
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Request<'_>, ServerError> {
        let doorbell = &self.end.header().doorbell.0;
        let taken = wait_for(
            self.end.wait,
            self.end.peer_check,
            &doorbell.event,
            timeout,
            || doorbell.requests.load(Ordering::SeqCst) != self.rung.get(),
            |_| self.find(),
            ServerError::Timeout,
        )?;
        Ok(self.request(taken))
    }

    /// The next request, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<Request<'_>, ServerError> {
        self.recv_timeout(None)
    }

    fn request(&mut self, Taken { place, word, len }: Taken) -> Request<'_> {
        Request { server: self, place, word, len, answered: false }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("region", &self.end.region.describe()).finish()
    }
}

/// A request taken from a client's place, lent out in place. Respond with
/// [`loan_response`](Self::loan_response) or [`respond`](Self::respond);
/// dropping it unanswered tells the client
/// ([`ClientError::NoResponse`](crate::ClientError::NoResponse)).
pub struct Request<'a> {
    server: &'a mut Server,
    place: u64,
    /// The state word as taken (TAKEN, with the place's attachment count).
    word: u32,
    len: usize,
    answered: bool,
}

impl<'a> Request<'a> {
    /// The client's place (0 to the number of places less one).
    pub fn client(&self) -> u64 {
        self.place
    }

    /// The process id the client's place records.
    pub fn client_pid(&self) -> u32 {
        self.server.end.place(self.place).0.pid.load(Ordering::Relaxed)
    }

    /// Loans `len` bytes of the client's response room, to write the
    /// response in place while the request is still readable
    /// ([`ResponseLoan::request`]).
    pub fn loan_response(&mut self, len: usize) -> Result<ResponseLoan<'_, 'a>, ServerError> {
        let max = self.server.end.geometry.response_max;
        if len > max {
            return Err(ServerError::MessageTooLarge { len, max });
        }
        Ok(ResponseLoan { request: self, len })
    }

    /// Responds with a copy of `response`.
    pub fn respond(mut self, response: &[u8]) -> Result<(), ServerError> {
        let mut loan = self.loan_response(response.len())?;
        loan.copy_from_slice(response);
        loan.commit()
    }

    /// Publishes a response of `len` bytes to the client: the state moves
    /// from this request's TAKEN to RESPONSE if the client is alive and its
    /// place was not taken over meanwhile by a new client (after a death);
    /// otherwise the request is dropped and the client reported gone. A
    /// client that dies after the response is published is not told apart
    /// from one that read it.
    fn finish(&mut self, len: usize) -> Result<(), ServerError> {
        self.answered = true;
        let end = &self.server.end;
        let (place, _, _) = end.place(self.place);
        let alive = end.client_alive(self.place).map_err(|error| ServerError::Os {
            op: Op::CheckPeer,
            region: end.region.describe(),
            error,
        })?;
        place.response_len.store(len as u64, Ordering::Relaxed);
        let answered = with_state(self.word, RESPONSE);
        let delivered =
            alive && place.state.compare_exchange(self.word, answered, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        if !delivered {
            // Dead, or a new client took over the place: let it go on.
            drop_taken(place);
        }
        place.wake();
        if delivered {
            Ok(())
        } else {
            Err(ServerError::ClientGone { region: end.region.describe(), place: self.place })
        }
    }
}

/// Moves a place that is TAKEN (under whatever attachment count) to DROPPED.
fn drop_taken(place: &super::layout::PlaceHeader) {
    loop {
        let now = place.state.load(Ordering::SeqCst);
        if state(now) != TAKEN
            || place.state.compare_exchange(now, with_state(now, DROPPED), Ordering::SeqCst, Ordering::SeqCst).is_ok()
        {
            return;
        }
    }
}

impl std::ops::Deref for Request<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let (_, request, _) = self.server.end.place(self.place);
        // SAFETY: `len` bytes (checked against the request room) of a place in TAKEN, which only the server touches
        // (the service's contract).
        unsafe { std::slice::from_raw_parts(request, self.len) }
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if !self.answered {
            let (place, _, _) = self.server.end.place(self.place);
            drop_taken(place);
            place.wake();
        }
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("client", &self.place).field("len", &self.len).finish()
    }
}

/// The client's response room, lent to the server; [`commit`](Self::commit)
/// sends it, dropping it leaves the request unanswered.
pub struct ResponseLoan<'r, 'a> {
    request: &'r mut Request<'a>,
    len: usize,
}

impl ResponseLoan<'_, '_> {
    /// The request being answered.
    pub fn request(&self) -> &[u8] {
        self.request
    }

    /// Sends the response. `ClientGone` if the client died or left before
    /// it could read it.
    pub fn commit(self) -> Result<(), ServerError> {
        self.request.finish(self.len)
    }
}

impl std::ops::Deref for ResponseLoan<'_, '_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let (_, _, response) = self.request.server.end.place(self.request.place);
        // SAFETY: `len` bytes (checked against the response room) of a place in TAKEN, which only the server
        // touches (the service's contract).
        unsafe { std::slice::from_raw_parts(response, self.len) }
    }
}

impl std::ops::DerefMut for ResponseLoan<'_, '_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let (_, _, response) = self.request.server.end.place(self.request.place);
        // SAFETY: as above; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(response, self.len) }
    }
}

impl std::fmt::Debug for ResponseLoan<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseLoan").field("client", &self.request.place).field("len", &self.len).finish()
    }
}
