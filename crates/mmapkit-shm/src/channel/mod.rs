//! A bounded channel of variable-size messages in shared memory, zero-copy on
//! both ends: one sender and one receiver, or (with
//! [`ChannelOptions::many`]) any number of each.
//!
//! The sender [`reserve`](Sender::reserve)s room, writes the message in place
//! and [`commit`](Reservation::commit)s it; the receiver gets a [`Message`]
//! that borrows the bytes in the ring and releases them when dropped. Copying
//! [`send`](Sender::send) and [`recv_into`](Receiver::recv_into) are there too.
//! Messages arrive in order, once each. Either end learns within
//! [`ChannelOptions::peer_check`] (100 ms by default) that the other died,
//! through a byte-range lock the kernel releases when a process dies; a
//! message the sender had not committed when it died is never delivered.
//! A spinning end looks at that lock itself; for ends that may sleep, one
//! thread per process (the peer watch, started with the first such end)
//! looks and wakes them, so that a wait with no deadline sleeps on its futex
//! with no timeout.
//!
//! With many senders and receivers, senders take a robust process-shared
//! lock from reserve to commit and receivers from receive to release: each
//! message still arrives once, each sender's messages in its order, and a
//! holder that dies (even mid-message) leaves a ring the next taker can use.
//! The locks are glibc mutexes in the shared memory, so unlike the ring's
//! positions and lengths they cannot be validated: a peer that scribbles on
//! them breaks the constructors' contract.

mod early_wake;
mod ring;
mod watch;

use std::cell::Cell;
use std::os::fd::BorrowedFd;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mmapkit_sys::range_lock;
use mmapkit_sys::robust_mutex::{LockOutcome, RawRobustMutex};

pub use early_wake::EarlyWake;

use crate::error::{Result, ShmError};
use crate::event::Event;
use crate::layout::Layout;
use crate::region::{Region, RegionOptions};
use early_wake::WakeCost;
use ring::{
    END_ATTACHED, END_CLOSED, END_NONE, KIND_MESSAGE, KIND_PADDING, Peek, RECORD_HEADER, RING_HEADER_SIZE, RingHeader,
    check_positions, check_record, clear_record, commit_record, peek_record, poll_record, read_record, record_size,
};

/// How an end waits for room or for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Spin on the shared counters: the lowest latency, a busy core.
    Spin,
    /// Sleep on a futex until the other end signals (see
    /// [`Sender::reserve_timeout`] for when a sender does). With the peer
    /// watch (the default, see [`ChannelOptions::peer_check`]) a wait with
    /// no deadline sleeps with no timeout.
    Block,
    /// Spin this many times, then sleep.
    SpinThenBlock(u32),
}

/// How a channel is made and how its ends behave.
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    capacity: usize,
    wait: Wait,
    peer_check: Duration,
    region: RegionOptions,
    many: bool,
    populate: bool,
    peer_watch: bool,
    early_wake: EarlyWake,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            capacity: 1 << 20,
            wait: Wait::SpinThenBlock(2_000),
            peer_check: Duration::from_millis(100),
            region: RegionOptions::new(),
            many: false,
            populate: true,
            peer_watch: true,
            early_wake: EarlyWake::default(),
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
    /// docs/performance.md.
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
    /// wait has no timeout (docs/performance.md has what that saves). A
    /// waiting end falls back to timed looks of its own in a child made by
    /// `fork` and if the watch thread cannot start.
    ///
    /// The first end that uses the watch starts its thread and registers a
    /// `pthread_atfork` handler, both for the life of the process. Applies to
    /// each end separately; see also [`peer_watch`](Self::peer_watch).
    pub fn peer_check(&mut self, every: Duration) -> &mut Self {
        self.peer_check = every;
        self
    }

    /// Any number of senders and receivers (up to 64 of each) instead of one
    /// of each. Both ends must be made with it: the two kinds of channel have
    /// different layouts and refuse each other.
    pub fn many(&mut self) -> &mut Self {
        self.many = true;
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

/// Liveness locks sit far past the end of the region's file: senders' bytes
/// from `LOCK_BASE`, receivers' from `LOCK_BASE + MAX_ENDS`.
const LOCK_BASE: u64 = 1 << 40;
/// How many senders (and receivers) a many-to-many channel takes.
const MAX_ENDS: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Sender,
    Receiver,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        }
    }

    /// The first of this role's liveness bytes.
    fn lock_base(self) -> u64 {
        LOCK_BASE + self as u64 * MAX_ENDS
    }
}

fn layout(many: bool) -> Layout {
    Layout::of::<RingHeader>(if many { "mmapkit-shm mpmc channel v1" } else { "mmapkit-shm spsc channel v2" })
}

/// Takes a robust lock, waiting at most `timeout` (`None`: as long as it
/// takes; zero: one try). A holder's death is repaired by construction (the
/// ring's positions change only at commit and release; a sender that died
/// between its commit and its store of `tail` is caught up with by
/// [`catch_up`]). `Busy` if another holder kept it for the whole timeout.
fn take(lock: &RawRobustMutex, region: &Region, timeout: Option<Duration>) -> Result<SideLock> {
    // SAFETY: the locks are initialised by the creator before publishing.
    match unsafe { lock.lock(timeout) }.map_err(|e| ShmError::os("lock", &region.describe(), e))? {
        LockOutcome::Acquired => Ok(SideLock::Held { after_death: false }),
        LockOutcome::OwnerDied => {
            // SAFETY: we hold it, taken with OwnerDied.
            unsafe { lock.make_consistent() }.map_err(|e| ShmError::os("recover", &region.describe(), e))?;
            Ok(SideLock::Held { after_death: true })
        }
        LockOutcome::NotRecoverable => Err(ShmError::NotRecoverable),
        LockOutcome::Busy => Ok(SideLock::Busy),
    }
}

