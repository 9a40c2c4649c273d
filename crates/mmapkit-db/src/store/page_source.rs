//! Where the tree reads pages from: a committed snapshot through the mapping
//! ([`SnapshotPages`](super::snapshot::SnapshotPages)), or a write
//! transaction's own copies over one ([`TxnPages`](super::txn_pages::TxnPages)).
//! Either way, what a read returns is the file's bytes or an error, never a
//! slice past the file or the zeros the fault guard put where a page was lost.

use std::path::Path;

use super::page_header::{self, HEADER, Kind, PAGE_SIZE, PageNo};
use crate::error::{Error, Result};

/// A source of pages, checked as they are read.
pub trait PageSource {
    /// The database file, for error messages.
    fn path(&self) -> &Path;

    /// Page `n`, exactly [`PAGE_SIZE`](super::page_header::PAGE_SIZE) bytes:
    /// the file's bytes, or an error.
    fn page(&self, n: PageNo) -> Result<&[u8]>;

    /// The `len`-byte value held by the overflow run starting at page `n`:
    /// the file's bytes, every page of them, or an error.
    fn run(&self, n: PageNo, len: usize) -> Result<&[u8]>;

    /// An error if the file lost pages under the mapping: what was read may be zeros.
    fn check_fault(&self) -> Result<()>;

    /// `error`, or, if the file lost pages under the mapping from an offset at
    /// or before the damaged page, the fault: such a page reads as zeros, and
    /// its damage is the fault's doing. A page wholly before the fault's
    /// zeros start is damaged on its own account and stays
    /// [`Error::Corrupt`].
    fn fault_first(&self, error: Error) -> Error {
        match (&error, self.check_fault()) {
            (Error::Corrupt { page, .. }, Err(fault @ Error::Fault { fault: at, .. }))
                if page.saturating_mul(PAGE_SIZE as u64) >= at.offset() as u64 =>
            {
                fault
            }
            _ => error,
        }
    }

    /// A corruption error for page `n`.
    fn corrupt(&self, n: PageNo, what: String) -> Error {
        Error::Corrupt { path: self.path().to_path_buf(), page: n, what }
    }
}

/// Checks an overflow run's header and returns its value bytes.
pub fn run_value<'a>(run: &'a [u8], n: PageNo, len: usize, pages: &(impl PageSource + ?Sized)) -> Result<&'a [u8]> {
    let want = page_header::run_pages(len);
    if page_header::kind_byte(run) != Kind::Overflow as u8 || page_header::link(run) != want {
        return Err(pages.corrupt(n, format!("expected an overflow run of {want} pages for a {len}-byte value")));
    }
    Ok(&run[HEADER..HEADER + len])
}
