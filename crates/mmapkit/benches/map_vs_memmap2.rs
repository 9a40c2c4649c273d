//! mmapkit's `Map` against memmap2's `Mmap`, side by side in one process.
//!
//! Each case runs mmapkit and memmap2 in alternating batches (A B, B A, ...)
//! for many rounds and reports the median time of each and the median of the
//! per-round ratios, with its 10th-90th percentile spread. Interleaving keeps
//! the drift of a shared, noisy machine out of the ratio.
//!
//! Cases: map+unmap of a 4 KiB file (guarded, which includes registering with
//! the fault guard, and unguarded) and open+map+unmap by path (unguarded, so
//! that what it adds is the path the map keeps for its errors); random 8-byte
//! reads over a warm 1 GiB map (plain slice reads, one `checked` call per
//! read, one `checked` per batch);
//! a sequential scan (plain, and inside `checked`); map+touch+unmap of the
//! whole file.
//!
//! Run: `cargo bench -p mmapkit --bench map_vs_memmap2`
//! (`MMAPKIT_BENCH_BYTES` sets the large file's size, default 1 GiB;
//! `MMAPKIT_BENCH_ROUNDS` the rounds per case, default 31.)

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

const READS_PER_BATCH: usize = 65_536;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A file of `len` pseudorandom bytes in a temp dir (kept alive by the returned guard).
fn make_file(len: usize) -> (tempfile::TempDir, File) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.bin");
    let mut out = std::io::BufWriter::new(File::create(&path).unwrap());
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_ne_bytes());
        }
        let n = left.min(chunk.len());
        out.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
    drop(out);
    (dir, File::open(&path).unwrap())
}

fn random_offsets(len: usize, count: usize) -> Vec<usize> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state as usize % (len - 8)) & !7
        })
        .collect()
}

#[inline]
fn value_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_ne_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

fn read_at(bytes: &[u8], offsets: &[usize]) -> u64 {
    offsets.iter().fold(0u64, |acc, &o| acc.wrapping_add(value_at(bytes, o)))
}

