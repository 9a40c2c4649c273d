//! `Range`: ordered iteration over a table, from either end.

use std::ops::Bound;

use crate::error::Result;
use crate::store::PageNo;
use crate::store::PageSource;
use crate::tree::btree::{node, value_bytes};
use crate::tree::cursor::{Cursor, Seek};
use crate::tree::node::Node;

/// The entries of a table whose keys fall in a range, in key order
/// (`next`) or reverse order (`next_back`), as zero-copy slices.
///
/// Each item is a `Result`: a damaged page or a file that lost pages under the
/// map ends the iteration with an error. Keys are checked to come in strictly
/// increasing order, so a damaged tree cannot make the iteration repeat itself.
pub struct Range<'a> {
    pages: &'a dyn PageSource,
    root: PageNo,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    front: Option<Cursor>,
    back: Option<Cursor>,
    last_front: Option<&'a [u8]>,
    last_back: Option<&'a [u8]>,
    /// The leaf the front cursor is in, parsed.
    front_leaf: Option<Node<'a>>,
    done: bool,
}

/// Entries prefetched when a scan enters a leaf.
const PREFETCH: usize = 12;

impl<'a> Range<'a> {
    pub(crate) fn new(pages: &'a dyn PageSource, root: PageNo, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Range<'a> {
        Range {
            pages,
            root,
            start: start.map(<[u8]>::to_vec),
            end: end.map(<[u8]>::to_vec),
            front: None,
            back: None,
            last_front: None,
            last_back: None,
            front_leaf: None,
            done: false,
        }
    }

    fn next_front(&mut self) -> Result<Option<(&'a [u8], &'a [u8])>> {
        let pages = self.pages;
        let cursor = match &mut self.front {
            Some(c) => c,
            None => {
                let seek = match &self.start {
                    Bound::Unbounded => Seek::First,
                    Bound::Included(k) => Seek::AtOrAfter(k),
                    Bound::Excluded(k) => Seek::After(k),
                };
                self.front.insert(Cursor::seek(pages, self.root, seek)?)
            }
        };
        let Some((leaf, i)) = cursor.position() else { return Ok(None) };
        // The leaf is parsed (and its next entries prefetched) once, when the
        // scan enters it, and its first key checked against the last one
        // given: a damaged tree cannot make the scan go back and repeat.
        let view = match self.front_leaf {
            Some(view) if view.page() == leaf => view,
            _ => {
                let view = node(pages, leaf)?;
                view.prefetch(i, PREFETCH);
                self.front_leaf = Some(view);
                if let Some(prev) = self.last_front
                    && view.count() > i
                    && view.key(i)? <= prev
                {
                    return Err(pages.corrupt(leaf, "keys out of order".into()));
                }
                view
            }
        };
        let (key, value) = view.leaf_entry(i)?;
        let past_end = match &self.end {
            Bound::Unbounded => false,
            Bound::Included(e) => key > e.as_slice(),
            Bound::Excluded(e) => key >= e.as_slice(),
        };
        if past_end || self.last_back.is_some_and(|b| key >= b) {
            return Ok(None);
        }
        let value = value_bytes(pages, value)?;
        cursor.step(pages)?;
        self.last_front = Some(key);
        Ok(Some((key, value)))
    }

    fn next_rear(&mut self) -> Result<Option<(&'a [u8], &'a [u8])>> {
        let pages = self.pages;
        let cursor = match &mut self.back {
            Some(c) => c,
            None => {
                let seek = match &self.end {
                    Bound::Unbounded => Seek::Last,
                    Bound::Included(k) => Seek::AtOrBefore(k),
                    Bound::Excluded(k) => Seek::Before(k),
                };
                self.back.insert(Cursor::seek(pages, self.root, seek)?)
            }
        };
        let Some((key, value)) = cursor.entry(pages)? else { return Ok(None) };
        let before_start = match &self.start {
            Bound::Unbounded => false,
            Bound::Included(s) => key < s.as_slice(),
            Bound::Excluded(s) => key <= s.as_slice(),
        };
        if before_start || self.last_front.is_some_and(|f| key <= f) {
            return Ok(None);
        }
        if let Some(prev) = self.last_back
            && key >= prev
        {
            return Err(pages.corrupt(cursor_page(cursor), "keys out of order".into()));
        }
        let value = value_bytes(pages, value)?;
        cursor.step_back(pages)?;
        self.last_back = Some(key);
        Ok(Some((key, value)))
    }

    fn finish(&mut self, r: Result<Option<(&'a [u8], &'a [u8])>>) -> Option<Result<(&'a [u8], &'a [u8])>> {
        match r {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(self.pages.fault_first(e)))
            }
        }
    }
}

fn cursor_page(c: &Cursor) -> PageNo {
    c.leaf().unwrap_or(0)
}

impl<'a> Iterator for Range<'a> {
    type Item = Result<(&'a [u8], &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_front();
        self.finish(r)
    }
}

impl DoubleEndedIterator for Range<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_rear();
        self.finish(r)
    }
}

impl std::iter::FusedIterator for Range<'_> {}
