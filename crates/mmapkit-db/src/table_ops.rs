//! The read operations tables share, whether they read a committed snapshot
//! or a write transaction's own state.

use std::ops::{Bound, RangeBounds};

use crate::btree::{self, value_bytes};
use crate::cursor::{Cursor, Seek};
use crate::error::Result;
use crate::page::PageNo;
use crate::pages::Pages;
use crate::range::Range;

// Every page these read is checked as it is read (see `Pages::page`): bytes
// they return are the file's, and a page the file lost is a fault, even when
// other pages were lost before.

pub fn get<'p>(pages: &'p dyn Pages, root: PageNo, key: &[u8]) -> Result<Option<&'p [u8]>> {
    let found = || match btree::get(pages, root, key)? {
        Some(v) => value_bytes(pages, v).map(Some),
        None => Ok(None),
    };
    found().map_err(|e| pages.fault_first(e))
}

pub fn range<'p, 'k>(pages: &'p dyn Pages, root: PageNo, bounds: impl RangeBounds<&'k [u8]>) -> Range<'p> {
    let copy = |b: Bound<&&'k [u8]>| b.map(|k| *k);
    Range::new(pages, root, copy(bounds.start_bound()), copy(bounds.end_bound()))
}

pub fn edge(pages: &dyn Pages, root: PageNo, last: bool) -> Result<Option<(&[u8], &[u8])>> {
    let found = || -> Result<_> {
        let cursor = Cursor::seek(pages, root, if last { Seek::Last } else { Seek::First })?;
        match cursor.entry(pages)? {
            Some((k, v)) => Ok(Some((k, value_bytes(pages, v)?))),
            None => Ok(None),
        }
    };
    found().map_err(|e| pages.fault_first(e))
}
