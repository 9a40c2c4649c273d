//! The results as a table (like the one in redb's README), mmapkit-db's ratios to its best peer, and JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::engines::EngineKind;
use crate::results::{EngineRun, Outcome, Step};
use crate::workload::Workload;

/// The engine the ratios are about.
pub const SUBJECT: EngineKind = EngineKind::MmapkitDb;

/// The subject through its typed API: compared with [`SUBJECT`], never counted as a peer.
pub const TYPED: EngineKind = EngineKind::MmapkitDbTyped;

/// What the size rows measure.
pub const SIZE_MEASURE: &str = "file length (metadata len) of the database file, not its allocated blocks (those are \
     in the JSON as allocated_bytes); LMDB's lock file is not counted";

/// The table: one row per step, one column per engine; times in milliseconds, sizes in MiB, the best of each
/// row in bold.
pub fn table(runs: &[EngineRun]) -> String {
    let mut rows =
        vec![std::iter::once(String::new()).chain(runs.iter().map(|run| run.engine.name().to_owned())).collect()];
    for step in Step::ALL {
        let best = best_index(runs, step, |_| true);
        let mut row = vec![step.label().to_owned()];
        for (index, run) in runs.iter().enumerate() {
            let cell = run.get(step).map_or_else(|| "n/a".to_owned(), |m| format_outcome(m.outcome));
            row.push(if best == Some(index) && runs.len() > 1 { format!("**{cell}**") } else { cell });
        }
        rows.push(row);
    }
    markdown(&rows)
}

/// For each step, mmapkit-db's time (or size) divided by the best peer's, with that peer's name: below 1.00x
/// mmapkit-db is faster (or smaller). `None` when mmapkit-db, or every peer, is missing from `runs` (its typed
/// API is no peer).
pub fn ratios(runs: &[EngineRun]) -> Option<Vec<Ratio>> {
    let subject = runs.iter().find(|run| run.engine == SUBJECT)?;
    if !runs.iter().any(|run| run.engine != SUBJECT && run.engine != TYPED) {
        return None;
    }
    let ratios = Step::ALL
        .iter()
        .filter_map(|&step| {
            let mine = subject.get(step)?.outcome.magnitude();
            let best = best_index(runs, step, |run| run.engine != SUBJECT && run.engine != TYPED)?;
            let theirs = runs[best].get(step)?.outcome.magnitude();
            Some(Ratio { step: step.label(), ratio: (theirs > 0.0).then(|| mine / theirs), peer: runs[best].engine })
        })
        .collect();
    Some(ratios)
}

/// For each step, the typed API's time (or size) divided by the raw API's: above 1.00x the typed layer costs
/// that much. `None` unless both ran.
pub fn typed_ratios(runs: &[EngineRun]) -> Option<Vec<Ratio>> {
    let raw = runs.iter().find(|run| run.engine == SUBJECT)?;
    let typed = runs.iter().find(|run| run.engine == TYPED)?;
    let ratios = Step::ALL
        .iter()
        .filter_map(|&step| {
            let (mine, theirs) = (typed.get(step)?.outcome.magnitude(), raw.get(step)?.outcome.magnitude());
            Some(Ratio { step: step.label(), ratio: (theirs > 0.0).then(|| mine / theirs), peer: SUBJECT })
        })
        .collect();
    Some(ratios)
}

/// mmapkit-db against its best peer on one step.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// The step's label.
    pub step: &'static str,
    /// mmapkit-db's time or size divided by the peer's; `None` if the peer's was zero.
    pub ratio: Option<f64>,
    /// The best peer on this step.
    pub peer: EngineKind,
}

/// The ratios as text, one line per step.
pub fn ratio_lines(ratios: &[Ratio]) -> String {
    lines(
        format!("{SUBJECT} against the best peer (its time or size divided by the peer's; below 1.00x it wins)"),
        ratios,
    )
}

/// The typed ratios as text, one line per step.
pub fn typed_ratio_lines(ratios: &[Ratio]) -> String {
    lines(format!("{TYPED} against {SUBJECT} (the typed API's time or size divided by the raw API's)"), ratios)
}

