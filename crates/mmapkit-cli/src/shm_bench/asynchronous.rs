//! The async transports: each process a current-thread tokio runtime that
//! awaits its receives. `async-shm` is the shared-memory channel (the same
//! two rings as `shm-block`, one each way), each end's receiver awaited
//! through [`mmapkit_shm::AsyncReceiver`] and each send reserved through
//! [`mmapkit_shm::AsyncSender`] and written in place;
//! its peer `tokio-uds` is tokio's Unix stream socket, `write_all` and
//! `read_exact` on the same payloads.
//!
//! The processes, pinning, warmup and blocks are the other transports'
//! ([`super::ping_pong`], [`super::peer`]); what differs is that the loops of
//! [`super::drive`] and [`super::echo`] run here inside one `block_on`, as
//! an async program's would, through the awaitable [`AsyncLink`]. The
//! synchronous loops stay free of any polling.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use mmapkit_shm::{AsyncReceiver, AsyncSender, Receiver, Reservation, Sender};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};

use super::WARMUP;
use super::link::PEER_TIMEOUT;
use crate::common::checksum::sum_words;

/// The runtime each process of an async transport runs its side on: one
/// thread (the process's pinned one), with the I/O driver and timers.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start a current-thread tokio runtime")
}

/// [`super::link::Link`], awaited: send a payload written in full, receive
/// one and read it in full.
pub trait AsyncLink {
    /// Sends `len` bytes, every one written (with `fill`).
    async fn send(&mut self, len: usize, fill: u8) -> anyhow::Result<()>;
    /// Receives one payload of `len` bytes and reads every one; returns a checksum.
    async fn recv(&mut self, len: usize) -> anyhow::Result<u64>;
}

/// [`super::drive`] on an [`AsyncLink`]: ping-pong `rounds` times, then send
/// `messages` one way and await the ack. `rounds` includes the [`WARMUP`]
/// round trips, which are not returned.
pub async fn drive(
    link: &mut impl AsyncLink,
    payload: usize,
    rounds: usize,
    messages: usize,
) -> anyhow::Result<(Vec<u64>, f64)> {
    let mut rtts = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let start = Instant::now();
        link.send(payload, round as u8).await?;
        link.recv(payload).await?;
        rtts.push(start.elapsed().as_nanos() as u64);
    }
    rtts.drain(..WARMUP.min(rtts.len()));
    let start = Instant::now();
    for i in 0..messages {
        link.send(payload, i as u8).await?;
    }
    link.recv(8).await?; // the peer's ack: it has read every message
    Ok((rtts, start.elapsed().as_secs_f64()))
}

/// The peer's half of [`drive`] ([`super::echo`] on an [`AsyncLink`]).
pub async fn echo(link: &mut impl AsyncLink, payload: usize, rounds: usize, messages: usize) -> anyhow::Result<()> {
    for round in 0..rounds {
        link.recv(payload).await?;
        link.send(payload, round as u8).await?;
    }
    for _ in 0..messages {
        link.recv(payload).await?;
    }
    link.send(8, 0).await
}

/// `async-shm`: the shared-memory channel's two rings, the receiving one
/// awaited through [`AsyncReceiver`] (its readiness descriptor in the
/// runtime's reactor), the sending one through [`AsyncSender`].
pub struct ShmAsyncLink {
    tx: AsyncSender,
    rx: AsyncReceiver,
    /// As for [`super::link::ShmLink`]: the creating side's waits are timed
    /// ([`PEER_TIMEOUT`]) until the other process has answered once.
    attached: bool,
}

impl ShmAsyncLink {
    /// Wraps the two ends of a [`super::link::ShmLink`]; inside the runtime
    /// that will await it (the receiver registers with its reactor).
    pub fn new(tx: Sender, rx: Receiver, attached: bool) -> anyhow::Result<ShmAsyncLink> {
        let rx = AsyncReceiver::new(rx).context("cannot await the channel's receiver")?;
        let tx = AsyncSender::new(tx).context("cannot await the channel's sender")?;
        Ok(ShmAsyncLink { tx, rx, attached })
    }
}

/// Writes `len` bytes of `fill` into a reservation and commits it.
fn write(mut slot: Reservation<'_>, fill: u8) {
    slot.fill(fill);
    std::hint::black_box(&mut *slot);
    slot.commit();
}

impl AsyncLink for ShmAsyncLink {
    async fn send(&mut self, len: usize, fill: u8) -> anyhow::Result<()> {
        // Room is there at once in the round trips (one message is out at a
        // time); in the one-way run a full ring makes the task sleep until the
        // receiver frees room.
        let reserve = self.tx.reserve(len);
        let slot = if self.attached {
            reserve.await?
        } else {
            // A peer that dies before it attaches is never seen to die.
            tokio::time::timeout(PEER_TIMEOUT, reserve)
                .await
                .with_context(|| format!("no room came within {PEER_TIMEOUT:?}"))??
        };
        write(slot, fill);
        Ok(())
    }

