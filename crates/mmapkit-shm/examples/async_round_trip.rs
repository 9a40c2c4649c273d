//! Round trips between two processes, each on a current-thread tokio
//! runtime: two channels (one each way) received with `AsyncReceiver`,
//! against tokio's `UnixStream`, the same payload both ways, written and read
//! in full. Each process awaits its receive; the channel's sender writes in
//! place with `try_reserve` (one message is out at a time, so its ring always
//! has room). The two kinds take turns in blocks, each block a fresh pair of
//! processes, pinned to CPUs 0 and 1 where there are two.
//!
//! Run: `cargo run --release -p mmapkit-shm --example async_round_trip`
//! (`-- --quick` for a few hundred round trips).

use std::error::Error;
use std::process::Command;
use std::time::{Duration, Instant};

use mmapkit_shm::{AsyncReceiver, ChannelOptions, Receiver, Sender, Wait};
use tokio::net::{UnixListener, UnixStream};

type Res<T> = Result<T, Box<dyn Error>>;

/// How long a whole block may take before it is given up.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(60);
/// Round trips at the start of each block that are not counted.
const WARMUP: usize = 16;
/// Blocks per payload; the kinds take turns, every other block backwards.
const BLOCKS: usize = 4;
const PAYLOADS: [usize; 2] = [64, 4096];

/// The two ways the processes talk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Two mmapkit-shm channels, received with `AsyncReceiver`.
    Channel,
    /// tokio's Unix stream socket.
    Socket,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Channel => "async-shm",
            Kind::Socket => "tokio-uds",
        }
    }

    fn parse(name: &str) -> Res<Kind> {
        match name {
            "async-shm" => Ok(Kind::Channel),
            "tokio-uds" => Ok(Kind::Socket),
            other => Err(format!("unknown kind {other:?}: async-shm or tokio-uds").into()),
        }
    }
}

fn options() -> ChannelOptions {
    let mut options = ChannelOptions::new();
    options.capacity(64 << 10).wait(Wait::Block);
    options
}

/// Sends `payload` bytes of `fill` over the channel, written in place.
fn send(tx: &mut Sender, payload: usize, fill: u8) -> Res<()> {
    // One message is out at a time: the ring cannot be full.
    let mut slot = tx.try_reserve(payload)?;
    slot.fill(fill);
    slot.commit();
    Ok(())
}

/// Awaits one message and reads it in full; checks its length.
async fn recv(rx: &mut AsyncReceiver, payload: usize) -> Res<()> {
    let (len, sum) = rx.recv_with(|m| (m.len(), m.iter().map(|&b| u64::from(b)).sum::<u64>())).await?;
    std::hint::black_box(sum);
    if len != payload {
        return Err(format!("expected a {payload}-byte message, got {len}").into());
    }
    Ok(())
}

