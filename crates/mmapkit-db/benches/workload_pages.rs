//! The write steps of `mmapkit-compare db` on one database, with the file's
//! figures after each: how many pages the tree and the free pages take, and
//! how long the file is.
//!
//! The steps: `N` inserts of 24-byte pseudo-random keys with 150-byte values
//! in one transaction, `N / 1000` durable one-insert commits, `N / 10_000`
//! durable commits of 1,000 inserts, as many commits of 1,000 updates of
//! existing keys, then the removal of the first half of the keys inserted
//! (one `remove` per key, in one transaction), and a `retain` of the even
//! last bytes, with a `compact_to` a new file before it (the database goes on
//! uncompacted, as in the compare). After each step it prints the wall time, the used pages, the
//! free and pending pages, the file's length and what `check` finds in use;
//! the leaves' count and fill come from a walk of the tree.
//!
//! `MMAPKIT_DB_BENCH_ONLY=removals` (or `compact`, `retain`) runs the steps before that
//! one without printing, then that step alone, for callgrind:
//! `MMAPKIT_DB_BENCH_ONLY=none` runs only the steps before the removals, whose
//! count is then taken off (`compact-none`, `retain-none`: those before the
//! `compact`, the `retain`).
//!
//! Run: `cargo bench -p mmapkit-db --bench workload_pages`
//! (`MMAPKIT_DB_BENCH_ENTRIES` sets `N`, default 1,000,000;
//! `MMAPKIT_DB_BENCH_DIR` the directory, default the system temporary one;
//! `MMAPKIT_DB_BENCH_COMPACTIONS` how many times the compaction runs, default 1).

use std::time::Instant;

use mmapkit_db::{Database, PAGE_SIZE};

const TABLE: &str = "t";