/// Whether an end holds its side's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SideLock {
    /// A one-to-one channel: there is no lock.
    Unneeded,
    /// Taken; `after_death` if its last holder died holding it.
    Held { after_death: bool },
    /// Another end of this side kept it for the whole timeout.
    Busy,
}

/// Releases a robust lock taken with [`take`].
fn give(lock: &RawRobustMutex) {
    // SAFETY: callers hold the lock, on this thread (the guards are not Send).
    let _ = unsafe { lock.unlock() };
}

/// One end of a channel: the region, where the ring is, and its checked capacity.
struct End {
    region: Region,
    ring: *const RingHeader,
    data: *mut u8,
    capacity: usize,
    role: Role,
    wait: Wait,
    peer_check: Duration,
    /// Many senders and receivers: the role's lock must be held.
    many: bool,
    /// The process's peer watch, for an end that may sleep: with it, a wait
    /// with no deadline sleeps with no timeout.
    watch: Option<watch::Registration>,
    /// When a sender wakes the receiver before its commit.
    early_wake: EarlyWake,
}

// SAFETY: the raw pointers point into `region`, which the End owns; the
// shared words they reach are atomics, and the data bytes are handed out only
// through `&mut` borrows of the Sender or Receiver.
unsafe impl Send for End {}

impl End {
    fn create(
        make: impl FnOnce(Layout, usize, &mut dyn FnMut(*mut u8)) -> Result<Region>,
        options: &ChannelOptions,
        role: Role,
    ) -> Result<End> {
        let capacity = options.capacity.max(4096).next_power_of_two();
        let many = options.many;
        let mut init = |payload: *mut u8| {
            // SAFETY: the zeroed payload holds a RingHeader (FromBytes, so zeroed is valid) and is not yet published.
            let ring = unsafe { &*payload.cast::<RingHeader>() };
            ring.capacity.0.store(capacity as u64, Ordering::Release);
            if many {
                // SAFETY: the lock area lies inside the unpublished payload; nobody can use the locks before the region is published.
                let locks = unsafe { &*payload.add(ring::LOCKS_OFFSET).cast::<ring::Locks>() };
                // SAFETY: as above.
                let _ = unsafe { locks.send.init() };
                // SAFETY: as above.
                let _ = unsafe { locks.recv.init() };
            }
        };
        let region = make(layout(many), RING_HEADER_SIZE + capacity, &mut init)?;
        End::attach(region, options, role)
    }

    fn attach(region: Region, options: &ChannelOptions, role: Role) -> Result<End> {
        let describe = region.describe();
        let corrupt = |what: String| ShmError::Corrupt { region: describe.clone(), what };
        if region.payload_len() < RING_HEADER_SIZE {
            return Err(corrupt(format!("the payload of {} bytes cannot hold a ring header", region.payload_len())));
        }
        let ring = region.payload_ptr().cast::<RingHeader>().cast_const();
        // SAFETY: the payload is at least RING_HEADER_SIZE bytes, 128-aligned, mapped as long as `region`; RingHeader is valid for any bytes.
        let header = unsafe { &*ring };
        let capacity = header.capacity();
        let fits = (RING_HEADER_SIZE as u64).checked_add(capacity).is_some_and(|n| n <= region.payload_len() as u64);
        if !capacity.is_power_of_two() || capacity < 64 || !fits {
            return Err(corrupt(format!("a ring capacity of {capacity} bytes does not fit the region")));
        }
        let mine = if role == Role::Sender { &header.sender_state } else { &header.receiver_state };
        // Claim a liveness byte: the only one for a one-to-one channel, the
        // first free of MAX_ENDS for a many-to-many one.
        let slots = if options.many { MAX_ENDS } else { 1 };
        let mut claimed = false;
        for slot in 0..slots {
            let byte = role.lock_base() + slot;
            if range_lock::try_lock_byte(region.file(), byte).map_err(|e| ShmError::os("lock", &describe, e))? {
                claimed = true;
                break;
            }
        }
        if !claimed {
            return Err(ShmError::EndTaken { region: describe, role: role.name() });
        }
        if options.populate {
            // A hint: a kernel without MADV_POPULATE_WRITE maps pages as they are reached instead.
            let _ = region.populate(RING_HEADER_SIZE + (capacity as usize).min(options.capacity));
        }
        if options.wait != Wait::Spin {
            let may_sleep = if role == Role::Sender { &header.sender_may_sleep } else { &header.receiver_may_sleep };
            may_sleep.store(1, Ordering::SeqCst);
        }
        mine.store(END_ATTACHED, Ordering::Release);
        let watch = if options.wait == Wait::Spin || !options.peer_watch {
            None
        } else {
            let (peer_state, event) = match role {
                Role::Sender => (&header.receiver_state, &header.space_ready),
                Role::Receiver => (&header.sender_state, &header.data_ready),
            };
            // SAFETY: the End owns `region` (its descriptor, and its mapping where both words are) and drops the
            // registration first, so the descriptor and the words outlive the registration.
            unsafe { watch::register(region.file(), peer_state, event, role.other(), options.many, options.peer_check) }
        };
        Ok(End {
            data: region.payload_ptr().wrapping_add(RING_HEADER_SIZE),
            region,
            ring,
            capacity: capacity as usize,
            role,
            wait: options.wait,
            peer_check: options.peer_check,
            many: options.many,
            watch,
            early_wake: options.early_wake,
        })
    }

