//! `mmapkit-compare`: benchmarks mmapkit-db against redb and LMDB (through heed) on one workload, in one
//! process, one engine after the other, each on its own file in one temporary directory; for two rows, two
//! reader processes it starts of itself (`db-reader`) read the file beside it.
//!
//! `cargo run --release -p mmapkit-compare -- db [--json FILE] [--quick] [--rounds N] [--engines LIST] [--dir DIR]`
//!
//! With `--rounds N` the whole workload runs N times, the engines' order rotated each round, and each row
//! reports the median round.

mod bulk_removal;
mod data;
mod engines;
mod limited;
mod own_process;
mod processes;
mod report;
mod results;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum as _};

use crate::engines::EngineKind;
use crate::results::{EngineRun, Measurement, Outcome};
use crate::workload::{Plan, Workload};

/// Compares mmapkit's engines with their peers.
#[derive(Debug, Parser)]
#[command(name = "mmapkit-compare", version)]
struct Cli {
    /// What to compare.
    #[command(subcommand)]
    command: Command,
}

/// What to compare.
#[derive(Debug, Subcommand)]
enum Command {
    /// mmapkit-db against redb and LMDB: bulk load, durable writes, reads, writes beside reader processes,
    /// ranges, removals, compaction.
    Db(DbArgs),
    /// One engine's reads of `db --memory-limit`, inside its cgroup (internal).
    #[command(hide = true)]
    DbChild(limited::child::ChildArgs),
    /// One of the reader processes beside the writer of `db` (internal).
    #[command(hide = true)]
    DbReader(processes::reader::ReaderArgs),
}

