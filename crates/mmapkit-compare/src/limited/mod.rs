//! `db --memory-limit SIZE`: random gets from a database larger than the
//! memory its reader may use. Each engine's database is loaded (in this
//! process, with no limit), dropped from the page cache, then read by a child
//! process inside a memory cgroup of its own limited to SIZE, for a fixed
//! time, on one thread and on N. redb, which keeps its own page cache, is
//! given a quarter of the limit for it.

pub mod child;

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use mmapkit_cli::memory_cgroup::{Hierarchy, MemoryCgroup, run_in_cgroup};
use mmapkit_cli::timed::{self, ChildLine, Tick, Totals};
use serde::Serialize;

use crate::data::{Items, KEY_LEN, VALUE_LEN};
use crate::engines::{self, Engine, EngineKind, EngineWork, Opening};
use crate::own_process::{self, DatabaseArgs};

/// Items per write transaction while loading.
const LOAD_BATCH: u64 = 250_000;
/// The number of the items' stream: the same items for every engine.
const ITEMS_STREAM: u64 = 3;

/// What a limited comparison runs.
#[derive(Debug, Clone)]
pub struct LimitedPlan {
    pub limit: u64,
    pub items: u64,
    pub seconds: f64,
    pub threads: usize,
}

impl LimitedPlan {
    /// Items whose values alone take 4x `limit`: every engine's file is larger still.
    pub fn default_items(limit: u64) -> u64 {
        (limit.saturating_mul(4)).div_ceil(VALUE_LEN as u64)
    }

    /// The page cache redb is given: a quarter of the limit.
    fn redb_cache(&self) -> usize {
        (self.limit / 4) as usize
    }
}

/// One engine's reads on some threads under the limit.
#[derive(Debug, Clone, Serialize)]
pub struct LimitedRun {
    pub engine: EngineKind,
    /// LMDB opened with `MDB_NORDAHEAD` (its map advised `MADV_RANDOM`): not a peer, a check of the cause.
    pub lmdb_no_read_ahead: bool,
    pub threads: usize,
    pub file_bytes: u64,
    pub limit_in_force: u64,
    pub peak_bytes: Option<u64>,
    pub cache_bytes: Option<usize>,
    pub steady_gets_per_sec: f64,
    pub mean_gets_per_sec: f64,
    pub ticks: Vec<Tick>,
    pub totals: Totals,
}

impl LimitedRun {
    /// The engine's name, with `+nordahead` for LMDB opened with `MDB_NORDAHEAD`.
    fn name(&self) -> String {
        if self.lmdb_no_read_ahead { format!("{}+nordahead", self.engine) } else { self.engine.name().to_owned() }
    }

    fn disk_kib_per_get(&self) -> Option<f64> {
        self.totals.disk_read_bytes.map(|b| b as f64 / 1024.0 / self.totals.ops.max(1) as f64)
    }
}

/// Parses a size such as `256M`, `256MiB`, `1G` or `4096` (bytes; K, M and G are powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        other => return Err(format!("invalid size {text:?}: unknown unit {other:?} (use K, M or G)")),
    };
    let value: u64 = number.parse().map_err(|_| format!("invalid size {text:?}: expected a number like 256M"))?;
    value.checked_shl(shift).filter(|v| v >> shift == value && *v > 0).ok_or_else(|| format!("invalid size {text:?}"))
}