    fn locks(&self) -> &ring::Locks {
        // SAFETY: a many-to-many ring's payload holds the locks at LOCKS_OFFSET (inside RING_HEADER_SIZE, checked
        // in `attach`), initialised before the region was published, so they are in bounds and initialised.
        unsafe { &*self.region.payload_ptr().add(ring::LOCKS_OFFSET).cast::<ring::Locks>() }
    }

    /// Takes this role's lock (many-to-many channels only), waiting at most `timeout`.
    fn take_role_lock(&self, timeout: Option<Duration>) -> Result<SideLock> {
        if !self.many {
            return Ok(SideLock::Unneeded);
        }
        let locks = self.locks();
        let lock = if self.role == Role::Sender { &locks.send } else { &locks.recv };
        take(lock, &self.region, timeout)
    }

    fn give_role_lock(&self) {
        let locks = self.locks();
        give(if self.role == Role::Sender { &locks.send } else { &locks.recv });
    }

    #[inline]
    fn ring(&self) -> &RingHeader {
        // SAFETY: checked in `attach`; mapped while `self.region` lives.
        unsafe { &*self.ring }
    }

    fn corrupt(&self, what: String) -> ShmError {
        ShmError::Corrupt { region: self.region.describe(), what }
    }

    fn peer_state(&self) -> &AtomicU32 {
        match self.role {
            Role::Sender => &self.ring().receiver_state,
            Role::Receiver => &self.ring().sender_state,
        }
    }

    /// Whether the other end closed, or attached and then died (for a
    /// many-to-many channel: whether every end of the other kind is gone).
    fn peer_gone(&self) -> Result<bool> {
        let peer = self.role.other();
        match look_at_peer(self.region.file(), self.peer_state(), peer, self.many) {
            Ok(PeerSeen::Here) => Ok(false),
            Ok(PeerSeen::Gone) => Ok(true),
            Ok(PeerSeen::BadState(word)) => Err(self.corrupt(format!("the {} state word holds {word}", peer.name()))),
            Err(e) => Err(ShmError::os("check", &self.region.describe(), e)),
        }
    }

    fn gone(&self) -> ShmError {
        ShmError::PeerGone { region: self.region.describe(), peer: self.role.other().name() }
    }

    /// Retries `attempt` until it yields, waiting on `event` as the strategy
    /// says (`ready` is a cheap look at whether `attempt` could succeed now),
    /// and fails on the deadline or when the peer is gone, after a
    /// `last_look` for what it left.
    ///
    /// The `timeout` counts from `since`, or else from the first look at the
    /// clock: at once when blocking, after 64 turns (a few microseconds) when
    /// spinning, so that a message that comes while spinning is taken without
    /// reading the clock at all. A spinning turn is the attempt and a pause;
    /// everything else is in [`pace`](Self::pace), out of line.
    #[inline(always)]
    fn wait_for<T>(
        &self,
        event: &Event,
        timeout: Option<Duration>,
        since: Option<Instant>,
        ready: impl Fn() -> bool,
        mut attempt: impl FnMut() -> Result<Option<T>>,
        last_look: impl FnOnce() -> Result<Option<T>>,
    ) -> Result<T> {
        // (deadline, next liveness check), once the clock has been read.
        let mut clock = since.map(|s| (deadline(s, timeout), later(s, self.peer_check)));
        let mut spins: u32 = 0;
        loop {
            if let Some(value) = attempt()? {
                return Ok(value);
            }
            let spinning = match self.wait {
                Wait::Spin => true,
                Wait::Block => false,
                Wait::SpinThenBlock(n) => spins < n,
            };
            spins = spins.wrapping_add(u32::from(spinning));
            if spinning && spins % 1024 != 64 {
                std::hint::spin_loop();
                continue;
            }
            if self.pace(event, timeout, &mut clock, spinning, &ready)? == Paced::PeerGone {
                // One last look: the peer may have left work before it went.
                return last_look()?.ok_or_else(|| self.gone());
            }
        }
    }

    /// The part of a wait that reads the clock: the deadline, the peer's
    /// liveness, and (when not spinning) a nap on the event.
    #[inline(never)]
    fn pace(
        &self,
        event: &Event,
        timeout: Option<Duration>,
        clock: &mut Option<(Option<Instant>, Instant)>,
        spinning: bool,
        ready: &dyn Fn() -> bool,
    ) -> Result<Paced> {
        let now = Instant::now();
        let (deadline, next_check) = clock.get_or_insert((deadline(now, timeout), later(now, self.peer_check)));
        if deadline.is_some_and(|d| now >= d) {
            return Err(ShmError::Timeout(timeout.unwrap_or_default()));
        }
        let woken = self.watch.as_ref().is_some_and(|w| w.take_wake());
        if woken || now >= *next_check {
            if self.peer_gone()? {
                return Ok(Paced::PeerGone);
            }
            *next_check = later(now, self.peer_check);
        }
        if spinning {
            std::hint::spin_loop();
        } else {
            // An end made before a fork has no watch in the child.
            let watch = self.watch.as_deref().filter(|_| watch::watching_here());
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let nap = match watch {
                // The watch looks at the peer: sleep until the deadline, if any.
                Some(_) => left,
                None => {
                    let until_check = next_check.saturating_duration_since(Instant::now());
                    Some(left.map_or(until_check, |left| left.min(until_check)))
                }
            };
            if let Some(watch) = watch {
                watch.set_sleeping(true);
            }
            event.wait_until(
                || ready() || watch.is_some_and(watch::Watched::woken),
                nap.map(|nap| nap.max(Duration::from_micros(50))),
            );
            if let Some(watch) = watch {
                watch.set_sleeping(false);
            }
        }
        Ok(Paced::Again)
    }
}

