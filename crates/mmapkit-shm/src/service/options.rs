//! What a service is made with and how its ends behave: [`ServiceOptions`].

use std::time::Duration;

use super::layout::{MAX_CLIENTS, MAX_MESSAGE};
use crate::channel::Wait;
use crate::message_type::MessageType;
use crate::region::RegionOptions;

/// How a service is made (by its first end) and how an end behaves. The
/// geometry (client places, request and response sizes) is the creator's;
/// an end that opens the service takes it from the header.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    pub(super) clients: u64,
    pub(super) max_request: usize,
    pub(super) max_response: usize,
    pub(super) wait: Wait,
    pub(super) peer_check: Duration,
    pub(super) region: RegionOptions,
    /// What the end's requests are: raw bytes, or one type (set by the typed ends).
    pub(crate) request_type: MessageType,
    /// What the end's responses are.
    pub(crate) response_type: MessageType,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            clients: 8,
            max_request: 1024,
            max_response: 1024,
            wait: Wait::SpinThenBlock(2_000),
            peer_check: Duration::from_millis(100),
            region: RegionOptions::new(),
            request_type: MessageType::Bytes,
            response_type: MessageType::Bytes,
        }
    }
}

impl ServiceOptions {
    /// Eight client places, requests and responses of up to 1 KiB,
    /// spin-then-block waiting, a look at the other side every 100 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many clients may be attached at once (1 to 64; default 8).
    /// Values outside the range are clamped.
    pub fn clients(&mut self, places: u64) -> &mut Self {
        self.clients = places.clamp(1, MAX_CLIENTS);
        self
    }

    /// The longest request (rounded up to a multiple of 64, at most 1 GiB).
    pub fn max_request(&mut self, bytes: usize) -> &mut Self {
        self.max_request = bytes.clamp(1, MAX_MESSAGE as usize).next_multiple_of(64);
        self
    }

    /// The longest response (rounded up to a multiple of 64, at most 1 GiB).
    pub fn max_response(&mut self, bytes: usize) -> &mut Self {
        self.max_response = bytes.clamp(1, MAX_MESSAGE as usize).next_multiple_of(64);
        self
    }

    /// How the end waits: spinning, sleeping on a futex, or both in turn.
    pub fn wait(&mut self, wait: Wait) -> &mut Self {
        self.wait = wait;
        self
    }

    /// How often a waiting end looks at whether the other side is alive
    /// (default 100 ms): a client waiting for its response at the server.
    /// A sleeping end's futex wait is timed for its next look.
    pub fn peer_check(&mut self, every: Duration) -> &mut Self {
        self.peer_check = every.max(Duration::from_micros(100));
        self
    }

    /// Options of the region itself (mode, open timeout, keep).
    pub fn region(&mut self, options: RegionOptions) -> &mut Self {
        self.region = options;
        self
    }
}
