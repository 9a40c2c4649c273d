//! The registry of guarded mappings, which the SIGBUS handler searches.
//!
//! The handler may run on any thread at any moment, so a lookup uses atomic
//! loads only: no lock, no allocation. Registration and removal take a mutex
//! among themselves and never block a lookup.
//!
//! **Layout.** A mapping of `len` bytes at `start` is filed under level
//! `L = max(12, ceil(log2(len)))`, in the one or two aligned blocks of `2^L`
//! bytes it overlaps, keyed by `(L, block number)` in an open-addressing hash
//! table. A lookup for an address tries each level in use (at most 52 on a
//! 64-bit machine): at each, one block holds the address, so one probe
//! sequence. Lookup cost is bounded by the number of levels and does not grow
//! with the number of mappings; registration touches at most two slots.
//!
//! **Reclamation.** Removing a mapping turns its slots into tombstones but
//! keeps its record alive, and a full table is rebuilt into a new one while
//! the old stays readable: a handler that read a pointer before the change may
//! still be using it. Lookups count themselves in `readers`; retired records
//! and tables are freed by a later registration or removal that sees no lookup
//! in progress (every lookup that starts afterwards reads the new state).

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::fault::GuardedRange;

const EMPTY: u64 = 0;
const TOMBSTONE: u64 = u64::MAX;
const MIN_LEVEL: u32 = 12;
const MIN_SLOTS: usize = 1024;

struct Slot {
    key: AtomicU64,
    range: AtomicPtr<GuardedRange>,
}

struct Table {
    mask: usize,
    slots: Box<[Slot]>,
}

impl Table {
    fn with_capacity(slots: usize) -> Box<Table> {
        let slots: Box<[Slot]> =
            (0..slots).map(|_| Slot { key: AtomicU64::new(EMPTY), range: AtomicPtr::new(ptr::null_mut()) }).collect();
        Box::new(Table { mask: slots.len() - 1, slots })
    }

    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: multiply, keep the high bits.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    /// Puts `range` under `key` in the first free slot (writers only).
    fn insert(&self, key: u64, range: *const GuardedRange) -> bool {
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            let slot = &self.slots[i];
            let current = slot.key.load(Ordering::Relaxed);
            if current == EMPTY || current == TOMBSTONE {
                slot.range.store(range.cast_mut(), Ordering::Release);
                slot.key.store(key, Ordering::SeqCst);
                return current == TOMBSTONE;
            }
            i = (i + 1) & self.mask;
        }
        unreachable!("the registry table is never allowed to fill")
    }

    /// Turns the slot holding `range` under `key` into a tombstone (writers only).
    fn remove(&self, key: u64, range: *const GuardedRange) -> bool {
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            let slot = &self.slots[i];
            match slot.key.load(Ordering::Relaxed) {
                EMPTY => return false,
                k if k == key && ptr::eq(slot.range.load(Ordering::Relaxed), range) => {
                    slot.key.store(TOMBSTONE, Ordering::SeqCst);
                    return true;
                }
                _ => i = (i + 1) & self.mask,
            }
        }
        false
    }

    /// The live range under `key` that contains `addr`.
    fn find(&self, key: u64, addr: usize) -> Option<*const GuardedRange> {
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            let slot = &self.slots[i];
            match slot.key.load(Ordering::SeqCst) {
                EMPTY => return None,
                k if k == key => {
                    let range = slot.range.load(Ordering::Acquire);
                    // SAFETY: a pointer stored in a table stays valid while any lookup is counted in `readers`
                    // (see the module docs), and the caller holds a `Reading`.
                    if !range.is_null() && unsafe { (*range).contains(addr) } {
                        return Some(range);
                    }
                }
                _ => {}
            }
            i = (i + 1) & self.mask;
        }
        None
    }
}

fn level_of(len: usize) -> u32 {
    len.max(1).next_power_of_two().trailing_zeros().max(MIN_LEVEL)
}

fn key(level: u32, block: usize) -> u64 {
    (u64::from(level) << 58) | block as u64
}

/// The keys a range is filed under: one or two blocks at its level.
fn keys_of(start: usize, len: usize) -> impl Iterator<Item = u64> {
    let level = level_of(len);
    let first = start >> level;
    let last = (start + len.max(1) - 1) >> level;
    std::iter::once(key(level, first)).chain((last != first).then(|| key(level, last)))
}

#[derive(Default)]
struct Writer {
    /// Slots holding a live range.
    live: usize,
    /// Slots holding a tombstone.
    tombstones: usize,
    /// Records every slot of which is gone, waiting for no lookup to be running.
    retired_ranges: Vec<Arc<GuardedRange>>,
    /// Boxed because lookups hold the table's own address, which must not move.
    #[allow(clippy::vec_box)]
    retired_tables: Vec<Box<Table>>,
}

/// A set of guarded ranges that can be searched from a signal handler.
pub(crate) struct Registry {
    table: AtomicPtr<Table>,
    levels: AtomicU64,
    readers: AtomicUsize,
    writer: Mutex<Option<Writer>>,
}

