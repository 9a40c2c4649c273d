//! A reader process (the hidden `db-reader` subcommand): it opens one engine's database read-only beside the
//! parent that writes it, writes `ready`, waits for `go` on stdin, then, until a line `stop` or the end of stdin,
//! repeats a read transaction of [`GETS_PER_TXN`] random gets of existing items, checking each value's shape,
//! and finally writes its [`ReaderTotals`] as one JSON line.

use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};

use super::{ReaderTotals, SUBCOMMAND, update_mask};
use crate::data::Rng;
use crate::engines::{self, Engine, EngineWork, Opening, ReadTable, ReadTxn};
use crate::own_process::DatabaseArgs;

/// Gets per read transaction.
pub const GETS_PER_TXN: usize = 100;

/// Options of the hidden `db-reader` command (set by the `db` workload).
#[derive(Debug, clap::Args)]
pub struct ReaderArgs {
    /// The database and its items.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Which reader this is (0, 1, ...): the keys it reads come from a stream of its own.
    #[arg(long)]
    pub reader: u64,
}

/// Runs the reader: open, `ready`, wait for `go`, read until `stop`, report.
pub fn run(args: &ReaderArgs) -> Result<()> {
    let engine = args.database.engine(SUBCOMMAND)?;
    ensure!(args.database.items > 0, "{SUBCOMMAND} needs --items above 0");
    let opening = Opening { read_only: true, ..Opening::default() };
    let totals = engines::with_engine(engine, &args.database.dir, opening, Reads { args })
        .with_context(|| format!("{engine} reader {} of {}", args.reader, args.database.dir.display()))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string(&totals)?)?;
    stdout.flush()?;
    Ok(())
}

/// The reads of one reader process.
struct Reads<'a> {
    args: &'a ReaderArgs,
}

impl EngineWork for Reads<'_> {
    type Output = ReaderTotals;

    fn run<E: Engine>(self, engine: &mut E) -> Result<ReaderTotals> {
        let database = &self.args.database;
        let (items, count) = (database.items_of_stream(), database.items);
        // A first read transaction opens the table: a database without it fails here, before the parent is told
        // ready.
        engine.begin_read()?.table()?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "ready")?;
        stdout.flush()?;
        drop(stdout);

        let mut stdin = std::io::stdin().lock();
        let mut line = String::new();
        if stdin.read_line(&mut line)? == 0 {
            bail!("stdin ended before \"go\"");
        }
        ensure!(line.trim_end() == "go", "read {line:?} on stdin instead of \"go\"");
        drop(stdin);
        let stop = Arc::new(AtomicBool::new(false));
        let told = Arc::clone(&stop);
        // Any line (`stop`) or the end of stdin stops the reads.
        std::thread::spawn(move || {
            let _ = std::io::stdin().lock().read_line(&mut String::new());
            told.store(true, Ordering::Relaxed);
        });

        let mut rng = Rng::new(database.stream ^ (0x7265_6164_6572 + self.args.reader));
        let mut totals =
            ReaderTotals { gets: 0, seconds: 0.0, misses: 0, bad_values: 0, updated_seen: 0, transactions: 0 };
        let start = Instant::now();
        // At least one transaction, however soon the writer is done.
        loop {
            let txn = engine.begin_read()?;
            let table = txn.table()?;
            for _ in 0..GETS_PER_TXN {
                let i = rng.below(count);
                let first = items.value(i);
                match table.get(&items.key(i), |value| update_mask(&first, value))? {
                    None => totals.misses += 1,
                    Some(None) => totals.bad_values += 1,
                    Some(Some(mask)) => totals.updated_seen += u64::from(mask != 0),
                }
            }
            drop(table);
            drop(txn);
            totals.gets += GETS_PER_TXN as u64;
            totals.transactions += 1;
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        totals.seconds = start.elapsed().as_secs_f64();
        Ok(totals)
    }
}