/// `title`, then one line per ratio.
fn lines(title: String, ratios: &[Ratio]) -> String {
    let width = Step::ALL.iter().map(|step| step.label().len()).max().unwrap_or(0);
    let mut text = title + "\n";
    for ratio in ratios {
        let value = ratio.ratio.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}x"));
        let _ = writeln!(text, "  {:<width$}  {value} {}", ratio.step, ratio.peer);
    }
    text
}

/// The JSON document of `--json`.
#[derive(Debug, Serialize)]
pub struct JsonReport {
    /// One entry per engine and step.
    pub results: Vec<JsonResult>,
    /// The engines, in the order they ran in the first round.
    pub engines: Vec<EngineKind>,
    /// How many times the workload ran per engine (`--rounds`); each result is the median round's.
    pub rounds: u32,
    /// The counts.
    pub workload: Workload,
    /// Whether `--quick` scaled the counts down.
    pub quick: bool,
    /// What `bytes` measures.
    pub size_measure: &'static str,
    /// mmapkit-db against its best peer, when mmapkit-db ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratios: Option<Vec<Ratio>>,
    /// mmapkit-db's typed API against its raw one, when both ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typed_ratios: Option<Vec<Ratio>>,
    /// The checksums of each engine's reads, equal across engines.
    pub checksums: Vec<JsonChecksums>,
}

/// One engine and step.
#[derive(Debug, Serialize)]
pub struct JsonResult {
    /// The engine.
    pub engine: EngineKind,
    /// The step's label.
    pub step: &'static str,
    /// How long the step took; `null` for sizes.
    pub millis: Option<f64>,
    /// Operations done by the step; for sizes, entries in the table.
    pub ops: u64,
    /// For sizes, the file's length in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// For sizes, the bytes of the file's allocated blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_bytes: Option<u64>,
}

/// One engine's read checksums.
#[derive(Debug, Serialize)]
pub struct JsonChecksums {
    /// The engine.
    pub engine: EngineKind,
    /// Sum of the value bytes of one pass of random reads.
    pub reads: u64,
    /// Sum of the key and value bytes of the range reads.
    pub ranges: u64,
    /// Entries the range reads visited.
    pub range_items: u64,
}

impl JsonReport {
    /// The report of `runs`.
    pub fn new(runs: &[EngineRun], workload: Workload, quick: bool, rounds: u32) -> Self {
        let results = runs
            .iter()
            .flat_map(|run| {
                run.measurements.iter().map(|m| {
                    let (millis, bytes) = match m.outcome {
                        Outcome::Time(time) => (Some(time.as_secs_f64() * 1e3), None),
                        Outcome::Size(size) => (None, Some(size)),
                    };
                    JsonResult {
                        engine: run.engine,
                        step: m.step.label(),
                        millis,
                        ops: m.ops,
                        bytes: bytes.map(|size| size.len),
                        allocated_bytes: bytes.map(|size| size.allocated),
                    }
                })
            })
            .collect();
        let checksums = runs
            .iter()
            .map(|run| JsonChecksums {
                engine: run.engine,
                reads: run.read_checksum,
                ranges: run.range_checksum,
                range_items: run.range_items,
            })
            .collect();
        Self {
            results,
            engines: runs.iter().map(|run| run.engine).collect(),
            rounds,
            workload,
            quick,
            size_measure: SIZE_MEASURE,
            ratios: ratios(runs),
            typed_ratios: typed_ratios(runs),
            checksums,
        }
    }
}

/// The index of the run with the smallest outcome for `step` among those `include` accepts.
fn best_index(runs: &[EngineRun], step: Step, include: impl Fn(&EngineRun) -> bool) -> Option<usize> {
    runs.iter()
        .enumerate()
        .filter(|(_, run)| include(run))
        .filter_map(|(index, run)| Some((index, run.get(step)?.outcome.magnitude())))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(index, _)| index)
}

