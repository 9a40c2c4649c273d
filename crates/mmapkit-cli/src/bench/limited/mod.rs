//! `mmapkit bench --memory-limit SIZE`: random 4 KiB reads of a file larger
//! than the memory a process may use. Each method runs in a child process of
//! its own, inside a memory cgroup limited to SIZE (the page cache it fills
//! counts against the limit), for a fixed time, on one thread and on N; the
//! file is dropped from the page cache before each. What is reported is the
//! throughput of every second, the steady-state rate (the median second of
//! the second half), and the major faults the child took.

pub mod child;
mod plot;
mod readahead;
mod report;

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mmapkit_cli::memory_cgroup::{Hierarchy, MemoryCgroup, run_in_cgroup};
use serde::Serialize;

use super::BenchArgs;
use super::measurement::Measurement;
use super::scenario::{Cache, Method, Pattern, Scenario};
use super::workload::Workload;
use mmapkit_cli::timed::{self, ChildLine, Tick, Totals};

/// Bytes per read.
const BLOCK: usize = 4096;

/// How long each method reads, by default: the whole run (two scenarios of
/// four methods) takes about two minutes.
pub const DEFAULT_SECONDS: f64 = 15.0;
/// How long each method reads with `--quick`.
pub const QUICK_SECONDS: f64 = 2.0;
/// The threads of the second scenario, by default.
pub const DEFAULT_THREADS: usize = 4;

/// One method's run under the limit.
#[derive(Clone, Debug, Serialize)]
pub struct LimitedRun {
    pub scenario: String,
    #[serde(skip)]
    pub title: String,
    pub threads: usize,
    pub method: &'static str,
    #[serde(skip)]
    pub is_mmap: bool,
    pub limit_bytes: u64,
    /// The limit the kernel had in force.
    pub limit_in_force: u64,
    /// The most memory the child's cgroup used, where the kernel says.
    pub peak_bytes: Option<u64>,
    /// Whether the file was out of the page cache when the child started.
    pub cold_verified: bool,
    /// The median per-second rate over the second half of the run.
    pub steady_ops_per_sec: f64,
    /// Operations over the whole run, per second.
    pub mean_ops_per_sec: f64,
    pub ticks: Vec<Tick>,
    pub totals: Totals,
}

impl LimitedRun {
    /// The row the verdicts and the advice are drawn from: its throughput is
    /// the steady-state rate.
    fn measurement(&self, scenario: &Scenario) -> Measurement {
        let block = BLOCK as f64;
        Measurement {
            scenario: self.scenario.clone(),
            title: self.title.clone(),
            label: scenario.label(),
            pattern: scenario.pattern.name(),
            block_bytes: BLOCK,
            cache: scenario.cache,
            cold_verified: self.cold_verified,
            threads: self.threads,
            method: self.method,
            is_mmap: self.is_mmap,
            bytes: self.totals.ops * BLOCK as u64,
            ops: self.totals.ops,
            seconds: self.totals.seconds,
            bytes_per_sec: self.steady_ops_per_sec * block,
            ops_per_sec: self.steady_ops_per_sec,
            p50_ns: None,
            p99_ns: None,
            minor_faults: self.totals.minor_faults,
            major_faults: self.totals.major_faults,
            checksum: self.totals.checksum,
        }
    }
}

/// Parses `--duration`: seconds (`15`, `15s`, `1.5s`) or milliseconds (`500ms`).
pub fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = t.strip_suffix('s') {
        (s, 1.0)
    } else {
        (t, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale <= 86_400.0 => Ok(Duration::from_secs_f64(v * scale)),
        Ok(_) => Err(format!("invalid duration {text:?}: must be above 0 and at most a day")),
        Err(_) => Err(format!("invalid duration {text:?}: expected seconds like 15 or 15s, or 500ms")),
    }
}

