//! What the guard records about a fault, and how it is reported.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering, compiler_fence, fence};

use crate::sys::fault_signal::FaultClass;

/// Why an access to a guarded mapping faulted, from the signal's `si_code`,
/// as far as the operating system tells: Linux tells the cases below apart;
/// macOS reports every lost page as [`PastEnd`](Self::PastEnd), and FreeBSD
/// every one but [`OutOfMemory`](Self::OutOfMemory).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultCause {
    /// `BUS_ADRERR` on Linux: the page has no file data behind it. The file
    /// was truncated below it while mapped, or (reported the same way) a read
    /// of the page failed, or a write into a hole found no space.
    /// [`Fault::file_len`], where known, tells a truncation from the others.
    PastEnd,
    /// `BUS_OBJERR`: the file's storage reported an error (I/O error, no space).
    IoError,
    /// `BUS_MCEERR_AR` / `BUS_MCEERR_AO`: a hardware memory error.
    Hardware,
    /// `BUS_OOMERR` on FreeBSD: the kernel had no memory to bring the page
    /// in, so its data could not be read or its hole allocated.
    OutOfMemory,
    /// Another `si_code`, kept as the kernel gave it.
    Other(i32),
}

impl FaultCause {
    /// The cause the OS gave a fault.
    pub(crate) fn of(class: FaultClass) -> FaultCause {
        match class {
            FaultClass::NoData => FaultCause::PastEnd,
            FaultClass::StorageError => FaultCause::IoError,
            FaultClass::Hardware => FaultCause::Hardware,
            FaultClass::OutOfMemory => FaultCause::OutOfMemory,
            FaultClass::Other(code) => FaultCause::Other(code),
        }
    }

    /// As one nonzero word, for the handler to store (0: none yet).
    fn encode(self) -> i64 {
        match self {
            FaultCause::PastEnd => 1,
            FaultCause::IoError => 2,
            FaultCause::Hardware => 3,
            FaultCause::OutOfMemory => 4,
            FaultCause::Other(code) => (1 << 32) | i64::from(code as u32),
        }
    }

    fn decode(word: i64) -> FaultCause {
        match word {
            1 => FaultCause::PastEnd,
            2 => FaultCause::IoError,
            3 => FaultCause::Hardware,
            4 => FaultCause::OutOfMemory,
            other => FaultCause::Other(other as u32 as i32),
        }
    }
}

/// A fault that hit a guarded mapping: the file's data for some page was not
/// there (truncated, unreadable, or no space to write it). The page and every
/// page after it in the mapping now read as zeros, and writes to them go
/// nowhere; [`flush`](crate::MapMut::flush) reports this rather than lose a
/// write silently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fault {
    offset: usize,
    zeros_from: usize,
    file_offset: u64,
    cause: FaultCause,
    count: u64,
    file_len: Option<u64>,
}

impl Fault {
    /// Offset of the first faulting page within the map's bytes (0 if the
    /// page starts before the map's first byte).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Offset within the map's bytes from which they read as zeros: the
    /// lowest page patched so far (0 if it starts before the map's first
    /// byte). At or below [`offset`](Self::offset): a later fault on an
    /// earlier page moves it down.
    pub fn zeros_from(&self) -> usize {
        self.zeros_from
    }

    /// Offset in the file of the first faulting page: for a truncation, the
    /// file now ends at or before this byte.
    pub fn file_offset(&self) -> u64 {
        self.file_offset
    }

    /// Why the first fault happened.
    pub fn cause(&self) -> FaultCause {
        self.cause
    }

    /// How many faults have hit the mapping so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The file's length after the fault, where it is known: maps that own
    /// their file ([`GrowableMap`](crate::GrowableMap) and
    /// [`GrowableReadMap`](crate::GrowableReadMap)) measure it when they
    /// report the fault; for others, [`with_file_len`](Self::with_file_len)
    /// adds it. At or below [`file_offset`](Self::file_offset), the file was
    /// truncated; above it, the page's data could not be read or allocated.
    pub fn file_len(&self) -> Option<u64> {
        self.file_len
    }

