//! Typed lookups make no heap allocation: a typed `u64` (or tuple of
//! integers) `get` and `contains_key` encode the key on the stack, a `&str`
//! key is looked up as its own bytes, in read and write transactions, and a
//! typed range allocates no more than a raw one over the same bytes. Counted
//! by a global allocator that counts this thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mmapkit_db::{Database, TableDefinition};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call goes to the system allocator unchanged; counting touches
// only a thread-local cell, which needs no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed on as it is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations this thread made while `f` ran, and what it returned.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

const IDS: TableDefinition<u64, u64> = TableDefinition::new("ids");
const PAIRS: TableDefinition<(u32, i16), u64> = TableDefinition::new("pairs");
const NAMES: TableDefinition<&str, u64> = TableDefinition::new("names");

#[test]
fn fixed_width_typed_lookups_do_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: the file is this test's own, in its own directory.
    let db = unsafe { Database::create(dir.path().join("alloc.db")) }.unwrap();
    let mut w = db.begin_write().unwrap();
    {
        let mut ids = w.open_typed(IDS).unwrap();
        for i in 0..5_000u64 {
            ids.insert(i * 3, i).unwrap();
        }
    }
    {
        let mut pairs = w.open_typed(PAIRS).unwrap();
        for i in 0..2_000u32 {
            pairs.insert((i, -7), u64::from(i)).unwrap();
        }
        let mut names = w.open_typed(NAMES).unwrap();
        names.insert("x", 1).unwrap();
    }
    {
        // In the write transaction.
        let ids = w.open_typed(IDS).unwrap();
        let (n, got) = allocations(|| ids.get(3_000).unwrap());
        assert_eq!((n, got), (0, Some(1_000)), "a typed u64 get in a write transaction");
        let (n, got) = allocations(|| ids.contains_key(3_001).unwrap());
        assert_eq!((n, got), (0, false), "a typed u64 contains_key in a write transaction");
    }
    w.commit().unwrap();

    let r = db.begin_read().unwrap();
    let ids = r.open_typed(IDS).unwrap();
    // Warm: the pages' checksums are verified on the first read of each.
    assert_eq!(ids.get(9_999).unwrap(), Some(3_333));
    for key in [0u64, 9_999, 14_997, 1, u64::MAX] {
        let (n, got) = allocations(|| ids.get(key).unwrap());
        assert_eq!(n, 0, "a typed u64 get of {key} made {n} allocations");
        assert_eq!(got, (key % 3 == 0 && key < 15_000).then_some(key / 3));
        let (n, found) = allocations(|| ids.contains_key(key).unwrap());
        assert_eq!((n, found), (0, got.is_some()), "contains_key of {key}");
    }
    let pairs = r.open_typed(PAIRS).unwrap();
    let (n, got) = allocations(|| pairs.get((1_234, -7)).unwrap());
    assert_eq!((n, got), (0, Some(1_234)), "a typed (u32, i16) get");

    // A range copies its two bounds; the typed one encodes them on the stack.
    let raw = r.open_table("ids").unwrap();
    let (lo, hi) = (30u64.to_be_bytes(), 60u64.to_be_bytes());
    let (raw_n, raw_len) = allocations(|| raw.range(&lo[..]..&hi[..]).count());
    let (typed_n, typed_len) = allocations(|| ids.range(30..60).unwrap().count());
    assert_eq!(typed_len, raw_len);
    assert_eq!(typed_len, 10);
    assert_eq!(typed_n, raw_n, "a typed range allocates more than a raw one");

    // A str key is looked up as its own bytes.
    let names = r.open_typed(NAMES).unwrap();
    let (n, got) = allocations(|| names.get("x").unwrap());
    assert_eq!(got, Some(1));
    assert_eq!(n, 0, "a typed str get made {n} allocations");
    // The counter sees what allocates.
    let (n, _) = allocations(|| std::hint::black_box(String::from("x")).len());
    assert_eq!(n, 1, "a String made {n} allocations");
}
