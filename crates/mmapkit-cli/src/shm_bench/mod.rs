//! `mmapkit shm bench`: round trips and one-way throughput between two
//! processes over the shared-memory channel (spinning and blocking), a Unix
//! socket, a pipe pair, and two floors (one value bounced through shared
//! memory, spinning or with a futex wake-up), for several payload sizes, every
//! payload written and read in full; when asked for, request-response over
//! the shared-memory service against the socket, and publish-subscribe to
//! 1, 2 and 4 subscriber processes against one socket per subscriber; and
//! the channel awaited on a tokio runtime in each process against tokio's
//! Unix socket.

mod asynchronous;
mod fanout;
mod idle;
mod link;
mod report;
mod service;
mod transport;

use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::common::stats::{median, percentile};
use link::{BoardLink, Link, ShmLink, StreamLink};
pub use transport::Transport;

/// Options of `mmapkit shm bench`.
#[derive(Debug, clap::Args)]
pub struct ShmBenchArgs {
    /// Write every result as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw round-trip times as grouped bars into FILE.svg.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Few rounds: done in seconds (for tests).
    #[arg(long)]
    pub quick: bool,
    /// Measure only these transports (comma-separated); by default every
    /// one but the publish-subscribe boards (pubsub-spin, pubsub-block), the
    /// services (service-spin, service-block), the async pair (async-shm,
    /// tokio-uds) and the fan-outs (fanout-N, uds-fanout-N).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub transports: Vec<Transport>,
    /// Hold the CPUs out of deep idle states for the run (Linux: a latency of
    /// 0 written to /dev/cpu_dma_latency, as cyclictest does; usually needs
    /// root). Where the shallowest idle state polls, a sleeping process's CPU
    /// then polls instead of halting, and the blocking transports are
    /// measured without the CPUs' return from halt. Refused where it would
    /// change nothing.
    #[arg(long)]
    pub shallow_idle: bool,
    /// Also compare with the floors (at 64 B): the spinning channel with the
    /// spinning floor (one cache line moved between the CPUs), the blocking
    /// channel and the socket, sync and async, with the blocking floor (a
    /// bare futex handoff), and the spinning channel's rate at 1 MiB with
    /// memcpy's.
    #[arg(long)]
    pub against_floors: bool,
}

/// The child's side of one measurement (an internal subcommand).
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    #[arg(long)]
    transport: Transport,
    #[arg(long)]
    payload: usize,
    #[arg(long)]
    rounds: usize,
    #[arg(long)]
    messages: usize,
    #[arg(long)]
    name: String,
    #[arg(long)]
    cpu: Option<usize>,
}

/// One transport at one payload size.
#[derive(Clone, Debug, Serialize)]
pub struct ShmResult {
    pub transport: Transport,
    pub payload_bytes: usize,
    pub rtt_p50_ns: u64,
    pub rtt_p99_ns: u64,
    pub rtt_p999_ns: u64,
    /// One-way messages per second (none for the floors, which carry no payload).
    pub msgs_per_sec: Option<f64>,
    pub bytes_per_sec: Option<f64>,
    /// The capacity of each of the channel's two rings (none for the other transports).
    pub ring_bytes: Option<usize>,
}

/// (round trips, one-way messages) for a payload size.
fn counts(payload: usize, quick: bool) -> (usize, usize) {
    let (rounds, messages) = match payload {
        0..=64 => (100_000, 1_000_000),
        65..=4096 => (50_000, 200_000),
        4097..=65536 => (10_000, 20_000),
        _ => (500, 1_000),
    };
    if quick { (rounds / 50, messages / 50) } else { (rounds, messages) }
}

const PAYLOADS: [usize; 4] = [FLOOR_PAYLOAD, 4096, 65536, 1 << 20];

/// The payload the floors are measured next to, and compared with.
pub(super) const FLOOR_PAYLOAD: usize = 64;

/// The CPUs this process may run on. Counted once, before this process
/// pins itself (which would shrink what it sees), and kept.
fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Whether the two processes get a CPU each.
fn two_cpus() -> bool {
    cpus() >= 2
}