/// What a look at the other kind of end found.
enum PeerSeen {
    /// Not attached yet, or attached and alive (for many: at least one).
    Here,
    /// Closed, or attached and dead (for many: every one).
    Gone,
    /// The state word holds no state.
    BadState(u32),
}

/// Looks at the `peer` ends of the channel whose region is `file`, through
/// their state word `state` and their liveness bytes.
fn look_at_peer(file: BorrowedFd<'_>, state: &AtomicU32, peer: Role, many: bool) -> std::io::Result<PeerSeen> {
    match state.load(Ordering::Acquire) {
        END_NONE => Ok(PeerSeen::Here),
        END_CLOSED if !many => Ok(PeerSeen::Gone),
        END_ATTACHED | END_CLOSED => {
            let slots = if many { MAX_ENDS } else { 1 };
            let alive = range_lock::range_locked_by_other(file, peer.lock_base(), slots)?;
            Ok(if alive { PeerSeen::Here } else { PeerSeen::Gone })
        }
        other => Ok(PeerSeen::BadState(other)),
    }
}

/// When a wait of `timeout` from `start` ends: never for `None`, nor for a
/// timeout past what the clock can name.
fn deadline(start: Instant, timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| start.checked_add(t))
}

/// `start + wait`, or a year from `start` if that is past what the clock can
/// name (and `start` itself if even that is).
fn later(start: Instant, wait: Duration) -> Instant {
    start.checked_add(wait).or_else(|| start.checked_add(Duration::from_secs(365 * 24 * 3600))).unwrap_or(start)
}

/// What a wait does after [`End::pace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Paced {
    /// Look again.
    Again,
    /// The peer is gone: one last look, then `PeerGone`.
    PeerGone,
}

impl Drop for End {
    fn drop(&mut self) {
        // Out of the watch before anything else, while the region is mapped.
        self.watch = None;
        let (mine, theirs) = match self.role {
            Role::Sender => (&self.ring().sender_state, &self.ring().data_ready),
            Role::Receiver => (&self.ring().receiver_state, &self.ring().space_ready),
        };
        mine.store(END_CLOSED, Ordering::Release);
        theirs.notify_all();
    }
}

/// The sending end.
pub struct Sender {
    end: End,
    /// Our own copy of the tail (only we write it).
    tail: u64,
    /// The head as last read: room we know of without touching the
    /// receiver's cache line.
    head_seen: u64,
    /// How long the wake-up system calls that found the receiver asleep
    /// took (those of messages of at least [`EARLY_WAKE_LEN`] bytes, the
    /// first for each message).
    wake_cost: WakeCost,
}

/// Room for one message, in the ring; [`commit`](Self::commit) publishes it,
/// dropping it does not.
pub struct Reservation<'a> {
    sender: &'a mut Sender,
    bytes: *mut u8,
    len: usize,
    record: *mut u8,
    /// Where a padding record goes before this one, and its length.
    padding: Option<(*mut u8, usize)>,
    new_tail: u64,
    /// Whether this reservation holds the senders' lock (many-to-many).
    locked: bool,
    /// Whether reserving it woke the receiver with a timed wake-up (see
    /// [`EARLY_WAKE_LEN`]); the commit's is then not timed.
    woke_early: bool,
}

/// Defines the constructors of an end.
macro_rules! constructors {
    ($end:ident, $role:expr) => {
        impl $end {
            /// Creates the channel's named region (`0600`, `O_EXCL`) and attaches as this end.
            ///
            /// # Safety
            /// Every process that opens the region must follow this crate's
            /// channel protocol (any mmapkit-shm process does): a peer that
            /// writes the message bytes while they are lent out breaks the
            /// `&[u8]`/`&mut [u8]` handed out. Lengths and positions are
            /// checked regardless, so a broken peer cannot make this end read or
            /// write out of bounds.
            pub unsafe fn create_named(name: &str, options: &ChannelOptions) -> Result<$end> {
                let end = End::create(
                    |layout, len, init| Region::create_named(name, layout, len, &options.region, init),
                    options,
                    $role,
                )?;
                Ok($end::from_end(end))
            }

            /// Opens the channel's named region and attaches as this end.
            ///
            /// # Safety
            /// As for [`create_named`](Self::create_named).
            pub unsafe fn open_named(name: &str, options: &ChannelOptions) -> Result<$end> {
                let region = Region::open_named(name, layout(options.many), &options.region)?;
                Ok($end::from_end(End::attach(region, options, $role)?))
            }

            /// Creates the channel in an anonymous sealed memfd; pass it to the
            /// other process with [`send_region`](Self::send_region).
            ///
            /// # Safety
            /// As for [`create_named`](Self::create_named).
            pub unsafe fn create_memfd(options: &ChannelOptions) -> Result<$end> {
                let end = End::create(|layout, len, init| Region::create_memfd(layout, len, init), options, $role)?;
                Ok($end::from_end(end))
            }

            /// Receives a channel region sent with [`send_region`](Self::send_region)
            /// and attaches as this end.
            ///
            /// # Safety
            /// As for [`create_named`](Self::create_named).
            #[cfg(unix)]
            pub unsafe fn receive_region(socket: &UnixStream, options: &ChannelOptions) -> Result<$end> {
                let region = Region::receive(socket, layout(options.many), &options.region)?;
                Ok($end::from_end(End::attach(region, options, $role)?))
            }

            /// Sends the channel's region over a Unix socket, for the other end.
            #[cfg(unix)]
            pub fn send_region(&self, socket: &UnixStream) -> Result<()> {
                self.end.region.send(socket)
            }

            /// The longest message the channel carries (half its capacity, less 8).
            pub fn max_message(&self) -> usize {
                ring::max_message(self.end.capacity)
            }

            /// The region underneath.
            pub fn region(&self) -> &Region {
                &self.end.region
            }
        }

        impl std::fmt::Debug for $end {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("region", &self.end.region.describe())
                    .field("capacity", &self.end.capacity)
                    .finish()
            }
        }
    };
}

