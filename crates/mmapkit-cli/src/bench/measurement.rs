//! One method's result in one scenario, as printed and as written to JSON.

use serde::Serialize;

use super::methods::Run;
use super::scenario::{Cache, Method, Scenario};
use crate::common::stats::percentile;

/// One row of results.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub scenario: String,
    #[serde(skip)]
    pub title: String,
    #[serde(skip)]
    pub label: String,
    pub pattern: &'static str,
    pub block_bytes: usize,
    pub cache: Cache,
    /// For a cold run: whether eviction was checked to have taken (always
    /// true for warm runs, which need no check).
    pub cold_verified: bool,
    pub threads: usize,
    pub method: &'static str,
    #[serde(skip)]
    pub is_mmap: bool,
    pub bytes: u64,
    pub ops: u64,
    pub seconds: f64,
    pub bytes_per_sec: f64,
    pub ops_per_sec: f64,
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub checksum: u64,
}

impl Measurement {
    pub fn new(
        scenario: &Scenario,
        method: Method,
        mut run: Run,
        seconds: f64,
        faults: mmapkit::PageFaults,
        cold_verified: bool,
    ) -> Measurement {
        run.latencies_ns.sort_unstable();
        let seconds = seconds.max(1e-9);
        Measurement {
            scenario: scenario.id(),
            title: scenario.title(),
            label: scenario.label(),
            pattern: scenario.pattern.name(),
            block_bytes: scenario.pattern.block_bytes(),
            cache: scenario.cache,
            cold_verified: scenario.cache == Cache::Warm || cold_verified,
            threads: scenario.threads,
            method: method.name(),
            is_mmap: method.is_mmap(),
            bytes: run.bytes,
            ops: run.ops,
            seconds,
            bytes_per_sec: run.bytes as f64 / seconds,
            ops_per_sec: run.ops as f64 / seconds,
            p50_ns: percentile(&run.latencies_ns, 0.50),
            p99_ns: percentile(&run.latencies_ns, 0.99),
            minor_faults: faults.minor,
            major_faults: faults.major,
            checksum: run.checksum,
        }
    }
}

/// A row for the verdicts' tests: one method's throughput (`gbps`) in one
/// scenario, warm, on one thread.
#[cfg(test)]
pub fn test_row(scenario: &str, pattern: &'static str, method: &'static str, is_mmap: bool, gbps: f64) -> Measurement {
    Measurement {
        scenario: scenario.to_owned(),
        title: scenario.to_owned(),
        label: scenario.to_owned(),
        pattern,
        block_bytes: 4096,
        cache: Cache::Warm,
        cold_verified: true,
        threads: 1,
        method,
        is_mmap,
        bytes: 1,
        ops: 1,
        seconds: 1.0,
        bytes_per_sec: gbps * 1e9,
        ops_per_sec: 1.0,
        p50_ns: None,
        p99_ns: None,
        minor_faults: 0,
        major_faults: 0,
        checksum: 0,
    }
}
