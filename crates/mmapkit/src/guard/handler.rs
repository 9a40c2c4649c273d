//! What happens on a SIGBUS: find the guarded mapping, patch it, record the fault.

use std::sync::atomic::{AtomicUsize, Ordering, fence};

use super::fault::FaultCause;
use super::registry::Registry;
use crate::sys;
use crate::sys::fault_signal::FaultEvent;

/// How many faults in a row the same patched page may take before the next
/// is passed on: far more than threads racing to one page before its patch
/// can make, and reached within microseconds by an access the patch does not
/// cure.
pub(crate) const REPEAT_LIMIT: u32 = 32;

/// Every guarded mapping in the process.
pub(crate) static REGISTRY: Registry = Registry::new();

/// The page size, read before the handler is installed (the handler must not
/// call anything that may initialise lazily).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn prepare() {
    PAGE_SIZE.store(sys::page_size(), Ordering::Relaxed);
}

/// The fault hook: runs in signal context on the faulting thread. Returns
/// `true` when the address lies in a guarded mapping, which now has zero
/// pages from the faulting page to the end of its file-backed part, so the
/// access can complete. Returns `false` for every other address, which the
/// caller hands to the previous handler.
///
/// A fault on a page already patched is patched again (another thread
/// faulted on the page before the patch, or the map grew and lost the new
/// pages too), but only [`REPEAT_LIMIT`] times in a row for the same page: a
/// fault that the zeros do not cure (macOS raises `SIGBUS` for a write to a
/// read-only map, and a read-only patch does not take it) would otherwise
/// run the access, fault and patch again forever. Past the limit it is
/// passed on, and the process ends as it would have without the guard.
pub(crate) fn repair(event: &FaultEvent) -> bool {
    let addr = event.addr;
    let page_size = PAGE_SIZE.load(Ordering::Relaxed);
    if page_size == 0 {
        return false;
    }
    let reading = REGISTRY.reading();
    let Some(range) = REGISTRY.find(addr, &reading) else {
        return false;
    };
    let page = addr & !(page_size - 1);
    let end = range.start() + range.mapped();
    if page >= end {
        return false;
    }
    if range.repeated_fault(page - range.start()) > REPEAT_LIMIT {
        return false;
    }
    // The fault is recorded before any zero page exists. Another thread may
    // read these pages the moment the zeros are mapped, and its check (one
    // load of the fault count after its access) must then see this fault:
    // were the zeros first, it could read them and find no fault recorded.
    range.record(page - range.start(), FaultCause::of(event.class));
    // Orders the record's stores before the page-table change below, on
    // weakly ordered CPUs too: a reader that sees a zero page, then loads the
    // count behind an acquire fence, sees the count this fault raised.
    fence(Ordering::SeqCst);
    // SAFETY: `page..end` is page-aligned and inside a live guarded mapping (found under `reading`), whose file
    // data for these pages is unreachable; replacing them with zeros is what the guard promises.
    unsafe { sys::map_zeros_fixed(page, end - page, range.writable()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapOptions;

    /// A guarded map of four pages of a file of `7`s (with the directory
    /// that holds the file).
    fn mapped() -> (tempfile::TempDir, crate::Map) {
        let page_size = crate::page_size();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 4 * page_size]).unwrap();
        // SAFETY: nothing writes the file; the pages are only patched by the calls below, which is what is tested.
        let map = unsafe { MapOptions::new().map(&std::fs::File::open(&path).unwrap()) }.unwrap();
        (dir, map)
    }

    /// A fault at byte 10 of the map's page `page`.
    fn event(map: &crate::Map, page: usize) -> FaultEvent {
        let addr = map.as_ptr() as usize + page * crate::page_size() + 10;
        FaultEvent { addr, class: sys::fault_signal::FaultClass::NoData }
    }

    #[test]
    fn a_fault_is_patched_and_recorded_and_one_outside_is_passed_on() {
        let (_dir, map) = mapped();
        let page_size = crate::page_size();
        assert!(repair(&event(&map, 2)), "a lost page is patched");
        let fault = map.fault().expect("recorded");
        assert_eq!((fault.offset(), fault.count()), (2 * page_size, 1));
        assert!(repair(&event(&map, 3)), "a fault on a patched page is patched again");
        assert_eq!(map.fault().unwrap().count(), 2);
        assert!(repair(&event(&map, 1)), "a page before the patched ones is patched");
        assert_eq!(map.fault().unwrap().count(), 3);
        assert_eq!(map[page_size + 10], 0, "patched pages read as zeros");
        assert_eq!(map[10], 7, "pages before the first fault keep the file's bytes");
        assert!(!repair(&FaultEvent { addr: 1, class: sys::fault_signal::FaultClass::NoData }), "outside: passed on");
    }

    /// An access the patch does not cure faults on the same page again and
    /// again: after REPEAT_LIMIT patches in a row it is passed on (the
    /// process then dies of it, as without the guard), while faults that
    /// move between pages never reach the limit.
    #[test]
    fn a_page_that_faults_again_and_again_is_passed_on_after_the_limit() {
        let (_dir, map) = mapped();
        assert!(repair(&event(&map, 2)), "the first fault on the page is patched");
        for repeat in 1..=REPEAT_LIMIT {
            assert!(repair(&event(&map, 2)), "repeat {repeat} of {REPEAT_LIMIT} is still patched");
        }
        assert!(!repair(&event(&map, 2)), "one past the limit is passed on");
        assert!(!repair(&event(&map, 2)), "and so is every one after it");
        let counted = map.fault().unwrap().count();
        assert_eq!(counted, u64::from(REPEAT_LIMIT) + 1, "faults passed on are not counted");

        // Alternating between two patched pages is not one page faulting over and over.
        for _ in 0..4 * REPEAT_LIMIT {
            assert!(repair(&event(&map, 3)));
            assert!(repair(&event(&map, 2)));
        }
    }
}
