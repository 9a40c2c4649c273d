//! Who won each scenario, and where this machine agrees with the seed's
//! "good fit / poor fit" table.

use serde::Serialize;

use super::measurement::Measurement;

/// The winner of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub scenario: String,
    #[serde(skip)]
    pub title: String,
    #[serde(skip)]
    pub pattern: &'static str,
    /// The fastest method.
    pub winner: &'static str,
    /// How many times faster it was than `runner_up`.
    pub margin: f64,
    /// The fastest method of the other kind (mmap against read), or the
    /// second fastest when only one kind ran.
    pub runner_up: &'static str,
    pub mmap_won: bool,
    /// Whether a cold scenario's eviction could not be verified.
    #[serde(skip)]
    pub unverified_cold: bool,
}

/// One verdict per scenario, in the order the scenarios first appear.
pub fn scenario_verdicts(results: &[Measurement]) -> Vec<Verdict> {
    let mut ids: Vec<&str> = Vec::new();
    for m in results {
        if !ids.contains(&m.scenario.as_str()) {
            ids.push(&m.scenario);
        }
    }
    ids.into_iter()
        .filter_map(|id| {
            let rows: Vec<&Measurement> = results.iter().filter(|m| m.scenario == id).collect();
            let best = *rows.iter().max_by(|a, b| a.bytes_per_sec.total_cmp(&b.bytes_per_sec))?;
            let other_kind = rows
                .iter()
                .filter(|m| m.is_mmap != best.is_mmap)
                .max_by(|a, b| a.bytes_per_sec.total_cmp(&b.bytes_per_sec));
            let runner_up = other_kind.or_else(|| {
                rows.iter()
                    .filter(|m| m.method != best.method)
                    .max_by(|a, b| a.bytes_per_sec.total_cmp(&b.bytes_per_sec))
            });
            let (runner_up, margin) = match runner_up {
                Some(r) if r.bytes_per_sec > 0.0 => (r.method, best.bytes_per_sec / r.bytes_per_sec),
                _ => (best.method, 1.0),
            };
            Some(Verdict {
                scenario: id.to_owned(),
                title: best.title.clone(),
                pattern: best.pattern,
                winner: best.method,
                margin,
                runner_up,
                mmap_won: best.is_mmap,
                unverified_cold: rows.iter().any(|m| !m.cold_verified),
            })
        })
        .collect()
}

/// Which way a line of the seed's table points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    Mmap,
    Read,
}

/// How this machine's results compare with one of the seed's claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Agreement {
    Agrees,
    Disagrees,
    Partly,
    NotMeasured,
}

/// One line of the seed's table set against the measurements.
#[derive(Clone, Debug, Serialize)]
pub struct SeedCheck {
    pub topic: &'static str,
    pub seed_says: &'static str,
    pub expected: Fit,
    pub scenarios: usize,
    pub as_expected: usize,
    pub agreement: Agreement,
    pub summary: String,
}

/// The seed's table: (topic, what it says, which way it points, the pattern it covers).
const SEED_TABLE: [(&str, &str, Fit, &str); 3] = [
    ("random access over a large file", "a good fit for mmap", Fit::Mmap, "random"),
    ("sequential streaming", "a poor fit: plain buffered reads are simpler and faster", Fit::Read, "sequential"),
    ("small files", "a poor fit: the overhead beats the benefit", Fit::Read, "small-files"),
];

/// Sets each line of the seed's table against the scenario verdicts.
pub fn seed_checks(verdicts: &[Verdict]) -> Vec<SeedCheck> {
    SEED_TABLE
        .iter()
        .map(|&(topic, seed_says, expected, pattern)| {
            let relevant: Vec<&Verdict> = verdicts.iter().filter(|v| v.pattern == pattern).collect();
            let as_expected: Vec<&Verdict> =
                relevant.iter().copied().filter(|v| v.mmap_won == (expected == Fit::Mmap)).collect();
            let against: Vec<&Verdict> =
                relevant.iter().copied().filter(|v| v.mmap_won != (expected == Fit::Mmap)).collect();
            let agreement = match (relevant.len(), as_expected.len()) {
                (0, _) => Agreement::NotMeasured,
                (n, k) if k == n => Agreement::Agrees,
                (_, 0) => Agreement::Disagrees,
                _ => Agreement::Partly,
            };
            let kind = |fit: Fit| if fit == Fit::Mmap { "mmap" } else { "read" };
            let other = if expected == Fit::Mmap { Fit::Read } else { Fit::Mmap };
            let list = |vs: &[&Verdict]| {
                vs.iter().map(|v| format!("{} ({:.2}x)", v.title, v.margin)).collect::<Vec<_>>().join("; ")
            };
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
            SeedCheck {
                topic,
                seed_says,
                expected,
                scenarios: relevant.len(),
                as_expected: as_expected.len(),
                agreement,
                summary,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::scenario::Cache;

    fn row(scenario: &str, pattern: &'static str, method: &'static str, is_mmap: bool, gbps: f64) -> Measurement {
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

    #[test]
    fn the_winner_is_measured_against_the_best_of_the_other_kind() {
        let rows = vec![
            row("r", "random", "mmap", true, 4.0),
            row("r", "random", "mmap_populate", true, 3.0),
            row("r", "random", "pread", false, 1.0),
        ];
        let v = &scenario_verdicts(&rows)[0];
        assert_eq!((v.winner, v.runner_up, v.mmap_won), ("mmap", "pread", true));
        assert!((v.margin - 4.0).abs() < 1e-9);
    }

    #[test]
    fn read_can_win_too() {
        let rows = vec![row("s", "sequential", "mmap", true, 2.0), row("s", "sequential", "buffered_read", false, 3.0)];
        let v = &scenario_verdicts(&rows)[0];
        assert_eq!((v.winner, v.runner_up, v.mmap_won), ("buffered_read", "mmap", false));
        assert!((v.margin - 1.5).abs() < 1e-9);
    }

    fn check_for(topic: &str, rows: &[Measurement]) -> SeedCheck {
        seed_checks(&scenario_verdicts(rows)).into_iter().find(|c| c.topic == topic).unwrap()
    }

    #[test]
    fn the_seed_table_agrees_disagrees_partly_or_is_not_measured() {
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
}
