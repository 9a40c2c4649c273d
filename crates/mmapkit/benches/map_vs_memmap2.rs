//! mmapkit's `Map` against memmap2's `Mmap`, side by side in one run:
//! map+unmap of a 4 KiB file, random 8-byte reads over a warm 1 GiB map, and a
//! sequential scan of it.
//!
//! Run: `cargo bench -p mmapkit --bench map_vs_memmap2`
//! (`MMAPKIT_BENCH_BYTES` changes the large file's size, default 1 GiB.)

use std::fs::File;
use std::hint::black_box;
use std::io::Write;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const READS_PER_ITER: usize = 4096;

fn large_file_len() -> usize {
    std::env::var("MMAPKIT_BENCH_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 30)
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
    let file = File::open(&path).unwrap();
    (dir, file)
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

fn read_at(bytes: &[u8], offsets: &[usize]) -> u64 {
    offsets.iter().fold(0u64, |acc, &o| acc.wrapping_add(u64::from_ne_bytes(bytes[o..o + 8].try_into().unwrap())))
}

fn scan(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(8).fold(0u64, |acc, w| acc.wrapping_add(u64::from_ne_bytes(w.try_into().unwrap())))
}

fn map_unmap(c: &mut Criterion) {
    let (_dir, file) = make_file(4096);
    let mut group = c.benchmark_group("map_unmap_4k");
    group.bench_function("mmapkit", |b| {
        // SAFETY: the bench owns the file; nothing modifies it.
        b.iter(|| black_box(unsafe { mmapkit::Map::new(&file) }.unwrap()).len())
    });
    group.bench_function("memmap2", |b| {
        // SAFETY: as above.
        b.iter(|| black_box(unsafe { memmap2::Mmap::map(&file) }.unwrap()).len())
    });
    group.finish();
}

fn large_reads(c: &mut Criterion) {
    let len = large_file_len();
    let (_dir, file) = make_file(len);
    // SAFETY: the bench owns the file; nothing modifies it.
    let ours = unsafe { mmapkit::Map::new(&file) }.unwrap();
    // SAFETY: as above.
    let theirs = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    // Warm both: every page in the page cache and in both page tables.
    assert_eq!(scan(&ours), scan(&theirs));
    let offsets = random_offsets(len, READS_PER_ITER);

    let mut group = c.benchmark_group("random_read_8b");
    group.throughput(Throughput::Elements(READS_PER_ITER as u64));
    group.bench_function("mmapkit", |b| b.iter(|| read_at(black_box(&ours), &offsets)));
    group.bench_function("memmap2", |b| b.iter(|| read_at(black_box(&theirs), &offsets)));
    group.finish();

    let mut group = c.benchmark_group("sequential_scan");
    group.throughput(Throughput::Bytes(len as u64));
    group.sample_size(10);
    group.bench_function("mmapkit", |b| b.iter(|| scan(black_box(&ours))));
    group.bench_function("memmap2", |b| b.iter(|| scan(black_box(&theirs))));
    group.finish();

    // Map, touch every page, unmap: the whole cost of a fresh mapping of a warm file.
    let mut group = c.benchmark_group("map_touch_unmap");
    group.throughput(Throughput::Bytes(len as u64));
    group.sample_size(10);
    let page = mmapkit::page_size();
    let touch = |bytes: &[u8]| bytes.iter().step_by(page).fold(0u8, |a, &b| a ^ b);
    group.bench_function("mmapkit", |b| {
        // SAFETY: as above.
        b.iter_batched(|| (), |()| touch(&unsafe { mmapkit::Map::new(&file) }.unwrap()), BatchSize::PerIteration)
    });
    group.bench_function("memmap2", |b| {
        // SAFETY: as above.
        b.iter_batched(|| (), |()| touch(&unsafe { memmap2::Mmap::map(&file) }.unwrap()), BatchSize::PerIteration)
    });
    group.finish();
}

criterion_group!(benches, map_unmap, large_reads);
criterion_main!(benches);