constructors!(Sender, Role::Sender);
constructors!(Receiver, Role::Receiver);

/// A one-to-one channel's messages of this many bytes or more may wake a
/// sleeping receiver when they are reserved, not only when they are
/// committed, so that the receiver's CPU starts coming out of idle while the
/// message is written. To the receiver this is a spurious wake-up: it
/// looks, finds nothing yet, and sleeps until the commit's notify, unless
/// the commit came first. Many-to-many channels never do it: the commit's
/// notify could wake another receiver than the early one, and the senders'
/// lock is held across both.
///
/// It pays where idle CPUs halt and costs where they poll, so by default
/// the sender does it only while waking the receiver is slow
/// ([`EarlyWake::WhenWakingIsSlow`]). The measurements behind this are in
/// docs/performance.md.
const EARLY_WAKE_LEN: usize = 4096;

impl Sender {
    fn from_end(end: End) -> Sender {
        let head_seen = end.ring().head();
        let mut tail = end.ring().tail();
        if !end.many {
            // The only sender (the liveness byte says so) may publish.
            tail = catch_up(&end, head_seen, tail);
        }
        Sender { end, tail, head_seen, wake_cost: WakeCost::default() }
    }

    /// Where a record of `size` bytes goes, if there is room now: (padding
    /// before it, data offset of the record). Reads the receiver's head only
    /// when the last value read shows too little room.
    fn room(&mut self, size: usize) -> Result<Option<(usize, usize)>> {
        let found = fits(&self.end, self.head_seen, self.tail, size)?;
        if found.is_some() {
            return Ok(found);
        }
        self.head_seen = self.end.ring().head();
        fits(&self.end, self.head_seen, self.tail, size)
    }

    /// Re-reads the positions, which other senders may have moved; after a
    /// sender died holding the lock, past what it may have committed without
    /// publishing.
    fn refresh(&mut self, after_death: bool) {
        self.head_seen = self.end.ring().head();
        let tail = self.end.ring().tail();
        // Under the senders' lock, which the dead sender held.
        self.tail = if after_death { catch_up(&self.end, self.head_seen, tail) } else { tail };
    }

