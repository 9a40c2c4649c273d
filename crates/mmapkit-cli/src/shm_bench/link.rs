//! One side of each transport the IPC benchmark compares, behind one trait:
//! send a payload written in full, receive one and read it in full.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use mmapkit_shm::{ChannelOptions, Receiver, RegionOptions, Sender, Shared, Wait};
use zerocopy::{FromBytes, KnownLayout};

use crate::bench::sum_words;

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
}

/// Ring capacity for a payload: room for a few in flight, at least 1 MiB.
pub fn ring_capacity(payload: usize) -> usize {
    (4 * payload + 4096).max(1 << 20).next_power_of_two()
}

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
        // SAFETY: both ends are this program's, speaking the channel protocol.
        let tx = unsafe { Sender::create_named(&ping, &options) }?;
        // SAFETY: as above.
        let rx = unsafe { Receiver::create_named(&pong, &options) }?;
        Ok(ShmLink { tx, rx })
    }

    /// The child's side: opens both channels.
    pub fn open(base: &str, payload: usize, spin: bool) -> anyhow::Result<ShmLink> {
        let (ping, pong) = channel_names(base);
        let options = channel_options(payload, spin);
        // SAFETY: as above.
        let rx = unsafe { Receiver::open_named(&ping, &options) }?;
        // SAFETY: as above.
        let tx = unsafe { Sender::open_named(&pong, &options) }?;
        Ok(ShmLink { tx, rx })
    }
}

/// How long either side waits for the other before giving up (a peer that
/// died before attaching would otherwise be waited for forever).
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

impl Link for ShmLink {
    fn send(&mut self, len: usize, fill: u8) -> anyhow::Result<()> {
        let mut slot = self.tx.reserve_timeout(len, Some(PEER_TIMEOUT))?;
        slot.fill(fill);
        std::hint::black_box(&mut *slot);
        slot.commit();
        Ok(())
    }

    fn recv(&mut self, len: usize) -> anyhow::Result<u64> {
        let message = self.rx.recv_timeout(Some(PEER_TIMEOUT))?;
        if message.len() != len {
            bail!("expected a {len}-byte message, got {}", message.len());
        }
        // black_box: the checksum is the proof the bytes were read; without
        // it the compiler could drop the reading.
        Ok(std::hint::black_box(sum_words(&message)))
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

/// The floor: one counter bounced between the two processes, nothing else.
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
pub struct Floor {
    counter: AtomicU64,
}

pub fn floor_create(name: &str) -> anyhow::Result<Shared<Floor>> {
    // SAFETY: Floor is touched only through its atomic.
    Ok(unsafe { Shared::<Floor>::create_named(name, "Floor v1", &RegionOptions::new(), |_| {}) }?)
}

pub fn floor_open(name: &str) -> anyhow::Result<Shared<Floor>> {
    // SAFETY: as above.
    Ok(unsafe { Shared::<Floor>::open_named(name, "Floor v1", &RegionOptions::new()) }?)
}

/// Waits (spinning) until the counter reaches `value`; gives up after 10 s.
pub fn floor_wait(floor: &Floor, value: u64) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let mut spins = 0u32;
    while floor.counter.load(Ordering::Acquire) != value {
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(65_536) && start.elapsed() > Duration::from_secs(10) {
            bail!("the peer stopped answering");
        }
    }
    Ok(())
}

pub fn floor_set(floor: &Floor, value: u64) {
    floor.counter.store(value, Ordering::Release);
}
