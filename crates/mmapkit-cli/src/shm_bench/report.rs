//! The IPC benchmark's table, JSON and chart.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use serde::Serialize;

use super::{FLOOR_PAYLOAD, ShmResult, Transport};
use crate::common::units::{format_bytes, format_ns};

fn find(results: &[ShmResult], transport: Transport, payload: usize) -> Option<&ShmResult> {
    results.iter().find(|r| r.transport == transport && (r.payload_bytes == payload || transport.is_floor()))
}

/// The payload sizes measured, in order; the floors count with the first,
/// which they are measured next to.
fn payload_groups(results: &[ShmResult]) -> Vec<usize> {
    let mut payloads: Vec<usize> =
        results.iter().map(|r| if r.transport.is_floor() { FLOOR_PAYLOAD } else { r.payload_bytes }).collect();
    payloads.sort_unstable();
    payloads.dedup();
    payloads
}

/// How a run was taken, as the table and the JSON report it.
pub struct Setup {
    /// Whether the two processes had a CPU each.
    pub pinned: bool,
    /// Blocks per payload.
    pub blocks: usize,
    /// The CPUs' idle setup, and whether the run held it shallow.
    pub idle: super::idle::IdleReport,
}

/// Prints the run's setup, then a table per payload size.
pub fn print(results: &[ShmResult], memcpy: f64, memcpy_1mib: f64, setup: &Setup) {
    println!(
        "mmapkit shm bench: two processes{}; every payload written and read in full",
        if setup.pinned { " pinned to CPUs 0 and 1" } else { " (one CPU: not pinned)" }
    );
    println!(
        "round trips and one-way runs in {} blocks per payload, the transports taking turns block by block; \
         msgs/s is the median block's",
        setup.blocks
    );
    println!("{}", setup.idle.describe());
    println!(
        "single-core memcpy: {:.2} GB/s on 64 MiB buffers (memory), {:.2} GB/s on 1 MiB (caches)",
        memcpy / 1e9,
        memcpy_1mib / 1e9
    );
    let payloads = payload_groups(results);
    for payload in payloads {
        let ring = results.iter().filter(|r| r.payload_bytes == payload).find_map(|r| r.ring_bytes);
        println!(
            "\npayload {}{}",
            format_bytes(payload as u64),
            ring.map_or(String::new(), |bytes| format!(" (the channel's rings: {} each)", format_bytes(bytes as u64)))
        );
        println!(
            "  {:<13} {:>10} {:>10} {:>10} {:>14} {:>9} {:>12}",
            "transport", "rtt p50", "rtt p99", "rtt p99.9", "msgs/s", "GB/s", "p50 vs uds"
        );
        let uds = find(results, Transport::Uds, payload);
        for transport in Transport::ALL {
            if transport.is_floor() && payload != FLOOR_PAYLOAD {
                continue;
            }
            let Some(r) = find(results, transport, payload) else { continue };
            // A fan-out is compared with its own sockets (below), not with one.
            let ratio = uds
                .filter(|_| transport.subscribers().is_none())
                .map_or(String::new(), |u| format!("{:.1}x faster", u.rtt_p50_ns as f64 / r.rtt_p50_ns.max(1) as f64));
            println!(
                "  {:<13} {:>10} {:>10} {:>10} {:>14} {:>9} {:>12}",
                r.transport.name(),
                format_ns(r.rtt_p50_ns),
                format_ns(r.rtt_p99_ns),
                format_ns(r.rtt_p999_ns),
                r.msgs_per_sec.map_or("-".to_owned(), |m| format!("{m:.0}")),
                r.bytes_per_sec.map_or("-".to_owned(), |b| format!("{:.3}", b / 1e9)),
                ratio,
            );
        }
    }
}

