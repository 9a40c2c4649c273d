//! Page-fault counters: how many times this process waited for a page.

use std::ops::Sub;

use crate::error::{Error, Operation, Result};
use crate::sys;

/// Page faults taken by this process (all threads) so far.
///
/// A minor fault maps a page that was already in memory (the page cache, for a
/// file); a major fault had to wait for it to be read from disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageFaults {
    /// Faults served from memory.
    pub minor: u64,
    /// Faults that read from disk.
    pub major: u64,
}

impl PageFaults {
    /// The counters now (`getrusage(RUSAGE_SELF)`).
    pub fn now() -> Result<PageFaults> {
        let (minor, major) = sys::page_faults().map_err(|e| Error::os(Operation::Residency, e))?;
        Ok(PageFaults { minor, major })
    }
}

impl Sub for PageFaults {
    type Output = PageFaults;

    /// The faults taken between two readings.
    fn sub(self, earlier: PageFaults) -> PageFaults {
        PageFaults { minor: self.minor.saturating_sub(earlier.minor), major: self.major.saturating_sub(earlier.major) }
    }
}
