//! `mmapkit bench`: mmap against read on the user's own file (or a generated
//! one), per access pattern and cache state, with a verdict per scenario and
//! the common advice on mmap set against them.

mod advice;
mod clock;
pub mod limited;
mod measurement;
mod methods;
mod plot;
mod report;
mod scenario;
mod small_files;
mod verdict;
mod workload;
mod writes;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use mmapkit::PageFaults;

use measurement::Measurement;
use methods::Subject;
use scenario::{Cache, Method, Pattern, Plan, Scenario};
use small_files::SmallFiles;
use workload::Workload;

/// The size of each small file.
const SMALL_FILE_BYTES: usize = 4096;

/// Options of `mmapkit bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The file to measure, read-only (never changed). Without it a temporary
    /// file of --size pseudorandom bytes is made and removed afterwards.
    pub path: Option<PathBuf>,
    /// Size of the generated file: 64MiB, 2GiB, ... [default: 1GiB, or 64MiB with --quick; with
    /// --memory-limit, 4x the limit]
    #[arg(long, visible_alias = "file-size", value_parser = crate::common::units::parse_size_arg)]
    pub size: Option<u64>,
    /// Linux, as root: instead of the usual scenarios, random 4 KiB reads of a file larger than memory, each
    /// method (mmap, mmap with MADV_RANDOM, pread, pread with O_DIRECT) in a child process inside a memory
    /// cgroup of its own limited to SIZE, for --duration, on 1 thread and on --threads (default 4).
    #[arg(long, value_name = "SIZE", value_parser = crate::common::units::parse_size_arg)]
    pub memory_limit: Option<u64>,
    /// With --memory-limit: how long each method reads [default: 15s, or 2s with --quick].
    #[arg(long, value_parser = limited::parse_duration_arg)]
    pub duration: Option<std::time::Duration>,
    /// Also run the sequential and random 4 KiB warm scenarios on N threads.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// How many 4 KiB files the small-files scenario uses [default: 10000, or 1000 with --quick].
    #[arg(long, value_name = "N")]
    pub small_files: Option<usize>,
    /// Write every result as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw the results as grouped bars into FILE.svg.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Leave out the write scenarios (random, sequential and appended 4 KiB writes, each durable after every
    /// write and every 100, through a map and through pwrite or write; on temporary files).
    #[arg(long)]
    pub no_writes: bool,
    /// A small file and few operations: done in seconds (for tests).
    #[arg(long)]
    pub quick: bool,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
}

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg:45} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs the benchmark and prints (and writes) its results.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    workload::remove_temp_files_on_interrupt();
    if args.threads == Some(0) {
        bail!("--threads 0: need at least one thread");
    }
    if let Some(limit) = args.memory_limit {
        return limited::run(&args, limit);
    }
    if args.duration.is_some() {
        bail!("--duration applies only with --memory-limit (the other scenarios run a fixed number of reads)");
    }
    let plan = Plan::new(args.quick, args.small_files);
    let workload = match &args.path {
        Some(path) => Workload::existing(path)?,
        None => {
            let size = args.size.unwrap_or(if args.quick { 64 << 20 } else { 1 << 30 });
            Workload::generated(size, &progress_bar(args.quiet))?
        }
    };
    report::print_header(&workload.path, workload.len, workload.generated);
    println!("per-operation times (p50, p99) have the clock's own cost, {} ns, taken off", clock::clock_overhead_ns());

    let mut results = Vec::new();
    for scenario in plan.scenarios(args.threads) {
        results.extend(run_scenario(&workload, &scenario, args.quiet)?);
    }
    if plan.small_files > 0 {
        results.extend(run_small_files(plan.small_files, args.quiet)?);
    }
    if !args.no_writes {
        results.extend(run_writes(&plan, args.quiet)?);
    }

    let verdicts = verdict::scenario_verdicts(&results);
    let advice = advice::advice_checks(&verdicts);
    report::print_tables(&results, &verdicts);
    report::print_advice_checks(&advice);
    if let Some(path) = &args.json {
        report::write_json(path, &workload.path, workload.len, workload.generated, &results, &verdicts, &advice)?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "mmapkit bench: {} of {} (higher is better)",
            if workload.generated { "generated file" } else { "file" },
            crate::common::units::format_bytes(workload.len)
        );
        plot::draw(path, &title, &results, &verdicts)?;
    }
    Ok(())
}

