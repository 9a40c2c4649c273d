//! The fault guard: a truncated or failing file is an error for the access that
//! hit it, never a crash.
//!
//! Every guarded mapping is registered in [`registry`]. A process-wide SIGBUS
//! handler (installed by `sys` on the first guarded map, chained to the one
//! before it) calls [`handler::repair`], which maps zero pages over the faulting
//! page to the end of the mapping, records the fault in the mapping's
//! [`GuardedRange`], and lets the access complete. The map's checked accessors
//! then compare the fault count and report a [`Fault`].

mod fault;
mod handler;
mod registry;

use std::sync::Arc;

pub(crate) use fault::GuardedRange;
pub use fault::{Fault, FaultCause};

use crate::error::{ErrorKind, GuardProblem};
use crate::sys;

/// A registration in the guard; removed on drop.
#[derive(Debug)]
pub(crate) struct Guard {
    range: Arc<GuardedRange>,
}

impl Guard {
    /// Registers `range` (installing the handler on first use). An error if
    /// the guard could not protect it: the handler cannot be installed, was
    /// replaced by another since, or the calling thread blocks SIGBUS.
    pub(crate) fn new(range: GuardedRange) -> Result<Guard, ErrorKind> {
        install()?;
        let range = Arc::new(range);
        handler::REGISTRY.insert(Arc::clone(&range));
        Ok(Guard { range })
    }

    pub(crate) fn range(&self) -> &GuardedRange {
        &self.range
    }

    /// Whether a registration made now would protect its map (see
    /// [`Guard::new`]), asked before a change that needs a new one.
    pub(crate) fn available() -> Result<(), ErrorKind> {
        install()
    }

    /// Ends the registration now, keeping its record for the fault state
    /// a new one carries over ([`GuardedRange::moved`]).
    pub(crate) fn retire(self) -> Arc<GuardedRange> {
        let range = Arc::clone(&self.range);
        drop(self);
        range
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        handler::REGISTRY.remove(&self.range);
    }
}

/// Reads one byte of every page `bytes` reaches, so that a page whose file
/// data is gone faults now (and is recorded) rather than when the caller
/// reads it later.
#[inline]
pub(crate) fn touch_pages(bytes: &[u8]) {
    let page = sys::page_size();
    let start = bytes.as_ptr() as usize;
    let mut at = 0;
    while at < bytes.len() {
        // SAFETY: `at < bytes.len()`, so the byte lies inside the slice. (Volatile, so that the compiler cannot
        // drop a load whose value is unused.)
        unsafe { std::ptr::read_volatile(bytes.as_ptr().add(at)) };
        // The next page boundary after this byte.
        at = (start + at + page) / page * page - start;
    }
}

/// Installs the SIGBUS handler, once, and checks that it can still do its
/// work: one `sigaction` and one `pthread_sigmask` query per guarded map,
/// next to the `mmap` that made it.
fn install() -> Result<(), ErrorKind> {
    static PREPARED: std::sync::Once = std::sync::Once::new();
    PREPARED.call_once(handler::prepare);
    sys::fault_signal::install(handler::repair).map_err(ErrorKind::os)?;
    if !sys::fault_signal::in_place() {
        return Err(ErrorKind::GuardUnavailable(GuardProblem::HandlerReplaced));
    }
    if sys::fault_signal::blocked_here() {
        return Err(ErrorKind::GuardUnavailable(GuardProblem::SignalBlocked));
    }
    Ok(())
}

/// The guard's registry, reachable from the benchmarks. Not part of the API.
#[doc(hidden)]
pub mod bench_support {
    use std::sync::Arc;

    use super::GuardedRange;
    use super::registry::Registry;

    /// A registry of its own (not the process's), filled with made-up ranges.
    #[derive(Default)]
    pub struct RegistryBench {
        registry: Option<Box<Registry>>,
        ranges: Vec<Arc<GuardedRange>>,
    }

    impl RegistryBench {
        /// An empty registry.
        pub fn new() -> Self {
            RegistryBench { registry: Some(Box::new(Registry::new())), ranges: Vec::new() }
        }

        fn registry(&self) -> &Registry {
            self.registry.as_deref().expect("made by new")
        }

        /// Registers `len` bytes at `start`.
        pub fn insert(&mut self, start: usize, len: usize) {
            let range = Arc::new(GuardedRange::new(start, len, len, false, 0, 0));
            self.registry().insert(Arc::clone(&range));
            self.ranges.push(range);
        }

        /// Removes the most recently inserted range.
        pub fn remove_last(&mut self) {
            if let Some(range) = self.ranges.pop() {
                self.registry().remove(&range);
            }
        }

        /// The start of the range holding `addr`, as the signal handler finds it.
        pub fn find(&self, addr: usize) -> Option<usize> {
            let reading = self.registry().reading();
            self.registry().find(addr, &reading).map(|r| r.start())
        }
    }
}
