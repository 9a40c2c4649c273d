//! What a run measures: one [`Measurement`] per engine and [`Step`].

use std::time::Duration;

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
    /// Removal of half the keys in one durable write transaction.
    Removals,
    /// The file's length before compaction.
    UncompactedSize,
    /// The compaction.
    Compaction,
    /// The compacted file's length.
    CompactedSize,
}

impl Step {
    /// Every step, in the order the workload runs them.
    pub const ALL: [Step; 12] = [
        Step::BulkLoad,
        Step::IndividualWrites,
        Step::BatchWrites,
        Step::Len,
        Step::RandomReads,
        Step::RandomReadsAgain,
        Step::RangeReads,
        Step::ThreadedReads,
        Step::Removals,
        Step::UncompactedSize,
        Step::Compaction,
        Step::CompactedSize,
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
            Step::Removals => "removals",
            Step::UncompactedSize => "uncompacted size",
            Step::Compaction => "compaction",
            Step::CompactedSize => "compacted size",
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
    /// size, the number of entries in the table.
    pub ops: u64,
    /// Its time or size.
    pub outcome: Outcome,
}

/// Everything one engine measured, and the checksums that show it read what the others read.
#[derive(Debug, Clone)]
pub struct EngineRun {
    /// The engine's name.
    pub engine: &'static str,
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
}