    async fn recv(&mut self, len: usize) -> anyhow::Result<u64> {
        let read = self.rx.recv_with(|message| (message.len(), sum_words(message)));
        let (got, sum) = if self.attached {
            read.await?
        } else {
            // A peer that dies before it attaches is never seen to die.
            tokio::time::timeout(PEER_TIMEOUT, read)
                .await
                .with_context(|| format!("the peer sent nothing within {PEER_TIMEOUT:?}"))??
        };
        if got != len {
            bail!("expected a {len}-byte message, got {got}");
        }
        self.attached = true;
        // black_box: the checksum is the proof the bytes were read.
        Ok(std::hint::black_box(sum))
    }
}

/// `tokio-uds`: tokio's Unix stream socket, payloads copied in and out; the
/// reading half buffered as the `uds` row's is.
pub struct UdsAsyncLink {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    buf: Vec<u8>,
}

impl UdsAsyncLink {
    fn new(stream: UnixStream) -> UdsAsyncLink {
        let (reader, writer) = stream.into_split();
        UdsAsyncLink { reader: BufReader::with_capacity(64 * 1024, reader), writer, buf: Vec::new() }
    }

    /// The benchmark process's side: accepts the peer's connection on
    /// `listener` (a standard one, bound before the peer started), waiting
    /// at most [`PEER_TIMEOUT`].
    pub async fn accept(listener: std::os::unix::net::UnixListener) -> anyhow::Result<UdsAsyncLink> {
        listener.set_nonblocking(true).context("cannot make the listening socket non-blocking")?;
        let listener = UnixListener::from_std(listener).context("cannot register the listening socket")?;
        let (stream, _) = tokio::time::timeout(PEER_TIMEOUT, listener.accept())
            .await
            .with_context(|| format!("the peer did not connect within {PEER_TIMEOUT:?}"))?
            .context("the peer never connected")?;
        Ok(UdsAsyncLink::new(stream))
    }

    /// The peer's side: connects to the benchmark process's socket at `path`.
    pub async fn connect(path: &Path) -> anyhow::Result<UdsAsyncLink> {
        let stream =
            UnixStream::connect(path).await.with_context(|| format!("cannot connect to {}", path.display()))?;
        Ok(UdsAsyncLink::new(stream))
    }
}

impl AsyncLink for UdsAsyncLink {
    async fn send(&mut self, len: usize, fill: u8) -> anyhow::Result<()> {
        self.buf.resize(len.max(self.buf.len()), 0);
        self.buf[..len].fill(fill);
        self.writer.write_all(&self.buf[..len]).await.context("cannot write to the peer")
    }

    async fn recv(&mut self, len: usize) -> anyhow::Result<u64> {
        self.buf.resize(len.max(self.buf.len()), 0);
        self.reader.read_exact(&mut self.buf[..len]).await.context("cannot read from the peer")?;
        Ok(std::hint::black_box(sum_words(&self.buf[..len])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm_bench::link::ShmLink;

    /// Both async links carry the round trips, the one-way run (300
    /// messages: more than the 64 B ring and the 1 MiB one hold, so sends
    /// may find the ring full and wait for room) and its ack between two
    /// threads, each its own runtime; each end checks every length it
    /// receives.
    #[test]
    fn the_async_links_carry_round_trips_and_a_one_way_run() {
        for payload in [64, 4096, 1 << 20] {
            let name = format!("mmapkit-shm-bench-async-test-{}-{payload}", std::process::id());
            let ShmLink { tx, rx, .. } = ShmLink::create(&name, payload, false).unwrap();
            let echoing = std::thread::spawn({
                let name = name.clone();
                move || {
                    let ShmLink { tx, rx, .. } = ShmLink::open(&name, payload, false)?;
                    runtime()?.block_on(async {
                        echo(&mut ShmAsyncLink::new(tx, rx, true)?, payload, WARMUP + 20, 300).await
                    })
                }
            });
            let (rtts, seconds) = runtime()
                .unwrap()
                .block_on(async { drive(&mut ShmAsyncLink::new(tx, rx, false)?, payload, WARMUP + 20, 300).await })
                .unwrap();
            echoing.join().unwrap().unwrap();
            assert_eq!(rtts.len(), 20, "{payload} B");
            assert!(seconds > 0.0);

            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("socket");
            let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            let echoing = std::thread::spawn(move || {
                runtime()?
                    .block_on(async { echo(&mut UdsAsyncLink::connect(&path).await?, payload, WARMUP + 20, 300).await })
            });
            let (rtts, _) = runtime()
                .unwrap()
                .block_on(async { drive(&mut UdsAsyncLink::accept(listener).await?, payload, WARMUP + 20, 300).await })
                .unwrap();
            echoing.join().unwrap().unwrap();
            assert_eq!(rtts.len(), 20, "{payload} B");
        }
    }
}