/// Options of `db`.
#[derive(Debug, Args)]
struct DbArgs {
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Every count 100 times smaller: a check that everything runs, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Where to create the temporary directory (default: the system's temporary directory). Durable commits
    /// cost what this file system's fsync costs.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The engines to run, in this order, among redb, lmdb and (built with its feature) mmapkit-db and
    /// mmapkit-db-typed (its typed API); default: all, redb first (with --memory-limit, all but
    /// mmapkit-db-typed). Each engine's durable writes can leave the disk busy for the next one's, so swapping the
    /// order shows how much of a write row is the engine and how much is the disk.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    engines: Option<Vec<String>>,
    /// Run the whole workload N times, the engines' order rotated each round, and report each row's
    /// median: the disk's fsync latency on a shared machine drifts over a run.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=15))]
    rounds: u32,
    /// Linux, as root: instead of the usual workload, random gets from a database larger than memory. Each
    /// engine's database of --items is loaded, dropped from the page cache, and read by a child process inside a
    /// memory cgroup of its own limited to SIZE (256M, 1G, ...), for --duration seconds, on 1 thread and on
    /// --threads; redb is given a page cache of a quarter of SIZE.
    #[arg(long, value_name = "SIZE", value_parser = limited::parse_size)]
    memory_limit: Option<u64>,
    /// With --memory-limit: items in each database [default: enough for 4x SIZE of values alone].
    #[arg(long, value_name = "N")]
    items: Option<u64>,
    /// With --memory-limit: seconds each run reads [default: 15, or 2 with --quick].
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// With --memory-limit: the threads of the second run [default: 2].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Db(args) => db(&args),
        Command::DbChild(args) => limited::child::run(&args),
        Command::DbReader(args) => processes::reader::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mmapkit-compare: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the `db` comparison.
fn db(args: &DbArgs) -> Result<()> {
    let started = Instant::now();
    if let Some(limit) = args.memory_limit {
        return db_limited(args, limit, started);
    }
    if args.items.is_some() || args.duration.is_some() || args.threads.is_some() {
        bail!("--items, --duration and --threads apply only with --memory-limit");
    }
    let workload = if args.quick { Workload::quick() } else { Workload::full() };
    let mut builder = tempfile::Builder::new();
    builder.prefix("mmapkit-compare-");
    let temp = match &args.dir {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    }
    .context("creating the temporary directory")?;
    eprintln!("{} (files in {})", describe(&workload), temp.path().display());
    let plan = Plan::new(workload);

    let chosen = chosen_engines(args.engines.as_deref())?;
    let mut all: Vec<EngineRun> = Vec::new();
    for round in 0..args.rounds as usize {
        let mut order = chosen.clone();
        let shift = round % order.len().max(1);
        order.rotate_left(shift);
        if args.rounds > 1 {
            let names: Vec<&str> = order.iter().map(|e| e.name()).collect();
            eprintln!("round {} of {}: {}", round + 1, args.rounds, names.join(", "));
        }
        for engine in order {
            let dir = temp.path().join(engine.name());
            std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let run = engines::run(engine, &dir, &plan, print_progress).with_context(|| format!("running {engine}"))?;
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            all.push(run);
        }
    }
    // Every round of every engine must have read the same data.
    check_agreement(&all)?;
    let runs: Vec<EngineRun> = chosen
        .iter()
        .filter_map(|&e| EngineRun::median(&all.iter().filter(|r| r.engine == e).cloned().collect::<Vec<_>>()))
        .collect();
    if args.rounds > 1 {
        println!("{} rounds, the engines' order rotated each round; each row is the median round\n", args.rounds);
    }

    println!("{}\n", describe(&workload));
    print!("{}", report::table(&runs));
    println!("sizes: {}", report::SIZE_MEASURE);
    println!();
    match report::ratios(&runs) {
        Some(ratios) => print!("{}", report::ratio_lines(&ratios)),
        None => println!(
            "no ratios: {} or every peer is missing from the engines (mmapkit-db needs --features mmapkit-db)",
            report::SUBJECT
        ),
    }
    if let Some(ratios) = report::typed_ratios(&runs) {
        println!();
        print!("{}", report::typed_ratio_lines(&ratios));
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report::JsonReport::new(&runs, workload, args.quick, args.rounds))?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs the comparison beyond memory: `db --memory-limit`.
fn db_limited(args: &DbArgs, limit: u64, started: Instant) -> Result<()> {
    let seconds = args.duration.unwrap_or(if args.quick { 2.0 } else { 15.0 });
    if !(seconds > 0.0 && seconds <= 3600.0) {
        bail!("--duration {seconds}: must be above 0 and at most 3600 seconds");
    }
    let plan = limited::LimitedPlan {
        limit,
        items: args.items.unwrap_or_else(|| limited::LimitedPlan::default_items(limit)),
        seconds,
        threads: args.threads.unwrap_or(2),
    };
    limited::check(&plan)?;
    let mut engines = chosen_engines(args.engines.as_deref())?;
    if args.engines.is_none() {
        // The typed API reads the same pages as the raw one: beyond memory it would only double the run.
        engines.retain(|&e| e != report::TYPED);
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix("mmapkit-compare-");
    let temp = match &args.dir {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    }
    .context("creating the temporary directory")?;
    let runs = limited::run(&plan, &engines, temp.path())?;
    println!(
        "random gets beyond memory: {} items, each engine read by a process limited to {} MiB; steady = median \
         second of the second half\n",
        plan.items,
        limit >> 20
    );
    print!("{}", limited::table(&runs));
    println!();
    print!("{}", limited::verdict(&runs));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&runs)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The engines `--engines` names, parsed once, in its order; without it, every engine built in, redb first.
/// An unknown name or one given twice is an error.
fn chosen_engines(names: Option<&[String]>) -> Result<Vec<EngineKind>> {
    let Some(names) = names else { return Ok(EngineKind::built().to_vec()) };
    let chosen = names
        .iter()
        .map(|name| {
            EngineKind::from_str(name, false).map_err(|_| {
                let known: Vec<&str> = EngineKind::built().iter().map(|e| e.name()).collect();
                anyhow::anyhow!("unknown engine {name:?} in --engines; the engines are {}", known.join(", "))
            })
        })
        .collect::<Result<Vec<EngineKind>>>()?;
    if let Some(twice) = chosen.iter().enumerate().find(|(i, e)| chosen[..*i].contains(e)).map(|(_, e)| e) {
        bail!("engine {:?} is given twice in --engines", twice.name());
    }
    Ok(chosen)
}

/// One line on what the workload does.
fn describe(w: &Workload) -> String {
    format!(
        "{} items ({}-byte keys, {}-byte values), {} individual writes, {} batches of {}, {} random reads, \
         {} ranges of {}, {} threads",
        w.bulk,
        data::KEY_LEN,
        data::VALUE_LEN,
        w.individual,
        w.batches,
        w.batch_size,
        w.reads,
        w.range_reads,
        w.range_len,
        w.threads
    )
}

/// Prints a measurement as soon as it is taken, so a long run shows where it is.
fn print_progress(engine: EngineKind, measurement: &Measurement) {
    let (count, outcome) = match measurement.outcome {
        Outcome::Time(time) => ("ops", format!("{:.3} ms", time.as_secs_f64() * 1e3)),
        Outcome::Size(size) => ("entries", format!("{} bytes ({} allocated)", size.len, size.allocated)),
    };
    eprintln!("{:<16} {:<43} {:>9} {count:<7}  {outcome}", engine.name(), measurement.step.label(), measurement.ops);
}

/// Fails unless every engine's reads saw the same bytes (each engine's random reads were already checked
/// against the values inserted).
fn check_agreement(runs: &[EngineRun]) -> Result<()> {
    if let Some(first) = runs.first() {
        for run in runs {
            if (run.read_checksum, run.range_checksum, run.range_items)
                != (first.read_checksum, first.range_checksum, first.range_items)
            {
                bail!(
                    "{} and {} read different data: checksums {}/{} over {} range entries against {}/{} over {}",
                    first.engine,
                    run.engine,
                    first.read_checksum,
                    first.range_checksum,
                    first.range_items,
                    run.read_checksum,
                    run.range_checksum,
                    run.range_items
                );
            }
        }
    }
    Ok(())
}
