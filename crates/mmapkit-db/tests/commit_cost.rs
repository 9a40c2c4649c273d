//! What a commit costs must not grow with the pages waiting for a long-lived
//! reader. With one reader held across thousands of single-update commits on
//! a table of 100,000 keys (so that the pending pages lie in thousands of
//! separate extents between the pages still in use), the bytes each hundred
//! commits write and the heap bytes they allocate stay what they were early on.
//! Heap bytes are counted by this binary's allocator, per thread.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use mmapkit_db::{Database, PAGE_SIZE, Storage};
use support::Rng;

/// The system allocator, counting the bytes each thread asks for.
struct CountingAlloc;

thread_local! {
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // During thread teardown the counter may be gone: those bytes are not a commit's.
    let _ = ALLOCATED.try_with(|a| a.set(a.get() + bytes as u64));
}

// SAFETY: every call is passed to `System` unchanged; the counter neither
// allocates nor unwinds.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size.saturating_sub(layout.size()));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocated() -> u64 {
    ALLOCATED.with(Cell::get)
}

/// Counts the bytes written; syncs are skipped (durability is not under test).
#[derive(Clone, Default)]
struct Counting(Arc<Mutex<u64>>);

impl Counting {
    fn written(&self) -> u64 {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Storage for Counting {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) += buf.len() as u64;
        file.write_all_at(buf, offset)
    }

    fn sync(&self, _file: &File) -> io::Result<()> {
        Ok(())
    }
}

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

#[test]
fn a_commits_writes_and_allocations_do_not_grow_with_the_pages_a_reader_holds() {
    const KEYS: u64 = 100_000;
    const COMMITS: usize = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cost.db");
    let storage = Counting::default();
    // SAFETY: a private temporary file; this process is its only user.
    let db = unsafe { Database::builder().storage(storage.clone()).create(&path) }.unwrap();
    let mut txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table("t").unwrap();
        for i in 0..KEYS {
            t.insert(&key(i), &support::bytes(i, 100)).unwrap();
        }
    }
    txn.commit().unwrap();
    let reader = db.begin_read().unwrap();

    let mut rng = Rng::new(0xC057);
    // Per hundred commits: pages written, heap bytes allocated.
    let mut hundreds: Vec<(u64, u64)> = Vec::new();
    let (mut written, mut heap) = (storage.written(), allocated());
    for i in 1..=COMMITS {
        let mut txn = db.begin_write().unwrap();
        let k = rng.below(KEYS);
        txn.open_table("t").unwrap().insert(&key(k), &support::bytes(k + i as u64, 100)).unwrap();
        txn.commit().unwrap();
        if i % 100 == 0 {
            let (w, h) = (storage.written(), allocated());
            hundreds.push(((w - written) / PAGE_SIZE as u64, h - heap));
            (written, heap) = (w, h);
        }
    }
    let stats = db.stats().unwrap();
    drop(reader);
    println!("{} pages pending; per hundred commits (pages written, heap bytes): {hundreds:?}", stats.pending_pages);
    assert!(stats.pending_pages > 10_000, "only {} pages pending: {stats:?}", stats.pending_pages);
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    // From the tenth hundred on, the tree's depth and the set of pages a
    // commit copies are settled. Heap bytes are compared a thousand commits
    // at a time: growing a collection doubles it now and then.
    let early = hundreds[9].0;
    for (n, &(pages, _)) in hundreds.iter().enumerate().skip(10) {
        assert!(pages <= early + early / 5, "hundred {n} wrote {pages} pages, the tenth {early}: {hundreds:?}");
    }
    let heap = |from: usize| hundreds[from..from + 10].iter().map(|h| h.1).sum::<u64>();
    let (second, third) = (heap(10), heap(20));
    assert!(
        third <= second + second / 2,
        "commits 2,001-3,000 allocated {third} heap bytes, 1,001-2,000 {second}: {hundreds:?}"
    );
}
