//! A limited run's results for people (a line per method as it finishes, a
//! table per scenario with its winner) and as JSON.

use std::path::Path;

use anyhow::Context;
use mmapkit_cli::memory_cgroup::Hierarchy;
use serde::Serialize;

use super::LimitedRun;
use crate::bench::advice::AdviceCheck;
use crate::bench::verdict::Verdict;
use crate::bench::workload::Workload;
use crate::common::units::{format_bytes, format_count};

fn peak(run: &LimitedRun) -> String {
    run.peak_bytes.map_or_else(|| "-".to_owned(), format_bytes)
}

/// One line for a method that has just finished.
pub fn print_run(run: &LimitedRun) {
    println!(
        "  {:<13} steady {:>9} ops/s, mean {:>9} ops/s over {:.1} s, {} major faults, peak memory {}{}",
        run.method,
        format_count(run.steady_ops_per_sec),
        format_count(run.mean_ops_per_sec),
        run.totals.seconds,
        format_count(run.totals.major_faults as f64),
        peak(run),
        if run.cold_verified { "" } else { " (the file did not leave the page cache before it)" }
    );
}

/// A table per scenario: the rates, the faults per read, the memory used,
/// and the winner on the steady-state rate.
pub fn print_tables(runs: &[LimitedRun], verdicts: &[Verdict]) {
    for verdict in verdicts {
        println!("\n{}", verdict.title);
        println!(
            "  {:<13} {:>12} {:>9} {:>12} {:>12} {:>13} {:>10} {:>12} {:>10}",
            "method",
            "steady ops/s",
            "MiB/s",
            "mean ops/s",
            "first s",
            "major faults",
            "faults/op",
            "disk KiB/op",
            "peak mem"
        );
        for run in runs.iter().filter(|r| r.scenario == verdict.scenario) {
            let first = run.ticks.first().map_or(0.0, |t| t.rate());
            let disk = run
                .totals
                .disk_read_bytes
                .map_or_else(|| "-".to_owned(), |b| format!("{:.1}", b as f64 / 1024.0 / run.totals.ops.max(1) as f64));
            println!(
                "  {:<13} {:>12} {:>9.1} {:>12} {:>12} {:>13} {:>10.3} {:>12} {:>10}",
                run.method,
                format_count(run.steady_ops_per_sec),
                run.steady_ops_per_sec * super::BLOCK as f64 / (1u64 << 20) as f64,
                format_count(run.mean_ops_per_sec),
                format_count(first),
                format_count(run.totals.major_faults as f64),
                run.totals.major_faults as f64 / run.totals.ops.max(1) as f64,
                disk,
                peak(run),
            );
        }
        println!(
            "  winner: {}, {:.2}x the steady rate of {} (pread does not fault: its misses are not page faults)",
            verdict.winner, verdict.margin, verdict.runner_up
        );
    }
}

#[derive(Serialize)]
struct Report<'a> {
    file: String,
    size_bytes: u64,
    generated: bool,
    limit_bytes: u64,
    cgroup_version: &'static str,
    cgroup_parent: String,
    runs: &'a [LimitedRun],
    verdicts: &'a [Verdict],
    advice: &'a [AdviceCheck],
}

/// Writes every run (with its per-second series), verdict and check of the
/// advice as JSON to `path`.
pub fn write_json(
    path: &Path,
    workload: &Workload,
    limit: u64,
    hierarchy: &Hierarchy,
    runs: &[LimitedRun],
    verdicts: &[Verdict],
    advice: &[AdviceCheck],
) -> anyhow::Result<()> {
    let report = Report {
        file: workload.path.display().to_string(),
        size_bytes: workload.len,
        generated: workload.generated,
        limit_bytes: limit,
        cgroup_version: hierarchy.version.name(),
        cgroup_parent: hierarchy.parent.display().to_string(),
        runs,
        verdicts,
        advice,
    };
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
