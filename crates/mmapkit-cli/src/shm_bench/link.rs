//! One side of each transport the IPC benchmark compares, behind one trait:
//! send a payload written in full, receive one and read it in full.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use mmapkit_shm::{
    ChannelOptions, PubSubOptions, Publisher, Receiver, RegionOptions, Sender, Shared, Subscriber, Wait,
};
use zerocopy::{FromBytes, KnownLayout};

use crate::common::checksum::sum_words;

/// A way to move payloads between the two processes.
pub trait Link {
    /// Sends `len` bytes, every one written (with `fill`).
    fn send(&mut self, len: usize, fill: u8) -> anyhow::Result<()>;
    /// Receives one payload of `len` bytes and reads every one; returns a checksum.
    fn recv(&mut self, len: usize) -> anyhow::Result<u64>;
}

/// The shared-memory channel: two rings, one each way, written and read in place.
pub struct ShmLink {
    pub tx: Sender,
    pub rx: Receiver,
    /// Whether the other process has attached both its ends. Until then the
    /// waits are timed ([`PEER_TIMEOUT`]), since a peer that dies before it
    /// attaches is never seen to die; after, they wait as long as it takes,
    /// as a user's would, and the channel's peer watch notices a death.
    attached: bool,
}

/// Ring capacity for a payload. A payload small enough for 64 of its records
/// to fit in 8 KiB gets an 8 KiB ring (small rings keep a round trip's lines
/// in the caches); any other gets room for four, and at least 4 MiB. Room for
/// many messages keeps the blocking one-way run from sleeping after every
/// few. The measurements behind these sizes are in docs/performance.md.
pub fn ring_capacity(payload: usize) -> usize {
    let record = payload.next_multiple_of(8) + 8;
    if SMALL_RING_MESSAGES * record <= SMALL_RING {
        SMALL_RING
    } else {
        (4 * payload + 4096).max(LARGE_RING_MIN).next_power_of_two()
    }
}

/// The ring for small payloads, and how many of them it must hold.
const SMALL_RING: usize = 8 << 10;
const SMALL_RING_MESSAGES: usize = 64;
/// The least ring for the others.
const LARGE_RING_MIN: usize = 4 << 20;

pub fn channel_options(payload: usize, spin: bool) -> ChannelOptions {
    let mut options = ChannelOptions::new();
    options.capacity(ring_capacity(payload)).wait(if spin { Wait::Spin } else { Wait::Block });
    options
}

/// Channel names for a run: (parent to child, child to parent).
pub fn channel_names(base: &str) -> (String, String) {
    (format!("{base}-ping"), format!("{base}-pong"))
}

impl ShmLink {
    /// The parent's side: creates both channels.
    pub fn create(base: &str, payload: usize, spin: bool) -> anyhow::Result<ShmLink> {
        let (ping, pong) = channel_names(base);
        let options = channel_options(payload, spin);
        // SAFETY: the only other process that opens this channel is this program's peer (`open` below), which
        // speaks the channel protocol.
        let tx = unsafe { Sender::create_named(&ping, &options) }?;
        // SAFETY: the only other process that opens this channel is this program's peer, which speaks the
        // channel protocol.
        let rx = unsafe { Receiver::create_named(&pong, &options) }?;
        Ok(ShmLink { tx, rx, attached: false })
    }

    /// The child's side: opens both channels.
    pub fn open(base: &str, payload: usize, spin: bool) -> anyhow::Result<ShmLink> {
        let (ping, pong) = channel_names(base);
        let options = channel_options(payload, spin);
        // SAFETY: the channel was created by this program's parent process (`create` above), which speaks the
        // channel protocol and is the only other process that opens it.
        let rx = unsafe { Receiver::open_named(&ping, &options) }?;
        // SAFETY: the channel was created by this program's parent process, which speaks the channel protocol
        // and is the only other process that opens it.
        let tx = unsafe { Sender::open_named(&pong, &options) }?;
        // The creator made both of its ends before it started this process.
        Ok(ShmLink { tx, rx, attached: true })
    }
}

/// How long the creating side waits for the other before it has answered
/// once (a peer that died before attaching would otherwise be waited for
/// forever).
pub const PEER_TIMEOUT: Duration = Duration::from_secs(30);

impl Link for ShmLink {
    fn send(&mut self, len: usize, fill: u8) -> anyhow::Result<()> {
        let mut slot = self.tx.reserve_timeout(len, (!self.attached).then_some(PEER_TIMEOUT))?;
        slot.fill(fill);
        std::hint::black_box(&mut *slot);
        slot.commit();
        Ok(())
    }

    fn recv(&mut self, len: usize) -> anyhow::Result<u64> {
        let message = self.rx.recv_timeout((!self.attached).then_some(PEER_TIMEOUT))?;
        if message.len() != len {
            bail!("expected a {len}-byte message, got {}", message.len());
        }
        // It answered through the ring it opened, after opening the other.
        self.attached = true;
        // black_box: the checksum is the proof the bytes were read; without
        // it the compiler could drop the reading.
        Ok(std::hint::black_box(sum_words(&message)))
    }
}

