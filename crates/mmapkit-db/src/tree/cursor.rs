//! A position in a tree, moved forwards or backwards entry by entry.
//!
//! The cursor keeps the path from the root: for each branch the child it went
//! down, and the entry index in the leaf. It holds page numbers, not views,
//! and parses each page again as it moves, so it needs no borrow of the pages.

use crate::error::Result;
use crate::store::PageNo;
use crate::store::PageSource;
use crate::tree::btree::{MAX_DEPTH, node};
use crate::tree::node::Value;

/// Where a cursor starts.
#[derive(Clone, Copy, Debug)]
pub enum Seek<'k> {
    /// The first entry.
    First,
    /// The last entry.
    Last,
    /// The first entry with a key at or after this one.
    AtOrAfter(&'k [u8]),
    /// The first entry with a key after this one.
    After(&'k [u8]),
    /// The last entry with a key at or before this one.
    AtOrBefore(&'k [u8]),
    /// The last entry with a key before this one.
    Before(&'k [u8]),
}

/// A position among a tree's entries; `None` from [`Cursor::entry`] once it
/// has moved past either end.
#[derive(Clone, Debug)]
pub struct Cursor {
    /// `(page, child index, entries)` for each branch, then `(leaf, entry
    /// index, entries)`: the counts spare a parse per step.
    path: Vec<(PageNo, usize, usize)>,
    done: bool,
}

impl Cursor {
    /// A cursor on the tree at `root` (0: empty), placed as `seek` says.
    pub fn seek<P: PageSource + ?Sized>(pages: &P, root: PageNo, seek: Seek<'_>) -> Result<Cursor> {
        let mut c = Cursor { path: Vec::with_capacity(8), done: root == 0 };
        if c.done {
            return Ok(c);
        }
        let key = match seek {
            Seek::First | Seek::Last => None,
            Seek::AtOrAfter(k) | Seek::After(k) | Seek::AtOrBefore(k) | Seek::Before(k) => Some(k),
        };
        let mut n = root;
        loop {
            if c.path.len() >= MAX_DEPTH {
                return Err(pages.corrupt(n, format!("tree is deeper than {MAX_DEPTH} levels")));
            }
            let view = node(pages, n)?;
            let index = match (key, &seek) {
                (None, Seek::First) => 0,
                (None, _) => view.count(),
                (Some(k), _) if !view.is_leaf() => view.child_for(k)?,
                (Some(k), Seek::After(_) | Seek::AtOrBefore(_)) => match view.search(k)? {
                    Ok(i) => i + 1,
                    Err(i) => i,
                },
                (Some(k), _) => match view.search(k)? {
                    Ok(i) | Err(i) => i,
                },
            };
            c.path.push((n, index, view.count()));
            if view.is_leaf() {
                break;
            }
            n = view.child(index)?;
        }
        match seek {
            Seek::First | Seek::AtOrAfter(_) | Seek::After(_) => c.settle_forward(pages)?,
            Seek::Last | Seek::AtOrBefore(_) | Seek::Before(_) => c.step_back(pages)?,
        }
        Ok(c)
    }

    /// The entry under the cursor.
    pub fn entry<'p, P: PageSource + ?Sized>(&self, pages: &'p P) -> Result<Option<(&'p [u8], Value<'p>)>> {
        if self.done {
            return Ok(None);
        }
        let &(leaf, i, _) = self.path.last().expect("a live cursor has a path");
        Ok(Some(node(pages, leaf)?.leaf_entry(i)?))
    }

    /// The leaf and entry index the cursor is at.
    pub fn position(&self) -> Option<(PageNo, usize)> {
        if self.done { None } else { self.path.last().map(|&(p, i, _)| (p, i)) }
    }

    /// The leaf the cursor is in.
    pub fn leaf(&self) -> Option<PageNo> {
        self.path.last().map(|&(p, _, _)| p)
    }

    /// Moves to the next entry.
    pub fn step<P: PageSource + ?Sized>(&mut self, pages: &P) -> Result<()> {
        if let Some(last) = self.path.last_mut() {
            last.1 += 1;
        }
        self.settle_forward(pages)
    }

    /// Moves from a leaf index that may be one past its leaf's end to the
    /// next entry that exists.
    fn settle_forward<P: PageSource + ?Sized>(&mut self, pages: &P) -> Result<()> {
        loop {
            let Some(&(_, i, count)) = self.path.last() else {
                self.done = true;
                return Ok(());
            };
            if i < count {
                return Ok(());
            }
            self.path.pop();
            // Up to the first branch with a child to the right, then down its leftmost side.
            loop {
                let Some(&(b, j, count)) = self.path.last() else {
                    self.done = true;
                    return Ok(());
                };
                if j < count {
                    let view = node(pages, b)?;
                    self.path.last_mut().expect("checked above").1 = j + 1;
                    self.descend(pages, view.child(j + 1)?, false)?;
                    break;
                }
                self.path.pop();
            }
        }
    }

    /// Moves to the previous entry (from a leaf index that may be one past the
    /// end of its leaf).
    pub fn step_back<P: PageSource + ?Sized>(&mut self, pages: &P) -> Result<()> {
        loop {
            let Some(last) = self.path.last_mut() else {
                self.done = true;
                return Ok(());
            };
            if last.1 > 0 {
                last.1 -= 1;
                return Ok(());
            }
            self.path.pop();
            loop {
                let Some(&(b, j, _)) = self.path.last() else {
                    self.done = true;
                    return Ok(());
                };
                if j > 0 {
                    self.path.last_mut().expect("checked above").1 = j - 1;
                    let view = node(pages, b)?;
                    self.descend(pages, view.child(j - 1)?, true)?;
                    break;
                }
                self.path.pop();
            }
        }
    }

    /// Goes down from `n` along its leftmost (or rightmost) edge to a leaf.
    fn descend<P: PageSource + ?Sized>(&mut self, pages: &P, mut n: PageNo, rightmost: bool) -> Result<()> {
        loop {
            if self.path.len() >= MAX_DEPTH {
                return Err(pages.corrupt(n, format!("tree is deeper than {MAX_DEPTH} levels")));
            }
            let view = node(pages, n)?;
            let index = if rightmost { view.count() } else { 0 };
            self.path.push((n, index, view.count()));
            if view.is_leaf() {
                return Ok(());
            }
            n = view.child(index)?;
        }
    }
}
