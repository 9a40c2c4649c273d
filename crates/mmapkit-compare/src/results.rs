//! What a run measures: one [`Measurement`] per engine and [`Step`].

use std::time::Duration;

use crate::engines::EngineKind;

/// A step of the workload, in the order it runs; each is a row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// All the initial items in one write transaction.
    BulkLoad,
    /// One insert per durable commit.
    IndividualWrites,
    /// Durable commits of many inserts each.
    BatchWrites,
    /// `len()` of the table.
    Len,
    /// Random gets of existing keys in one read transaction.
    RandomReads,
    /// The same gets again.
    RandomReadsAgain,
    /// Short ranges from random existing keys.
    RangeReads,
    /// Random gets split across threads, each with its own read transaction.
    ThreadedReads,
    /// Durable batches of updates of existing keys while reader processes read the database.
    BatchWritesBesideReaders,
    /// Random gets in reader processes, a read transaction per 100, while another process commits batches: the
    /// time of the workload's `reads` gets at the processes' summed rate.
    ReadsBesideWriter,
    /// Removal of half the keys in one durable write transaction.
    Removals,
    /// The file's length before compaction.
    UncompactedSize,
    /// The compaction.
    Compaction,
    /// The compacted file's length.
    CompactedSize,
    /// `retain` keeping the keys whose last byte is even (about half), in one durable write transaction.
    Retain,
    /// `delete_range` over the keys whose first byte is 0x40 to 0x7f (about a quarter), in one durable write
    /// transaction.
    DeleteRange,
}

impl Step {
    /// Every step, in the order the workload runs them.
    pub const ALL: [Step; 16] = [
        Step::BulkLoad,
        Step::IndividualWrites,
        Step::BatchWrites,
        Step::Len,
        Step::RandomReads,
        Step::RandomReadsAgain,
        Step::RangeReads,
        Step::ThreadedReads,
        Step::BatchWritesBesideReaders,
        Step::ReadsBesideWriter,
        Step::Removals,
        Step::UncompactedSize,
        Step::Compaction,
        Step::CompactedSize,
        Step::Retain,
        Step::DeleteRange,
    ];

    /// The row's name in the table and the `step` field of the JSON.
    pub fn label(self) -> &'static str {
        match self {
            Step::BulkLoad => "bulk load",
            Step::IndividualWrites => "individual writes",
            Step::BatchWrites => "batch writes",
            Step::Len => "len()",
            Step::RandomReads => "random reads",
            Step::RandomReadsAgain => "random reads (2nd)",
            Step::RangeReads => "random range reads",
            Step::ThreadedReads => "random reads (2 threads)",
            Step::BatchWritesBesideReaders => "batch writes beside 2 reader processes",
            Step::ReadsBesideWriter => "random reads in 2 processes beside a writer",
            Step::Removals => "removals",
            Step::UncompactedSize => "uncompacted size",
            Step::Compaction => "compaction",
            Step::CompactedSize => "compacted size",
            Step::Retain => "retain (even keys)",
            Step::DeleteRange => "delete_range (quarter)",
        }
    }
}

/// What one step measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// How long the step took.
    Time(Duration),
    /// A file's size.
    Size(FileSize),
}

impl Outcome {
    /// The number compared between engines (smaller is better): nanoseconds or bytes.
    pub fn magnitude(self) -> f64 {
        match self {
            Outcome::Time(time) => time.as_nanos() as f64,
            Outcome::Size(size) => size.len as f64,
        }
    }
}

/// A file's size on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSize {
    /// Its length (metadata `len`): what the table shows and engines are compared on.
    pub len: u64,
    /// The bytes of its allocated blocks (`st_blocks` × 512): less than `len` if the file is sparse.
    pub allocated: u64,
}

/// One step of one engine.
#[derive(Debug, Clone, Copy)]
pub struct Measurement {
    /// The step.
    pub step: Step,
    /// Operations the step did: inserts, gets, ranges or removals, 1 for `len()` and for the compaction; for a
    /// size, the number of entries in the table; for the reads beside a writer, the gets its time is of (the
    /// processes did as many as they could meanwhile).
    pub ops: u64,
    /// Its time or size.
    pub outcome: Outcome,
}

/// Everything one engine measured, and the checksums that show it read what the others read.
#[derive(Debug, Clone)]
pub struct EngineRun {
    /// The engine.
    pub engine: EngineKind,
    /// One measurement per step, in [`Step::ALL`]'s order.
    pub measurements: Vec<Measurement>,
    /// Sum of the value bytes of all random reads (one pass).
    pub read_checksum: u64,
    /// Sum of the key and value bytes of all range reads.
    pub range_checksum: u64,
    /// Entries the range reads visited.
    pub range_items: u64,
}

impl EngineRun {
    /// The measurement of `step`, if the run got that far.
    pub fn get(&self, step: Step) -> Option<&Measurement> {
        self.measurements.iter().find(|m| m.step == step)
    }

    /// One engine's rounds folded into one run: each step's median over the
    /// rounds (the lower middle one for an even count). The checksums are the
    /// first round's; the caller checks that every round agrees.
    pub fn median(rounds: &[EngineRun]) -> Option<EngineRun> {
        let first = rounds.first()?;
        let measurements = Step::ALL
            .iter()
            .filter_map(|&step| {
                let mut seen: Vec<Measurement> = rounds.iter().filter_map(|r| r.get(step).copied()).collect();
                seen.sort_by(|a, b| a.outcome.magnitude().total_cmp(&b.outcome.magnitude()));
                seen.get(seen.len().saturating_sub(1) / 2).copied()
            })
            .collect();
        Some(EngineRun { measurements, ..first.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(millis: [u64; 2], size: u64) -> EngineRun {
        let time = |ms| Outcome::Time(Duration::from_millis(ms));
        EngineRun {
            engine: EngineKind::Redb,
            measurements: vec![
                Measurement { step: Step::BulkLoad, ops: 10, outcome: time(millis[0]) },
                Measurement { step: Step::IndividualWrites, ops: 10, outcome: time(millis[1]) },
                Measurement {
                    step: Step::CompactedSize,
                    ops: 10,
                    outcome: Outcome::Size(FileSize { len: size, allocated: size }),
                },
            ],
            read_checksum: 1,
            range_checksum: 2,
            range_items: 3,
        }
    }

    #[test]
    fn the_median_run_takes_each_steps_middle_value_on_its_own() {
        let rounds = [run([30, 5], 700), run([10, 9], 500), run([20, 1], 600)];
        let median = EngineRun::median(&rounds).unwrap();
        let times: Vec<f64> = median.measurements.iter().map(|m| m.outcome.magnitude()).collect();
        assert_eq!(times, [20e6, 5e6, 600.0]);
        // Two rounds: the lower one.
        let median = EngineRun::median(&rounds[..2]).unwrap();
        assert_eq!(median.get(Step::BulkLoad).unwrap().outcome, Outcome::Time(Duration::from_millis(10)));
        assert!(EngineRun::median(&[]).is_none());
    }
}