/// A publish-subscribe board each way, one publisher and one subscriber
/// on each, written and read in place: what a board costs against the
/// channel, whose rings it replaces.
pub struct BoardLink {
    pub publisher: Publisher,
    pub subscriber: Subscriber,
    /// As for [`ShmLink`]: waits are timed until the other process answered.
    attached: bool,
}

/// A board's options for a payload: slots of the payload's size, as many as
/// fit 8 MiB (4 to 64).
pub fn board_options(payload: usize, spin: bool) -> PubSubOptions {
    let mut options = PubSubOptions::new();
    let capacity = ((8 << 20) / payload.max(1)).clamp(4, 64) as u64;
    // The subscriber opens its board after the first message may be out:
    // it asks for what came before it (the creator sends one, then waits).
    options.capacity(capacity).max_message(payload).subscribers(1).history(capacity);
    options.wait(if spin { Wait::Spin } else { Wait::Block });
    options
}

impl BoardLink {
    /// The parent's side: creates both boards.
    pub fn create(base: &str, payload: usize, spin: bool) -> anyhow::Result<BoardLink> {
        let (ping, pong) = channel_names(base);
        let options = board_options(payload, spin);
        // SAFETY: the only other process that opens these boards is this program's peer (`open` below), which
        // speaks the board protocol.
        let publisher = unsafe { Publisher::create_named(&ping, &options) }?;
        // SAFETY: as above.
        let subscriber = unsafe { Subscriber::create_named(&pong, &options) }?;
        Ok(BoardLink { publisher, subscriber, attached: false })
    }

    /// The child's side: opens both boards.
    pub fn open(base: &str, payload: usize, spin: bool) -> anyhow::Result<BoardLink> {
        let (ping, pong) = channel_names(base);
        let options = board_options(payload, spin);
        // SAFETY: the boards were created by this program's parent process (`create` above), which speaks the
        // board protocol and is the only other process that opens them.
        let subscriber = unsafe { Subscriber::open_named(&ping, &options) }?;
        // SAFETY: as above.
        let publisher = unsafe { Publisher::open_named(&pong, &options) }?;
        Ok(BoardLink { publisher, subscriber, attached: true })
    }
}

impl Link for BoardLink {
    fn send(&mut self, len: usize, fill: u8) -> anyhow::Result<()> {
        let mut loan = self.publisher.loan_timeout(len, (!self.attached).then_some(PEER_TIMEOUT))?;
        loan.fill(fill);
        std::hint::black_box(&mut *loan);
        loan.commit();
        Ok(())
    }

    fn recv(&mut self, len: usize) -> anyhow::Result<u64> {
        let sample = self.subscriber.recv_timeout((!self.attached).then_some(PEER_TIMEOUT))?;
        if sample.len() != len {
            bail!("expected a {len}-byte message, got {}", sample.len());
        }
        self.attached = true;
        Ok(std::hint::black_box(sum_words(&sample)))
    }
}

/// A byte stream (Unix socket or pipe pair): payloads are copied in and out.
pub struct StreamLink<R, W> {
    pub reader: R,
    pub writer: W,
    pub buf: Vec<u8>,
}

impl<R: Read, W: Write> Link for StreamLink<R, W> {
    fn send(&mut self, len: usize, fill: u8) -> anyhow::Result<()> {
        self.buf.resize(len.max(self.buf.len()), 0);
        self.buf[..len].fill(fill);
        self.writer.write_all(&self.buf[..len]).context("cannot write to the peer")?;
        self.writer.flush().context("cannot write to the peer")?;
        Ok(())
    }

    fn recv(&mut self, len: usize) -> anyhow::Result<u64> {
        self.buf.resize(len.max(self.buf.len()), 0);
        self.reader.read_exact(&mut self.buf[..len]).context("cannot read from the peer")?;
        Ok(std::hint::black_box(sum_words(&self.buf[..len])))
    }
}

/// The floors: a value handed back and forth between the two processes
/// through shared memory, nothing else. The spinning floor bounces `counter`
/// (the cost of moving one cache line between the CPUs, which no channel can
/// beat); the blocking floor hands `turn` over with a futex wake and sleeps on
/// it: a bare futex handoff, the least a blocking transport does. Its round
/// trip is two wake-ups of a sleeping process on the other CPU, unless the
/// two processes keep finding their turn before they fall asleep (a regime a
/// blocking channel can enter too).
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub struct Floor {
    counter: AtomicU64,
    turn: AtomicU32,
}

pub fn floor_create(name: &str) -> anyhow::Result<Shared<Floor>> {
    // SAFETY: every process that maps the floor (this program and its peer) touches it only through its atomics.
    Ok(unsafe { Shared::<Floor>::create_named(name, "Floor v2", &RegionOptions::new(), |_| {}) }?)
}

