//! The fault guard's registry: lookup time (what the SIGBUS handler pays to
//! find a mapping) with 100,000 live registrations, and register+remove time.
//!
//! Run: `cargo bench -p mmapkit --bench guard_registry`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mmapkit::bench_support::RegistryBench;

const LIVE: usize = 100_000;
const LOOKUPS: usize = 1024;

fn registry_with(live: usize) -> (RegistryBench, Vec<usize>) {
    let mut registry = RegistryBench::new();
    let mut addr = 0x5555_0000_0000usize;
    let mut starts = Vec::with_capacity(live);
    for i in 0..live {
        // 1 to 64 pages, packed the way the kernel places consecutive maps.
        let len = ((i * 7919) % 64 + 1) * 4096;
        registry.insert(addr, len);
        starts.push(addr + len / 2);
        addr += len;
    }
    (registry, starts)
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry_lookup");
    group.throughput(Throughput::Elements(LOOKUPS as u64));
    for live in [1_000, LIVE] {
        let (registry, addrs) = registry_with(live);
        let picks: Vec<usize> = (0..LOOKUPS).map(|i| addrs[(i * 104_729) % addrs.len()]).collect();
        assert!(picks.iter().all(|&a| registry.find(a).is_some()));
        group.bench_function(format!("{live}_live"), |b| {
            b.iter(|| picks.iter().filter(|&&a| black_box(registry.find(a)).is_some()).count())
        });
    }
    group.finish();

    let (mut registry, _) = registry_with(LIVE);
    c.bench_function("registry_insert_remove_100000_live", |b| {
        b.iter(|| {
            registry.insert(0x7000_0000_0000, 4096);
            registry.remove_last();
        })
    });
}

criterion_group!(benches, lookups);
criterion_main!(benches);