    #[inline]
    fn reservation(&mut self, len: usize, padding: usize, offset: usize, locked: bool) -> Reservation<'_> {
        let size = record_size(len);
        let padding_record = (padding > 0).then(|| {
            let at = (self.tail as usize) & (self.end.capacity - 1);
            // `at..at+padding` is free space at the data's end (checked by `fits`).
            (self.end.data.wrapping_add(at), padding - RECORD_HEADER)
        });
        let new_tail = self.tail.wrapping_add((padding + size) as u64);
        let woke_early = len >= EARLY_WAKE_LEN
            && !self.end.many
            && self.wake_cost.wakes_early(self.end.early_wake)
            && self.end.ring().receiver_may_sleep.load(Ordering::Relaxed) != 0
            && self.wake_timing();
        // SAFETY: `offset..offset+size` is free space inside the data.
        let record = unsafe { self.end.data.add(offset) };
        Reservation {
            bytes: record.wrapping_add(RECORD_HEADER),
            len,
            record,
            padding: padding_record,
            new_tail,
            locked,
            woke_early,
            sender: self,
        }
    }

    /// Wakes the receiver for a message of [`EARLY_WAKE_LEN`] bytes or
    /// more on a one-to-one channel; under [`EarlyWake::WhenWakingIsSlow`]
    /// times the system call and counts it. Whether a timed one woke a sleeper.
    fn wake_timing(&mut self) -> bool {
        let event = &self.end.ring().data_ready;
        if self.end.early_wake != EarlyWake::WhenWakingIsSlow {
            event.notify_one();
            return false;
        }
        let took = event.notify_one_timed();
        if let Some(took) = took {
            self.wake_cost.note(took);
        }
        took.is_some()
    }

    fn check_len(&self, len: usize) -> Result<()> {
        let max = self.max_message();
        if len > max { Err(ShmError::MessageTooLarge { len, max }) } else { Ok(()) }
    }

    /// Reserves room for a `len`-byte message if there is room now (and, with
    /// many senders, no other sender is reserving: that is `Full` too).
    pub fn try_reserve(&mut self, len: usize) -> Result<Reservation<'_>> {
        self.check_len(len)?;
        let locked = match self.end.take_role_lock(Some(Duration::ZERO))? {
            SideLock::Busy => return Err(ShmError::Full),
            SideLock::Held { after_death } => {
                self.refresh(after_death);
                true
            }
            SideLock::Unneeded => false,
        };
        let found = self.room(record_size(len));
        if let Ok(Some((padding, offset))) = found {
            return Ok(self.reservation(len, padding, offset, locked));
        }
        if locked {
            self.end.give_role_lock();
        }
        found?;
        if self.end.peer_gone()? { Err(self.end.gone()) } else { Err(ShmError::Full) }
    }

    /// Reserves room for a `len`-byte message, waiting for the receiver to
    /// make room (up to `timeout`, if given).
    ///
    /// A receiver that may sleep ([`Wait::Block`] or [`Wait::SpinThenBlock`])
    /// is woken by the [`commit`](Reservation::commit); on a one-to-one
    /// channel, a message of 4 KiB or more may also wake it once the room is
    /// found, so that its wake-up starts while the message is written (see
    /// [`ChannelOptions::early_wake`]).
    #[inline(always)]
    pub fn reserve_timeout(&mut self, len: usize, timeout: Option<Duration>) -> Result<Reservation<'_>> {
        // The quick way, for one sender with room by the head last read: no
        // lock, no clock, no shared line read.
        if !self.end.many && len <= ring::max_message(self.end.capacity) {
            let size = record_size(len);
            if let Ok(Some((padding, offset))) = place(self.head_seen, self.tail, size, self.end.capacity) {
                return Ok(self.reservation(len, padding, offset, false));
            }
        }
        self.reserve_waiting(len, timeout)
    }

    /// [`reserve_timeout`](Self::reserve_timeout) the long way: the lock of
    /// many senders, and waiting for room.
    #[inline(never)]
    fn reserve_waiting(&mut self, len: usize, timeout: Option<Duration>) -> Result<Reservation<'_>> {
        self.check_len(len)?;
        // The peer's liveness is checked only when there is no room: while
        // there is, sending costs no system call. With many senders, the
        // senders' lock is held from here to the commit.
        // The clock starts before the lock (which the timeout covers too) only
        // where there is one; else at the first wait, so that a send with room
        // reads no clock.
        let since = self.end.many.then(Instant::now);
        let locked = match self.end.take_role_lock(timeout)? {
            SideLock::Busy => return Err(ShmError::Timeout(timeout.unwrap_or_default())),
            SideLock::Held { after_death } => {
                self.refresh(after_death);
                true
            }
            SideLock::Unneeded => false,
        };
        let size = record_size(len);
        let Sender { end, tail, head_seen, .. } = self;
        let ready = || fits(end, end.ring().head(), *tail, size).map_or(true, |r| r.is_some());
        let attempt = || {
            // The receiver's head is read only when the last value read shows
            // too little room: it sits on a line the receiver writes.
            if let Some(found) = fits(end, *head_seen, *tail, size)? {
                return Ok(Some(found));
            }
            *head_seen = end.ring().head();
            fits(end, *head_seen, *tail, size)
        };
        let last_look = || fits(end, end.ring().head(), *tail, size);
        let found = end.wait_for(&end.ring().space_ready, timeout, since, ready, attempt, last_look);
        match found {
            Ok((padding, offset)) => Ok(self.reservation(len, padding, offset, locked)),
            Err(e) => {
                if locked {
                    self.end.give_role_lock();
                }
                Err(e)
            }
        }
    }

    /// Reserves room for a `len`-byte message, waiting as long as it takes.
    pub fn reserve(&mut self, len: usize) -> Result<Reservation<'_>> {
        self.reserve_timeout(len, None)
    }

    /// Sends a copy of `message`, waiting for room.
    pub fn send(&mut self, message: &[u8]) -> Result<()> {
        self.send_timeout(message, None)
    }

    /// Sends a copy of `message`, waiting at most `timeout` for room.
    pub fn send_timeout(&mut self, message: &[u8], timeout: Option<Duration>) -> Result<()> {
        let mut slot = self.reserve_timeout(message.len(), timeout)?;
        slot.copy_from_slice(message);
        slot.commit();
        Ok(())
    }

    /// Sends a copy of `message` if there is room now.
    pub fn try_send(&mut self, message: &[u8]) -> Result<()> {
        let mut slot = self.try_reserve(message.len())?;
        slot.copy_from_slice(message);
        slot.commit();
        Ok(())
    }
}

impl Reservation<'_> {
    /// Publishes the message to the receiver.
    #[inline]
    pub fn commit(self) {
        let end = &self.sender.end;
        let next = (self.new_tail as usize) & (end.capacity - 1);
        // SAFETY: every word written here is free or reserved space: the header word after this record lies in
        // free space (`fits` keeps one word spare) that the receiver reaches only through this commit, and the
        // record itself is reserved, unpublished space. The message's commit precedes the padding's, so the
        // receiver, arriving at offset 0 through the padding, finds this message, never a stale header from the
        // previous lap.
        unsafe {
            clear_record(end.data.add(next));
            commit_record(self.record, self.len, KIND_MESSAGE);
            if let Some((at, len)) = self.padding {
                commit_record(at, len, KIND_PADDING);
            }
        }
        let ring = end.ring();
        ring.tail.0.store(self.new_tail, Ordering::Release);
        self.sender.tail = self.new_tail;
        if ring.receiver_may_sleep.load(Ordering::Relaxed) != 0 {
            if self.len < EARLY_WAKE_LEN || self.woke_early || end.many {
                ring.data_ready.notify_one();
            } else {
                self.sender.wake_timing();
            }
        }
        // Dropping `self` gives back the senders' lock, if held.
    }
}

impl Drop for Reservation<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.locked {
            self.sender.end.give_role_lock();
        }
    }
}

impl std::ops::Deref for Reservation<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes of reserved space, which the receiver does not touch until they are published (the channel's contract).
        unsafe { std::slice::from_raw_parts(self.bytes, self.len) }
    }
}

impl std::ops::DerefMut for Reservation<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.bytes, self.len) }
    }
}

/// Moves the published `tail` past records a dead sender committed but did
/// not publish ([`committed_end`]), and wakes the receivers, which wait on the
/// tail; returns the new tail. Only a sender that no other sender can race
/// may call it: the only sender of a one-to-one channel, or one holding the
/// senders' lock.
fn catch_up(end: &End, head: u64, published: u64) -> u64 {
    let tail = committed_end(end, head, published);
    if tail != published {
        end.ring().tail.0.store(tail, Ordering::Release);
        end.ring().data_ready.notify_all();
    }
    tail
}