    /// This fault, with the file's length (measured after the fault, for
    /// example with `file.metadata()?.len()`) to tell what it was.
    pub fn with_file_len(self, file_len: u64) -> Fault {
        Fault { file_len: Some(file_len), ..self }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.file_offset;
        match (self.cause, self.file_len) {
            (FaultCause::PastEnd | FaultCause::IoError, Some(len)) if len <= at => {
                write!(f, "the file was truncated to {len} bytes while mapped, cutting off the page at byte {at}")?
            }
            (FaultCause::PastEnd, Some(len)) => write!(
                f,
                "the page at file byte {at} could not be read or allocated, although the file is {len} bytes long: \
                 a read error, no space left to fill a hole, or a truncation since undone"
            )?,
            (FaultCause::PastEnd, None) => write!(
                f,
                "the page at file byte {at} could not be read or allocated: the file was truncated below it \
                 while mapped, its storage failed, or no space was left to fill a hole"
            )?,
            (FaultCause::IoError, _) => write!(f, "an I/O error (or no space left) for the page at file byte {at}")?,
            (FaultCause::Hardware, _) => write!(f, "a hardware memory error in the page at file byte {at}")?,
            (FaultCause::OutOfMemory, _) => write!(
                f,
                "the page at file byte {at} could not be read or allocated: the kernel had no memory to bring it in"
            )?,
            (FaultCause::Other(code), _) => write!(f, "a bus error (si_code {code}) at file byte {at}")?,
        }
        write!(f, "; bytes from offset {} of the map on read as zeros", self.zeros_from)?;
        if self.count > 1 {
            write!(f, " ({} faults)", self.count)?;
        }
        Ok(())
    }
}

impl std::error::Error for Fault {}

const NONE: usize = usize::MAX;

/// One guarded mapping as the signal handler sees it: where it is, and the
/// fault state the handler writes. Only atomics and fixed fields, so the
/// handler can use it without locks.
#[derive(Debug)]
pub(crate) struct GuardedRange {
    /// Page-aligned start of the mapping.
    start: usize,
    /// Bytes registered for lookup; fixed for the life of the registration.
    extent: usize,
    /// Bytes from `start` backed by the file: the handler patches no further.
    mapped: AtomicUsize,
    writable: AtomicBool,
    /// Cleared before the mapping is unmapped, so a late lookup skips it.
    alive: AtomicBool,
    /// Offset from `start` of the page of the last fault on a patched page.
    repeat_page: AtomicUsize,
    /// How many faults in a row have hit `repeat_page` after its patch.
    repeats: AtomicU32,
    /// Bytes from `start` to the map's first data byte.
    lead: usize,
    /// File offset of `start`.
    file_offset: u64,
    faults: AtomicU64,
    /// Offset from `start` of the first faulting page.
    first: AtomicUsize,
    /// Lowest offset from `start` patched with zeros.
    patched_from: AtomicUsize,
    /// The first fault's cause, encoded (0: none yet).
    cause: AtomicI64,
}

impl GuardedRange {
    pub(crate) fn new(
        start: usize,
        extent: usize,
        mapped: usize,
        writable: bool,
        lead: usize,
        file_offset: u64,
    ) -> Self {
        GuardedRange {
            start,
            extent,
            mapped: AtomicUsize::new(mapped),
            writable: AtomicBool::new(writable),
            alive: AtomicBool::new(true),
            repeat_page: AtomicUsize::new(NONE),
            repeats: AtomicU32::new(0),
            lead,
            file_offset,
            faults: AtomicU64::new(0),
            first: AtomicUsize::new(NONE),
            patched_from: AtomicUsize::new(NONE),
            cause: AtomicI64::new(0),
        }
    }

