//! Durable single-insert commits with and without a read transaction held
//! open across all of them.
//!
//! A held reader keeps every page freed after its snapshot from being reused,
//! so the file grows; the cost of a commit should not. Each run does `N`
//! durable commits of one insert (a pseudo-random 8-byte key, a 100-byte
//! value) on a fresh database: first with no reader, then with one
//! `ReadTransaction` opened before the first commit and dropped after the
//! last. For every thousand commits it prints the wall time and the CPU time
//! (user + system of this thread, from `/proc/thread-self`), then the totals,
//! the file sizes, the time a reopen of the closed file takes, and the ratios
//! held / without.
//!
//! Run: `cargo bench -p mmapkit-db --bench held_reader`
//! (`MMAPKIT_DB_BENCH_COMMITS` sets `N`, default 10,000; `MMAPKIT_DB_BENCH_DIR`
//! the directory the databases are created in, default the system temporary
//! directory; `MMAPKIT_DB_BENCH_ONLY=held` or `=without` runs one case.)

use std::path::Path;
use std::time::{Duration, Instant};

use mmapkit_db::{Database, PAGE_SIZE};

const STEP: u64 = 1_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU time of this thread: on-CPU nanoseconds from `schedstat`, and user and
/// system time from `stat` (in the kernel's fixed 100 Hz ticks).
#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    on_cpu: Duration,
    user: Duration,
    system: Duration,
}

impl Cpu {
    fn now() -> Cpu {
        let on_cpu = std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
            .map_or(Duration::ZERO, Duration::from_nanos);
        let ticks = std::fs::read_to_string("/proc/thread-self/stat").ok().and_then(|s| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = &s[s.rfind(')')? + 1..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
            Some((fields.get(11)?.parse::<u64>().ok()?, fields.get(12)?.parse::<u64>().ok()?))
        });
        let (user, system) = ticks.unwrap_or((0, 0));
        Cpu { on_cpu, user: Duration::from_millis(user * 10), system: Duration::from_millis(system * 10) }
    }

    fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            on_cpu: self.on_cpu.saturating_sub(earlier.on_cpu),
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// What one run measured.
struct Run {
    wall: Duration,
    cpu: Cpu,
    /// Wall and CPU time of the last thousand commits.
    last_step: (Duration, Duration),
    file_bytes: u64,
    page_count: u64,
    pending_pages: u64,
}

fn per_thousand(d: Duration, commits: u64) -> f64 {
    d.as_secs_f64() * STEP as f64 / commits as f64
}

fn run(dir: &Path, name: &str, commits: u64, hold: bool) -> Run {
    let path = dir.join(format!("{name}.db"));
    // SAFETY: a fresh file in a private temporary directory; nothing else opens it.
    let db = unsafe { Database::create(&path) }.expect("create the database");
    let mut txn = db.begin_write().expect("begin_write");
    txn.open_table("t").expect("open_table");
    txn.commit().expect("commit");
    let reader = hold.then(|| db.begin_read().expect("begin_read"));

    println!("{name}: {commits} durable commits of one insert each");
    println!("  {:>7}  {:>12}  {:>12}  {:>10}  {:>10}", "commits", "wall s/1000", "cpu s/1000", "user s", "sys s");
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let value = [0x5au8; 100];
    let (started, cpu_started) = (Instant::now(), Cpu::now());
    let (mut step_start, mut step_cpu) = (started, cpu_started);
    let mut last_step = (Duration::ZERO, Duration::ZERO);
    for i in 1..=commits {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut txn = db.begin_write().expect("begin_write");
        txn.open_table("t").expect("open_table").insert(&x.to_be_bytes(), &value).expect("insert");
        txn.commit().expect("commit");
        if i % STEP == 0 || i == commits {
            let (now, cpu) = (Instant::now(), Cpu::now());
            let n = (i - 1) % STEP + 1;
            let spent = cpu.since(step_cpu);
            let wall = now - step_start;
            println!(
                "  {i:>7}  {:>12.3}  {:>12.3}  {:>10.2}  {:>10.2}",
                per_thousand(wall, n),
                per_thousand(spent.on_cpu, n),
                spent.user.as_secs_f64(),
                spent.system.as_secs_f64()
            );
            last_step = (wall, spent.on_cpu);
            (step_start, step_cpu) = (now, cpu);
        }
    }
    let (wall, cpu) = (started.elapsed(), Cpu::now().since(cpu_started));
    let stats = db.stats().expect("stats");
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    drop(reader);
    drop(db);
    let closed = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    // Opening reads the whole free list: every page still pending at the close.
    let opening = Instant::now();
    // SAFETY: as above; the handle before it is closed.
    let reopened = unsafe { Database::open(&path) }.expect("reopen the database");
    let opened_in = opening.elapsed();
    let free_after_open = reopened.stats().expect("stats").free_pages;
    drop(reopened);
    println!(
        "  total: wall {:.2} s ({:.3} s/1000), cpu {:.2} s ({:.3} s/1000; user {:.2} s, sys {:.2} s)",
        wall.as_secs_f64(),
        per_thousand(wall, commits),
        cpu.on_cpu.as_secs_f64(),
        per_thousand(cpu.on_cpu, commits),
        cpu.user.as_secs_f64(),
        cpu.system.as_secs_f64()
    );
    println!(
        "  file: {:.1} MiB ({} pages in use, {} pending) before close, {:.1} MiB after",
        file_bytes as f64 / (1 << 20) as f64,
        stats.page_count,
        stats.pending_pages,
        closed as f64 / (1 << 20) as f64
    );
    println!("  reopened in {:.1} ms, with {free_after_open} pages free", opened_in.as_secs_f64() * 1e3);
    Run { wall, cpu, last_step, file_bytes, page_count: stats.page_count, pending_pages: stats.pending_pages }
}

fn main() {
    let commits = env_or("MMAPKIT_DB_BENCH_COMMITS", 10_000).max(1);
    let only = std::env::var("MMAPKIT_DB_BENCH_ONLY").unwrap_or_default();
    let dir = match std::env::var_os("MMAPKIT_DB_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("a temporary directory");
    println!("databases in {} ({PAGE_SIZE}-byte pages)", dir.path().display());
    let without = (only != "held").then(|| run(dir.path(), "without-reader", commits, false));
    let held = (only != "without").then(|| run(dir.path(), "held-reader", commits, true));
    if let (Some(a), Some(b)) = (without, held) {
        let ratio = |x: Duration, y: Duration| x.as_secs_f64() / y.as_secs_f64().max(1e-9);
        println!(
            "held / without: wall {:.2}x, cpu {:.2}x; last thousand: wall {:.2}x, cpu {:.2}x; file {:.1}x ({} vs {} pages, {} pending)",
            ratio(b.wall, a.wall),
            ratio(b.cpu.on_cpu, a.cpu.on_cpu),
            ratio(b.last_step.0, a.last_step.0),
            ratio(b.last_step.1, a.last_step.1),
            b.file_bytes as f64 / a.file_bytes.max(1) as f64,
            b.page_count,
            a.page_count,
            b.pending_pages
        );
    }
}