/// Where the committed records end, from the published `tail` on. A sender
/// that died between a commit and its store of `tail` left committed records
/// past the tail it published (those of one reservation: a message, and the
/// padding before it), which the receiver may have read already (its head is
/// then past the tail); the next sender must write after them, not over
/// them. Stops at the first zero header, or one that does not check out.
fn committed_end(end: &End, head: u64, tail: u64) -> u64 {
    let ahead = head.checked_sub(tail).is_some_and(|d| d <= end.capacity as u64);
    let mut tail = if ahead { head } else { tail };
    while let Ok(used) = check_positions(head, tail, end.capacity) {
        let offset = (tail as usize) & (end.capacity - 1);
        // SAFETY: offset is inside the data and 8-aligned: positions are read through `aligned()` and move by record sizes, multiples of 8.
        let Some(record) = (unsafe { read_record(end.data.add(offset)) }) else { break };
        match check_record(record, offset, end.capacity) {
            Ok(size) if used + size <= end.capacity => tail = tail.wrapping_add(size as u64),
            _ => break,
        }
    }
    tail
}

/// Where a record of `size` bytes fits with the receiver's head at `head`,
/// keeping one header word free for the next record's zeroed header.
fn fits(end: &End, head: u64, tail: u64, size: usize) -> Result<Option<(usize, usize)>> {
    place(head, tail, size, end.capacity).map_err(|e| end.corrupt(e))
}

/// [`fits`] without the region's name for the error: (padding before the
/// record, data offset of the record) if there is room.
#[inline(always)]
fn place(head: u64, tail: u64, size: usize, capacity: usize) -> std::result::Result<Option<(usize, usize)>, String> {
    let used = check_positions(head, tail, capacity)?;
    let free = capacity - used;
    let offset = (tail as usize) & (capacity - 1);
    let to_end = capacity - offset;
    let padding = if size <= to_end { 0 } else { to_end };
    Ok((padding + size + RECORD_HEADER <= free).then_some((padding, (offset + padding) & (capacity - 1))))
}

/// A committed message found in the ring: where its bytes start, how many,
/// and the head once it is released.
struct Found {
    offset: usize,
    len: usize,
    new_head: u64,
}

/// The receiving end.
pub struct Receiver {
    end: End,
    /// Our own copy of the head (only we write it).
    head: Cell<u64>,
    /// The sender's tail as last read (one-to-one channels): records below
    /// it are committed, so the tail's line is read only once the head
    /// catches up with it.
    tail_seen: Cell<u64>,
}

/// A received message, borrowed from the ring; released when dropped.
pub struct Message<'a> {
    receiver: &'a mut Receiver,
    bytes: *const u8,
    len: usize,
    new_head: u64,
    /// Whether this message holds the receivers' lock (many-to-many).
    locked: bool,
    /// Leave it in the ring instead of releasing it.
    keep: bool,
}

impl Receiver {
    fn from_end(end: End) -> Receiver {
        let head = end.ring().head();
        Receiver { end, head: Cell::new(head), tail_seen: Cell::new(head) }
    }

    fn next(&self) -> Result<Option<Found>> {
        next_message(&self.end, &self.head)
    }

    #[inline]
    fn release(&self, new_head: u64) {
        release(&self.end, &self.head, new_head);
    }

    #[inline]
    fn message(&mut self, Found { offset, len, new_head }: Found, locked: bool) -> Message<'_> {
        // SAFETY: offset..offset+len lies inside the data (checked by peek_record or check_record).
        let bytes = unsafe { self.end.data.add(offset) }.cast_const();
        Message { receiver: self, bytes, len, new_head, locked, keep: false }
    }

    /// One look for a message (and whether it holds the receivers' lock). A
    /// one-to-one channel first takes the quick look, which finds an ordinary
    /// message or nothing; the full look handles the rest.
    ///
    /// The quick look waits on the sender's tail, not on the record's header:
    /// the tail's line is written once per message, while the record's lines
    /// are written many times, and a receiver polling them would take them
    /// back from the sender between its writes. The header is still what
    /// counts: a tail that runs ahead of the committed records (which only a
    /// broken peer writes) finds a zero header, which is "nothing yet"; a
    /// tail behind the head (a sender died before publishing a message that
    /// the full look then found) shows nothing new until a sender's tail
    /// passes the head again.
    #[inline(always)]
    fn attempt(&self) -> Result<Option<(Found, bool)>> {
        if !self.end.many {
            let head = self.head.get();
            if head >= self.tail_seen.get() {
                let tail = self.end.ring().tail();
                if tail <= head {
                    return Ok(None);
                }
                self.tail_seen.set(tail);
            }
            let offset = (head as usize) & (self.end.capacity - 1);
            // SAFETY: the offset is 8-aligned (every record size is a multiple of 8) and inside the data.
            match unsafe { peek_record(self.end.data, offset, self.end.capacity) } {
                Peek::Message { len } => {
                    let new_head = head.wrapping_add(record_size(len) as u64);
                    return Ok(Some((Found { offset: offset + RECORD_HEADER, len, new_head }, false)));
                }
                Peek::Nothing => return Ok(None),
                Peek::Other => {}
            }
        }
        self.full_attempt()
    }

    /// The full look: padding, damage, and with many receivers, under the
    /// receivers' lock, which stays held (for the Message) only when one is
    /// found. A lock another receiver holds counts as "nothing yet", so waits
    /// keep their timeouts whatever other receivers do.
    #[inline(never)]
    fn full_attempt(&self) -> Result<Option<(Found, bool)>> {
        let locked = match self.end.take_role_lock(Some(Duration::ZERO))? {
            SideLock::Busy => return Ok(None),
            SideLock::Held { .. } => true,
            SideLock::Unneeded => false,
        };
        if locked {
            self.head.set(self.end.ring().head());
        }
        let found = self.next();
        if locked && !matches!(found, Ok(Some(_))) {
            self.end.give_role_lock();
        }
        Ok(found?.map(|f| (f, locked)))
    }

    /// The next message, if one is waiting.
    pub fn try_recv(&mut self) -> Result<Message<'_>> {
        if let Some((found, locked)) = self.attempt()? {
            return Ok(self.message(found, locked));
        }
        if !self.end.peer_gone()? {
            return Err(ShmError::Empty);
        }
        match self.full_attempt()? {
            Some((found, locked)) => Ok(self.message(found, locked)),
            None => Err(self.end.gone()),
        }
    }

    /// The next message, waiting at most `timeout` (`None`: as long as it takes).
    #[inline(always)]
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Message<'_>> {
        // Whether an attempt could find something: what the quick look
        // checks for one receiver, the header at the head for many.
        let ready = || {
            if !self.end.many {
                let head = self.head.get();
                return head < self.tail_seen.get() || self.end.ring().tail() > head;
            }
            let offset = (self.end.ring().head() as usize) & (self.end.capacity - 1);
            // SAFETY: the offset is 8-aligned and inside the data.
            unsafe { poll_record(self.end.data, offset, self.end.capacity) }.is_some()
        };
        let (found, locked) = self.end.wait_for(
            &self.end.ring().data_ready,
            timeout,
            None,
            ready,
            || self.attempt(),
            || self.full_attempt(),
        )?;
        Ok(self.message(found, locked))
    }

    /// The next message, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<Message<'_>> {
        self.recv_timeout(None)
    }

    /// Copies the next message into `buf` and returns its length; a buffer too
    /// short is an error and the message stays queued.
    pub fn recv_into(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize> {
        let message = self.recv_timeout(timeout)?;
        if message.len() > buf.len() {
            let need = message.len();
            message.keep();
            return Err(ShmError::BufferTooSmall { need, have: buf.len() });
        }
        buf[..message.len()].copy_from_slice(&message);
        Ok(message.len())
    }
}