    /// This range's record at a new place (`start`, `extent` bytes, all of
    /// them mapped to the file), its fault state carried over as far as it
    /// lies inside `extent`: pages patched before a resize still read as
    /// zeros after it, and still count. A shrink that cuts off every patched
    /// page leaves a map with no fault; one that cuts off the first faulting
    /// page but keeps patched pages reports the fault at the lowest of them.
    pub(crate) fn moved(&self, start: usize, extent: usize) -> GuardedRange {
        let patched_from = self.patched_from.load(Ordering::Acquire);
        let (faults, first, patched_from, cause) = if patched_from >= extent {
            (0, NONE, NONE, 0)
        } else {
            let first = self.first.load(Ordering::Acquire);
            let first = if first >= extent { patched_from } else { first };
            (self.faults.load(Ordering::Acquire), first, patched_from, self.cause.load(Ordering::Acquire))
        };
        GuardedRange {
            start,
            extent,
            mapped: AtomicUsize::new(extent),
            writable: AtomicBool::new(self.writable()),
            alive: AtomicBool::new(true),
            repeat_page: AtomicUsize::new(NONE),
            repeats: AtomicU32::new(0),
            lead: self.lead,
            file_offset: self.file_offset,
            faults: AtomicU64::new(faults),
            first: AtomicUsize::new(first),
            patched_from: AtomicUsize::new(patched_from),
            cause: AtomicI64::new(cause),
        }
    }

    pub(crate) fn start(&self) -> usize {
        self.start
    }

    pub(crate) fn extent(&self) -> usize {
        self.extent
    }