/// Writes all of `buf`, awaiting the socket's readiness.
async fn write_all(stream: &UnixStream, mut buf: &[u8]) -> Res<()> {
    while !buf.is_empty() {
        stream.writable().await?;
        match stream.try_write(buf) {
            Ok(0) => return Err("the peer closed its socket".into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes, awaiting the socket's readiness.
async fn read_exact(stream: &UnixStream, buf: &mut [u8]) -> Res<()> {
    let mut at = 0;
    while at < buf.len() {
        stream.readable().await?;
        match stream.try_read(&mut buf[at..]) {
            Ok(0) => return Err("the peer closed its socket".into()),
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::hint::black_box(buf.iter().map(|&b| u64::from(b)).sum::<u64>());
    Ok(())
}

fn runtime() -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?)
}

fn pin(cpu: usize) -> Res<()> {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        mmapkit_sys::process::pin_current_thread(cpu)?;
    }
    Ok(())
}

/// One block on the measuring side: starts the peer, makes `rounds` round
/// trips, returns them after the first [`WARMUP`].
fn block(kind: Kind, payload: usize, rounds: usize, name: &str) -> Res<Vec<u64>> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("socket");
    let rt = runtime()?;
    let where_ = match kind {
        Kind::Channel => name.to_owned(),
        Kind::Socket => socket.to_str().ok_or("the temporary directory's path is not UTF-8")?.to_owned(),
    };
    let mut channels = None;
    let mut listener = None;
    match kind {
        Kind::Channel => {
            // SAFETY: the only other process that opens these channels is this example's peer, which speaks the
            // channel protocol.
            channels = Some(unsafe {
                (
                    Sender::create_named(&format!("{name}-ping"), &options())?,
                    Receiver::create_named(&format!("{name}-pong"), &options())?,
                )
            })
        }
        Kind::Socket => listener = Some(rt.block_on(async { UnixListener::bind(&socket) })?),
    }
    let mut peer = Command::new(std::env::current_exe()?)
        .args(["peer", kind.name(), &payload.to_string(), &rounds.to_string(), &where_])
        .spawn()?;
    let result = rt.block_on(async {
        tokio::time::timeout(BLOCK_TIMEOUT, async {
            let mut rtts = Vec::with_capacity(rounds);
            match kind {
                Kind::Channel => {
                    let (mut tx, rx) = channels.take().ok_or("no channels")?;
                    let mut rx = AsyncReceiver::new(rx)?;
                    for round in 0..rounds {
                        let start = Instant::now();
                        send(&mut tx, payload, round as u8)?;
                        recv(&mut rx, payload).await?;
                        rtts.push(start.elapsed().as_nanos() as u64);
                    }
                }
                Kind::Socket => {
                    let (stream, _) = listener.take().ok_or("no listener")?.accept().await?;
                    let (mut out, mut back) = (vec![0u8; payload], vec![0u8; payload]);
                    for round in 0..rounds {
                        let start = Instant::now();
                        out.fill(round as u8);
                        write_all(&stream, &out).await?;
                        read_exact(&stream, &mut back).await?;
                        rtts.push(start.elapsed().as_nanos() as u64);
                    }
                }
            }
            Res::Ok(rtts)
        })
        .await
        .map_err(|_| format!("a {} block took more than {BLOCK_TIMEOUT:?}", kind.name()))?
    });
    if result.is_err() {
        let _ = peer.kill();
    }
    let status = peer.wait()?;
    let mut rtts = result?;
    if !status.success() {
        return Err(format!("the peer process failed: {status}").into());
    }
    rtts.drain(..WARMUP.min(rtts.len()));
    Ok(rtts)
}

/// The peer's side of a block: answers every message with one of the same size.
fn peer(kind: Kind, payload: usize, rounds: usize, where_: &str) -> Res<()> {
    pin(1)?;
    let rt = runtime()?;
    rt.block_on(async {
        tokio::time::timeout(BLOCK_TIMEOUT, async {
            match kind {
                Kind::Channel => {
                    // SAFETY: the channels were made by this example's measuring process, which speaks the
                    // channel protocol and is the only other process that opens them.
                    let (rx, mut tx) = unsafe {
                        (
                            Receiver::open_named(&format!("{where_}-ping"), &options())?,
                            Sender::open_named(&format!("{where_}-pong"), &options())?,
                        )
                    };
                    let mut rx = AsyncReceiver::new(rx)?;
                    for round in 0..rounds {
                        recv(&mut rx, payload).await?;
                        send(&mut tx, payload, round as u8)?;
                    }
                }
                Kind::Socket => {
                    let stream = UnixStream::connect(where_).await?;
                    let mut buf = vec![0u8; payload];
                    for round in 0..rounds {
                        read_exact(&stream, &mut buf).await?;
                        buf.fill(round as u8);
                        write_all(&stream, &buf).await?;
                    }
                }
            }
            Res::Ok(())
        })
        .await
        .map_err(|_| format!("the peer's {} block took more than {BLOCK_TIMEOUT:?}", kind.name()))?
    })
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0)
}

fn format_ns(ns: u64) -> String {
    if ns >= 1_000_000 { format!("{:.2} ms", ns as f64 / 1e6) } else { format!("{:.1} µs", ns as f64 / 1e3) }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("peer") {
        let [_, kind, payload, rounds, where_] = &args[..] else {
            return Err(format!("the peer takes: peer KIND PAYLOAD ROUNDS NAME, not {args:?}").into());
        };
        let payload = payload.parse().map_err(|e| format!("payload {payload:?}: {e}"))?;
        let rounds = rounds.parse().map_err(|e| format!("rounds {rounds:?}: {e}"))?;
        return peer(Kind::parse(kind)?, payload, rounds, where_);
    }
    let quick = match &args[..] {
        [] => false,
        [flag] if flag == "--quick" => true,
        other => return Err(format!("unknown arguments {other:?}: the only option is --quick").into()),
    };
    // Counted before this process pins itself, which shrinks what it sees.
    let pinned = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    pin(0)?;
    let rounds = if quick { 500 } else { 20_000 } / BLOCKS;
    println!(
        "async round trips: two processes, each a current-thread tokio runtime{}; {BLOCKS} blocks of {rounds} \
         round trips per kind and payload, the kinds taking turns",
        if pinned { ", pinned to CPUs 0 and 1" } else { "" }
    );
    println!(
        "  {:<9} {:<10} {:>10} {:>10} {:>10} {:>16}",
        "payload", "kind", "rtt p50", "rtt p99", "rtt p99.9", "p50 vs tokio-uds"
    );
    for payload in PAYLOADS {
        let mut order = [Kind::Channel, Kind::Socket];
        let (mut shm, mut uds) = (Vec::new(), Vec::new());
        for b in 0..BLOCKS {
            for kind in order {
                let name = format!("mmapkit-async-rtt-{}-{payload}-{b}", std::process::id());
                let rtts = block(kind, payload, rounds + WARMUP, &name)?;
                if kind == Kind::Channel { &mut shm } else { &mut uds }.extend(rtts);
            }
            order.reverse();
        }
        shm.sort_unstable();
        uds.sort_unstable();
        let uds_p50 = percentile(&uds, 0.5);
        for (kind, rtts) in [(Kind::Channel, &shm), (Kind::Socket, &uds)] {
            let p50 = percentile(rtts, 0.5);
            println!(
                "  {:<9} {:<10} {:>10} {:>10} {:>10} {:>16}",
                format!("{payload} B"),
                kind.name(),
                format_ns(p50),
                format_ns(percentile(rtts, 0.99)),
                format_ns(percentile(rtts, 0.999)),
                format!("{:.2}x", uds_p50 as f64 / p50.max(1) as f64)
            );
        }
    }
    Ok(())
}
