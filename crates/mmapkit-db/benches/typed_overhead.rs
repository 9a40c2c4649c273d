//! What the typed API adds to the raw one, per operation: gets and inserts
//! of the same bytes through a raw table and through a
//! `TableDefinition<&[u8], &[u8]>`, in one process, side by side.
//!
//! A database of `N` entries (24-byte pseudo-random keys, 150-byte values)
//! is loaded raw, then each of the four cases runs `N` operations in one
//! transaction: gets of every key in a shuffled order, and inserts of new
//! keys (a transaction that is dropped, not committed, so each case starts
//! from the same tree). Each case is timed over five passes, the median
//! printed with the typed/raw ratio.
//!
//! Wall times on a shared machine move; instruction counts do not. Run one
//! case under callgrind to count it: `MMAPKIT_DB_BENCH_ONLY=typed-get` (or
//! `raw-get`, `raw-insert`, `typed-insert`) runs only that case, once, and
//! `MMAPKIT_DB_BENCH_ONLY=none` only the load, whose count is then taken off.
//!
//! Run: `cargo bench -p mmapkit-db --bench typed_overhead`
//! (`MMAPKIT_DB_BENCH_ENTRIES` sets `N`, default 200,000).

use std::time::{Duration, Instant};

use mmapkit_db::{Database, TableDefinition};

const TABLE: &str = "t";
const TYPED: TableDefinition<&[u8], &[u8]> = TableDefinition::new(TABLE);
const PASSES: usize = 5;

/// The `i`th key of the stream `stream`: 24 pseudo-random bytes.
fn key(stream: u64, i: u64) -> [u8; 24] {
    let mut out = [0u8; 24];
    let mut x = (i ^ stream.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    out
}

fn value(i: u64) -> [u8; 150] {
    [i as u8; 150]
}

/// One case: `N` operations, returning a sum of what they saw (so that none is optimised away).
fn run_case(db: &Database, case: &str, n: u64, order: &[u64]) -> u64 {
    match case {
        "raw-get" => {
            let read = db.begin_read().unwrap();
            let t = read.open_table(TABLE).unwrap();
            order.iter().map(|&i| u64::from(t.get(&key(1, i)).unwrap().expect("a loaded key")[0])).sum()
        }
        "typed-get" => {
            let read = db.begin_read().unwrap();
            let t = read.open_typed(TYPED).unwrap();
            order.iter().map(|&i| u64::from(t.get(&key(1, i)[..]).unwrap().expect("a loaded key")[0])).sum()
        }
        "raw-insert" => {
            let mut write = db.begin_write().unwrap();
            let mut t = write.open_table(TABLE).unwrap();
            for i in 0..n {
                t.insert(&key(2, i), &value(i)).unwrap();
            }
            t.len()
        }
        "typed-insert" => {
            let mut write = db.begin_write().unwrap();
            let mut t = write.open_typed(TYPED).unwrap();
            let mut replaced = 0;
            for i in 0..n {
                replaced += u64::from(t.insert(&key(2, i)[..], &value(i)[..]).unwrap().is_some());
            }
            assert_eq!(replaced, 0, "the inserted keys are new");
            t.len()
        }
        other => panic!("unknown case {other:?}"),
    }
}

fn main() {
    let n: u64 = std::env::var("MMAPKIT_DB_BENCH_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let only = std::env::var("MMAPKIT_DB_BENCH_ONLY").ok();
    let dir = tempfile::tempdir().unwrap();
    // A reservation of 4 GiB, which valgrind's address space allows.
    let mut builder = Database::builder();
    builder.max_size(4 << 30);
    // SAFETY: the file is this process's own, in a fresh temporary directory.
    let db = unsafe { builder.create(dir.path().join("typed.db")) }.unwrap();
    {
        let mut write = db.begin_write().unwrap();
        // The typed table's records are made once, so the raw and typed cases share one tree.
        drop(write.open_typed(TYPED).unwrap());
        let mut t = write.open_table(TABLE).unwrap();
        for i in 0..n {
            t.insert(&key(1, i), &value(i)).unwrap();
        }
        drop(t);
        write.commit().unwrap();
    }
    // Every key once, in a shuffled order.
    let mut order: Vec<u64> = (0..n).collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    if let Some(case) = only.as_deref() {
        if case != "none" {
            std::hint::black_box(run_case(&db, case, n, &order));
        }
        return;
    }
    println!("{n} entries (24-byte keys, 150-byte values); medians of {PASSES} passes of {n} operations each");
    for (raw, typed) in [("raw-get", "typed-get"), ("raw-insert", "typed-insert")] {
        let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..PASSES {
            for (k, case) in [raw, typed].into_iter().enumerate() {
                let start = Instant::now();
                std::hint::black_box(run_case(&db, case, n, &order));
                times[k].push(start.elapsed());
            }
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (r, t) = (median(&mut times[0]), median(&mut times[1]));
        let per = |d: Duration| d.as_nanos() as f64 / n as f64;
        println!(
            "{raw:<12} {:>8.1} ns/op   {typed:<12} {:>8.1} ns/op   typed / raw {:.3}x",
            per(r),
            per(t),
            t.as_secs_f64() / r.as_secs_f64()
        );
    }
}
