//! Advice to the kernel about how a mapping will be used (`madvise`), and
//! which of it this operating system takes.
//!
//! Advice comes in two kinds. [`Advice`] only changes how the kernel pages and
//! caches memory; what the bytes read as stays the same, so it is safe to give
//! while slices of the mapping are borrowed. [`DestructiveAdvice`] can change
//! the contents (pages turn to zeros, or private changes revert to the file's
//! bytes), so it needs `&mut` access to the mapping, or an `unsafe` promise
//! that no borrowed slice is live: a `&[u8]` must never see its bytes change
//! under it (the soundness bug memmap2 fixed in its issue #94).

/// Advice that never changes what a mapping's bytes read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// No special treatment (`MADV_NORMAL`).
    Normal,
    /// Pages will be read in random order: read ahead less (`MADV_RANDOM`).
    Random,
    /// Pages will be read in order: read ahead more, drop behind (`MADV_SEQUENTIAL`).
    Sequential,
    /// Pages will be needed soon: start reading them in (`MADV_WILLNEED`).
    WillNeed,
    /// Do not give the range to children made by `fork` (`MADV_DONTFORK`).
    DontFork,
    /// Undo [`Advice::DontFork`] (`MADV_DOFORK`).
    DoFork,
    /// Let kernel same-page merging look at the range (`MADV_MERGEABLE`).
    Mergeable,
    /// Undo [`Advice::Mergeable`] (`MADV_UNMERGEABLE`).
    Unmergeable,
    /// Back the range with transparent huge pages where possible (`MADV_HUGEPAGE`).
    HugePage,
    /// Never back the range with transparent huge pages (`MADV_NOHUGEPAGE`).
    NoHugePage,
    /// Leave the range out of core dumps (`MADV_DONTDUMP`).
    DontDump,
    /// Undo [`Advice::DontDump`] (`MADV_DODUMP`).
    DoDump,
    /// Undo [`DestructiveAdvice::WipeOnFork`] (`MADV_KEEPONFORK`).
    KeepOnFork,
    /// The range is a good candidate for reclaim; contents are kept (`MADV_COLD`).
    Cold,
    /// Reclaim the range now; contents are kept (`MADV_PAGEOUT`).
    PageOut,
    /// Fault every page in for reading now (`MADV_POPULATE_READ`, Linux 5.14+).
    /// Unlike touching the pages, a page past the end of the file is reported as
    /// an error instead of raising `SIGBUS`.
    PopulateRead,
    /// Fault every page in writable now (`MADV_POPULATE_WRITE`, Linux 5.14+).
    PopulateWrite,
}

/// Advice that can change what a mapping's bytes read as.
///
/// mmapkit gives it through `MapMut::advise_destructive`, which holds `&mut`
/// so that no slice can observe the change, or through the `unsafe`
/// `Map::advise_destructive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DestructiveAdvice {
    /// Drop the pages now (`MADV_DONTNEED`). Shared file pages read the file's
    /// contents again; private pages lose their changes (file contents, or zeros
    /// for anonymous memory).
    DontNeed,
    /// The pages may be freed lazily (`MADV_FREE`, private anonymous memory):
    /// until written again they may read as zeros at any time.
    Free,
    /// Free the pages and their backing store (`MADV_REMOVE`): the range reads as zeros.
    Remove,
    /// Children made by `fork` see the range as zeros (`MADV_WIPEONFORK`).
    WipeOnFork,
}

impl Advice {
    /// Whether this operating system takes this advice. Advice it does not
    /// take is refused with an `Unsupported` error, never ignored.
    pub fn is_supported(self) -> bool {
        crate::os::advice(self).is_some()
    }
}

impl DestructiveAdvice {
    /// Whether this operating system takes this advice, with the effect
    /// described (an OS whose `MADV_DONTNEED` is only a hint, as macOS's and
    /// FreeBSD's are, does not take [`DestructiveAdvice::DontNeed`]).
    pub fn is_supported(self) -> bool {
        crate::os::destructive_advice(self).is_some()
    }
}
