//! The pages of one committed snapshot, read through the mapping. Every page
//! number is checked against the snapshot's size before it is turned into a
//! slice, every page of the slice is touched and found present in the file (a
//! page the file lost under the map is an [`Error::Fault`], never the zeros
//! the fault guard put in its place), and every page's checksum is checked the
//! first time it is read in each life of the page, unless this handle's own
//! commit wrote it (see `verified.rs`).
//!
//! A file cut inside an OS page is not a fault for the rest of that page: the
//! kernel keeps it mapped and reads zeros past the file's end, and a page
//! whose checksum matched earlier would not be checked again. So every read
//! also makes sure the file still reaches the end of what it read: it touches
//! the map's last OS page, which faults when the file ends anywhere before
//! it (one cache line for every read, so it stays cached), and then takes
//! the file's length from the fault; a page in that last OS page has its
//! length from `fstat`.

use std::path::Path;

use mmapkit::GrowableReadMap;

use super::page_header::{self, PAGE_SIZE, PageNo};
use super::page_source::{PageSource, run_value};
use super::verified::Verified;
use crate::error::{Error, IoOp, Result};

/// The pages `0..page_count` of the file as one commit left them.
#[derive(Clone, Copy)]
pub struct SnapshotPages<'db> {
    map: &'db GrowableReadMap,
    path: &'db Path,
    page_count: u64,
    /// Where set, a page's checksum is checked the first time it is read
    /// (and a mismatch is an error); `check` reads without, to report it.
    verified: Option<&'db Verified>,
}

impl<'db> SnapshotPages<'db> {
    /// Pages `0..page_count` of `map`, checksums checked through `verified`
    /// where given.
    pub(super) fn new(
        map: &'db GrowableReadMap,
        path: &'db Path,
        page_count: u64,
        verified: Option<&'db Verified>,
    ) -> SnapshotPages<'db> {
        SnapshotPages { map, path, page_count, verified }
    }

    /// The same pages, read without checking checksums: a mismatch is left to
    /// the caller to find (and report) with [`page_header::checksum_ok`].
    pub fn unverified(self) -> SnapshotPages<'db> {
        SnapshotPages { verified: None, ..self }
    }

    /// Pages `n..n + pages` as mapped, unchecked (no fault or checksum check),
    /// or `None` where they are past the mapping.
    pub fn raw(&self, n: PageNo, pages: u64) -> Option<&'db [u8]> {
        let start = usize::try_from(n).ok()?.checked_mul(PAGE_SIZE)?;
        let len = usize::try_from(pages).ok()?.checked_mul(PAGE_SIZE)?;
        self.map.get(start..start.checked_add(len)?)
    }

    /// Page `n` (or the run of `pages` starting there), every page of it
    /// touched and found present: a page the file lost under the map is an
    /// [`Error::Fault`] now, so neither a parse nor a caller ever sees the
    /// zeros the fault guard put in its place.
    fn bytes(&self, n: PageNo, pages: u64) -> Result<&'db [u8]> {
        let end = n.checked_add(pages).filter(|&end| n >= 2 && end <= self.page_count);
        let Some(end) = end else {
            return Err(self.corrupt(n, format!("page {n} (+{pages}) is outside pages 2..{}", self.page_count)));
        };
        let (start, end) = (n as usize * PAGE_SIZE, end as usize * PAGE_SIZE);
        let bytes = self.map.get_checked(start..end).map_err(|e| match e.kind() {
            mmapkit::ErrorKind::Fault(fault) => Error::Fault { path: self.path.to_path_buf(), fault: *fault },
            _ => self.corrupt(n, format!("page {n} is beyond the mapped {} bytes", self.map.len())),
        })?;
        self.in_file(n, end as u64)?;
        Ok(bytes)
    }

    /// Whether the file still reaches byte `end`, the end of what was just
    /// read from page `n` on: an error naming the page and the file's length
    /// if it does not (the bytes read may be the kernel's zeros).
    fn in_file(&self, n: PageNo, end: u64) -> Result<()> {
        let os_page = mmapkit_sys::memory::page_size();
        let last = self.map.len().saturating_sub(1) / os_page * os_page;
        if end <= last as u64 {
            // The map's last OS page faults if the file ends before it; the
            // fault carries the length the file has now.
            let at = last;
            return match self.map.get_checked(at..at + 1) {
                Err(e) => match e.kind() {
                    mmapkit::ErrorKind::Fault(fault) if fault.file_len().is_none_or(|len| len < end) => {
                        Err(Error::Fault { path: self.path.to_path_buf(), fault: *fault })
                    }
                    _ => Ok(()),
                },
                Ok(_) => Ok(()),
            };
        }
        self.cut_before(n, end).map_or(Ok(()), Err)
    }

    /// An error for page `n` if the file (as `fstat` gives its length now)
    /// ends before byte `end`.
    fn cut_before(&self, n: PageNo, end: u64) -> Option<Error> {
        use std::os::fd::AsFd;
        let len = match mmapkit_sys::file::file_status(self.map.file().as_fd()) {
            Ok(status) => status.len,
            Err(e) => return Some(Error::io(self.path, IoOp::Stat, e)),
        };
        (len < end).then(|| {
            self.corrupt(
                n,
                format!(
                    "the file is now {len} bytes long, short of page {n}'s end at byte {end}: it was cut while open"
                ),
            )
        })
    }

    /// `bytes`, page `n` or the run starting there, once its checksum has
    /// matched (checked only the first time).
    fn verify<'b>(&self, n: PageNo, bytes: &'b [u8]) -> Result<&'b [u8]> {
        if let Some(verified) = self.verified
            && !verified.contains(n, page_header::stored_checksum(bytes))
        {
            if !page_header::checksum_ok(bytes) {
                // Zeros where the file was cut in the meantime are the cut's doing.
                let end = n * PAGE_SIZE as u64 + bytes.len() as u64;
                return Err(self
                    .cut_before(n, end)
                    .unwrap_or_else(|| self.corrupt(n, format!("page {n}: checksum mismatch"))));
            }
            verified.insert(n, page_header::stored_checksum(bytes));
        }
        Ok(bytes)
    }
}

impl PageSource for SnapshotPages<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn page(&self, n: PageNo) -> Result<&[u8]> {
        self.verify(n, self.bytes(n, 1)?)
    }

    fn run(&self, n: PageNo, len: usize) -> Result<&[u8]> {
        let run = self.bytes(n, page_header::run_pages(len))?;
        run_value(self.verify(n, run)?, n, len, self)
    }

    fn check_fault(&self) -> Result<()> {
        match self.map.fault() {
            Some(fault) => Err(Error::Fault { path: self.path.to_path_buf(), fault }),
            None => Ok(()),
        }
    }
}
