//! The workload: the same steps, counts and items for every engine.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use serde::Serialize;

use crate::bulk_removal;
use crate::data::{Items, Key, Rng, byte_sum};
use crate::engines::{Engine, EngineKind, ReadTable, ReadTxn, WriteTable, WriteTxn};
use crate::processes;
use crate::results::{EngineRun, Measurement, Outcome, Step};

/// The counts of one run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Workload {
    /// Items inserted by the bulk load, in one write transaction.
    pub bulk: u64,
    /// Inserts of one item per durable commit.
    pub individual: u64,
    /// Durable commits of `batch_size` inserts.
    pub batches: u64,
    /// Inserts per batch.
    pub batch_size: u64,
    /// Random gets per pass (and in total across the threads).
    pub reads: u64,
    /// Random ranges.
    pub range_reads: u64,
    /// Entries taken from each range.
    pub range_len: usize,
    /// Threads of the threaded reads.
    pub threads: usize,
    /// The number of the items' stream (and the start of the choice of keys to read).
    pub stream: u64,
}

impl Workload {
    /// The full workload, sized for a 2-core machine.
    pub fn full() -> Self {
        Self {
            bulk: 1_000_000,
            individual: 1_000,
            batches: 100,
            batch_size: 1_000,
            reads: 1_000_000,
            range_reads: 500_000,
            range_len: 10,
            threads: 2,
            stream: 3,
        }
    }

    /// The full workload with every count 100 times smaller (the batches: 10 of 100), for tests.
    pub fn quick() -> Self {
        Self {
            bulk: 10_000,
            individual: 10,
            batches: 10,
            batch_size: 100,
            reads: 10_000,
            range_reads: 5_000,
            ..Self::full()
        }
    }

    /// Items in the table once every write step is done.
    pub fn total(&self) -> u64 {
        self.bulk + self.individual + self.batches * self.batch_size
    }
}

/// A workload with its keys to read drawn and its expected checksum computed, once for all engines.
pub struct Plan {
    /// The counts.
    pub workload: Workload,
    /// The items: item `i` is the `i`-th inserted.
    pub items: Items,
    /// Keys of the random reads, all of existing items.
    read_keys: Vec<Key>,
    /// Sum of the value bytes of `read_keys`' items.
    expected_read_checksum: u64,
    /// Starting keys of the range reads, all of existing items.
    range_starts: Vec<Key>,
}

impl Plan {
    /// Draws the keys to read for `workload`.
    pub fn new(workload: Workload) -> Self {
        let items = Items::new(workload.stream);
        let total = workload.total();
        let mut rng = Rng::new(workload.stream ^ 0x7265_6164);
        let mut expected_read_checksum = 0;
        let read_keys = (0..workload.reads)
            .map(|_| {
                let i = rng.below(total);
                expected_read_checksum += byte_sum(&items.value(i));
                items.key(i)
            })
            .collect();
        let range_starts = (0..workload.range_reads).map(|_| items.key(rng.below(total))).collect();
        Self { workload, items, read_keys, expected_read_checksum, range_starts }
    }
}