/// Runs the limited scenarios and prints (and writes) their results.
pub fn run(args: &BenchArgs, limit: u64) -> anyhow::Result<()> {
    let hierarchy = Hierarchy::find().context("--memory-limit cannot be used here")?;
    // Fail before making a large file if no cgroup can be made.
    MemoryCgroup::create(&hierarchy, "mmapkit-bench-probe", limit)
        .and_then(MemoryCgroup::remove)
        .context("--memory-limit cannot be used here")?;
    let threads = args.threads.unwrap_or(DEFAULT_THREADS);
    let seconds = args.duration.map_or(if args.quick { QUICK_SECONDS } else { DEFAULT_SECONDS }, |d| d.as_secs_f64());
    let workload = match &args.path {
        Some(path) => Workload::existing(path)?,
        None => Workload::generated(args.size.unwrap_or(limit.saturating_mul(4)), &super::progress_bar(args.quiet))?,
    };
    if workload.len <= limit {
        bail!(
            "{} is {} bytes, no larger than the memory limit ({limit} bytes): nothing would be read beyond memory",
            workload.path.display(),
            workload.len
        );
    }
    super::report::print_header(&workload.path, workload.len, workload.generated);
    let fmt = crate::common::units::format_bytes;
    println!(
        "each method in its own process and memory cgroup limited to {} ({}, under {}); the file is {:.1}x the \
         limit; random {} reads for {seconds} s each; the file dropped from the page cache before each",
        fmt(limit),
        hierarchy.version.name(),
        hierarchy.parent.display(),
        workload.len as f64 / limit as f64,
        fmt(BLOCK as u64),
    );
    if workload.len < limit.saturating_mul(4) {
        println!("note: the file is less than 4x the limit, so a good part of it stays cached: use a larger file");
    }
    if let Some(line) = readahead::describe(&workload.file) {
        println!("{line}");
    }
    let mut scenarios = vec![1];
    if threads > 1 {
        scenarios.push(threads);
    }
    let mut runs = Vec::new();
    let mut rows = Vec::new();
    for threads in scenarios {
        let scenario =
            Scenario { pattern: Pattern::Random { block: BLOCK }, cache: Cache::Limited(limit), threads, ops: 0 };
        println!("\n{}", scenario.title());
        for method in Method::LIMITED {
            let run = run_method(&hierarchy, &workload, &scenario, method, seconds, args.quiet)?;
            report::print_run(&run);
            rows.push(run.measurement(&scenario));
            runs.push(run);
        }
    }
    let verdicts = super::verdict::scenario_verdicts(&rows);
    let advice: Vec<_> = super::advice::advice_checks(&verdicts).into_iter().filter(|c| c.scenarios > 0).collect();
    report::print_tables(&runs, &verdicts);
    super::report::print_advice_checks(&advice);
    if let Some(path) = &args.json {
        report::write_json(path, &workload, limit, &hierarchy, &runs, &verdicts, &advice)?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "random {} reads of a {} file, memory limited to {} (each method in its own cgroup)",
            fmt(BLOCK as u64),
            fmt(workload.len),
            fmt(limit)
        );
        plot::draw(path, &title, &runs)?;
    }
    Ok(())
}

/// Drops the file from the page cache, then runs `method` in a child process
/// inside a new cgroup, streaming its seconds to a progress line.
fn run_method(
    hierarchy: &Hierarchy,
    workload: &Workload,
    scenario: &Scenario,
    method: Method,
    seconds: f64,
    quiet: bool,
) -> anyhow::Result<LimitedRun> {
    let Cache::Limited(limit) = scenario.cache else { bail!("{} is not a limited scenario", scenario.title()) };
    let (cold_verified, _) = workload.make_cold()?;
    let exe = std::env::current_exe().context("cannot find this program's own path to run its child")?;
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    if let Ok(style) = ProgressStyle::with_template("  {msg}") {
        bar.set_style(style);
    }
    bar.set_message(format!("{}: starting", method.name()));
    let mut ticks = Vec::new();
    let mut totals = None;
    let file = workload.path.clone();
    let command = |cgroup: &std::path::Path| {
        let mut command = Command::new(&exe);
        command
            .arg("bench-child")
            .arg("--cgroup")
            .arg(cgroup)
            .arg("--file")
            .arg(&file)
            .args(["--method", method.name()])
            .args(["--threads", &scenario.threads.to_string()])
            .args(["--seconds", &seconds.to_string()])
            .args(["--block", &BLOCK.to_string()]);
        command
    };
    let outcome = run_in_cgroup(hierarchy, "mmapkit-bench", limit, command, |line| {
        match serde_json::from_str::<ChildLine>(line)
            .with_context(|| format!("the child process wrote {line:?}, not a result line"))?
        {
            ChildLine::Tick(tick) => {
                bar.set_message(format!(
                    "{}: {:.0} of {seconds} s, {} ops/s",
                    method.name(),
                    tick.at,
                    crate::common::units::format_count(tick.rate())
                ));
                ticks.push(tick);
            }
            ChildLine::Done(done) => totals = Some(done),
        }
        Ok(())
    })
    .with_context(|| format!("{} under the memory limit", method.name()))?;
    bar.finish_and_clear();
    let totals = totals.with_context(|| format!("the {} child ended without its totals", method.name()))?;
    let steady = timed::steady_rate(&ticks).unwrap_or(totals.ops as f64 / totals.seconds.max(1e-9));
    Ok(LimitedRun {
        scenario: scenario.id(),
        title: scenario.title(),
        threads: scenario.threads,
        method: method.name(),
        is_mmap: method.is_mmap(),
        limit_bytes: limit,
        limit_in_force: outcome.limit_in_force,
        peak_bytes: outcome.peak,
        cold_verified,
        steady_ops_per_sec: steady,
        mean_ops_per_sec: totals.ops as f64 / totals.seconds.max(1e-9),
        ticks,
        totals,
    })
}
