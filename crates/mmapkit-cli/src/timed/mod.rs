//! A child's side of a timed run: worker threads repeat an operation until
//! the time is up, while the main thread writes a [`ChildLine::Tick`] per
//! second (operations done, major faults taken) on stdout, then the
//! [`ChildLine::Done`] totals. The parent reads the lines as they come
//! (see [`crate::memory_cgroup::run_in_cgroup`]).

mod series;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use mmapkit::PageFaults;

pub use series::{ChildLine, Tick, Totals, steady_rate};

/// One thread's operation count, on a cache line of its own.
#[repr(align(128))]
#[derive(Default)]
struct Counter(AtomicU64);

/// What a worker thread is handed: where to count its operations, and
/// whether to stop.
pub struct Progress<'a> {
    done: &'a AtomicU64,
    stop: &'a AtomicBool,
}

impl Progress<'_> {
    /// Counts one operation.
    pub fn done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the time is up (or another worker failed).
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Runs `worker` on `threads` threads (each given its index) for `seconds`,
/// writing the ticks and the totals (with `cgroup`, the line of
/// `/proc/self/cgroup` the child ran in) to stdout. A worker returns its
/// checksum of what it read; one that fails stops the others, and its error
/// is returned.
pub fn run<W>(threads: usize, seconds: f64, cgroup: String, worker: W) -> anyhow::Result<()>
where
    W: Fn(usize, &Progress<'_>) -> anyhow::Result<u64> + Sync,
{
    anyhow::ensure!(threads > 0 && seconds > 0.0, "a timed run needs threads and seconds above 0");
    let counters: Vec<Counter> = (0..threads).map(|_| Counter::default()).collect();
    let stop = AtomicBool::new(false);
    let faults_at_start = PageFaults::now()?;
    let disk_at_start = disk_read_bytes();
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    let (checksum, ticks) = std::thread::scope(|s| -> anyhow::Result<(u64, anyhow::Result<()>)> {
        let workers: Vec<_> = counters
            .iter()
            .enumerate()
            .map(|(t, counter)| {
                let (worker, stop) = (&worker, &stop);
                s.spawn(move || {
                    let result = worker(t, &Progress { done: &counter.0, stop });
                    // A worker that ends on its own (after an error) stops the others and the ticks.
                    stop.store(true, Ordering::Relaxed);
                    result
                })
            })
            .collect();
        let ticks = write_ticks(&mut out, &counters, &stop, start, seconds, faults_at_start);
        stop.store(true, Ordering::Relaxed);
        let mut checksum = 0u64;
        for worker in workers {
            let sum = worker.join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))??;
            checksum = checksum.wrapping_add(sum);
        }
        Ok((checksum, ticks))
    })?;
    ticks?;
    let seconds = start.elapsed().as_secs_f64();
    let faults = PageFaults::now()? - faults_at_start;
    let ops = counters.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
    let disk_read_bytes = disk_read_bytes().zip(disk_at_start).map(|(end, start)| end.saturating_sub(start));
    let totals = Totals {
        ops,
        seconds,
        minor_faults: faults.minor,
        major_faults: faults.major,
        disk_read_bytes,
        checksum,
        cgroup,
    };
    writeln!(out, "{}", serde_json::to_string(&ChildLine::Done(totals))?).context("cannot write to stdout")?;
    Ok(())
}

/// The bytes this process has had read from storage (`read_bytes` of
/// `/proc/self/io`: what its reads, faults and their readahead fetched),
/// where the kernel reports it.
pub fn disk_read_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("read_bytes:")).and_then(|v| v.trim().parse().ok())
}

/// Writes a tick at every second until `seconds` have passed, or until a
/// worker stopped early.
fn write_ticks(
    out: &mut impl Write,
    counters: &[Counter],
    stop: &AtomicBool,
    start: Instant,
    seconds: f64,
    faults_at_start: PageFaults,
) -> anyhow::Result<()> {
    let total = Duration::from_secs_f64(seconds);
    let (mut last_at, mut last_ops, mut last_major) = (Duration::ZERO, 0u64, faults_at_start.major);
    while last_at < total {
        let next = (last_at + Duration::from_secs(1)).min(total);
        while start.elapsed() < next {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep((next.saturating_sub(start.elapsed())).min(Duration::from_millis(50)));
        }
        let at = start.elapsed();
        let ops: u64 = counters.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
        let major = PageFaults::now()?.major;
        let tick = Tick {
            at: at.as_secs_f64(),
            seconds: (at - last_at).as_secs_f64(),
            ops: ops - last_ops,
            major_faults: major.saturating_sub(last_major),
        };
        writeln!(out, "{}", serde_json::to_string(&ChildLine::Tick(tick))?).context("cannot write to stdout")?;
        out.flush().context("cannot write to stdout")?;
        (last_at, last_ops, last_major) = (at, ops, major);
    }
    Ok(())
}