/// The CPU of a fan-out's subscriber `k`: the subscribers take the CPUs in
/// turn from CPU 1 (the benchmark process has CPU 0, and sleeps while it
/// waits for the acks).
fn subscriber_cpu(k: usize) -> usize {
    (1 + k) % cpus()
}

/// Which of the peer's standard streams are pipes to this process (the
/// others are `/dev/null`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pipes {
    /// Neither.
    None,
    /// Its stdin: the peer learns this process is done or gone when it ends.
    Stdin,
    /// Both: the pipe transport.
    Both,
}

/// Starts the peer process: `mmapkit shm peer` with the same measurement,
/// pinned to CPU 1 where there are two.
fn spawn_peer(
    transport: Transport,
    payload: usize,
    rounds: usize,
    messages: usize,
    name: &str,
    pipes: Pipes,
) -> anyhow::Result<Child> {
    spawn_peer_on(transport, payload, rounds, messages, name, pipes, 1)
}

/// [`spawn_peer`], pinned to `cpu` where there are two or more.
fn spawn_peer_on(
    transport: Transport,
    payload: usize,
    rounds: usize,
    messages: usize,
    name: &str,
    pipes: Pipes,
    cpu: usize,
) -> anyhow::Result<Child> {
    let mut cmd = Command::new(std::env::current_exe().context("cannot find the mmapkit binary")?);
    cmd.args(["shm", "peer", "--transport", transport.name(), "--payload"]).arg(payload.to_string()).args([
        "--rounds",
        &rounds.to_string(),
        "--messages",
        &messages.to_string(),
        "--name",
        name,
    ]);
    if two_cpus() {
        cmd.args(["--cpu", &cpu.to_string()]);
    }
    let piped = |yes: bool| if yes { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(piped(pipes != Pipes::None)).stdout(piped(pipes == Pipes::Both));
    cmd.spawn().context("cannot start the peer process")
}

/// Round trips at the start of every block that are not counted: the first
/// one waits for the peer process to start, and the next few for the caches
/// and branch predictors to settle. Every transport gets the same.
pub(super) const WARMUP: usize = 16;

/// Ping-pong `rounds` times, then send `messages` one way and wait for the
/// ack. `rounds` includes the [`WARMUP`] round trips, which are not returned.
fn drive(link: &mut dyn Link, payload: usize, rounds: usize, messages: usize) -> anyhow::Result<(Vec<u64>, f64)> {
    let mut rtts = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let start = Instant::now();
        link.send(payload, round as u8)?;
        link.recv(payload)?;
        rtts.push(start.elapsed().as_nanos() as u64);
    }
    rtts.drain(..WARMUP.min(rtts.len()));
    let start = Instant::now();
    for i in 0..messages {
        link.send(payload, i as u8)?;
    }
    link.recv(8)?; // the peer's ack: it has read every message
    Ok((rtts, start.elapsed().as_secs_f64()))
}

/// The peer's half of `drive`.
fn echo(link: &mut dyn Link, payload: usize, rounds: usize, messages: usize) -> anyhow::Result<()> {
    for round in 0..rounds {
        link.recv(payload)?;
        link.send(payload, round as u8)?;
    }
    for _ in 0..messages {
        link.recv(payload)?;
    }
    link.send(8, 0)
}

/// What one transport measured at one payload over its blocks.
struct Samples {
    /// Every counted round trip, from all blocks.
    rtts: Vec<u64>,
    /// Each block's one-way rate, in messages per second.
    rates: Vec<f64>,
}

/// Ping-pong is split into this many blocks, and a payload's transports take
/// turns block by block, so that a change in the machine's speed during the
/// run (these are shared virtual machines) falls on every transport alike,
/// and the ratios compare like with like. Each block also runs its share of
/// the one-way messages; the rate reported is the median block's. An even
/// number, so that the order below runs forwards and backwards equally often.
const BLOCKS: usize = 6;