/// Runs the limited comparison of `engines` in `dir`, printing each run as it
/// finishes, then the table; returns the runs.
pub fn run(plan: &LimitedPlan, engines: &[EngineKind], dir: &Path) -> Result<Vec<LimitedRun>> {
    let hierarchy = Hierarchy::find().context("--memory-limit cannot be used here")?;
    MemoryCgroup::create(&hierarchy, "mmapkit-compare-probe", plan.limit)
        .and_then(MemoryCgroup::remove)
        .context("--memory-limit cannot be used here")?;
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    eprintln!(
        "{} items ({KEY_LEN}-byte keys, {VALUE_LEN}-byte values) per engine; reads in a memory cgroup of {:.0} MiB \
         ({}, under {}), {} s per run; redb's cache: {:.0} MiB",
        plan.items,
        mib(plan.limit),
        hierarchy.version.name(),
        hierarchy.parent.display(),
        plan.seconds,
        mib(plan.redb_cache() as u64)
    );
    let mut runs = Vec::new();
    let mut thread_counts = vec![1];
    if plan.threads > 1 {
        thread_counts.push(plan.threads);
    }
    for &engine in engines {
        let engine_dir = dir.join(engine.name());
        std::fs::create_dir(&engine_dir).with_context(|| format!("creating {}", engine_dir.display()))?;
        let started = std::time::Instant::now();
        engines::with_engine(
            engine,
            &engine_dir,
            Opening { create: true, ..Opening::default() },
            Load { items: plan.items },
        )
        .with_context(|| format!("loading {engine}"))?;
        let path = engines::db_path(engine, &engine_dir);
        let file_bytes = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?.len();
        eprintln!(
            "{engine:<10} loaded in {:.1} s: {:.0} MiB, {:.1}x the limit",
            started.elapsed().as_secs_f64(),
            mib(file_bytes),
            file_bytes as f64 / plan.limit as f64
        );
        if file_bytes < plan.limit.saturating_mul(4) {
            eprintln!("{engine:<10} note: the file is less than 4x the limit; use more --items");
        }
        // LMDB again with MDB_NORDAHEAD: the same map, advised MADV_RANDOM.
        let variants: &[bool] = if engine == EngineKind::Lmdb { &[false, true] } else { &[false] };
        for (&threads, &no_read_ahead) in thread_counts.iter().flat_map(|t| variants.iter().map(move |v| (t, v))) {
            let db = Loaded { engine, dir: &engine_dir, path: &path, file_bytes };
            let run = run_engine(plan, &hierarchy, &db, threads, no_read_ahead)?;
            eprintln!(
                "{:<14} {threads} thread(s): steady {:.0} gets/s, mean {:.0}, {} major faults ({:.2} per get), \
                 {} KiB read from disk per get, peak memory {}",
                run.name(),
                run.steady_gets_per_sec,
                run.mean_gets_per_sec,
                run.totals.major_faults,
                run.totals.major_faults as f64 / run.totals.ops.max(1) as f64,
                run.disk_kib_per_get().map_or_else(|| "-".to_owned(), |k| format!("{k:.1}")),
                run.peak_bytes.map_or_else(|| "-".to_owned(), |p| format!("{:.0} MiB", mib(p)))
            );
            runs.push(run);
        }
        std::fs::remove_dir_all(&engine_dir).with_context(|| format!("removing {}", engine_dir.display()))?;
    }
    Ok(runs)
}

/// Drops `path` from the page cache, then reads it in a child inside a new cgroup.
fn run_engine(
    plan: &LimitedPlan,
    hierarchy: &Hierarchy,
    db: &Loaded<'_>,
    threads: usize,
    lmdb_no_read_ahead: bool,
) -> Result<LimitedRun> {
    let Loaded { engine, dir, path, file_bytes } = *db;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    mmapkit::page_cache::evict(&file).with_context(|| format!("dropping {} from the page cache", path.display()))?;
    let exe = own_process::own_binary()?;
    let cache = plan.redb_cache();
    let database = DatabaseArgs::new(engine, dir, plan.items, ITEMS_STREAM);
    let command = |cgroup: &Path| {
        let mut command = database.command(&exe, "db-child");
        command
            .arg("--cgroup")
            .arg(cgroup)
            .args(["--threads", &threads.to_string(), "--seconds", &plan.seconds.to_string()])
            .args(["--cache-bytes", &cache.to_string()]);
        if lmdb_no_read_ahead {
            command.arg("--lmdb-no-read-ahead");
        }
        command
    };
    let mut ticks = Vec::new();
    let mut totals = None;
    let outcome = run_in_cgroup(hierarchy, "mmapkit-compare", plan.limit, command, |line| {
        match serde_json::from_str::<ChildLine>(line)
            .with_context(|| format!("the child process wrote {line:?}, not a result line"))?
        {
            ChildLine::Tick(tick) => ticks.push(tick),
            ChildLine::Done(done) => totals = Some(done),
        }
        Ok(())
    })
    .with_context(|| format!("{engine} under the memory limit"))?;
    let totals = totals.with_context(|| format!("the {engine} child ended without its totals"))?;
    let mean = totals.ops as f64 / totals.seconds.max(1e-9);
    Ok(LimitedRun {
        engine,
        lmdb_no_read_ahead,
        threads,
        file_bytes,
        limit_in_force: outcome.limit_in_force,
        peak_bytes: outcome.peak,
        cache_bytes: (engine == EngineKind::Redb).then_some(cache),
        steady_gets_per_sec: timed::steady_rate(&ticks).unwrap_or(mean),
        mean_gets_per_sec: mean,
        ticks,
        totals,
    })
}

/// A database loaded and ready to be read.
#[derive(Clone, Copy)]
struct Loaded<'a> {
    engine: EngineKind,
    /// Its engine's directory.
    dir: &'a Path,
    /// Its file.
    path: &'a Path,
    file_bytes: u64,
}

/// Inserts items `0..items` in durable batches.
struct Load {
    items: u64,
}

impl EngineWork for Load {
    type Output = ();

