//! What a channel is made with and how its ends behave: [`ChannelOptions`],
//! and the choices it takes, [`Wait`] and [`EarlyWake`].

use std::time::Duration;

use super::kind::Kind;
use crate::message_type::MessageType;
use crate::region::RegionOptions;

/// How an end waits for room or for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Spin on the shared counters: the lowest latency, a busy core.
    Spin,
    /// Sleep on a futex until the other end signals (see
    /// [`Sender::reserve_timeout`] for when a sender does). With the peer
    /// watch (the default, see [`ChannelOptions::peer_check`]) a wait with
    /// no deadline sleeps with no timeout.
    ///
    /// [`Sender::reserve_timeout`]: crate::Sender::reserve_timeout
    Block,
    /// Spin this many times, then sleep.
    SpinThenBlock(u32),
}

/// How a channel is made and how its ends behave.
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    pub(super) capacity: usize,
    pub(super) wait: Wait,
    pub(super) peer_check: Duration,
    pub(super) region: RegionOptions,
    pub(super) kind: Kind,
    pub(super) populate: bool,
    pub(super) peer_watch: bool,
    pub(super) early_wake: EarlyWake,
    /// The message type the typed ends carry (raw bytes for the others).
    pub(crate) message_type: MessageType,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            capacity: 1 << 20,
            wait: Wait::SpinThenBlock(2_000),
            peer_check: Duration::from_millis(100),
            region: RegionOptions::new(),
            kind: Kind::OneToOne,
            populate: true,
            peer_watch: true,
            early_wake: EarlyWake::default(),
            message_type: MessageType::Bytes,
        }
    }
}

impl ChannelOptions {
    /// A 1 MiB ring, spin-then-block waiting, a peer check every 100 ms, pages
    /// mapped up front.
    pub fn new() -> Self {
        Self::default()
    }

    /// Data bytes in the ring (rounded up to a power of two, at least 4 KiB).
    /// A message may take up to half of it.
    ///
    /// Give the ring room for many messages, since a blocking sender that
    /// outruns its receiver sleeps each time the ring is full, and for small
    /// messages no more than that, since a ring is fastest while it stays in
    /// the CPUs' caches. The measured effect of ring sizes is in
    /// docs/performance.md, "Ring sizes".
    pub fn capacity(&mut self, bytes: usize) -> &mut Self {
        self.capacity = bytes.max(4096).next_power_of_two();
        self
    }

    /// How the end waits.
    pub fn wait(&mut self, wait: Wait) -> &mut Self {
        self.wait = wait;
        self
    }

    /// How often the end's process looks whether the other end is alive:
    /// a spinning end looks itself as it spins, while an end that may sleep
    /// is looked after by the process's peer watch (a thread named
    /// `mmapkit-shm-watch`), which wakes it when the other end is gone.
    /// Either way a waiting end learns of a death within about this time
    /// (the watch looks at most once a millisecond).
    ///
    /// The watch is there so that a sleeping end needs no timer: its futex
    /// wait has no timeout (docs/performance.md, "The peer watch", has what
    /// that saves). A waiting end falls back to timed looks of its own in a
    /// child made by `fork` and if the watch thread cannot start.
    ///
    /// The first end that uses the watch starts its thread and registers a
    /// `pthread_atfork` handler, both for the life of the process. Applies to
    /// each end separately; see also [`peer_watch`](Self::peer_watch).
    pub fn peer_check(&mut self, every: Duration) -> &mut Self {
        self.peer_check = every;
        self
    }

    /// Whether the channel takes any number of senders and receivers (up to
    /// 64 of each) instead of one of each (default: one of each). Both ends
    /// must be made with the same: the two kinds of channel have different
    /// layouts and refuse each other.
    pub fn many(&mut self, yes: bool) -> &mut Self {
        self.kind = if yes { Kind::ManyToMany } else { Kind::OneToOne };
        self
    }

    /// Whether an end that may sleep is looked after by the process's peer
    /// watch (default: yes; see [`peer_check`](Self::peer_check)). Without
    /// it the process runs no thread for the channel, and each of the end's
    /// sleeps is a futex wait timed for its next look at the peer.
    pub fn peer_watch(&mut self, yes: bool) -> &mut Self {
        self.peer_watch = yes;
        self
    }

    /// When a one-to-one channel's sender of a message of 4 KiB or more
    /// wakes a sleeping receiver: at the reservation too, so that its CPU
    /// comes out of idle while the message is written, or at the commit
    /// only. By default, only while waking the receiver has been slow, which
    /// is where it pays (idle CPUs that halt rather than poll).
    pub fn early_wake(&mut self, when: EarlyWake) -> &mut Self {
        self.early_wake = when;
        self
    }

    /// Options of the region itself (mode, open timeout, keep).
    pub fn region(&mut self, options: RegionOptions) -> &mut Self {
        self.region = options;
        self
    }

    /// Whether each end maps the ring in when it attaches (default: yes), so
    /// that no message pays a page fault on the ring's first lap; with
    /// `false`, pages are mapped as messages first reach them. An end maps at
    /// most the capacity it was given here, whatever the ring's creator
    /// chose, so a peer cannot make it allocate more than it asked for. On
    /// kernels before 5.14 (no `MADV_POPULATE_WRITE`) this does nothing.
    pub fn populate(&mut self, yes: bool) -> &mut Self {
        self.populate = yes;
        self
    }
}

/// Whether a one-to-one channel's sender wakes a sleeping receiver when it
/// reserves a message of 4 KiB or more, so that the receiver's CPU comes out
/// of idle while the message is written (see
/// [`ChannelOptions::early_wake`]). Only
/// the sender's setting matters, and either way only a receiver counted as
/// waiting is woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EarlyWake {
    /// While waking the receiver has been slow: each sender times its
    /// wake-up system calls that wake the receiver from its futex (for
    /// messages of 4 KiB or more) and wakes early while they average 3 µs
    /// or more, which a few in a row do. A new sender starts without. Where
    /// idle CPUs halt, waking early pays; where they poll, it costs.
    #[default]
    WhenWakingIsSlow,
    /// For every such message.
    Always,
    /// Never: the receiver is woken at the commit only.
    Never,
}