fn blocks(quick: bool) -> usize {
    if quick { 2 } else { BLOCKS }
}

/// `total` split into `blocks` shares; the last one takes the remainder.
fn share(total: usize, blocks: usize, block: usize) -> usize {
    total / blocks + if block + 1 == blocks { total % blocks } else { 0 }
}

/// Measures every transport in `transports` at `payload`, block by block.
fn measure_payload(
    transports: &[Transport],
    payload: usize,
    quick: bool,
    run_id: &str,
) -> anyhow::Result<Vec<ShmResult>> {
    let (rounds, messages) = counts(payload, quick);
    let blocks = blocks(quick);
    let mut samples: Vec<Samples> =
        transports.iter().map(|_| Samples { rtts: Vec::with_capacity(rounds), rates: Vec::new() }).collect();
    // Each block in [`Transport::BLOCK_ORDER`], every other one backwards, so
    // that no transport always goes first.
    let mut order: Vec<usize> = (0..transports.len()).collect();
    order.sort_by_key(|&i| Transport::BLOCK_ORDER.iter().position(|&t| t == transports[i]));
    for block in 0..blocks {
        let (block_rounds, block_messages) = (share(rounds, blocks, block), share(messages, blocks, block));
        for &index in &order {
            let transport = transports[index];
            let block_messages = if transport.one_way() { block_messages } else { 0 };
            let name = format!("{run_id}-{transport}-{payload}-{block}");
            let (rtts, seconds) = ping_pong(transport, payload, block_rounds + WARMUP, block_messages, &name)?;
            samples[index].rtts.extend(rtts);
            if block_messages > 0 && seconds > 0.0 {
                samples[index].rates.push(block_messages as f64 / seconds);
            }
        }
        order.reverse();
    }
    Ok(transports
        .iter()
        .zip(samples)
        .map(|(&transport, Samples { mut rtts, mut rates })| {
            rtts.sort_unstable();
            let one_way = median(&mut rates);
            ShmResult {
                transport,
                payload_bytes: transport.message_bytes(payload),
                rtt_p50_ns: percentile(&rtts, 0.50).unwrap_or(0),
                rtt_p99_ns: percentile(&rtts, 0.99).unwrap_or(0),
                rtt_p999_ns: percentile(&rtts, 0.999).unwrap_or(0),
                msgs_per_sec: one_way,
                bytes_per_sec: one_way.map(|m| m * payload as f64),
                ring_bytes: transport.is_channel().then(|| link::ring_capacity(payload)),
            }
        })
        .collect())
}