pub fn floor_open(name: &str) -> anyhow::Result<Shared<Floor>> {
    // SAFETY: every process that maps the floor (this program and its peer) touches it only through its atomics.
    Ok(unsafe { Shared::<Floor>::open_named(name, "Floor v2", &RegionOptions::new()) }?)
}

/// How long the spinning floor waits for the other process before giving up.
pub const FLOOR_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits (spinning) until the counter reaches `value`.
pub fn floor_wait(floor: &Floor, value: u64) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut spins = 0u32;
    while floor.counter.load(Ordering::Acquire) != value {
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(65_536) && start.elapsed() > FLOOR_TIMEOUT {
            bail!("the peer stopped answering");
        }
    }
    Ok(())
}

pub fn floor_set(floor: &Floor, value: u64) {
    floor.counter.store(value, Ordering::Release);
}

/// The bit of `turn` a waiter sets before it sleeps, so that a handover
/// makes the wake-up system call only when somebody sleeps (the least a
/// correct futex handoff can do).
const SLEEPING: u32 = 1 << 31;

/// The bit of `turn` that says a side gave up (see [`block_floor_abandon`]).
const ABANDONED: u32 = 1 << 30;

/// Sleeps on the turn (a futex wait with no timeout, as the channel's ends
/// make when the peer watch runs) until it is `value`, or until a side
/// abandons the floor.
pub fn block_floor_wait(floor: &Floor, value: u32) -> anyhow::Result<()> {
    ensure!(value < ABANDONED, "a blocking floor's turn stays below {ABANDONED}, not {value}");
    loop {
        let seen = floor.turn.load(Ordering::Acquire);
        if seen & !(SLEEPING | ABANDONED) == value {
            return Ok(());
        }
        if seen & ABANDONED != 0 {
            bail!("the peer stopped answering");
        }
        if seen & SLEEPING == 0
            && floor.turn.compare_exchange(seen, seen | SLEEPING, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            continue;
        }
        mmapkit_sys::wait::wait(&floor.turn, seen | SLEEPING, None).context("cannot wait on the floor's futex")?;
    }
}

/// Hands the turn over (`value`) and wakes the other process if it sleeps.
pub fn block_floor_set(floor: &Floor, value: u32) -> anyhow::Result<()> {
    ensure!(value < ABANDONED, "a blocking floor's turn stays below {ABANDONED}, not {value}");
    let before = floor.turn.swap(value, Ordering::AcqRel);
    if before & ABANDONED != 0 {
        // The swap cleared it: give up again, waking whoever slept meanwhile.
        block_floor_abandon(floor);
    } else if before & SLEEPING != 0 {
        mmapkit_sys::wait::wake(&floor.turn, 1).context("cannot wake the floor's futex")?;
    }
    Ok(())
}

/// Gives the blocking floor up: whoever waits on it, or waits next, fails
/// with "the peer stopped answering" instead of sleeping for good. What
/// stands in for the timeout the floor's waits do not have: each process
/// calls it when it sees the other exit.
pub fn block_floor_abandon(floor: &Floor) {
    floor.turn.fetch_or(ABANDONED, Ordering::AcqRel);
    let _ = mmapkit_sys::wait::wake(&floor.turn, u32::MAX);
}

/// How a floor hands its value over and waits for the answer. The two floors
/// are the two kinds; the loops that drive them are generic over it, so that
/// each loop compiles to its own floor's two calls.
pub trait Handoff {
    /// Hands `value` over to the other process.
    fn set(&self, floor: &Floor, value: u64) -> anyhow::Result<()>;
    /// Waits until the other process has handed `value` over.
    fn wait(&self, floor: &Floor, value: u64) -> anyhow::Result<()>;
}

/// The spinning floor: `counter`, spun on.
pub struct Spinning;

/// The blocking floor: `turn`, slept on with a futex.
pub struct Blocking;

impl Handoff for Spinning {
    fn set(&self, floor: &Floor, value: u64) -> anyhow::Result<()> {
        floor_set(floor, value);
        Ok(())
    }

    fn wait(&self, floor: &Floor, value: u64) -> anyhow::Result<()> {
        floor_wait(floor, value)
    }
}

impl Handoff for Blocking {
    fn set(&self, floor: &Floor, value: u64) -> anyhow::Result<()> {
        block_floor_set(floor, turn(value)?)
    }

    fn wait(&self, floor: &Floor, value: u64) -> anyhow::Result<()> {
        block_floor_wait(floor, turn(value)?)
    }
}

/// A round's value as the blocking floor's 32-bit turn.
pub fn turn(value: u64) -> anyhow::Result<u32> {
    u32::try_from(value).with_context(|| format!("round value {value} does not fit the blocking floor's turn"))
}
