//! The common advice on when mmap fits, set against this machine's verdicts:
//! each piece of advice, where it is given, and whether the scenarios it
//! covers went its way.

use serde::Serialize;

use super::scenario::Cache;
use super::verdict::Verdict;

/// Which way a piece of advice points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    Mmap,
    Read,
}

/// How this machine's results compare with a piece of advice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Agreement {
    Agrees,
    Disagrees,
    Partly,
    NotMeasured,
}

/// One piece of advice set against the measurements.
#[derive(Clone, Debug, Serialize)]
pub struct AdviceCheck {
    /// What the advice is about.
    pub topic: &'static str,
    /// What it says.
    pub advice_says: &'static str,
    /// Where it is given.
    pub source: &'static str,
    /// Which kind of method it expects to win.
    pub expected: Fit,
    /// The scenarios it covers, and how many of them the expected kind won.
    pub scenarios: usize,
    pub as_expected: usize,
    pub agreement: Agreement,
    /// The agreement in words, naming each scenario and its margin.
    pub summary: String,
}

/// The scenarios a piece of advice covers.
#[derive(Clone, Copy)]
enum Covers {
    /// Every scenario of this access pattern.
    Pattern(&'static str),
    /// Every scenario of any of these access patterns.
    Patterns(&'static [&'static str]),
    /// Every scenario that starts with the file out of the page cache.
    ColdCache,
    /// Every scenario whose methods ran with less memory than the file's size.
    MemoryLimited,
}

impl Covers {
    fn includes(self, verdict: &Verdict) -> bool {
        match self {
            // Runs under a memory limit have an advice line of their own.
            Covers::Pattern(pattern) => verdict.pattern == pattern && !matches!(verdict.cache, Cache::Limited(_)),
            Covers::Patterns(patterns) => patterns.contains(&verdict.pattern),
            Covers::ColdCache => verdict.cache == Cache::Cold,
            Covers::MemoryLimited => matches!(verdict.cache, Cache::Limited(_)),
        }
    }
}

/// One piece of the common advice.
struct Advice {
    topic: &'static str,
    says: &'static str,
    source: &'static str,
    expected: Fit,
    covers: Covers,
}

/// Crotty, Leis and Pavlo's paper, which measures mmap on scans and on data larger than memory.
const CIDR_2022: &str =
    "Crotty, Leis and Pavlo, \"Are You Sure You Want to Use MMAP in Your Database Management System?\", CIDR 2022";

/// The common advice this bench tests, one piece per kind of scenario.
const ADVICE: [Advice; 6] = [
    Advice {
        topic: "random access over a large file",
        says: "mmap is a good fit: only the pages read are loaded, with no copy",
        source: "the GNU C Library manual, \"Memory-mapped I/O\"",
        expected: Fit::Mmap,
        covers: Covers::Pattern("random"),
    },
    Advice {
        topic: "sequential streaming",
        says: "mmap is a poor fit: plain reads stream as fast or faster",
        source: CIDR_2022,
        expected: Fit::Read,
        covers: Covers::Pattern("sequential"),
    },
    Advice {
        topic: "small files",
        says: "mmap is a poor fit: mapping a file costs more than reading it",
        source: "the Java documentation of FileChannel.map",
        expected: Fit::Read,
        covers: Covers::Pattern("small-files"),
    },
    Advice {
        topic: "data not in memory (cold cache)",
        says: "mmap is a poor fit for data larger than memory: every page missing is a fault that stalls the thread",
        source: CIDR_2022,
        expected: Fit::Read,
        covers: Covers::ColdCache,
    },
    Advice {
        topic: "data larger than memory",
        says: "mmap is a poor fit when the data outgrows memory: once the page cache is full, every read is a fault \
               that evicts a page and stalls the thread, and read-around fills memory with pages never used",
        source: CIDR_2022,
        expected: Fit::Read,
        covers: Covers::MemoryLimited,
    },
    Advice {
        topic: "writes through a writable map",
        says: "a writable map is faster than write calls: fewer copies and allocations",
        source: "LMDB's documentation of MDB_WRITEMAP",
        expected: Fit::Mmap,
        covers: Covers::Patterns(&["random-write", "sequential-write", "append"]),
    },
];

/// Sets each piece of the advice against the scenario verdicts.
pub fn advice_checks(verdicts: &[Verdict]) -> Vec<AdviceCheck> {
    ADVICE.iter().map(|advice| check(advice, verdicts)).collect()
}