/// Proof that a lookup is counted in `readers`; records found stay valid while it lives.
pub(crate) struct Reading<'a>(&'a Registry);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Registry {
    pub(crate) const fn new() -> Registry {
        Registry {
            table: AtomicPtr::new(ptr::null_mut()),
            levels: AtomicU64::new(0),
            readers: AtomicUsize::new(0),
            writer: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Writer>> {
        // The registry's invariants hold between statements that could panic
        // (allocation only), so a poisoned lock is still consistent.
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a lookup. Async-signal-safe.
    pub(crate) fn reading(&self) -> Reading<'_> {
        self.readers.fetch_add(1, Ordering::SeqCst);
        Reading(self)
    }

    /// The live range containing `addr`. Async-signal-safe: atomic loads only.
    pub(crate) fn find<'r>(&self, addr: usize, reading: &'r Reading<'_>) -> Option<&'r GuardedRange> {
        debug_assert!(ptr::eq(reading.0, self));
        let table = self.table.load(Ordering::SeqCst);
        if table.is_null() {
            return None;
        }
        // SAFETY: tables are freed only when no lookup is counted, and `reading` counts this one.
        let table = unsafe { &*table };
        let mut levels = self.levels.load(Ordering::Acquire);
        while levels != 0 {
            let level = levels.trailing_zeros();
            levels &= levels - 1;
            if let Some(range) = table.find(key(level, addr >> level), addr) {
                // SAFETY: as above, records outlive every counted lookup.
                return Some(unsafe { &*range });
            }
        }
        None
    }

    /// Adds `range`; the registry keeps it alive until it is removed and no
    /// lookup can still see it.
    pub(crate) fn insert(&self, range: Arc<GuardedRange>) {
        let mut guard = self.lock();
        let writer = guard.get_or_insert_with(Writer::default);
        let keys: Vec<u64> = keys_of(range.start(), range.extent()).collect();
        self.make_room(writer, keys.len());
        // SAFETY: make_room leaves a table in place.
        let table = unsafe { &*self.table.load(Ordering::Relaxed) };
        let raw = Arc::into_raw(range);
        for &k in &keys {
            if table.insert(k, raw) {
                writer.tombstones -= 1;
            }
            writer.live += 1;
            self.levels.fetch_or(1 << (k >> 58), Ordering::Release);
        }
        self.reclaim(writer);
    }

    /// Removes `range` (which must have been inserted). Its record is freed
    /// once no lookup can still be reading it.
    pub(crate) fn remove(&self, range: &Arc<GuardedRange>) {
        range.retire();
        let mut guard = self.lock();
        let Some(writer) = guard.as_mut() else { return };
        let table = self.table.load(Ordering::Relaxed);
        if table.is_null() {
            return;
        }
        // SAFETY: the current table is only replaced under this lock.
        let table = unsafe { &*table };
        let raw = Arc::as_ptr(range);
        let mut removed = false;
        for k in keys_of(range.start(), range.extent()) {
            if table.remove(k, raw) {
                writer.live -= 1;
                writer.tombstones += 1;
                removed = true;
            }
        }
        if removed {
            // SAFETY: `raw` came from `Arc::into_raw` in `insert`; this takes back the registry's reference exactly
            // once.
            writer.retired_ranges.push(unsafe { Arc::from_raw(raw) });
        }
        self.reclaim(writer);
    }

    /// Ensures the table can take `more` slots at a load under one half,
    /// rebuilding it (larger, without tombstones) when it cannot.
    fn make_room(&self, writer: &mut Writer, more: usize) {
        let current = self.table.load(Ordering::Relaxed);
        let capacity = if current.is_null() {
            0
        } else {
            // SAFETY: the current table is only replaced under the writer lock, which we hold.
            unsafe { &*current }.slots.len()
        };
        if (writer.live + writer.tombstones + more) * 2 <= capacity {
            return;
        }
        let slots = ((writer.live + more) * 4).next_power_of_two().max(MIN_SLOTS);
        let fresh = Table::with_capacity(slots);
        if !current.is_null() {
            // SAFETY: as above; we only read the old table here.
            let old = unsafe { &*current };
            for slot in old.slots.iter() {
                let k = slot.key.load(Ordering::Relaxed);
                if k != EMPTY && k != TOMBSTONE {
                    fresh.insert(k, slot.range.load(Ordering::Relaxed));
                }
            }
        }
        let old = self.table.swap(Box::into_raw(fresh), Ordering::SeqCst);
        writer.tombstones = 0;
        if !old.is_null() {
            // SAFETY: `old` was made by Box::into_raw and is no longer published.
            writer.retired_tables.push(unsafe { Box::from_raw(old) });
        }
    }

    /// Frees what was retired, if no lookup is running. Everything retired was
    /// unlinked (SeqCst) before this check, so a lookup that starts after it
    /// cannot reach it.
    fn reclaim(&self, writer: &mut Writer) {
        if self.readers.load(Ordering::SeqCst) == 0 {
            writer.retired_ranges.clear();
            writer.retired_tables.clear();
        }
    }

    /// Number of live registrations (for tests).
    #[cfg(test)]
    fn live_slots(&self) -> usize {
        self.lock().as_ref().map_or(0, |w| w.live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: usize, len: usize) -> Arc<GuardedRange> {
        Arc::new(GuardedRange::new(start, len, len, false, 0, 0))
    }

    fn lookup(registry: &Registry, addr: usize) -> Option<usize> {
        let reading = registry.reading();
        registry.find(addr, &reading).map(|r| r.start())
    }

    #[test]
    fn finds_the_range_that_holds_an_address() {
        let registry = Registry::new();
        let a = range(0x10_0000, 4096);
        let b = range(0x10_1000, 3 * 4096 + 5);
        let c = range(0x7000_0000, 1 << 30);
        for r in [&a, &b, &c] {
            registry.insert(Arc::clone(r));
        }
        assert_eq!(lookup(&registry, 0x10_0000), Some(0x10_0000));
        assert_eq!(lookup(&registry, 0x10_0fff), Some(0x10_0000));
        assert_eq!(lookup(&registry, 0x10_1000), Some(0x10_1000));
        assert_eq!(lookup(&registry, 0x10_1000 + 3 * 4096 + 4), Some(0x10_1000));
        assert_eq!(lookup(&registry, 0x10_1000 + 3 * 4096 + 5), None);
        assert_eq!(lookup(&registry, 0x0f_ffff), None);
        assert_eq!(lookup(&registry, 0x7000_0000 + (1 << 29)), Some(0x7000_0000));
        registry.remove(&b);
        assert_eq!(lookup(&registry, 0x10_1000), None);
        assert_eq!(lookup(&registry, 0x10_0000), Some(0x10_0000));
        assert!(!b.contains(0x10_1000), "a removed range is retired");
    }

    #[test]
    fn a_hundred_thousand_ranges_register_find_and_remove() {
        let registry = Registry::new();
        let n = 100_000;
        // Sizes from 1 page to 64 pages, packed next to each other, like the
        // kernel places consecutive mappings.
        let mut ranges = Vec::with_capacity(n);
        let mut addr = 0x5555_0000_0000usize;
        for i in 0..n {
            let len = ((i * 7919) % 64 + 1) * 4096;
            ranges.push(range(addr, len));
            addr += len;
        }
        for r in &ranges {
            registry.insert(Arc::clone(r));
        }
        assert!(registry.live_slots() >= n);
        for r in &ranges {
            assert_eq!(lookup(&registry, r.start()), Some(r.start()));
            assert_eq!(lookup(&registry, r.start() + r.extent() - 1), Some(r.start()));
        }
        assert_eq!(lookup(&registry, addr), None, "one past the last range");
        for r in ranges.iter().step_by(2) {
            registry.remove(r);
        }
        for (i, r) in ranges.iter().enumerate() {
            let expected = (i % 2 == 1).then_some(r.start());
            assert_eq!(lookup(&registry, r.start() + 100), expected);
        }
        for r in ranges.iter().skip(1).step_by(2) {
            registry.remove(r);
        }
        assert_eq!(registry.live_slots(), 0);
    }

    #[test]
    fn lookups_run_while_other_threads_register_and_remove() {
        let registry = Registry::new();
        let stable = range(0x1000_0000, 1 << 20);
        registry.insert(Arc::clone(&stable));
        std::thread::scope(|s| {
            for t in 0..2usize {
                let registry = &registry;
                s.spawn(move || {
                    for round in 0..2_000usize {
                        let r = range(0x2000_0000 + (t * 4096 + round % 512) * 8192, 8192);
                        registry.insert(Arc::clone(&r));
                        registry.remove(&r);
                    }
                });
            }
            for _ in 0..200_000 {
                assert_eq!(lookup(&registry, 0x1000_0000 + 12345), Some(0x1000_0000));
            }
        });
        assert_eq!(registry.live_slots(), keys_of(stable.start(), stable.extent()).count());
    }

    #[test]
    fn records_stay_alive_while_a_lookup_is_running() {
        let registry = Registry::new();
        let r = range(0x3000_0000, 4096);
        registry.insert(Arc::clone(&r));
        let reading = registry.reading();
        let found = registry.find(0x3000_0010, &reading).map(|g| g as *const GuardedRange);
        registry.remove(&r);
        drop(r);
        // SAFETY: the registry still holds its reference, so the record has not been freed: what this test checks.
        assert_eq!(found.map(|p| unsafe { (*p).start() }), Some(0x3000_0000));
        drop(reading);
        let other = range(0x4000_0000, 4096);
        registry.insert(other); // reclaims now that no lookup runs
        assert!(registry.lock().as_ref().unwrap().retired_ranges.is_empty());
    }
}