    fn run<E: Engine>(self, engine: &mut E) -> Result<()> {
        let items = Items::new(ITEMS_STREAM);
        let began = std::time::Instant::now();
        let mut last_report = began;
        let mut start = 0;
        while start < self.items {
            let end = (start + LOAD_BATCH).min(self.items);
            crate::workload::insert_batch(engine, &items, start..end)?;
            start = end;
            // A line every 10 seconds, so that a long load is never silent.
            if last_report.elapsed().as_secs() >= 10 && end < self.items {
                last_report = std::time::Instant::now();
                let done = 100.0 * end as f64 / self.items as f64;
                eprintln!(
                    "{:<14} loading: {end} items ({done:.0}%) in {:.0} s",
                    engine.kind(),
                    began.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    }
}

/// The table: one row per engine and thread count.
pub fn table(runs: &[LimitedRun]) -> String {
    let mut text = format!(
        "| {:<14} | {:>7} | {:>9} | {:>12} | {:>10} | {:>14} | {:>16} | {:>9} |\n",
        "engine", "threads", "file MiB", "steady get/s", "mean get/s", "faults per get", "disk KiB per get", "peak MiB"
    );
    text.push_str(
        "|----------------|--------:|----------:|-------------:|-----------:|---------------:|-----------------:|----------:|\n",
    );
    for run in runs {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        text.push_str(&format!(
            "| {:<14} | {:>7} | {:>9.0} | {:>12.0} | {:>10.0} | {:>14.2} | {:>16} | {:>9} |\n",
            run.name(),
            run.threads,
            mib(run.file_bytes),
            run.steady_gets_per_sec,
            run.mean_gets_per_sec,
            run.totals.major_faults as f64 / run.totals.ops.max(1) as f64,
            run.disk_kib_per_get().map_or_else(|| "-".to_owned(), |k| format!("{k:.1}")),
            run.peak_bytes.map_or_else(|| "-".to_owned(), |p| format!("{:.0}", mib(p))),
        ));
    }
    text
}

/// mmapkit-db against the best peer at each thread count, and, where it
/// loses, what the measurements say about why.
pub fn verdict(runs: &[LimitedRun]) -> String {
    let mut text = String::new();
    let mut threads: Vec<usize> = runs.iter().map(|r| r.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    for t in threads {
        let at: Vec<&LimitedRun> = runs.iter().filter(|r| r.threads == t).collect();
        let Some(mine) = at.iter().find(|r| r.engine == EngineKind::MmapkitDb) else { continue };
        let Some(best) = at
            .iter()
            .filter(|r| r.engine != EngineKind::MmapkitDb && !r.lmdb_no_read_ahead)
            .max_by(|a, b| a.steady_gets_per_sec.total_cmp(&b.steady_gets_per_sec))
        else {
            continue;
        };
        let ratio = mine.steady_gets_per_sec / best.steady_gets_per_sec.max(1e-9);
        let verdict = if ratio >= 1.0 {
            format!("mmapkit-db wins, {ratio:.2}x")
        } else {
            format!("{} is {:.1}x faster", best.engine, 1.0 / ratio.max(1e-9))
        };
        text.push_str(&format!(
            "{t} thread(s): mmapkit-db {:.0} steady gets/s against {:.0} for {} ({verdict})\n",
            mine.steady_gets_per_sec, best.steady_gets_per_sec, best.engine
        ));
        if ratio < 1.0
            && let (Some(m), Some(b)) = (mine.disk_kib_per_get(), best.disk_kib_per_get())
        {
            text.push_str(&format!(
                "  it reads {m:.1} KiB from disk per get against {b:.1} KiB for {}, with {:.2} major faults per get",
                best.engine,
                mine.totals.major_faults as f64 / mine.totals.ops.max(1) as f64
            ));
            if m > 2.0 * b {
                text.push_str(
                    ": its faults bring in more than the pages a get needs, as readahead on a map with the default \
                     advice does (MADV_RANDOM on the store's map would read only the page)",
                );
            }
            text.push('\n');
            if let Some(random) = at.iter().find(|r| r.lmdb_no_read_ahead) {
                text.push_str(&format!(
                    "  LMDB's map advised MADV_RANDOM (MDB_NORDAHEAD) instead: {:.0} steady gets/s, {} KiB read from \
                     disk per get\n",
                    random.steady_gets_per_sec,
                    random.disk_kib_per_get().map_or_else(|| "-".to_owned(), |k| format!("{k:.1}"))
                ));
            }
        }
    }
    text
}

/// Fails unless the limit leaves room for the database to be larger.
pub fn check(plan: &LimitedPlan) -> Result<()> {
    if plan.items == 0 {
        bail!("--items 0: nothing to read");
    }
    if plan.threads == 0 {
        bail!("--threads 0: need at least one thread");
    }
    Ok(())
}