fn check(advice: &Advice, verdicts: &[Verdict]) -> AdviceCheck {
    let expected = advice.expected;
    let relevant: Vec<&Verdict> = verdicts.iter().filter(|v| advice.covers.includes(v)).collect();
    let as_expected: Vec<&Verdict> =
        relevant.iter().copied().filter(|v| v.mmap_won == (expected == Fit::Mmap)).collect();
    let against: Vec<&Verdict> = relevant.iter().copied().filter(|v| v.mmap_won != (expected == Fit::Mmap)).collect();
    let agreement = match (relevant.len(), as_expected.len()) {
        (0, _) => Agreement::NotMeasured,
        (n, k) if k == n => Agreement::Agrees,
        (_, 0) => Agreement::Disagrees,
        _ => Agreement::Partly,
    };
    let kind = |fit: Fit| if fit == Fit::Mmap { "mmap" } else { "read" };
    let other = if expected == Fit::Mmap { Fit::Read } else { Fit::Mmap };
    let list =
        |vs: &[&Verdict]| vs.iter().map(|v| format!("{} ({:.2}x)", v.title, v.margin)).collect::<Vec<_>>().join("; ");
    let summary = match agreement {
        Agreement::NotMeasured => "not measured in this run".to_owned(),
        Agreement::Agrees => {
            format!("agrees: {} won all {} scenarios: {}", kind(expected), relevant.len(), list(&as_expected))
        }
        Agreement::Disagrees => {
            format!("disagrees: {} won all {} scenarios: {}", kind(other), relevant.len(), list(&against))
        }
        Agreement::Partly => format!(
            "partly agrees: {} won {} of {} ({}), {} won {}",
            kind(expected),
            as_expected.len(),
            relevant.len(),
            list(&as_expected),
            kind(other),
            list(&against)
        ),
    };
    AdviceCheck {
        topic: advice.topic,
        advice_says: advice.says,
        source: advice.source,
        expected,
        scenarios: relevant.len(),
        as_expected: as_expected.len(),
        agreement,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::measurement::{Measurement, test_row as row};
    use crate::bench::verdict::scenario_verdicts;

    fn check_for(topic: &str, rows: &[Measurement]) -> AdviceCheck {
        advice_checks(&scenario_verdicts(rows)).into_iter().find(|c| c.topic == topic).unwrap()
    }

    #[test]
    fn the_advice_agrees_disagrees_partly_or_is_not_measured() {
        let random_mmap_wins = [
            row("r1", "random", "mmap", true, 5.0),
            row("r1", "random", "pread", false, 1.0),
            row("r2", "random", "mmap", true, 2.0),
            row("r2", "random", "pread", false, 1.0),
        ];
        let c = check_for("random access over a large file", &random_mmap_wins);
        assert_eq!((c.agreement, c.as_expected, c.scenarios), (Agreement::Agrees, 2, 2));
        assert!(c.summary.starts_with("agrees: mmap won all 2"), "{}", c.summary);

        let sequential_mmap_wins =
            [row("s", "sequential", "mmap", true, 5.0), row("s", "sequential", "buffered_read", false, 1.0)];
        let c = check_for("sequential streaming", &sequential_mmap_wins);
        assert_eq!(c.agreement, Agreement::Disagrees);
        assert!(c.summary.starts_with("disagrees: mmap won all 1"), "{}", c.summary);

        let mixed = [
            row("r1", "random", "mmap", true, 5.0),
            row("r1", "random", "pread", false, 1.0),
            row("r2", "random", "mmap", true, 1.0),
            row("r2", "random", "pread", false, 2.0),
        ];
        let c = check_for("random access over a large file", &mixed);
        assert_eq!((c.agreement, c.as_expected), (Agreement::Partly, 1));
        assert!(c.summary.contains("r2 (2.00x)"), "{}", c.summary);

        let c = check_for("small files", &mixed);
        assert_eq!(c.agreement, Agreement::NotMeasured);
    }

    #[test]
    fn the_write_advice_covers_every_kind_of_write_and_the_limited_line_only_limited_runs() {
        let limited = |mut m: Measurement| {
            m.cache = Cache::Limited(1 << 28);
            m
        };
        let rows = [
            row("w1", "random-write", "mmap_flush", true, 1.0),
            row("w1", "random-write", "pwrite_fdatasync", false, 2.0),
            row("w2", "append", "growable_map", true, 3.0),
            row("w2", "append", "write_fdatasync", false, 1.0),
            limited(row("l", "random", "mmap", true, 1.0)),
            limited(row("l", "random", "pread", false, 9.0)),
        ];
        let c = check_for("writes through a writable map", &rows);
        assert_eq!((c.agreement, c.as_expected, c.scenarios), (Agreement::Partly, 1, 2));
        let c = check_for("data larger than memory", &rows);
        assert_eq!((c.agreement, c.scenarios), (Agreement::Agrees, 1));
        // The limited run has its own line: the general random-access advice leaves it out.
        assert_eq!(check_for("random access over a large file", &rows).agreement, Agreement::NotMeasured);
    }

    #[test]
    fn the_cold_cache_advice_covers_every_cold_scenario_and_only_those() {
        let cold = |mut m: Measurement| {
            m.cache = Cache::Cold;
            m
        };
        let rows = [
            cold(row("r", "random", "mmap", true, 1.0)),
            cold(row("r", "random", "pread", false, 3.0)),
            cold(row("s", "sequential", "mmap", true, 1.0)),
            cold(row("s", "sequential", "pread", false, 2.0)),
            row("w", "random", "mmap", true, 5.0),
            row("w", "random", "pread", false, 1.0),
        ];
        let c = check_for("data not in memory (cold cache)", &rows);
        assert_eq!((c.agreement, c.as_expected, c.scenarios), (Agreement::Agrees, 2, 2));
        assert!(c.summary.starts_with("agrees: read won all 2"), "{}", c.summary);
        assert!(!c.summary.contains("w ("), "{}", c.summary);
    }
}