/// One block: a peer process, `rounds` round trips, then (if `messages` is
/// not zero) a one-way run of `messages`. Returns the round-trip times after
/// the first [`WARMUP`], and the one-way run's seconds.
fn ping_pong(
    transport: Transport,
    payload: usize,
    rounds: usize,
    messages: usize,
    name: &str,
) -> anyhow::Result<(Vec<u64>, f64)> {
    match transport {
        Transport::ShmSpin | Transport::ShmBlock => {
            let mut link = ShmLink::create(name, payload, transport == Transport::ShmSpin)?;
            let mut peer = spawn_peer(transport, payload, rounds, messages, name, Pipes::None)?;
            let result = drive(&mut link, payload, rounds, messages);
            finish(&mut peer, result)
        }
        Transport::PubsubSpin | Transport::PubsubBlock => {
            let mut link = BoardLink::create(name, payload, transport == Transport::PubsubSpin)?;
            let mut peer = spawn_peer(transport, payload, rounds, messages, name, Pipes::None)?;
            let result = drive(&mut link, payload, rounds, messages);
            finish(&mut peer, result)
        }
        Transport::ServiceSpin | Transport::ServiceBlock => {
            let options = service::service_options(payload, transport == Transport::ServiceSpin);
            // SAFETY: the only other process that opens this service is this program's peer (`peer` below),
            // which speaks the service protocol.
            let mut client = unsafe { mmapkit_shm::Client::create_named(name, &options) }?;
            let mut peer = spawn_peer(transport, payload, rounds, 0, name, Pipes::None)?;
            let result = service::call_rounds(&mut client, payload, rounds);
            finish(&mut peer, result.map(|rtts| (rtts, 0.0)))
        }
        Transport::Fanout1 | Transport::Fanout2 | Transport::Fanout4 => {
            let subscribers = transport.subscribers().unwrap_or(1);
            let mut fan = fanout::BoardFan::create(name, payload, subscribers)?;
            let mut peers = Vec::with_capacity(subscribers);
            for k in 0..subscribers {
                match spawn_peer_on(transport, payload, rounds, messages, name, Pipes::None, subscriber_cpu(k)) {
                    Ok(peer) => peers.push(peer),
                    Err(error) => return finish_all(&mut peers, Err(error)),
                }
            }
            let result = fanout::drive_fan(&mut fan, payload, rounds, messages);
            finish_all(&mut peers, result)
        }
        Transport::UdsFanout1 | Transport::UdsFanout2 | Transport::UdsFanout4 => {
            let subscribers = transport.subscribers().unwrap_or(1);
            let (_dir, path, listener) = bind_socket()?;
            let socket = path.to_str().unwrap_or_default();
            let mut peers = Vec::with_capacity(subscribers);
            for k in 0..subscribers {
                match spawn_peer_on(transport, payload, rounds, messages, socket, Pipes::None, subscriber_cpu(k)) {
                    Ok(peer) => peers.push(peer),
                    Err(error) => return finish_all(&mut peers, Err(error)),
                }
            }
            let result = accept_fan(&listener, subscribers)
                .and_then(|mut fan| fanout::drive_fan(&mut fan, payload, rounds, messages));
            finish_all(&mut peers, result)
        }
        Transport::AsyncShm => {
            // The same rings as shm-block's, each end's receiver awaited.
            let ShmLink { tx, rx, .. } = ShmLink::create(name, payload, false)?;
            let runtime = asynchronous::runtime()?;
            let mut peer = spawn_peer(transport, payload, rounds, messages, name, Pipes::None)?;
            let result = runtime.block_on(async {
                let mut link = asynchronous::ShmAsyncLink::new(tx, rx, false)?;
                asynchronous::drive(&mut link, payload, rounds, messages).await
            });
            finish(&mut peer, result)
        }
        Transport::TokioUds => {
            let (_dir, path, listener) = bind_socket()?;
            let runtime = asynchronous::runtime()?;
            let mut peer =
                spawn_peer(transport, payload, rounds, messages, path.to_str().unwrap_or_default(), Pipes::None)?;
            let result = runtime.block_on(async {
                let mut link = asynchronous::UdsAsyncLink::accept(listener).await?;
                asynchronous::drive(&mut link, payload, rounds, messages).await
            });
            finish(&mut peer, result)
        }
        Transport::Uds => {
            let (_dir, path, listener) = bind_socket()?;
            let mut peer =
                spawn_peer(transport, payload, rounds, messages, path.to_str().unwrap_or_default(), Pipes::None)?;
            let (stream, _) = listener.accept().context("the peer never connected")?;
            let mut link = StreamLink { reader: buffered(stream.try_clone()?), writer: stream, buf: Vec::new() };
            let result = drive(&mut link, payload, rounds, messages);
            finish(&mut peer, result)
        }
        Transport::Pipe => {
            let mut peer = spawn_peer(transport, payload, rounds, messages, name, Pipes::Both)?;
            let writer = peer.stdin.take().context("no pipe to the peer")?;
            let reader = peer.stdout.take().context("no pipe from the peer")?;
            let mut link = StreamLink { reader: buffered(reader), writer, buf: Vec::new() };
            let result = drive(&mut link, payload, rounds, messages);
            drop(link);
            finish(&mut peer, result)
        }
        Transport::Floor => {
            let floor = link::floor_create(name)?;
            let mut peer = spawn_peer(transport, 0, rounds, 0, name, Pipes::None)?;
            let result = floor_rounds(&floor, rounds, &link::Spinning);
            finish(&mut peer, result.map(|rtts| (rtts, 0.0)))
        }
        Transport::FloorBlock => {
            let floor = link::floor_create(name)?;
            // The peer's stdin is a pipe it reads to its end: this process exits.
            let mut peer = spawn_peer(transport, 0, rounds, 0, name, Pipes::Stdin)?;
            let to_peer = peer.stdin.take();
            let (result, status) = std::thread::scope(|s| {
                // The floor's waits have no timeout: the peer's exit abandons it.
                let exited = s.spawn(|| {
                    let status = peer.wait();
                    link::block_floor_abandon(&floor);
                    status
                });
                let result = floor_rounds(&floor, rounds, &link::Blocking);
                if result.is_err() {
                    link::block_floor_abandon(&floor);
                }
                drop(to_peer);
                (result, exited.join())
            });
            let status =
                status.unwrap_or_else(|_| Err(std::io::Error::other("the thread waiting for the peer panicked")));
            merge(status, result.map(|rtts| (rtts, 0.0)))
        }
    }
}

