//! The tables and verdicts printed for people, and the JSON written for programs.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::advice::AdviceCheck;
use super::measurement::Measurement;
use super::verdict::Verdict;
use crate::common::units::{format_bytes, format_count, format_ns};

/// Prints one table per scenario, each with its winner.
pub fn print_tables(results: &[Measurement], verdicts: &[Verdict]) {
    for verdict in verdicts {
        let rows: Vec<&Measurement> = results.iter().filter(|m| m.scenario == verdict.scenario).collect();
        println!("\n{}", verdict.title);
        println!(
            "  {:<16} {:>8} {:>13} {:>10} {:>10} {:>11} {:>11}",
            "method", "GB/s", "ops/s", "p50", "p99", "minor flt", "major flt"
        );
        for m in &rows {
            let latency = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), format_ns);
            println!(
                "  {:<16} {:>8.3} {:>13} {:>10} {:>10} {:>11} {:>11}",
                m.method,
                m.bytes_per_sec / 1e9,
                format_count(m.ops_per_sec),
                latency(m.p50_ns),
                latency(m.p99_ns),
                format_count(m.minor_faults as f64),
                format_count(m.major_faults as f64),
            );
        }
        println!("  winner: {}, {:.2}x the throughput of {}", verdict.winner, verdict.margin, verdict.runner_up);
        if verdict.unverified_cold {
            println!(
                "  note: the file did not leave the page cache when evicted, so these \"cold\" figures are really warm"
            );
        }
    }
}

/// Prints the common advice set against this machine's results.
pub fn print_advice_checks(checks: &[AdviceCheck]) {
    println!("\nVerdict: common advice on mmap against this machine");
    for check in checks {
        println!("  {}: {}.", check.topic, check.advice_says);
        println!("    source: {}", check.source);
        println!("    here: {}", check.summary);
    }
    println!(
        "  (a scenario's winner is its fastest method; the margin is against the fastest method of the other kind)"
    );
}

#[derive(Serialize)]
struct Report<'a> {
    file: String,
    size_bytes: u64,
    generated: bool,
    results: &'a [Measurement],
    verdicts: &'a [Verdict],
    advice: &'a [AdviceCheck],
}

/// Writes every measurement and verdict as JSON to `path`.
pub fn write_json(
    path: &Path,
    file: &Path,
    size_bytes: u64,
    generated: bool,
    results: &[Measurement],
    verdicts: &[Verdict],
    advice: &[AdviceCheck],
) -> anyhow::Result<()> {
    let report = Report { file: file.display().to_string(), size_bytes, generated, results, verdicts, advice };
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// One line that says what was measured.
pub fn print_header(file: &Path, size: u64, generated: bool) {
    let origin = if generated { "generated, removed afterwards" } else { "read-only" };
    println!("mmapkit bench: {} ({}, {origin})", file.display(), format_bytes(size));
}
