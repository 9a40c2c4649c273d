//! The reads a table offers, over the tree at its root, whether the pages are
//! a committed snapshot's or a write transaction's own.
//!
//! Every page these read is checked as it is read (see
//! [`PageSource::page`]): bytes they return are the file's, and a page the
//! file lost is a fault, even when other pages were lost before.

use std::ops::{Bound, RangeBounds};

use crate::error::Result;
use crate::store::PageNo;
use crate::store::PageSource;
use crate::tree::btree::{self, value_bytes};
use crate::tree::cursor::{Cursor, Seek};
use crate::tree::range::Range;

/// The value stored under `key`.
pub fn get<'p>(pages: &'p dyn PageSource, root: PageNo, key: &[u8]) -> Result<Option<&'p [u8]>> {
    let found = || match btree::get(pages, root, key)? {
        Some(v) => value_bytes(pages, v).map(Some),
        None => Ok(None),
    };
    found().map_err(|e| pages.fault_first(e))
}

/// The entries with keys in `bounds`, in order.
pub fn range<'p, 'k>(pages: &'p dyn PageSource, root: PageNo, bounds: impl RangeBounds<&'k [u8]>) -> Range<'p> {
    let copy = |b: Bound<&&'k [u8]>| b.map(|k| *k);
    Range::new(pages, root, copy(bounds.start_bound()), copy(bounds.end_bound()))
}

/// The entry with the smallest key, or with the largest if `last`.
pub fn edge(pages: &dyn PageSource, root: PageNo, last: bool) -> Result<Option<(&[u8], &[u8])>> {
    let found = || -> Result<_> {
        let cursor = Cursor::seek(pages, root, if last { Seek::Last } else { Seek::First })?;
        match cursor.entry(pages)? {
            Some((k, v)) => Ok(Some((k, value_bytes(pages, v)?))),
            None => Ok(None),
        }
    };
    found().map_err(|e| pages.fault_first(e))
}

/// The entries whose keys start with `prefix`, in order: from `prefix` up
/// to the first key past every key it starts.
pub fn prefix<'p>(pages: &'p dyn PageSource, root: PageNo, prefix: &[u8]) -> Range<'p> {
    let end = prefix_end(prefix);
    Range::new(pages, root, Bound::Included(prefix), end.as_deref().map_or(Bound::Unbounded, Bound::Excluded))
}

/// The smallest key greater than every key starting with `prefix`, if there
/// is one (none for a prefix of only `0xff` bytes, or an empty one).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut end = prefix[..=keep].to_vec();
    end[keep] += 1;
    Some(end)
}