/// Runs the workload on `engine`, reporting each measurement to `progress` as soon as it is taken.
/// `dir` is the engine's own directory, for a compacted copy.
pub fn run<E: Engine>(
    engine: &mut E,
    plan: &Plan,
    dir: &Path,
    mut progress: impl FnMut(EngineKind, &Measurement),
) -> Result<EngineRun> {
    let kind = engine.kind();
    let name = kind.name();
    let w = &plan.workload;
    let items = &plan.items;
    let mut run =
        EngineRun { engine: kind, measurements: Vec::new(), read_checksum: 0, range_checksum: 0, range_items: 0 };
    let mut record = |run: &mut EngineRun, step: Step, ops: u64, outcome: Outcome| {
        let measurement = Measurement { step, ops, outcome };
        progress(kind, &measurement);
        run.measurements.push(measurement);
    };

    // 1. Bulk load: one write transaction, one durable commit.
    let time = timed(|| insert_batch(engine, items, 0..w.bulk))?;
    record(&mut run, Step::BulkLoad, w.bulk, Outcome::Time(time));

    // 2. Individual durable writes.
    let first = w.bulk;
    let time = timed(|| (first..first + w.individual).try_for_each(|i| insert_batch(engine, items, i..i + 1)))?;
    record(&mut run, Step::IndividualWrites, w.individual, Outcome::Time(time));

    // 3. Durable batches.
    let first = first + w.individual;
    let time = timed(|| {
        (0..w.batches).try_for_each(|b| {
            let start = first + b * w.batch_size;
            insert_batch(engine, items, start..start + w.batch_size)
        })
    })?;
    record(&mut run, Step::BatchWrites, w.batches * w.batch_size, Outcome::Time(time));

    {
        let txn = engine.begin_read()?;
        let table = txn.table()?;

        // 4. len().
        let start = Instant::now();
        let len = table.len()?;
        let time = start.elapsed();
        ensure!(len == w.total(), "{name}: len() is {len} after inserting {} distinct keys", w.total());
        record(&mut run, Step::Len, 1, Outcome::Time(time));

        // 5. Random reads, twice, in the same read transaction.
        for step in [Step::RandomReads, Step::RandomReadsAgain] {
            let start = Instant::now();
            let checksum = read_values(&table, &plan.read_keys)?;
            let time = start.elapsed();
            check_read_checksum(name, checksum, plan)?;
            run.read_checksum = checksum;
            record(&mut run, step, w.reads, Outcome::Time(time));
        }

        // 6. Random range reads.
        let start = Instant::now();
        let (checksum, seen) = read_ranges(&table, &plan.range_starts, w.range_len)?;
        let time = start.elapsed();
        ensure!(seen >= w.range_reads, "{name}: {seen} entries in {} ranges from existing keys", w.range_reads);
        run.range_checksum = checksum;
        run.range_items = seen;
        record(&mut run, Step::RangeReads, w.range_reads, Outcome::Time(time));
    }

    // 7. Random reads on several threads, each with its own read transaction.
    let shared: &E = engine;
    let per_thread = plan.read_keys.len().div_ceil(w.threads).max(1);
    let start = Instant::now();
    let checksums = thread::scope(|scope| {
        let handles: Vec<_> = plan
            .read_keys
            .chunks(per_thread)
            .map(|keys| {
                scope.spawn(move || -> Result<u64> {
                    let txn = shared.begin_read()?;
                    read_values(&txn.table()?, keys)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect::<Vec<_>>()
    });
    let time = start.elapsed();
    let checksum = checksums.into_iter().sum::<Result<u64>>()?;
    check_read_checksum(name, checksum, plan)?;
    record(&mut run, Step::ThreadedReads, w.reads, Outcome::Time(time));

    // 8. Durable batches of updates of existing keys while reader processes get random keys, and those gets.
    let beside = processes::run(engine, plan, dir)?;
    record(&mut run, Step::BatchWritesBesideReaders, w.batches * w.batch_size, Outcome::Time(beside.writes));
    record(&mut run, Step::ReadsBesideWriter, w.reads, Outcome::Time(beside.reads));

    // 9. Removal of half the keys, in one durable write transaction.
    let half = w.total() / 2;
    let start = Instant::now();
    let mut txn = engine.begin_write()?;
    let mut removed = 0;
    {
        let mut table = txn.table()?;
        for i in 0..half {
            removed += u64::from(table.remove(&items.key(i))?);
        }
    }
    txn.commit()?;
    let time = start.elapsed();
    ensure!(removed == half, "{name}: removed {removed} of {half} existing keys");
    record(&mut run, Step::Removals, half, Outcome::Time(time));
    let left = engine.begin_read()?.table()?.len()?;
    ensure!(left == w.total() - half, "{name}: len() is {left} after the removals, not {}", w.total() - half);

    // 10. File size before and after compaction.
    record(&mut run, Step::UncompactedSize, left, Outcome::Size(engine.file_size()?));
    let start = Instant::now();
    let compacted = engine.compact(dir)?;
    record(&mut run, Step::Compaction, 1, Outcome::Time(start.elapsed()));
    record(&mut run, Step::CompactedSize, left, Outcome::Size(compacted));

    // 11. retain, then (the entries it removed put back, untimed) delete_range: both from the table the removals
    // left, items `half..total`, each in one durable transaction timed with its commit, each checked.
    let present = half..w.total();
    let keys = || present.clone().map(|i| items.key(i));
    let kept = keys().filter(|key| bulk_removal::kept_by_retain(key)).count() as u64;
    let time = bulk_removal::timed_retain(engine)?;
    bulk_removal::check_remaining(engine, "retain", kept, |key| !bulk_removal::kept_by_retain(key))?;
    record(&mut run, Step::Retain, left, Outcome::Time(time));
    bulk_removal::restore_retained(engine, items, present.clone())?;
    bulk_removal::check_remaining(engine, "putting back what retain removed", left, |_| false)?;
    let outside = keys().filter(|key| !bulk_removal::in_deleted_range(key)).count() as u64;
    let time = bulk_removal::timed_delete_range(engine)?;
    bulk_removal::check_remaining(engine, "delete_range", outside, bulk_removal::in_deleted_range)?;
    record(&mut run, Step::DeleteRange, left - outside, Outcome::Time(time));

    Ok(run)
}

/// Runs `work` and returns how long it took.
fn timed(work: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    work()?;
    Ok(start.elapsed())
}

/// Inserts items `range` in one write transaction and commits it durably.
pub fn insert_batch<E: Engine>(engine: &E, items: &Items, range: std::ops::Range<u64>) -> Result<()> {
    let mut txn = engine.begin_write()?;
    {
        let mut table = txn.table()?;
        for i in range {
            table.insert(&items.key(i), &items.value(i))?;
        }
    }
    txn.commit()
}

/// Gets every key of `keys` and returns the sum of the values' bytes; every key must exist.
fn read_values(table: &impl ReadTable, keys: &[Key]) -> Result<u64> {
    let mut checksum = 0;
    for key in keys {
        match table.get(key, byte_sum)? {
            Some(sum) => checksum += sum,
            None => bail!("a key that was inserted is missing"),
        }
    }
    Ok(checksum)
}

/// Reads up to `len` entries from each start key; returns the sum of their key and value bytes and how
/// many entries there were. Each range must begin with its (existing) start key.
fn read_ranges(table: &impl ReadTable, starts: &[Key], len: usize) -> Result<(u64, u64)> {
    let mut checksum = 0;
    let mut seen = 0;
    let mut wrong_starts = 0u64;
    for start in starts {
        let mut first = Some(start.as_slice());
        let n = table.range_from(start, len, |key, value| {
            if let Some(expected) = first.take() {
                wrong_starts += u64::from(expected != key);
            }
            checksum += byte_sum(key) + byte_sum(value);
        })?;
        ensure!(n >= 1, "a range from an existing key is empty");
        seen += n as u64;
    }
    ensure!(wrong_starts == 0, "{wrong_starts} ranges did not begin with their (existing) start key");
    Ok((checksum, seen))
}

/// Fails unless `checksum` is the sum of the bytes of the values the reads should have found.
fn check_read_checksum(engine: &str, checksum: u64, plan: &Plan) -> Result<()> {
    ensure!(
        checksum == plan.expected_read_checksum,
        "{engine}: the random reads summed to {checksum}, the values inserted to {}",
        plan.expected_read_checksum
    );
    Ok(())
}
