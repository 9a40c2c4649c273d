//! Reading pages: from the mapping (a committed snapshot) or from a write
//! transaction's own copies. Every page number is checked against the
//! snapshot's size before it is turned into a slice, and every page's
//! checksum the first time it is read, unless this handle's own commit wrote
//! it (see [`crate::verified`]).

use std::path::Path;

use mmapkit::GrowableReadMap;

use crate::error::{Error, Result};
use crate::page::{self, HEADER, Kind, PAGE_SIZE, PageNo};
use crate::verified::Verified;

/// Where tree code reads pages from.
pub trait Pages {
    /// The database file, for error messages.
    fn path(&self) -> &Path;

    /// Page `n`, exactly [`PAGE_SIZE`] bytes.
    fn page(&self, n: PageNo) -> Result<&[u8]>;

    /// The `len`-byte value held by the overflow run starting at page `n`.
    fn run(&self, n: PageNo, len: usize) -> Result<&[u8]>;

    /// An error if the file lost pages under the mapping: what was read may be zeros.
    fn check_fault(&self) -> Result<()>;

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
    fn bytes(&self, n: PageNo, pages: u64) -> Result<&[u8]> {
        let end = n.checked_add(pages).filter(|&end| n >= 2 && end <= self.page_count);
        let Some(end) = end else {
            return Err(self.corrupt(n, format!("page {n} (+{pages}) is outside pages 2..{}", self.page_count)));
        };
        let (start, end) = (n as usize * PAGE_SIZE, end as usize * PAGE_SIZE);
        match self.map.get(start..end) {
            Some(b) => Ok(b),
            None => Err(self.corrupt(n, format!("page {n} is beyond the mapped {} bytes", self.map.len()))),
        }
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