    pub(crate) fn writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }

    /// Follows a change of the mapping's protection, so patches match it.
    pub(crate) fn set_writable(&self, writable: bool) {
        self.writable.store(writable, Ordering::Release);
    }

    /// Whether `addr` lies in this live mapping.
    pub(crate) fn contains(&self, addr: usize) -> bool {
        self.alive.load(Ordering::Acquire) && addr >= self.start && addr - self.start < self.extent
    }

    pub(crate) fn mapped(&self) -> usize {
        self.mapped.load(Ordering::Acquire)
    }

    pub(crate) fn set_mapped(&self, mapped: usize) {
        self.mapped.store(mapped, Ordering::Release);
    }

    pub(crate) fn retire(&self) {
        self.alive.store(false, Ordering::Release);
    }

    /// Records a fault at page offset `offset` from `start`, before the pages
    /// from there on are patched with zeros.
    /// Called from the signal handler: atomics only.
    pub(crate) fn record(&self, offset: usize, cause: FaultCause) {
        // The first fault's cause and offset are kept; both are set before the
        // count rises, so a reader that sees the count sees them.
        let _ = self.cause.compare_exchange(0, cause.encode(), Ordering::AcqRel, Ordering::Acquire);
        let _ = self.first.compare_exchange(NONE, offset, Ordering::AcqRel, Ordering::Acquire);
        self.patched_from.fetch_min(offset, Ordering::AcqRel);
        self.faults.fetch_add(1, Ordering::Release);
    }

    /// The fault count, loaded after the accesses the caller made before:
    /// the fast path of every checked access. The acquire fence keeps the
    /// load after those accesses (free on x86, `dmb ishld` on aarch64), so a
    /// read of a zero page that another thread's fault mapped sees the count
    /// that fault raised: the handler records a fault before it maps the
    /// zeros. A fault on the calling thread runs its handler between the
    /// faulting instruction and the next, so it is seen in any case. The load
    /// is an acquire, so a nonzero count comes with the fault's record (its
    /// offset and how far the zeros reach) in view.
    #[inline(always)]
    pub(crate) fn faults_after_access(&self) -> u64 {
        // The compiler fence keeps the compiler from moving the accesses past
        // this point; the acquire fence keeps the CPU from doing so.
        compiler_fence(Ordering::SeqCst);
        fence(Ordering::Acquire);
        self.faults.load(Ordering::Acquire)
    }

    /// After an access to data bytes `offset..offset + len`: the fault, if
    /// one has reached them (bytes before the first patched page stay good).
    #[inline]
    pub(crate) fn fault_over(&self, offset: usize, len: usize) -> Option<Fault> {
        if self.faults_after_access() == 0 {
            return None;
        }
        match self.patched_from() {
            Some(from) if offset.saturating_add(len) > from => self.fault(),
            _ => None,
        }
    }

    /// Notes a fault on the page at `offset` from `start`, and returns how
    /// many faults in a row have now hit that page after it was patched: 0
    /// for a page not patched yet (which starts the count afresh), 1 for the
    /// first fault on a patched page, and so on while no other page faults.
    /// Called from the signal handler: atomics only.
    pub(crate) fn repeated_fault(&self, offset: usize) -> u32 {
        if !self.is_patched(offset) {
            self.repeat_page.store(NONE, Ordering::Relaxed);
            self.repeats.store(0, Ordering::Relaxed);
            return 0;
        }
        if self.repeat_page.swap(offset, Ordering::AcqRel) == offset {
            self.repeats.fetch_add(1, Ordering::AcqRel).saturating_add(1)
        } else {
            self.repeats.store(1, Ordering::Release);
            1
        }
    }

    /// Whether the page at `offset` from `start` is already patched with zeros.
    pub(crate) fn is_patched(&self, offset: usize) -> bool {
        offset >= self.patched_from.load(Ordering::Acquire)
    }

    /// The first data byte (offset in the map) that reads as patched zeros, if any.
    pub(crate) fn patched_from(&self) -> Option<usize> {
        match self.patched_from.load(Ordering::Acquire) {
            NONE => None,
            offset => Some(offset.saturating_sub(self.lead)),
        }
    }

    /// What has happened so far, if anything. The count is loaded behind the
    /// same fences as [`faults_after_access`](Self::faults_after_access), so
    /// a caller that copies bytes out of the map and then asks sees a fault
    /// that patched any of them, on weakly ordered CPUs too.
    pub(crate) fn fault(&self) -> Option<Fault> {
        let count = self.faults_after_access();
        if count == 0 {
            return None;
        }
        let first = self.first.load(Ordering::Acquire);
        let zeros_from = self.patched_from.load(Ordering::Acquire).min(first);
        Some(Fault {
            offset: first.saturating_sub(self.lead),
            zeros_from: zeros_from.saturating_sub(self.lead),
            file_offset: self.file_offset + first as u64,
            cause: FaultCause::decode(self.cause.load(Ordering::Acquire)),
            count,
            file_len: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_fault_on_an_earlier_page_moves_where_the_zeros_start() {
        let page = 4096;
        // A map whose data starts 100 bytes into its first page, at file byte 8192 + 100.
        let range = GuardedRange::new(0x10_0000, 8 * page, 8 * page, false, 100, 8192);
        range.record(5 * page, FaultCause::PastEnd);
        let fault = range.fault().expect("recorded");
        assert_eq!((fault.offset(), fault.zeros_from()), (5 * page - 100, 5 * page - 100));
        range.record(2 * page, FaultCause::PastEnd);
        let fault = range.fault().expect("recorded");
        assert_eq!(fault.offset(), 5 * page - 100, "the first fault is still the one reported");
        assert_eq!(fault.zeros_from(), 2 * page - 100, "but the zeros now start at the earlier page");
        let text = fault.to_string();
        assert!(text.contains(&format!("bytes from offset {} of the map on read as zeros", 2 * page - 100)), "{text}");
        assert!(text.contains(&format!("file byte {}", 8192 + 5 * page)), "{text}");
    }

    #[test]
    fn a_fault_with_no_memory_for_its_page_says_so_and_keeps_its_cause() {
        let range = GuardedRange::new(0x20_0000, 4096, 4096, false, 0, 0);
        range.record(0, FaultCause::of(FaultClass::OutOfMemory));
        let fault = range.fault().expect("recorded");
        assert_eq!(fault.cause(), FaultCause::OutOfMemory);
        assert!(fault.to_string().contains("no memory to bring it in"), "{fault}");
    }
}
