//! What a publish-subscribe board is made with and how its ends behave:
//! [`PubSubOptions`], and a subscriber's [`Overflow`] policy.

use std::time::Duration;

use super::layout::{MAX_CAPACITY, MAX_SLOT, MAX_SUBSCRIBERS};
use crate::channel::Wait;
use crate::region::RegionOptions;

/// What a subscriber that falls a whole ring behind does to the publishers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The publishers wait for it (`Full` from `try_loan`): it sees every
    /// message, and holds every other subscriber back with it.
    #[default]
    Backpressure,
    /// The publishers overwrite the oldest messages it has not read, and it
    /// learns how many with [`SubscriberError::Lagged`]. It holds a
    /// publisher back only while it holds the oldest message itself.
    ///
    /// [`SubscriberError::Lagged`]: crate::SubscriberError::Lagged
    LoseOldest,
}

/// How a board is made (by its first end) and how an end behaves.
///
/// The geometry (capacity, slot size, subscriber places) is the creator's;
/// an end that opens the board takes it from the header. The rest applies
/// to the end made with it.
#[derive(Clone, Debug)]
pub struct PubSubOptions {
    pub(super) capacity: u64,
    pub(super) max_message: usize,
    pub(super) subscribers: u64,
    pub(super) wait: Wait,
    pub(super) peer_check: Duration,
    pub(super) region: RegionOptions,
    pub(super) overflow: Overflow,
    pub(super) history: u64,
}

impl Default for PubSubOptions {
    fn default() -> Self {
        PubSubOptions {
            capacity: 256,
            max_message: 1024,
            subscribers: 8,
            wait: Wait::SpinThenBlock(2_000),
            peer_check: Duration::from_millis(100),
            region: RegionOptions::new(),
            overflow: Overflow::Backpressure,
            history: 0,
        }
    }
}

impl PubSubOptions {
    /// A ring of 256 messages of up to 1 KiB, 8 subscriber places,
    /// spin-then-block waiting, a look at stuck peers every 100 ms,
    /// backpressure, no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many of the latest messages the ring always keeps (1 to 2^24;
    /// default 256): the most history a late joiner can ask for. The ring
    /// has one slot more, so a subscriber may be up to `capacity + 1`
    /// messages behind before it holds the publishers back (or loses the
    /// oldest). Values outside the range are clamped into it.
    pub fn capacity(&mut self, messages: u64) -> &mut Self {
        self.capacity = messages.clamp(1, MAX_CAPACITY);
        self
    }

    /// The longest message (rounded up to a multiple of 64, at most 1 GiB;
    /// default 1 KiB). Every slot has this room, so the ring takes
    /// `capacity + 1` times it.
    pub fn max_message(&mut self, bytes: usize) -> &mut Self {
        self.max_message = bytes.clamp(1, MAX_SLOT as usize).next_multiple_of(64);
        self
    }

    /// How many subscribers may be attached at once (1 to 64; default 8),
    /// fixed when the board is made. Values outside the range are clamped.
    pub fn subscribers(&mut self, places: u64) -> &mut Self {
        self.subscribers = places.clamp(1, MAX_SUBSCRIBERS);
        self
    }

    /// How the end waits: spinning, sleeping on a futex, or both in turn.
    pub fn wait(&mut self, wait: Wait) -> &mut Self {
        self.wait = wait;
        self
    }

    /// How often a waiting end looks at whether the peers it waits on are
    /// alive (default 100 ms): a publisher at a subscriber in its way, a
    /// subscriber at the publishers. A sleeping end's futex wait is timed
    /// for its next look.
    pub fn peer_check(&mut self, every: Duration) -> &mut Self {
        self.peer_check = every.max(Duration::from_micros(100));
        self
    }

    /// Options of the region itself (mode, open timeout, keep).
    pub fn region(&mut self, options: RegionOptions) -> &mut Self {
        self.region = options;
        self
    }

    /// A subscriber's policy when it falls a whole ring behind (default:
    /// [`Overflow::Backpressure`]).
    pub fn overflow(&mut self, policy: Overflow) -> &mut Self {
        self.overflow = policy;
        self
    }

    /// How many of the messages published before it attached a subscriber
    /// receives first (at most the ring's capacity; default 0): the last
    /// `messages`, or as many as have been published if fewer.
    pub fn history(&mut self, messages: u64) -> &mut Self {
        self.history = messages;
        self
    }
}
