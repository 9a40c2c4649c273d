//! What a timed child reports, one JSON line at a time: a tick per second of
//! operations done and faults taken, then its totals; and the steady-state
//! rate drawn from the ticks.

use serde::{Deserialize, Serialize};

/// One line of the child's stdout.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "line", rename_all = "lowercase")]
pub enum ChildLine {
    /// One interval (a second, or less for the last one).
    Tick(Tick),
    /// The run's totals, once every thread has stopped.
    Done(Totals),
}

/// Operations and page faults in one interval of the run.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Tick {
    /// Seconds from the start to the end of the interval.
    pub at: f64,
    /// The interval's length in seconds.
    pub seconds: f64,
    /// Operations completed in it.
    pub ops: u64,
    /// Major page faults taken in it (the whole process).
    pub major_faults: u64,
}

impl Tick {
    /// Operations per second in this interval.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds.max(1e-9)
    }
}

/// What the child measured over its whole run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Totals {
    /// Operations completed.
    pub ops: u64,
    /// From the start until every thread had stopped.
    pub seconds: f64,
    /// Minor page faults of the whole process over the run.
    pub minor_faults: u64,
    /// Major page faults of the whole process over the run.
    pub major_faults: u64,
    /// Bytes read from storage over the run (`/proc/self/io`), where the kernel says.
    pub disk_read_bytes: Option<u64>,
    /// The threads' checksums of what they read, added.
    pub checksum: u64,
    /// The memory cgroup the child ran in, as its `/proc/self/cgroup` said.
    pub cgroup: String,
}

/// The steady-state rate: the median per-second rate over the second half
/// of the run (where the page cache has filled to the limit). Intervals
/// shorter than half a second are left out.
pub fn steady_rate(ticks: &[Tick]) -> Option<f64> {
    let full: Vec<&Tick> = ticks.iter().filter(|t| t.seconds >= 0.5).collect();
    let mut rates: Vec<f64> = full[full.len() / 2..].iter().map(|t| t.rate()).collect();
    rates.sort_by(f64::total_cmp);
    let mid = rates.len() / 2;
    match rates.len() {
        0 => None,
        n if n % 2 == 1 => Some(rates[mid]),
        _ => Some((rates[mid - 1] + rates[mid]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(at: f64, seconds: f64, ops: u64) -> Tick {
        Tick { at, seconds, ops, major_faults: 0 }
    }

    #[test]
    fn the_steady_rate_is_the_median_of_the_second_half() {
        let ticks: Vec<Tick> =
            [100, 90, 10, 12, 11].iter().enumerate().map(|(i, &n)| tick(i as f64 + 1.0, 1.0, n)).collect();
        assert_eq!(steady_rate(&ticks), Some(11.0));
        // A short last interval does not count.
        let mut with_tail = ticks.clone();
        with_tail.push(tick(5.2, 0.2, 1));
        assert_eq!(steady_rate(&with_tail), Some(11.0));
        assert_eq!(steady_rate(&[]), None);
    }

    #[test]
    fn lines_round_trip_through_json() {
        let line = ChildLine::Tick(tick(1.0, 1.0, 5));
        let text = serde_json::to_string(&line).unwrap();
        assert!(text.contains("\"line\":\"tick\""), "{text}");
        let back: ChildLine = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, ChildLine::Tick(t) if t.ops == 5));
    }
}
