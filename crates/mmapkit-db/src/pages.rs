//! Reading pages: from the mapping (a committed snapshot) or from a write
//! transaction's own copies. Every page number is checked against the
//! snapshot's size before it is turned into a slice, every page of the slice
//! is touched and found present in the file (a page the file lost under the
//! map is an [`Error::Fault`], never the zeros the fault guard put in its
//! place), and every page's checksum is checked the first time it is read,
//! unless this handle's own commit wrote it (see [`crate::verified`]).

use std::path::Path;

use mmapkit::GrowableReadMap;

use crate::error::{Error, Result};
use crate::page::{self, HEADER, Kind, PAGE_SIZE, PageNo};
use crate::verified::Verified;

/// Where tree code reads pages from.
pub trait Pages {
    /// The database file, for error messages.
    fn path(&self) -> &Path;

    /// Page `n`, exactly [`PAGE_SIZE`] bytes: the file's bytes, or an error.
    fn page(&self, n: PageNo) -> Result<&[u8]>;

    /// The `len`-byte value held by the overflow run starting at page `n`:
    /// the file's bytes, every page of them, or an error.
    fn run(&self, n: PageNo, len: usize) -> Result<&[u8]>;

    /// An error if the file lost pages under the mapping: what was read may be zeros.
    fn check_fault(&self) -> Result<()>;

    /// `error`, or, if the file lost pages under the mapping, the fault: a
    /// page that reads as damaged after a fault is the fault's doing.
    fn fault_first(&self, error: Error) -> Error {
        match (&error, self.check_fault()) {
            (Error::Corrupt { .. }, Err(fault)) => fault,
            _ => error,
        }
    }

    /// A corruption error for page `n`.
    fn corrupt(&self, n: PageNo, what: String) -> Error {
        Error::Corrupt { path: self.path().to_path_buf(), page: n, what }
    }
}

/// Checks an overflow run's header and returns its value bytes.
pub fn run_value<'a>(run: &'a [u8], n: PageNo, len: usize, pages: &(impl Pages + ?Sized)) -> Result<&'a [u8]> {
    let want = page::run_pages(len);
    if page::kind_byte(run) != Kind::Overflow as u8 || page::link(run) != want {
        return Err(pages.corrupt(n, format!("expected an overflow run of {want} pages for a {len}-byte value")));
    }
    Ok(&run[HEADER..HEADER + len])
}

/// The pages of one committed snapshot, read through the mapping.
pub struct MapPages<'db> {
    pub map: &'db GrowableReadMap,
    pub path: &'db Path,
    /// Pages `0..page_count` belong to the snapshot.
    pub page_count: u64,
    /// Where set, a page's checksum is checked the first time it is read
    /// (and a mismatch is an error); `check` reads without, to report it.
    pub verified: Option<&'db Verified>,
}

impl MapPages<'_> {
    /// Page `n` (or the run of `pages` starting there), every page of it
    /// touched and found present: a page the file lost under the map is an
    /// [`Error::Fault`] now, so neither a parse nor a caller ever sees the
    /// zeros the fault guard put in its place.
    fn bytes(&self, n: PageNo, pages: u64) -> Result<&[u8]> {
        let end = n.checked_add(pages).filter(|&end| n >= 2 && end <= self.page_count);
        let Some(end) = end else {
            return Err(self.corrupt(n, format!("page {n} (+{pages}) is outside pages 2..{}", self.page_count)));
        };
        let (start, end) = (n as usize * PAGE_SIZE, end as usize * PAGE_SIZE);
        self.map.get_checked(start..end).map_err(|e| match e.kind() {
            mmapkit::ErrorKind::Fault(fault) => Error::Fault { path: self.path.to_path_buf(), fault: *fault },
            _ => self.corrupt(n, format!("page {n} is beyond the mapped {} bytes", self.map.len())),
        })
    }

    /// `bytes`, page `n` or the run starting there, once its checksum has
    /// matched (checked only the first time).
    fn verify<'b>(&self, n: PageNo, bytes: &'b [u8]) -> Result<&'b [u8]> {
        if let Some(verified) = self.verified
            && !verified.contains(n)
        {
            if !page::checksum_ok(bytes) {
                return Err(self.corrupt(n, format!("page {n}: checksum mismatch")));
            }
            verified.insert(n);
        }
        Ok(bytes)
    }
}

impl Pages for MapPages<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn page(&self, n: PageNo) -> Result<&[u8]> {
        self.verify(n, self.bytes(n, 1)?)
    }

    fn run(&self, n: PageNo, len: usize) -> Result<&[u8]> {
        let run = self.bytes(n, page::run_pages(len))?;
        run_value(self.verify(n, run)?, n, len, self)
    }

    fn check_fault(&self) -> Result<()> {
        match self.map.fault() {
            Some(fault) => Err(Error::Fault { path: self.path.to_path_buf(), fault }),
            None => Ok(()),
        }
    }
}
