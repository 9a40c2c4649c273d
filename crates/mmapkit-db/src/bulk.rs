//! Building a tree bottom-up from entries already in key order: full leaves
//! written one after another, then each branch level over the one below. What
//! [`Database::compact_to`](crate::Database::compact_to) uses instead of one
//! insert (and one descent) per key.

use crate::error::Result;
use crate::node::{self, LEAF_ENTRY_HEADER, MAX_ENTRY, SLOT, Value, edit};
use crate::page::{Kind, PageNo};
use crate::pages::Pages;
use crate::store::Store;

/// Builds a tree of the `(key, value)` pairs, which must come in strictly
/// increasing key order; returns its root (0 when empty) and entry count.
pub fn build<'e>(
    store: &mut Store<'_>,
    entries: impl Iterator<Item = Result<(&'e [u8], &'e [u8])>>,
) -> Result<(PageNo, u64)> {
    let mut level: Vec<(Vec<u8>, PageNo)> = Vec::new();
    let mut leaf: Option<PageNo> = None;
    let mut count = 0u64;
    let mut at = 0;
    let mut encoded = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    for item in entries {
        let (key, value) = item?;
        if last.as_deref().is_some_and(|prev| prev >= key) {
            return Err(store.corrupt(0, "entries given to a bulk build out of order".into()));
        }
        let stored = if LEAF_ENTRY_HEADER + key.len() + value.len() + SLOT <= MAX_ENTRY {
            Value::Inline(value)
        } else {
            Value::Overflow { page: store.write_run(value), len: value.len() }
        };
        node::encode_leaf(&mut encoded, key, stored);
        let fits = leaf.is_some_and(|p| edit::insert(store.page_mut(p), at, &encoded));
        if !fits {
            let p = store.alloc(1);
            edit::build(store.page_mut(p), Kind::Leaf, 0, [encoded.as_slice()]);
            let sep = match &last {
                Some(prev) => crate::btree::separator(prev, key),
                None => key.to_vec(),
            };
            level.push((sep, p));
            leaf = Some(p);
            at = 0;
        }
        at += 1;
        count += 1;
        last = Some(key.to_vec());
    }
    // Branch levels until one page holds them all.
    while level.len() > 1 {
        let mut above: Vec<(Vec<u8>, PageNo)> = Vec::new();
        let mut branch: Option<PageNo> = None;
        let mut at = 0;
        for (key, child) in level {
            node::encode_branch(&mut encoded, &key, child);
            let fits = branch.is_some_and(|p| edit::insert(store.page_mut(p), at, &encoded));
            if fits {
                at += 1;
                continue;
            }
            // A new branch starts with this child as its leftmost; its key goes up.
            let p = store.alloc(1);
            edit::build(store.page_mut(p), Kind::Branch, child, std::iter::empty());
            above.push((key, p));
            branch = Some(p);
            at = 0;
        }
        level = above;
    }
    Ok((level.first().map_or(0, |&(_, p)| p), count))
}