/// A floor's side of `rounds` round trips: hands the value over and waits
/// for the peer's answer; returns the round trips after the first
/// [`WARMUP`].
fn floor_rounds(floor: &link::Floor, rounds: usize, handoff: &impl link::Handoff) -> anyhow::Result<Vec<u64>> {
    let mut rtts = Vec::with_capacity(rounds);
    for round in 0..rounds as u64 {
        let start = Instant::now();
        handoff.set(floor, 2 * round + 1)?;
        handoff.wait(floor, 2 * round + 2)?;
        rtts.push(start.elapsed().as_nanos() as u64);
    }
    rtts.drain(..WARMUP.min(rtts.len()));
    Ok(rtts)
}

/// The peer's half of [`floor_rounds`].
fn floor_echo(floor: &link::Floor, rounds: usize, handoff: &impl link::Handoff) -> anyhow::Result<()> {
    for round in 0..rounds as u64 {
        handoff.wait(floor, 2 * round + 1)?;
        handoff.set(floor, 2 * round + 2)?;
    }
    Ok(())
}

/// The reading side of a byte stream, as both stream transports use it: one
/// buffer, so that a run of small messages costs one `read` per buffer
/// rather than one per message, for the socket and the pipe alike.
fn buffered<R: std::io::Read>(reader: R) -> std::io::BufReader<R> {
    std::io::BufReader::with_capacity(64 * 1024, reader)
}

/// Accepts one connection from each of `subscribers` subscriber processes,
/// waiting at most [`link::PEER_TIMEOUT`] in all (a subscriber that died
/// before it connected would otherwise be waited for forever).
fn accept_fan(listener: &UnixListener, subscribers: usize) -> anyhow::Result<fanout::SocketFan> {
    listener.set_nonblocking(true).context("cannot make the listening socket non-blocking")?;
    let start = Instant::now();
    let mut streams = Vec::with_capacity(subscribers);
    while streams.len() < subscribers {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).context("cannot make a subscriber's socket blocking")?;
                streams.push(StreamLink { reader: buffered(stream.try_clone()?), writer: stream, buf: Vec::new() });
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                if start.elapsed() > link::PEER_TIMEOUT {
                    bail!("{} of {subscribers} subscriber processes connected", streams.len());
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(error) => return Err(error).context("cannot accept a subscriber's connection"),
        }
    }
    Ok(fanout::SocketFan { streams })
}

/// Waits for every peer and merges their fates with ours: on a failure of
/// ours every peer is killed first.
/// A Unix socket listening in a new temporary directory (removed when the
/// directory handle is dropped): the directory, the socket's path, the listener.
fn bind_socket() -> anyhow::Result<(tempfile::TempDir, std::path::PathBuf, UnixListener)> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let path = dir.path().join("socket");
    let listener = UnixListener::bind(&path).with_context(|| format!("cannot bind {}", path.display()))?;
    Ok((dir, path, listener))
}

