//! The read operations tables share, whether they read a committed snapshot
//! or a write transaction's own state.

use std::ops::{Bound, RangeBounds};

use crate::btree::{self, value_bytes};
use crate::cursor::{Cursor, Seek};
use crate::error::Result;
use crate::page::PageNo;
use crate::pages::Pages;
use crate::range::Range;

pub fn get<'p>(pages: &'p dyn Pages, root: PageNo, key: &[u8]) -> Result<Option<&'p [u8]>> {
    let found = match btree::get(pages, root, key)? {
        Some(v) => Some(value_bytes(pages, v)?),
        None => None,
    };
    pages.check_fault()?;
    Ok(found)
}

pub fn range<'p, 'k>(pages: &'p dyn Pages, root: PageNo, bounds: impl RangeBounds<&'k [u8]>) -> Range<'p> {
    let copy = |b: Bound<&&'k [u8]>| b.map(|k| *k);
    Range::new(pages, root, copy(bounds.start_bound()), copy(bounds.end_bound()))
}

pub fn edge(pages: &dyn Pages, root: PageNo, last: bool) -> Result<Option<(&[u8], &[u8])>> {
    let cursor = Cursor::seek(pages, root, if last { Seek::Last } else { Seek::First })?;
    let found = match cursor.entry(pages)? {
        Some((k, v)) => Some((k, value_bytes(pages, v)?)),
        None => None,
    };
    pages.check_fault()?;
    Ok(found)
}