/// A time in milliseconds with three significant digits or more, or a size in MiB.
fn format_outcome(outcome: Outcome) -> String {
    match outcome {
        Outcome::Time(time) => {
            let millis = time.as_secs_f64() * 1e3;
            match millis {
                m if m >= 100.0 => format!("{m:.0}ms"),
                m if m >= 10.0 => format!("{m:.1}ms"),
                m if m >= 1.0 => format!("{m:.2}ms"),
                // Three significant digits: len() takes well under a microsecond.
                m if m > 0.0 => format!("{m:.*}ms", (2.0 - m.log10().floor()) as usize),
                _ => "0ms".to_owned(),
            }
        }
        Outcome::Size(size) => format!("{:.2} MiB", size.len as f64 / (1024.0 * 1024.0)),
    }
}

/// `rows` (the first one the header) as a Markdown table with padded columns.
fn markdown(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|row| row.get(c)).map(String::len).max().unwrap_or(0).max(3))
        .collect();
    let line = |row: &[String]| {
        let cells: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(c, &width)| format!(" {:<width$} ", row.get(c).map_or("", String::as_str)))
            .collect();
        format!("|{}|\n", cells.join("|"))
    };
    let mut text = String::new();
    let mut rows = rows.iter();
    if let Some(header) = rows.next() {
        text.push_str(&line(header));
        let rule: Vec<String> = widths.iter().map(|&width| "-".repeat(width + 2)).collect();
        let _ = writeln!(text, "|{}|", rule.join("|"));
    }
    for row in rows {
        text.push_str(&line(row));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::results::{FileSize, Measurement};

    fn run(engine: EngineKind, millis: u64, bytes: u64) -> EngineRun {
        let measurements = Step::ALL
            .iter()
            .map(|&step| Measurement {
                step,
                ops: 1,
                outcome: match step {
                    Step::UncompactedSize | Step::CompactedSize => Outcome::Size(FileSize { len: bytes, allocated: 0 }),
                    _ => Outcome::Time(Duration::from_millis(millis)),
                },
            })
            .collect();
        EngineRun { engine, measurements, read_checksum: 1, range_checksum: 2, range_items: 3 }
    }

    #[test]
    fn table_has_every_row_and_column_and_bolds_the_best() {
        let text = table(&[run(EngineKind::Redb, 20, 4 << 20), run(EngineKind::Lmdb, 10, 8 << 20)]);
        for step in Step::ALL {
            assert!(text.contains(step.label()), "{text}");
        }
        assert!(text.lines().next().unwrap().contains("redb"));
        assert!(text.contains("**10.0ms**"), "{text}");
        assert!(text.contains("**4.00 MiB**"), "{text}");
    }

    #[test]
    fn ratios_compare_with_the_best_peer() {
        let (redb, lmdb) = (EngineKind::Redb, EngineKind::Lmdb);
        assert!(ratios(&[run(redb, 20, 1), run(lmdb, 10, 1)]).is_none());
        let ratios = ratios(&[run(redb, 20, 4), run(lmdb, 10, 8), run(SUBJECT, 15, 6)]).unwrap();
        let bulk = &ratios[0];
        assert_eq!((bulk.peer, bulk.ratio), (lmdb, Some(1.5)));
        let size = ratios.iter().find(|r| r.step == "compacted size").unwrap();
        assert_eq!((size.peer, size.ratio), (redb, Some(1.5)));
        assert!(ratio_lines(&ratios).contains("1.50x lmdb"));
    }

    #[test]
    fn the_typed_api_is_compared_with_the_raw_one_and_is_no_peer() {
        let runs = [run(EngineKind::Redb, 20, 4), run(SUBJECT, 15, 6), run(TYPED, 12, 6)];
        // The typed run is faster than every peer, but the raw run's ratio is still to redb.
        let against_peers = ratios(&runs).unwrap();
        assert_eq!((against_peers[0].peer, against_peers[0].ratio), (EngineKind::Redb, Some(0.75)));
        let typed = typed_ratios(&runs).unwrap();
        assert_eq!(typed.len(), Step::ALL.len());
        assert_eq!((typed[0].peer, typed[0].ratio), (SUBJECT, Some(0.8)));
        assert!(typed_ratio_lines(&typed).contains("0.80x mmapkit-db"));
        assert!(typed_ratios(&runs[..2]).is_none());
        assert!(ratios(&runs[1..]).is_none(), "the typed API counted as a peer");
    }
}
