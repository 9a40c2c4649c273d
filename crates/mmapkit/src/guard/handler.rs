//! What happens on a SIGBUS: find the guarded mapping, patch it, record the fault.

use std::sync::atomic::{AtomicUsize, Ordering, fence};

use super::registry::Registry;
use crate::sys;

/// Every guarded mapping in the process.
pub(crate) static REGISTRY: Registry = Registry::new();

/// The page size, read before the handler is installed (the handler must not
/// call anything that may initialise lazily).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn prepare() {
    PAGE_SIZE.store(sys::page_size(), Ordering::Relaxed);
}

/// The fault hook: runs in signal context on the faulting thread. Returns
/// `true` when `addr` lies in a guarded mapping, which now has zero pages from
/// the faulting page to the end of its file-backed part, so the access can
/// complete. Returns `false` for every other address, which the caller hands
/// to the previous handler.
pub(crate) fn repair(addr: usize, code: i32) -> bool {
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
    // The fault is recorded before any zero page exists. Another thread may
    // read these pages the moment the zeros are mapped, and its check (one
    // load of the fault count after its access) must then see this fault:
    // were the zeros first, it could read them and find no fault recorded.
    range.record(page - range.start(), code);
    // Orders the record's stores before the page-table change below, on
    // weakly ordered CPUs too: a reader that sees a zero page, then loads the
    // count behind an acquire fence, sees the count this fault raised.
    fence(Ordering::SeqCst);
    // `page..end` is page-aligned and inside a live guarded mapping (found under `reading`), whose file data for
    // these pages is unreachable; zeros are what the guard promises to leave there.
    // SAFETY: the pages are ours to replace, and zeros are what the guard promises.
    unsafe { sys::map_zeros_fixed(page, end - page, range.writable()) }
}