/// Runs `work`, returning its run with the seconds and page faults it took.
fn measure(work: impl FnOnce() -> anyhow::Result<methods::Run>) -> anyhow::Result<(methods::Run, f64, PageFaults)> {
    let faults_before = PageFaults::now()?;
    let start = Instant::now();
    let run = work()?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((run, seconds, PageFaults::now()? - faults_before))
}

/// Fails unless every method of a scenario read the same bytes.
fn check_checksums(scenario: &Scenario, rows: &[Measurement]) -> anyhow::Result<()> {
    if let Some(first) = rows.first()
        && let Some(odd) = rows.iter().find(|m| m.checksum != first.checksum)
    {
        bail!(
            "checksums disagree in {}: {} read {:#x} but {} read {:#x}; the file changed during the run, or a method is wrong",
            scenario.title(),
            first.method,
            first.checksum,
            odd.method,
            odd.checksum
        );
    }
    Ok(())
}

fn run_scenario(workload: &Workload, scenario: &Scenario, quiet: bool) -> anyhow::Result<Vec<Measurement>> {
    let subject = Subject { path: &workload.path, file: &workload.file, len: workload.len };
    let offsets = match scenario.pattern {
        Pattern::Random { block } => workload.offsets(block, scenario.ops, block as u64),
        _ => Vec::new(),
    };
    let prepare = |bar: &ProgressBar| match scenario.cache {
        Cache::Warm => {
            let resident = workload.make_warm()?;
            if resident < 0.99 {
                bar.suspend(|| {
                    eprintln!(
                        "mmapkit: only {:.0}% of {} fits in the page cache; \"warm\" runs read some of it from disk",
                        resident * 100.0,
                        workload.path.display()
                    )
                });
            }
            Ok(true)
        }
        Cache::Cold => Ok(workload.make_cold()?.0),
        Cache::Limited(_) => bail!("{} runs only under --memory-limit", scenario.title()),
    };
    run_methods(scenario, quiet, prepare, |method| methods::run(&subject, scenario, method, &offsets))
}

fn run_small_files(count: usize, quiet: bool) -> anyhow::Result<Vec<Measurement>> {
    let files = SmallFiles::create(count, SMALL_FILE_BYTES, &progress_bar(quiet))?;
    let scenario = Scenario {
        pattern: Pattern::SmallFiles { file_bytes: SMALL_FILE_BYTES },
        cache: Cache::Warm,
        threads: 1,
        ops: count,
    };
    run_methods(&scenario, quiet, |_| Ok(true), |method| files.run(method))
}

fn run_writes(plan: &Plan, quiet: bool) -> anyhow::Result<Vec<Measurement>> {
    let files = writes::WriteFiles::create(plan.write_file_bytes)?;
    let mut results = Vec::new();
    for scenario in plan.write_scenarios() {
        // The first method may stop at the time cap; the others then write as many records.
        let ops = std::cell::Cell::new(scenario.ops);
        let first = std::cell::Cell::new(true);
        let rows = run_methods(
            &scenario,
            quiet,
            |_| Ok(true),
            |method| {
                let mut n = ops.get();
                let run = writes::run(&files, &scenario, method, &mut n, first.replace(false))?;
                ops.set(n);
                Ok(run)
            },
        )?;
        results.extend(rows);
    }
    Ok(results)
}

/// Runs every method of `scenario`: `prepare` sets the cache state before each
/// (and says whether a cold state was verified), `run` reads; the methods must
/// agree on the checksum.
fn run_methods(
    scenario: &Scenario,
    quiet: bool,
    prepare: impl Fn(&ProgressBar) -> anyhow::Result<bool>,
    run: impl Fn(Method) -> anyhow::Result<methods::Run>,
) -> anyhow::Result<Vec<Measurement>> {
    let methods = Method::for_pattern(scenario.pattern);
    let bar = progress_bar(quiet);
    bar.set_length(methods.len() as u64);
    let mut rows = Vec::new();
    for &method in methods {
        bar.set_message(format!("{}: {}", scenario.label(), method.name()));
        let cold_verified = prepare(&bar)?;
        let (result, seconds, faults) = measure(|| run(method))?;
        rows.push(Measurement::new(scenario, method, result, seconds, faults, cold_verified));
        bar.inc(1);
    }
    bar.finish_and_clear();
    check_checksums(scenario, &rows)?;
    Ok(rows)
}