/// Prints how the transports compare with the floors, each comparison whose
/// transports were measured: the spinning channel with the spinning floor
/// (one cache line moved between the CPUs), the blocking channel and the
/// socket, sync and async, with the blocking floor (a bare futex handoff),
/// and the spinning channel's rate at 1 MiB with memcpy's.
pub fn print_floor_comparisons(results: &[ShmResult], memcpy: f64, memcpy_1mib: f64) {
    let lines = floor_comparisons(results, memcpy, memcpy_1mib);
    if !lines.is_empty() {
        println!("\nAgainst the floors (64 B unless said):");
        for line in lines {
            println!("  {line}");
        }
    }
}

/// The lines of [`print_floor_comparisons`].
fn floor_comparisons(results: &[ShmResult], memcpy: f64, memcpy_1mib: f64) -> Vec<String> {
    let at = |transport| find(results, transport, FLOOR_PAYLOAD);
    let p50 = |r: &ShmResult| r.rtt_p50_ns.max(1) as f64;
    // "<floor> rtt p50 = <time>: <transport> <ratio>x it, ..."
    let against = |floor: &ShmResult, what: &str, transports: &[(Transport, &str)]| {
        let ratios: Vec<String> = transports
            .iter()
            .filter_map(|&(t, name)| at(t).map(|r| format!("{name} {:.2}x it", p50(r) / p50(floor))))
            .collect();
        format!(
            "{what} rtt p50 = {}{}{}",
            format_ns(floor.rtt_p50_ns),
            if ratios.is_empty() { "" } else { ": " },
            ratios.join(", ")
        )
    };
    let mut lines = Vec::new();
    if let Some(floor) = at(Transport::Floor) {
        let what = "the floor (one cache line moved between the CPUs)";
        lines.push(against(floor, what, &[(Transport::ShmSpin, "shm-spin")]));
    }
    if let Some(floor) = at(Transport::FloorBlock) {
        let what = "the blocking floor (a bare futex handoff)";
        let blocking = [
            (Transport::ShmBlock, "shm-block"),
            (Transport::Uds, "the Unix socket"),
            (Transport::AsyncShm, "async-shm"),
            (Transport::TokioUds, "tokio-uds"),
        ];
        lines.push(against(floor, what, &blocking));
    }
    if let Some(big) = find(results, Transport::ShmSpin, 1 << 20).and_then(|r| r.bytes_per_sec) {
        lines.push(format!(
            "shm-spin at 1 MiB = {:.2} of a 1 MiB memcpy's rate, {:.2} of a 64 MiB one's",
            big / memcpy_1mib,
            big / memcpy
        ));
    }
    lines
}

/// Prints how each measured service, async channel and fan-out compares
/// with its peer ([`Transport::peer`]) at each payload, and each fan-out with the one to
/// a single subscriber.
pub fn print_peer_comparisons(results: &[ShmResult]) {
    let lines = peer_comparisons(results);
    if !lines.is_empty() {
        println!("\nAgainst their peers (ratios of p50 round trips and of one-way rates):");
        for line in lines {
            println!("  {line}");
        }
    }
}

/// The lines of [`print_peer_comparisons`].
fn peer_comparisons(results: &[ShmResult]) -> Vec<String> {
    let mut lines = Vec::new();
    for payload in payload_groups(results) {
        for transport in Transport::ALL {
            let (Some(peer), Some(r)) = (transport.peer(), find(results, transport, payload)) else { continue };
            let Some(p) = find(results, peer, payload) else { continue };
            let mut line = format!(
                "{} {transport} rtt p50 {} against {peer} {}: {}",
                format_bytes(payload as u64),
                format_ns(r.rtt_p50_ns),
                format_ns(p.rtt_p50_ns),
                faster(p.rtt_p50_ns as f64 / r.rtt_p50_ns.max(1) as f64)
            );
            if let (Some(mine), Some(theirs)) = (r.msgs_per_sec, p.msgs_per_sec) {
                line += &format!("; {mine:.0} against {theirs:.0} msgs/s: {}", faster(mine / theirs));
            }
            if let Some(one) =
                find(results, Transport::Fanout1, payload).filter(|_| transport.subscribers().is_some_and(|n| n > 1))
            {
                line += &format!("; {:.2}x fanout-1's round trip", r.rtt_p50_ns as f64 / one.rtt_p50_ns.max(1) as f64);
            }
            lines.push(line);
        }
    }
    lines
}

