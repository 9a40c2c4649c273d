//! Who won each scenario, and by how much.

use serde::Serialize;

use super::measurement::Measurement;
use super::scenario::Cache;

/// The winner of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub scenario: String,
    #[serde(skip)]
    pub title: String,
    #[serde(skip)]
    pub pattern: &'static str,
    #[serde(skip)]
    pub cache: Cache,
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
                cache: best.cache,
                winner: best.method,
                margin,
                runner_up,
                mmap_won: best.is_mmap,
                unverified_cold: rows.iter().any(|m| !m.cold_verified),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::measurement::test_row as row;

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
}