/// The next message's data offset, length and the head after it, if one is
/// committed. Padding is skipped (and released) on the way.
fn next_message(end: &End, head: &Cell<u64>) -> Result<Option<Found>> {
    loop {
        let offset = (head.get() as usize) & (end.capacity - 1);
        // SAFETY: offset is 8-aligned (every record size is a multiple of 8) and at least 8 bytes of data remain before the end.
        let Some(record) = (unsafe { poll_record(end.data, offset, end.capacity) }) else {
            return Ok(None);
        };
        let size = check_record(record, offset, end.capacity).map_err(|e| end.corrupt(e))?;
        if record.kind == KIND_PADDING {
            release(end, head, head.get().wrapping_add(size as u64));
            continue;
        }
        let new_head = head.get().wrapping_add(size as u64);
        return Ok(Some(Found { offset: offset + RECORD_HEADER, len: record.len, new_head }));
    }
}

/// Gives the bytes before `new_head` back to the sender.
#[inline]
fn release(end: &End, head: &Cell<u64>, new_head: u64) {
    head.set(new_head);
    let ring = end.ring();
    ring.head.0.store(new_head, Ordering::Release);
    if ring.sender_may_sleep.load(Ordering::Relaxed) != 0 {
        ring.space_ready.notify_one();
    }
}

impl Message<'_> {
    /// Leaves the message in the ring, to be received again.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl std::ops::Deref for Message<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: published bytes inside the data, which the sender does not touch until we release them (the channel's contract).
        unsafe { std::slice::from_raw_parts(self.bytes, self.len) }
    }
}

impl Drop for Message<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.keep {
            let new_head = self.new_head;
            self.receiver.release(new_head);
        }
        if self.locked {
            self.receiver.end.give_role_lock();
        }
    }
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether reserving a 4 KiB message notifies a receiver counted as
    /// asleep, for a sender under `policy` that has seen eight wake-ups
    /// taking `seen` each (or none).
    fn reserving_notifies(policy: EarlyWake, seen: Option<Duration>) -> bool {
        let mut options = ChannelOptions::new();
        options.capacity(1 << 16).wait(Wait::Block).early_wake(policy);
        // SAFETY: the channel is this test's alone, made and dropped here.
        let mut tx = unsafe { Sender::create_memfd(&options) }.unwrap();
        for took in std::iter::repeat_n(seen, 8).flatten() {
            tx.wake_cost.note(took);
        }
        let ring = tx.end.ring();
        ring.receiver_may_sleep.store(1, Ordering::SeqCst);
        ring.data_ready.pretend_a_waiter();
        let before = ring.data_ready.seq();
        let reservation = tx.reserve(4096).unwrap();
        reservation.sender.end.ring().data_ready.seq() != before
    }

    #[test]
    fn a_sender_wakes_early_after_slow_wake_ups_or_when_told() {
        let (fast, slow) = (Some(Duration::from_micros(1)), Some(Duration::from_micros(7)));
        assert!(!reserving_notifies(EarlyWake::WhenWakingIsSlow, None));
        assert!(!reserving_notifies(EarlyWake::WhenWakingIsSlow, fast));
        assert!(reserving_notifies(EarlyWake::WhenWakingIsSlow, slow));
        assert!(reserving_notifies(EarlyWake::Always, None));
        assert!(!reserving_notifies(EarlyWake::Never, slow));
    }
}