fn scan(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(8).fold(0u64, |acc, w| acc.wrapping_add(u64::from_ne_bytes(w.try_into().unwrap())))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Times `ours` against `theirs` in alternating batches and prints one row.
fn compare(
    case: &str,
    unit: &str,
    per_batch: f64,
    rounds: usize,
    mut ours: impl FnMut() -> u64,
    mut theirs: impl FnMut() -> u64,
) {
    let time = |f: &mut dyn FnMut() -> u64| {
        let start = Instant::now();
        black_box(f());
        start.elapsed().as_secs_f64()
    };
    // One warm-up batch each.
    time(&mut ours);
    time(&mut theirs);
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (ta, tb) = if round % 2 == 0 {
            let ta = time(&mut ours);
            (ta, time(&mut theirs))
        } else {
            let tb = time(&mut theirs);
            (time(&mut ours), tb)
        };
        a.push(ta);
        b.push(tb);
        ratios.push(ta / tb);
    }
    for v in [&mut a, &mut b, &mut ratios] {
        v.sort_by(f64::total_cmp);
    }
    let per = |t: f64| t / per_batch * 1e9;
    println!(
        "{case:<34} {:>10.1} {:>10.1} {unit:<6} {:>7.3}  [{:.3}, {:.3}]",
        per(percentile(&a, 0.5)),
        per(percentile(&b, 0.5)),
        percentile(&ratios, 0.5),
        percentile(&ratios, 0.1),
        percentile(&ratios, 0.9),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then
    // there is nothing to measure.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds = env_or("MMAPKIT_BENCH_ROUNDS", 31);
    let len = env_or("MMAPKIT_BENCH_BYTES", 1 << 30);
    println!("mmapkit vs memmap2, {rounds} interleaved rounds per case; times are medians per operation");
    println!("{:<34} {:>10} {:>10} {:<6} {:>7}  [p10, p90]", "case", "mmapkit", "memmap2", "unit", "ratio");

    let (small_dir, small) = make_file(4096);
    let n = 2_000;
    compare(
        "map+unmap 4 KiB (guarded)",
        "ns",
        n as f64,
        rounds,
        // SAFETY: the bench owns the file; nothing modifies it.
        || (0..n).map(|_| unsafe { mmapkit::Map::new(&small) }.unwrap().len() as u64).sum(),
        // SAFETY: as above.
        || (0..n).map(|_| unsafe { memmap2::Mmap::map(&small) }.unwrap().len() as u64).sum(),
    );
    compare(
        "map+unmap 4 KiB (unguarded)",
        "ns",
        n as f64,
        rounds,
        || {
            let mut options = mmapkit::MapOptions::new();
            options.unguarded(true);
            // SAFETY: as above.
            (0..n).map(|_| unsafe { options.map(&small) }.unwrap().len() as u64).sum()
        },
        // SAFETY: as above.
        || (0..n).map(|_| unsafe { memmap2::Mmap::map(&small) }.unwrap().len() as u64).sum(),
    );
    // By path: the map keeps the path it was opened by, for its errors (a
    // descriptor's path is looked up only when an error is made).
    let small_path = small_dir.path().join("bench.bin");
    compare(
        "open+map+unmap 4 KiB (unguarded)",
        "ns",
        n as f64,
        rounds,
        || {
            let mut options = mmapkit::MapOptions::new();
            options.unguarded(true);
            // SAFETY: as above.
            (0..n).map(|_| unsafe { options.open(&small_path) }.unwrap().len() as u64).sum()
        },
        || {
            (0..n)
                .map(|_| {
                    let file = File::open(&small_path).unwrap();
                    // SAFETY: as above.
                    unsafe { memmap2::Mmap::map(&file) }.unwrap().len() as u64
                })
                .sum()
        },
    );

    let (_dir, file) = make_file(len);
    // SAFETY: as above.
    let ours = unsafe { mmapkit::Map::new(&file) }.unwrap();
    // SAFETY: as above.
    let theirs = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    // Warm both: every page in the page cache and in both page tables.
    assert_eq!(scan(&ours), scan(&theirs));
    let offsets = random_offsets(len, READS_PER_BATCH);
    let reads = READS_PER_BATCH as f64;
    compare("random 8 B read (slice)", "ns", reads, rounds, || read_at(&ours, &offsets), || read_at(&theirs, &offsets));
    compare(
        "random 8 B read (checked each)",
        "ns",
        reads,
        rounds,
        || {
            offsets.iter().fold(0u64, |acc, &o| {
                acc.wrapping_add(ours.checked(|bytes| value_at(bytes, o)).expect("nobody truncates this file"))
            })
        },
        || read_at(&theirs, &offsets),
    );
    compare(
        "random 8 B read (checked batch)",
        "ns",
        reads,
        rounds,
        || ours.checked(|bytes| read_at(bytes, &offsets)).expect("nobody truncates this file"),
        || read_at(&theirs, &offsets),
    );
    let gib = len as f64 / f64::from(1u32 << 30);
    compare("sequential scan (slice)", "ms/GiB", gib * 1e6, rounds, || scan(&ours), || scan(&theirs));
    compare(
        "sequential scan (checked)",
        "ms/GiB",
        gib * 1e6,
        rounds,
        || ours.checked(scan).expect("nobody truncates this file"),
        || scan(&theirs),
    );
    let page = mmapkit::page_size();
    let touch = |bytes: &[u8]| bytes.iter().step_by(page).fold(0u64, |a, &b| a ^ u64::from(b));
    compare(
        "map+touch+unmap 1 GiB (guarded)",
        "ms/GiB",
        gib * 1e6,
        rounds.min(11),
        // SAFETY: as above.
        || touch(&unsafe { mmapkit::Map::new(&file) }.unwrap()),
        // SAFETY: as above.
        || touch(&unsafe { memmap2::Mmap::map(&file) }.unwrap()),
    );
}
