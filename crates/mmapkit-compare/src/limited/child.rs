//! The process that reads one engine's database under a memory limit: it
//! joins the cgroup its parent made, opens the database, and gets random
//! existing keys on its threads for a fixed time, checking every value,
//! writing a line per second and its totals on stdout.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use mmapkit_cli::timed::{self, Progress};

use crate::data::{Items, Rng, byte_sum};
use crate::engines::{self, Engine, EngineWork, Opening, ReadTable, ReadTxn};
use crate::own_process::DatabaseArgs;

/// Options of the hidden `db-child` command (set by `db --memory-limit`).
#[derive(Debug, clap::Args)]
pub struct ChildArgs {
    /// The memory cgroup to join before anything else.
    #[arg(long)]
    pub cgroup: PathBuf,
    /// The database and its items.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Reader threads.
    #[arg(long)]
    pub threads: usize,
    /// How long to read, in seconds.
    #[arg(long)]
    pub seconds: f64,
    /// The page cache of an engine that keeps its own (redb), in bytes.
    #[arg(long)]
    pub cache_bytes: usize,
    /// LMDB only: open with `MDB_NORDAHEAD`.
    #[arg(long)]
    pub lmdb_no_read_ahead: bool,
}

/// Runs the child: join, open, read until the time is up, report.
pub fn run(args: &ChildArgs) -> Result<()> {
    let cgroup = mmapkit_cli::memory_cgroup::join(&args.cgroup)?;
    let engine = args.database.engine("db-child")?;
    ensure!(args.database.items > 0, "db-child needs --items above 0");
    let opening = Opening {
        cache_bytes: Some(args.cache_bytes),
        lmdb_no_read_ahead: args.lmdb_no_read_ahead,
        ..Opening::default()
    };
    engines::with_engine(engine, &args.database.dir, opening, Reads { args, cgroup })
}

/// Random gets of existing items, on every thread until the time is up.
struct Reads<'a> {
    args: &'a ChildArgs,
    cgroup: String,
}

impl EngineWork for Reads<'_> {
    type Output = ();

    fn run<E: Engine>(self, engine: &mut E) -> Result<()> {
        let engine: &E = engine;
        let database = &self.args.database;
        let (items, count, stream) = (database.items_of_stream(), database.items, database.stream);
        timed::run(self.args.threads, self.args.seconds, self.cgroup, |thread, progress| {
            read_until_stopped(engine, &items, count, stream ^ (thread as u64 + 1), progress)
        })
    }
}

/// Gets random items of `0..count` until stopped, each checked against the
/// value it was given; returns the sum of the values' bytes.
fn read_until_stopped<E: Engine>(
    engine: &E,
    items: &Items,
    count: u64,
    stream: u64,
    progress: &Progress<'_>,
) -> Result<u64> {
    let txn = engine.begin_read()?;
    let table = txn.table()?;
    let mut rng = Rng::new(stream);
    let mut sum = 0u64;
    while !progress.stopped() {
        let i = rng.below(count);
        let expected = items.value(i);
        let Some(matches) = table.get(&items.key(i), |value| value == expected)? else {
            anyhow::bail!("{}: item {i} is missing", engine.kind());
        };
        ensure!(matches, "{}: item {i} has a value other than the one inserted", engine.kind());
        sum = sum.wrapping_add(byte_sum(&expected));
        progress.done();
    }
    Ok(sum)
}
