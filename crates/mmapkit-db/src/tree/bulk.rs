//! Building a tree bottom-up from entries already in key order: full leaves
//! one after another, then each branch level over the one below. What
//! [`Database::compact_to`](crate::Database::compact_to) uses instead of one
//! insert (and one descent) per key.
//!
//! A node is filled in a local buffer and handed to a [`Sink`] once the next
//! entry no longer fits, so a finished page is never touched again: the sink
//! may write it out at once.

use crate::error::{Error, Result};
use crate::store::page_header::{self, Kind, PAGE_SIZE, PageNo};
use crate::store::{PageSource, TxnPages};
use crate::tree::node::{self, LEAF_ENTRY_HEADER, MAX_ENTRY, SLOT, Value, edit};

/// Where a bulk build puts each page (or overflow run) once it is final.
pub trait Sink {
    /// Takes a finished page or run (whole pages, header set) and returns the
    /// page number it was given. The sink may stamp the bytes' checksum.
    fn put(&mut self, bytes: &mut [u8]) -> Result<PageNo>;
    /// An error for entries that are not in strictly increasing key order.
    fn out_of_order(&self) -> Error;
}

/// A write transaction's pages take a bulk build's pages as they are
/// finished, each written to the file at once ([`TxnPages::write_ahead`]).
impl Sink for TxnPages<'_> {
    fn put(&mut self, bytes: &mut [u8]) -> Result<PageNo> {
        self.write_ahead(bytes)
    }

    fn out_of_order(&self) -> Error {
        self.corrupt(0, "entries given to a bulk build out of order".into())
    }
}

/// The node being filled: a page buffer, its entry count, and the key that
/// goes up to the level above for it.
struct OpenNode {
    page: Vec<u8>,
    entries: usize,
    key: Vec<u8>,
    open: bool,
}

impl OpenNode {
    fn new() -> OpenNode {
        OpenNode { page: vec![0; PAGE_SIZE], entries: 0, key: Vec::new(), open: false }
    }

    /// Appends `entry`; `false` if the node is not open or it does not fit.
    fn push(&mut self, entry: &[u8]) -> bool {
        let fits = self.open && edit::insert(&mut self.page, self.entries, entry);
        self.entries += usize::from(fits);
        fits
    }

    /// Hands the node (if any) to `sink` and records it in `level`.
    fn finish(&mut self, sink: &mut impl Sink, level: &mut Vec<(Vec<u8>, PageNo)>) -> Result<()> {
        if std::mem::take(&mut self.open) {
            let n = sink.put(&mut self.page)?;
            level.push((std::mem::take(&mut self.key), n));
        }
        Ok(())
    }

    /// Starts a node of `kind` with `link` and `first` (if any) as content.
    fn start(&mut self, kind: Kind, link: PageNo, first: Option<&[u8]>, key: Vec<u8>) {
        edit::build(&mut self.page, kind, link, first);
        self.entries = usize::from(first.is_some());
        self.key = key;
        self.open = true;
    }
}

/// Builds a tree of the `(key, value)` pairs, which must come in strictly
/// increasing key order, giving every page to `sink`; returns its root (0
/// when empty) and entry count.
pub fn build<'e>(
    sink: &mut impl Sink,
    entries: impl Iterator<Item = Result<(&'e [u8], &'e [u8])>>,
) -> Result<(PageNo, u64)> {
    let mut level: Vec<(Vec<u8>, PageNo)> = Vec::new();
    let mut node = OpenNode::new();
    let mut count = 0u64;
    let mut encoded = Vec::new();
    let mut last: Option<&'e [u8]> = None;
    for item in entries {
        let (key, value) = item?;
        if last.is_some_and(|prev| prev >= key) {
            return Err(sink.out_of_order());
        }
        let stored = if LEAF_ENTRY_HEADER + key.len() + value.len() + SLOT <= MAX_ENTRY {
            Value::Inline(value)
        } else {
            Value::Overflow { page: put_run(sink, value)?, len: value.len() }
        };
        node::encode_leaf(&mut encoded, key, stored);
        if !node.push(&encoded) {
            node.finish(sink, &mut level)?;
            let key_up = match last {
                Some(prev) => crate::tree::btree::separator(prev, key),
                None => key.to_vec(),
            };
            node.start(Kind::Leaf, 0, Some(&encoded), key_up);
        }
        count += 1;
        last = Some(key);
    }
    node.finish(sink, &mut level)?;
    // Branch levels until one page holds them all.
    while level.len() > 1 {
        let mut above: Vec<(Vec<u8>, PageNo)> = Vec::new();
        for (key, child) in level {
            node::encode_branch(&mut encoded, &key, child);
            if !node.push(&encoded) {
                // A new branch starts with this child as its leftmost; its key goes up.
                node.finish(sink, &mut above)?;
                node.start(Kind::Branch, child, None, key);
            }
        }
        node.finish(sink, &mut above)?;
        level = above;
    }
    Ok((level.first().map_or(0, |&(_, p)| p), count))
}

/// Puts `value` in an overflow run; returns its first page.
fn put_run(sink: &mut impl Sink, value: &[u8]) -> Result<PageNo> {
    let mut run = vec![0u8; page_header::run_pages(value.len()) as usize * PAGE_SIZE];
    page_header::init(&mut run, Kind::Overflow, page_header::run_pages(value.len()));
    run[page_header::HEADER..page_header::HEADER + value.len()].copy_from_slice(value);
    sink.put(&mut run)
}