fn finish_all<T>(peers: &mut [Child], result: anyhow::Result<T>) -> anyhow::Result<T> {
    if result.is_err() {
        for peer in peers.iter_mut() {
            let _ = peer.kill();
        }
    }
    let mut result = result;
    for peer in peers.iter_mut() {
        result = merge(peer.wait(), result);
    }
    result
}

/// Waits for the peer and merges its fate with ours.
fn finish<T>(peer: &mut Child, result: anyhow::Result<T>) -> anyhow::Result<T> {
    if result.is_err() {
        let _ = peer.kill();
    }
    merge(peer.wait(), result)
}

/// Our result, unless the peer (which ended with `status`) failed.
fn merge<T>(status: std::io::Result<std::process::ExitStatus>, result: anyhow::Result<T>) -> anyhow::Result<T> {
    let status = status.context("cannot wait for the peer")?;
    let value = result?;
    if !status.success() {
        bail!("the peer process failed: {status}");
    }
    Ok(value)
}

/// Single-core memcpy bandwidth for buffers of `bytes`: 64 MiB measures
/// memory, 1 MiB what a 1 MiB payload meets (the CPU caches).
fn memcpy_bandwidth(bytes: usize) -> f64 {
    let src = vec![0x5Au8; bytes];
    let mut dst = vec![0u8; bytes];
    dst.copy_from_slice(&src); // fault the pages in first
    let rounds = (640 << 20) / bytes;
    let start = Instant::now();
    for _ in 0..rounds {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    }
    (rounds * src.len()) as f64 / start.elapsed().as_secs_f64()
}

/// Runs the benchmark.
pub fn run(args: ShmBenchArgs) -> anyhow::Result<()> {
    if two_cpus() {
        mmapkit_sys::process::pin_current_thread(0).context("cannot pin the benchmark to CPU 0")?;
    }
    // Held until the run ends; the kernel drops it if this process dies.
    let held = args.shallow_idle.then(idle::ShallowIdle::hold).transpose()?;
    let mut idle = idle::observe(held.as_ref());
    let run_id = format!("mmapkit-shm-bench-{}", std::process::id());
    let memcpy = memcpy_bandwidth(64 << 20);
    let memcpy_1mib = memcpy_bandwidth(1 << 20);
    let mut results = Vec::new();
    for payload in PAYLOADS {
        let transports: Vec<Transport> = Transport::ALL
            .into_iter()
            .filter(|t| if args.transports.is_empty() { t.by_default() } else { args.transports.contains(t) })
            .filter(|t| !t.is_floor() || payload == FLOOR_PAYLOAD)
            .collect();
        results.extend(measure_payload(&transports, payload, args.quick, &run_id)?);
    }
    idle.granted_latency_us_at_end = idle::granted_now(held.as_ref());
    let setup = report::Setup { pinned: two_cpus(), blocks: blocks(args.quick), idle };
    report::print(&results, memcpy, memcpy_1mib, &setup);
    if args.against_floors {
        report::print_floor_comparisons(&results, memcpy, memcpy_1mib);
    }
    report::print_peer_comparisons(&results);
    if let Some(path) = &args.json {
        report::write_json(path, &results, memcpy, memcpy_1mib, &setup, WARMUP)?;
    }
    if let Some(path) = &args.plot {
        report::plot(path, &results)?;
    }
    Ok(())
}