/// The `i`th key: 24 pseudo-random bytes (SplitMix64 of the position).
fn key(i: u64) -> [u8; 24] {
    let mut out = [0u8; 24];
    for (k, chunk) in out.chunks_mut(8).enumerate() {
        let mut z = (3 * i + k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

fn value(i: u64, version: u8) -> [u8; 150] {
    let mut v = [i as u8; 150];
    v[0] = version;
    v
}

fn report(db: &Database, step: &str, ms: f64) {
    let s = db.stats().unwrap();
    let c = db.check().unwrap();
    assert!(c.is_clean(), "{step}: {:?}", c.problems.first());
    let mib = |pages: u64| (pages * PAGE_SIZE as u64) as f64 / (1 << 20) as f64;
    println!(
        "{step:<24} {ms:>9.1} ms  pages {:>7} ({:>7.1} MiB)  in use {:>7}  free {:>7}  pending {:>7}  file {:>7.1} MiB",
        s.page_count,
        mib(s.page_count),
        c.pages_in_use,
        s.free_pages,
        s.pending_pages,
        s.file_bytes as f64 / (1 << 20) as f64
    );
}

/// Inserts items `range` (their values' `version`) in one durable commit.
fn insert(db: &Database, range: std::ops::Range<u64>, version: u8) {
    let mut w = db.begin_write().unwrap();
    let mut t = w.open_table(TABLE).unwrap();
    for i in range {
        t.insert(&key(i), &value(i, version)).unwrap();
    }
    drop(t);
    w.commit().unwrap();
}

fn main() {
    let n: u64 = std::env::var("MMAPKIT_DB_BENCH_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let only = std::env::var("MMAPKIT_DB_BENCH_ONLY").ok();
    let base = std::env::var_os("MMAPKIT_DB_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(base).unwrap();
    // The step measured alone, and whether it runs (`none`: only those before it).
    let (alone, run_it) = match only.as_deref() {
        None => (None, true),
        Some("none") => (Some("removals"), false),
        Some("retain-none") => (Some("retain"), false),
        Some("compact-none") => (Some("compact"), false),
        Some(case @ ("removals" | "compact" | "retain")) => (Some(case), true),
        Some(other) => panic!("unknown case {other:?}"),
    };
    let mut builder = Database::builder();
    // A reservation of 4 GiB, which valgrind's address space allows.
    builder.max_size(4 << 30);
    // SAFETY: the file is this process's own, in a fresh temporary directory.
    let db = unsafe { builder.create(dir.path().join("pages.db")) }.unwrap();
    let (individual, batches) = (n / 1_000, n / 10_000);
    let total = n + individual + batches * 1_000;
    let first = n + individual;
    let dir_path = dir.path().to_path_buf();
    let compactions: u32 = std::env::var("MMAPKIT_DB_BENCH_COMPACTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    type Work = Box<dyn Fn(&Database)>;
    let steps: Vec<(&str, Work)> = vec![
        ("bulk", Box::new(move |db| insert(db, 0..n, 0))),
        ("individual", Box::new(move |db| (n..n + individual).for_each(|i| insert(db, i..i + 1, 0)))),
        (
            "batches",
            Box::new(move |db| (0..batches).for_each(|b| insert(db, first + b * 1_000..first + (b + 1) * 1_000, 0))),
        ),
        (
            "updates",
            Box::new(move |db| {
                for b in 0..batches {
                    let mut w = db.begin_write().unwrap();
                    let mut t = w.open_table(TABLE).unwrap();
                    for k in 0..1_000 {
                        let i = (b * 1_000 + k).wrapping_mul(0x9e37_79b9) % total;
                        t.insert(&key(i), &value(i, 1)).unwrap();
                    }
                    drop(t);
                    w.commit().unwrap();
                }
            }),
        ),
        (
            "removals",
            Box::new(move |db| {
                let mut w = db.begin_write().unwrap();
                let mut t = w.open_table(TABLE).unwrap();
                let start = Instant::now();
                let removed = (0..total / 2).filter(|&i| t.remove(&key(i)).unwrap()).count() as u64;
                assert_eq!(removed, total / 2);
                drop(t);
                let removing = start.elapsed();
                w.commit().unwrap();
                let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
                println!(
                    "removals: {:.1} ms removing, {:.1} ms committing",
                    ms(removing),
                    ms(start.elapsed() - removing)
                );
            }),
        ),
        (
            "compact",
            Box::new(move |db| {
                // A new file each time; the database goes on as it was.
                for _ in 0..compactions {
                    let copy = dir_path.join(format!("compacted-{}.db", std::process::id()));
                    let start = Instant::now();
                    db.compact_to(&copy).unwrap();
                    let ms = start.elapsed().as_secs_f64() * 1e3;
                    let len = std::fs::metadata(&copy).unwrap().len();
                    println!("compact: {ms:.1} ms, a file of {:.2} MiB", len as f64 / (1 << 20) as f64);
                    std::fs::remove_file(&copy).unwrap();
                }
            }),
        ),
        (
            "retain",
            Box::new(|db| {
                let mut w = db.begin_write().unwrap();
                let mut t = w.open_table(TABLE).unwrap();
                let start = Instant::now();
                assert!(t.retain(|k, _| k[23] % 2 == 0).unwrap() > 0);
                drop(t);
                let retaining = start.elapsed();
                w.commit().unwrap();
                let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
                println!(
                    "retain: {:.1} ms retaining, {:.1} ms committing",
                    ms(retaining),
                    ms(start.elapsed() - retaining)
                );
            }),
        ),
    ];
    for (name, work) in &steps {
        let measured = alone.is_none_or(|case| case == *name);
        // The compaction changes nothing in the database; another step alone
        // (under callgrind, whose address space a copy's reservation may not
        // fit in) goes without it.
        if *name == "compact" && alone.is_some_and(|case| case != "compact") {
            continue;
        }
        if measured && !run_it {
            return;
        }
        let start = Instant::now();
        work(&db);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if alone.is_some() {
            // Alone (under callgrind), only the step itself is counted.
            if measured {
                println!("{name:<24} {ms:>9.1} ms");
            }
        } else {
            report(&db, name, ms);
        }
        if alone.is_some() && measured {
            return;
        }
    }
}
