//! What happens on a SIGBUS: find the guarded mapping, patch it, record the fault.

use std::sync::atomic::{AtomicUsize, Ordering, fence};

use super::fault::FaultCause;
use super::registry::Registry;
use crate::sys;
use crate::sys::fault_signal::{FaultEvent, FaultSignal};

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
/// A `SIGSEGV` (taken on macOS and FreeBSD, where a lost page may raise it)
/// on a page already patched is not a lost page, since zero pages never lose
/// their data: it is a protection fault (a write to a read-only map), which
/// is passed on, so the bug still crashes. A `SIGBUS` there is patched again
/// (another thread faulted on the page before the patch, or the map grew and
/// lost the new pages too).
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
    if event.signal == FaultSignal::Segv && range.is_patched(page - range.start()) {
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

    /// The signal macOS and FreeBSD may raise for a lost page, decided here on
    /// Linux: taken for a page not yet patched, passed on for a patched one
    /// (zeros cannot be lost: that is a protection fault), where a `SIGBUS`
    /// is patched again.
    #[test]
    fn a_segv_is_repaired_once_per_page_and_a_bus_every_time() {
        let page_size = crate::page_size();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 4 * page_size]).unwrap();
        // SAFETY: nothing writes the file; the pages are only patched by the calls below, which is what is tested.
        let map = unsafe { MapOptions::new().map(&std::fs::File::open(&path).unwrap()) }.unwrap();
        let at = |page: usize| map.as_ptr() as usize + page * page_size + 10;
        let event = |addr, signal| FaultEvent { addr, signal, class: sys::fault_signal::FaultClass::NoData };

        assert!(repair(&event(at(2), FaultSignal::Segv)), "a SIGSEGV on a page not yet patched is a lost page");
        let fault = map.fault().expect("recorded");
        assert_eq!((fault.offset(), fault.count()), (2 * page_size, 1));
        assert!(!repair(&event(at(3), FaultSignal::Segv)), "a SIGSEGV on a patched page is passed on");
        assert_eq!(map.fault().unwrap().count(), 1, "and is not counted");
        assert!(repair(&event(at(3), FaultSignal::Bus)), "a SIGBUS on a patched page is patched again");
        assert_eq!(map.fault().unwrap().count(), 2);
        assert!(repair(&event(at(1), FaultSignal::Segv)), "a page before the patched ones is not patched");
        assert_eq!(map.fault().unwrap().count(), 3);
        assert_eq!(map[page_size + 10], 0, "patched pages read as zeros");
        assert_eq!(map[10], 7, "pages before the first fault keep the file's bytes");
        assert!(!repair(&event(1, FaultSignal::Bus)), "an address outside every guarded map is passed on");
    }
}