/// The peer process: the other half of one measurement.
pub fn peer(args: PeerArgs) -> anyhow::Result<()> {
    if let Some(cpu) = args.cpu {
        mmapkit_sys::process::pin_current_thread(cpu).context("cannot pin the peer")?;
    }
    let PeerArgs { transport, payload, rounds, messages, name, .. } = args;
    match transport {
        Transport::ShmSpin | Transport::ShmBlock => {
            let mut link = ShmLink::open(&name, payload, transport == Transport::ShmSpin)?;
            echo(&mut link, payload, rounds, messages)
        }
        Transport::PubsubSpin | Transport::PubsubBlock => {
            let mut link = BoardLink::open(&name, payload, transport == Transport::PubsubSpin)?;
            echo(&mut link, payload, rounds, messages)
        }
        Transport::ServiceSpin | Transport::ServiceBlock => {
            let options = service::service_options(payload, transport == Transport::ServiceSpin);
            // SAFETY: the service was made by this program's benchmark process (`ping_pong`), which speaks the
            // service protocol and is the only other process that opens it.
            let mut server = unsafe { mmapkit_shm::Server::open_named(&name, &options) }?;
            service::serve_rounds(&mut server, payload, rounds)
        }
        Transport::Fanout1 | Transport::Fanout2 | Transport::Fanout4 => {
            let subscribers = transport.subscribers().unwrap_or(1);
            let mut link = fanout::BoardSubscriber::open(&name, payload, subscribers)?;
            fanout::fan_echo(&mut link, payload, rounds, messages)
        }
        Transport::UdsFanout1 | Transport::UdsFanout2 | Transport::UdsFanout4 => {
            let stream =
                std::os::unix::net::UnixStream::connect(&name).with_context(|| format!("cannot connect to {name}"))?;
            let mut link = StreamLink { reader: buffered(stream.try_clone()?), writer: stream, buf: Vec::new() };
            fanout::fan_echo(&mut link, payload, rounds, messages)
        }
        Transport::Uds => {
            let stream =
                std::os::unix::net::UnixStream::connect(&name).with_context(|| format!("cannot connect to {name}"))?;
            let mut link = StreamLink { reader: buffered(stream.try_clone()?), writer: stream, buf: Vec::new() };
            echo(&mut link, payload, rounds, messages)
        }
        Transport::AsyncShm => {
            let ShmLink { tx, rx, .. } = ShmLink::open(&name, payload, false)?;
            asynchronous::runtime()?.block_on(async {
                let mut link = asynchronous::ShmAsyncLink::new(tx, rx, true)?;
                asynchronous::echo(&mut link, payload, rounds, messages).await
            })
        }
        Transport::TokioUds => asynchronous::runtime()?.block_on(async {
            let mut link = asynchronous::UdsAsyncLink::connect(std::path::Path::new(&name)).await?;
            asynchronous::echo(&mut link, payload, rounds, messages).await
        }),
        Transport::Pipe => {
            let stdin = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
            let stdout = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
            let mut link = StreamLink { reader: buffered(stdin), writer: stdout, buf: Vec::new() };
            echo(&mut link, payload, rounds, messages)
        }
        Transport::Floor => floor_echo(&*link::floor_open(&name)?, rounds, &link::Spinning),
        Transport::FloorBlock => {
            let floor = link::floor_open(&name)?;
            std::thread::scope(|s| {
                // The parent closes our stdin when it is done or gone: then
                // nobody answers any more, and the floor's waits have no timeout.
                s.spawn(|| {
                    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                    link::block_floor_abandon(&floor);
                });
                let result = floor_echo(&floor, rounds, &link::Blocking);
                if result.is_err() {
                    link::block_floor_abandon(&floor);
                }
                result
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use zerocopy::FromZeros;

    use super::link::{self, Blocking, BoardLink, Floor, turn};
    use super::{WARMUP, drive, echo, floor_echo, floor_rounds, share};

    /// Two threads hand the blocking floor's turn back and forth: a lost
    /// wake-up would leave one asleep (the waits have no timeout) until the
    /// guard abandons the floor after 30 s, failing the round.
    #[test]
    fn the_blocking_floor_hands_the_turn_over_every_round() {
        const ROUNDS: usize = 5_000;
        let floor = Floor::new_zeroed();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let (rtts, guard_fired) = std::thread::scope(|s| {
            let floor = &floor;
            let guard = s.spawn(move || {
                let fired = finished.recv_timeout(Duration::from_secs(30)).is_err();
                if fired {
                    link::block_floor_abandon(floor);
                }
                fired
            });
            let peer = s.spawn(|| floor_echo(floor, ROUNDS, &Blocking));
            let rtts = floor_rounds(floor, ROUNDS, &Blocking);
            let echoed = peer.join().unwrap();
            let _ = done.send(());
            (rtts.and_then(|rtts| echoed.map(|()| rtts)), guard.join().unwrap())
        });
        assert!(!guard_fired, "a round was still asleep after 30 s");
        assert_eq!(rtts.unwrap().len(), ROUNDS - WARMUP);
    }

    #[test]
    fn an_abandoned_blocking_floor_wakes_its_sleeper_and_stays_abandoned() {
        let floor = Floor::new_zeroed();
        let start = Instant::now();
        let err = std::thread::scope(|s| {
            let sleeper = s.spawn(|| link::block_floor_wait(&floor, 1));
            std::thread::sleep(Duration::from_millis(50));
            link::block_floor_abandon(&floor);
            sleeper.join().unwrap().unwrap_err()
        });
        assert!(err.to_string().contains("stopped answering"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        // A handover after it keeps it abandoned, yet is seen.
        link::block_floor_set(&floor, 5).unwrap();
        link::block_floor_wait(&floor, 5).unwrap();
        assert!(link::block_floor_wait(&floor, 7).unwrap_err().to_string().contains("stopped answering"));
        let err = link::block_floor_set(&floor, 1 << 30).unwrap_err();
        assert!(err.to_string().contains("1073741824"), "{err}");
        assert!(turn(1 << 32).unwrap_err().to_string().contains("4294967296"));
    }

    /// Every ring the bench makes carries its payload (else the run fails
    /// with `MessageTooLarge`) and, up to 4 KiB, room for at least 64 (else
    /// the blocking one-way run sleeps after every few); 64 B gets a ring no
    /// larger than the 8 KiB measured fastest.
    #[test]
    fn every_ring_carries_its_payload_with_room_for_many_small_ones() {
        for payload in [0, 1, 64, 120, 121, 4096, 65_536, 1 << 20, 3 << 20] {
            let ring = link::ring_capacity(payload);
            // SAFETY: the channel is this test's alone, made and dropped here.
            let sender = unsafe { mmapkit_shm::Sender::create_memfd(&link::channel_options(payload, true)) }.unwrap();
            assert!(sender.max_message() >= payload, "{payload} B in a ring of {ring} B");
            let record = payload.next_multiple_of(8) + 8;
            assert!(payload > 4096 || ring / record >= 64, "{payload} B: a ring of {ring} B");
        }
        assert!(link::ring_capacity(64) <= 8 << 10);
    }

    #[test]
    fn shares_add_up_and_the_last_takes_the_remainder() {
        for (total, blocks) in [(100_000, 6), (1_000, 6), (20, 2), (7, 3), (5, 6)] {
            let shares: Vec<usize> = (0..blocks).map(|b| share(total, blocks, b)).collect();
            assert_eq!(shares.iter().sum::<usize>(), total, "{total} in {blocks}");
            assert!(shares[..blocks - 1].iter().all(|&s| s == total / blocks));
        }
    }

    /// The boards' link carries every payload both ways between two
    /// threads, spinning and blocking: the round trips, the one-way run and
    /// its ack (each end checks every length it receives).
    #[test]
    fn a_board_link_carries_round_trips_and_a_one_way_run() {
        for (payload, spin) in [(64, true), (4096, false), (1 << 20, true)] {
            let name = format!("mmapkit-shm-bench-test-{}-{payload}-{spin}", std::process::id());
            let mut parent = BoardLink::create(&name, payload, spin).unwrap();
            let echoing = std::thread::spawn({
                let name = name.clone();
                move || echo(&mut BoardLink::open(&name, payload, spin).unwrap(), payload, WARMUP + 20, 200)
            });
            let (rtts, seconds) = drive(&mut parent, payload, WARMUP + 20, 200).unwrap();
            echoing.join().unwrap().unwrap();
            assert_eq!(rtts.len(), 20);
            assert!(seconds > 0.0);
        }
    }
}