/// A speed ratio (above 1: faster) as words.
fn faster(ratio: f64) -> String {
    if ratio >= 1.0 { format!("{ratio:.2}x faster") } else { format!("{:.2}x slower", 1.0 / ratio) }
}

#[derive(Serialize)]
struct Report<'a> {
    /// Every transport at every payload (the spinning floor at the first
    /// payload only), but the blocking floor.
    results: Vec<&'a ShmResult>,
    /// The blocking floor, apart, so that `results` holds only the transports
    /// its format names.
    block_floor: Option<&'a ShmResult>,
    /// Single-core memcpy on 64 MiB buffers.
    memcpy_bytes_per_sec: f64,
    /// Single-core memcpy on 1 MiB buffers.
    memcpy_1mib_bytes_per_sec: f64,
    /// Blocks each payload's round trips and one-way runs were taken in, the transports taking turns.
    blocks: usize,
    /// Round trips at the start of each block that were not counted.
    warmup_round_trips_per_block: usize,
    /// The CPUs' idle setup, and whether the run held it shallow (`--shallow-idle`).
    cpu_idle: &'a super::idle::IdleReport,
}

/// Writes the results as JSON.
pub fn write_json(
    path: &Path,
    results: &[ShmResult],
    memcpy: f64,
    memcpy_1mib: f64,
    setup: &Setup,
    warmup: usize,
) -> anyhow::Result<()> {
    let report = Report {
        results: results.iter().filter(|r| r.transport != Transport::FloorBlock).collect(),
        block_floor: results.iter().find(|r| r.transport == Transport::FloorBlock),
        memcpy_bytes_per_sec: memcpy,
        memcpy_1mib_bytes_per_sec: memcpy_1mib,
        blocks: setup.blocks,
        warmup_round_trips_per_block: warmup,
        cpu_idle: &setup.idle,
    };
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Draws round-trip p50 per payload and transport, on a log scale.
pub fn plot(path: &Path, results: &[ShmResult]) -> anyhow::Result<()> {
    let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot draw {}: {e}", path.display());
    let payloads = payload_groups(results);
    let slots = Transport::ALL.len() + 1;
    let max = results.iter().map(|r| r.rtt_p50_ns).max().unwrap_or(1) as f64 * 2.0;
    let root = SVGBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let labels: Vec<String> = payloads.iter().map(|&p| format_bytes(p as u64)).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption("mmapkit shm bench: round trip p50 (lower is better)", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((0..(payloads.len() * slots) as u32).into_segmented(), (10.0..max).log_scale())
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(payloads.len() * slots)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if (*i as usize) % slots == (slots - 1) / 2 => {
                labels.get(*i as usize / slots).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .y_label_formatter(&|ns| format_ns(*ns as u64))
        .y_desc("round trip, p50")
        .x_desc("payload")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| fail(&e))?;
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(120, 120, 120),
        RGBColor(148, 103, 189),
    ];
    for (j, &transport) in Transport::ALL.iter().enumerate() {
        let color = colors[j % colors.len()];
        let bars = payloads.iter().enumerate().filter_map(|(g, &payload)| {
            let r = find(results, transport, payload).filter(|_| !transport.is_floor() || g == 0)?;
            let x = (g * slots + j) as u32;
            Some(Rectangle::new(
                [(SegmentValue::Exact(x), 10.0), (SegmentValue::Exact(x + 1), r.rtt_p50_ns.max(11) as f64)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(|e| fail(&e))?
            .label(transport.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}
