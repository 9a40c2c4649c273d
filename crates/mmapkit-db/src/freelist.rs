//! Free pages: which pages may be written by the next transaction, and which
//! must wait until no reader (and no durable state) can still see them.
//!
//! Pages a commit frees are *pending*; they become *ready* once every open
//! reader's snapshot and the last durable commit are at or after the commit
//! that freed them (so neither a reader nor the state on disk refers to a
//! page that is overwritten). Ready pages are kept as merged extents, which
//! also serve the contiguous runs large values need.
//!
//! Pending pages are kept in *segments*, one per durable commit: the segment
//! of durable commit `D` holds the pages freed by the commits after the
//! durable commit before it, up to and including `D` (those of commits made
//! with `Durability::None` join the next durable commit's). A segment is
//! written to the file once, by `D`, and is released whole, oldest first,
//! once `D` is at most both the oldest reader's snapshot and the last durable
//! commit. Neither a commit nor a release looks at the segments it does not
//! write or release, so their cost does not depend on how many pages wait for
//! a long-lived reader.
//!
//! # On disk
//!
//! The meta page names the *free list*: one chain of free-list pages, and how
//! many of its pages to read. A durable commit writes, on new pages, the
//! *ready list* (every extent reusable at once) and then its own segment, if
//! it freed anything, linked to the newest segment of an earlier durable
//! commit not yet released, which links to the one before it, and so on: the
//! chain is the ready list, then the pending segments, newest first. A
//! segment's last page keeps the link it was written with, to a segment that
//! may since have been released and its pages reused, so a reader stops at
//! the count, and checks that every page it follows was written by the
//! commit its predecessor names. The pages of the previous durable commit's
//! list that a durable commit no longer reaches (the previous ready list, the
//! segments released since) are pages that commit frees. After a restart no
//! reader exists, so every extent of the list is ready.
//!
//! A free-list page (kind 4; the common header is described in `page.rs`):
//!
//! | bytes      | field                                                        |
//! |------------|--------------------------------------------------------------|
//! | 10..12     | extents on the page (at most 253)                            |
//! | 16..24     | the durable commit that wrote the page                       |
//! | 24..32     | next page of the chain (0: none)                             |
//! | 32..4080   | extents, 16 bytes each: first page, pages                    |
//! | 4080..4088 | the commit that wrote the next page (0: none)                |
//! | 4088..4096 | zero                                                         |

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::error::Result;
use crate::meta::Meta;
use crate::page::{self, HEADER, Kind, PAGE_SIZE, PageNo, read_u64, write_u64};
use crate::pages::{MapPages, Pages};
use crate::store::Store;

/// Where a free-list page records the commit that wrote its next page.
const NEXT_TXN: usize = PAGE_SIZE - 16;
/// Extents per free-list page: 16 bytes each, between the header and [`NEXT_TXN`].
pub(crate) const EXTENTS_PER_PAGE: usize = (NEXT_TXN - HEADER) / 16;

/// The free pages known to the writer.
#[derive(Clone, Debug, Default)]
pub struct FreePages {
    /// Reusable now: start → length, disjoint and merged.
    ready: BTreeMap<PageNo, u64>,
    /// Segments written by durable commits and not released yet, oldest first.
    segments: VecDeque<Segment>,
    /// Pages the segments are written on.
    segment_pages: u64,
    /// Freed by the commits after the last durable one: part of the next
    /// durable commit's segment.
    unsaved: Vec<(PageNo, u64)>,
    /// Pages of the last durable commit's free list that the next durable
    /// commit's list does not reach (the ready list, and the segments
    /// released since): that commit frees them.
    superseded: Vec<PageNo>,
}

/// The pages freed since the durable commit before `txn`, up to `txn`: pending
/// together, persisted together, released together.
#[derive(Clone, Debug)]
pub struct Segment {
    /// The durable commit that wrote it.
    pub txn: u64,
    /// The freed extents, sorted and merged.
    pub extents: Vec<(PageNo, u64)>,
    /// The free-list pages it is written on, in chain order.
    pub pages: Vec<PageNo>,
}

impl FreePages {
    /// Adds an extent to the ready set, merging with its neighbours.
    pub fn add_ready(&mut self, start: PageNo, len: u64) {
        if len == 0 {
            return;
        }
        let (mut start, mut len) = (start, len);
        if let Some((&prev, &plen)) = self.ready.range(..start).next_back()
            && prev + plen == start
        {
            self.ready.remove(&prev);
            start = prev;
            len += plen;
        }
        if let Some(&next_len) = self.ready.get(&(start + len)) {
            self.ready.remove(&(start + len));
            len += next_len;
        }
        self.ready.insert(start, len);
    }

    /// Records the extents freed by a commit that was not durable: they wait
    /// for the next durable commit, which persists them in its segment.
    pub fn add_unsaved(&mut self, extents: Vec<(PageNo, u64)>) {
        if self.unsaved.is_empty() {
            self.unsaved = extents;
        } else {
            self.unsaved.extend(extents);
        }
    }

    /// Makes ready every segment written by a durable commit with id at most
    /// `upto`, oldest first; its pages are superseded. Costs what it releases.
    pub fn release(&mut self, upto: u64) {
        while self.segments.front().is_some_and(|s| s.txn <= upto) {
            let Some(segment) = self.segments.pop_front() else { break };
            for &(start, len) in &segment.extents {
                self.add_ready(start, len);
            }
            self.segment_pages -= segment.pages.len() as u64;
            self.superseded.extend(segment.pages);
        }
    }

    /// Records what a durable commit wrote: its ready list's pages (superseded
    /// by the next durable commit) and its segment, which takes in the
    /// unsaved extents.
    pub fn saved(&mut self, list: Vec<PageNo>, segment: Option<Segment>) {
        self.unsaved.clear();
        self.superseded = list;
        if let Some(segment) = segment {
            self.segment_pages += segment.pages.len() as u64;
            self.segments.push_back(segment);
        }
    }

    /// Takes `n` contiguous ready pages (first fit), if there are.
    pub fn take(&mut self, n: u64) -> Option<PageNo> {
        let (&start, &len) = self.ready.iter().find(|&(_, &len)| len >= n)?;
        self.ready.remove(&start);
        if len > n {
            self.ready.insert(start + n, len - n);
        }
        Some(start)
    }

    /// Drops ready pages at the end of the file: returns the new high-water mark.
    pub fn trim_tail(&mut self, mut page_count: u64) -> u64 {
        while let Some((&start, &len)) = self.ready.iter().next_back() {
            if start + len != page_count {
                break;
            }
            self.ready.remove(&start);
            page_count = start;
        }
        page_count
    }

    /// Ready pages.
    pub fn ready_pages(&self) -> u64 {
        self.ready.values().sum()
    }

    /// Pages waiting for readers or a durable commit (counted extent by extent).
    pub fn pending_pages(&self) -> u64 {
        self.pending_extents().map(|(_, len)| len).sum()
    }

    /// Ready extents, in page order.
    pub fn ready_extents(&self) -> impl Iterator<Item = (PageNo, u64)> + '_ {
        self.ready.iter().map(|(&s, &l)| (s, l))
    }

    /// Pending extents: the segments' and the unsaved ones.
    pub fn pending_extents(&self) -> impl Iterator<Item = (PageNo, u64)> + '_ {
        self.segments.iter().flat_map(|s| s.extents.iter().copied()).chain(self.unsaved.iter().copied())
    }

    /// The pages the persisted free list is written on: the superseded ones
    /// (still reached by the last durable commit) and the segments'.
    pub fn list_pages(&self) -> impl Iterator<Item = PageNo> + '_ {
        self.superseded.iter().copied().chain(self.segments.iter().flat_map(|s| s.pages.iter().copied()))
    }

    /// The newest pending segment's first page and commit: where a new
    /// segment links to.
    fn newest_segment(&self) -> Option<(PageNo, u64)> {
        let newest = self.segments.back()?;
        Some((*newest.pages.first()?, newest.txn))
    }
}

/// Disjoint `extents`, sorted and with touching ones joined.
pub fn merged(mut extents: Vec<(PageNo, u64)>) -> Vec<(PageNo, u64)> {
    extents.retain(|&(_, len)| len > 0);
    extents.sort_unstable();
    let mut out: Vec<(PageNo, u64)> = Vec::with_capacity(extents.len());
    for (start, len) in extents {
        match out.last_mut() {
            Some((s, l)) if *s + *l == start => *l += len,
            _ => out.push((start, len)),
        }
    }
    out
}

/// The free list as a durable commit wrote it.
#[derive(Debug)]
pub struct Saved {
    /// The chain's first page (0: none), for the meta page.
    pub first: PageNo,
    /// Pages of the chain to read, for the meta page.
    pub pages: u64,
    /// The ready list's pages.
    pub list: Vec<PageNo>,
    /// The commit's segment, if it freed anything.
    pub segment: Option<Segment>,
}

/// Writes the free list of durable commit `txn` into pages of `store`, as the
/// last step before its pages are sealed: the pages the previous list no
/// longer needs are freed, the commit's segment (what it and the commits since
/// the last durable one freed) and then the ready list get new pages. The
/// writer's state is left as it was (an aborted commit changes nothing); the
/// result is handed to [`FreePages::saved`] once the commit is durable.
pub fn save(store: &mut Store<'_>, txn: u64) -> Saved {
    // Not written by this transaction (they are in use until now), so they
    // are freed pages of the committed state.
    store.freed.extend(store.free.superseded.iter().map(|&p| (p, 1)));
    let freed = merged(store.free.unsaved.iter().chain(&store.freed).copied().collect());
    let segment: Vec<PageNo> = (0..freed.len().div_ceil(EXTENTS_PER_PAGE)).map(|_| store.alloc(1)).collect();
    // Taking a page for the list can split a merged extent (a recycled page
    // next to a ready run), so the count is taken again after each page until
    // the list holds them all.
    let mut list = Vec::new();
    let ready = loop {
        let ready = merged(store.free.ready_extents().chain(store.recycled.ready_extents()).collect());
        if list.len() >= ready.len().div_ceil(EXTENTS_PER_PAGE) {
            break ready;
        }
        list.push(store.alloc(1));
    };
    let older = store.free.newest_segment();
    let chain: Vec<(PageNo, &[(PageNo, u64)])> = list
        .iter()
        .enumerate()
        .map(|(k, &p)| (p, ready.chunks(EXTENTS_PER_PAGE).nth(k).unwrap_or(&[])))
        .chain(segment.iter().zip(freed.chunks(EXTENTS_PER_PAGE)).map(|(&p, part)| (p, part)))
        .collect();
    for (k, &(p, part)) in chain.iter().enumerate() {
        let (next, next_txn) = match chain.get(k + 1) {
            Some(&(n, _)) => (n, txn),
            None => older.unwrap_or((0, 0)),
        };
        write_page(store.page_mut(p), part, next, next_txn);
    }
    let first = chain.first().map(|&(p, _)| p).or(older.map(|(p, _)| p)).unwrap_or(0);
    let pages = chain.len() as u64 + store.free.segment_pages;
    let segment = (!segment.is_empty()).then_some(Segment { txn, extents: freed, pages: segment });
    Saved { first, pages, list, segment }
}

/// Fills `buf` as a free-list page holding `extents` (at most
/// [`EXTENTS_PER_PAGE`]), linked to page `next`, written by commit `next_txn`.
fn write_page(buf: &mut [u8], extents: &[(PageNo, u64)], next: PageNo, next_txn: u64) {
    page::init(buf, Kind::FreeList, next);
    page::write_u16(buf, 10, extents.len() as u16);
    for (i, &(start, len)) in extents.iter().enumerate() {
        write_u64(buf, HEADER + 16 * i, start);
        write_u64(buf, HEADER + 16 * i + 8, len);
    }
    write_u64(buf, NEXT_TXN, next_txn);
}

/// Reads the free list `meta` names: every extent on it is ready (no reader
/// exists yet), and every page it is written on is superseded (the next
/// durable commit writes a new list). Errors name the page that is wrong.
pub fn load(pages: &MapPages<'_>, meta: &Meta) -> Result<FreePages> {
    let mut free = FreePages::default();
    let mut seen = HashSet::new();
    let (mut next, mut writer) = (meta.freelist, None);
    let mut last = meta.freelist;
    for read in 0..meta.free_list_pages {
        if next == 0 {
            let what = format!("the free list ends after {read} of its {} pages", meta.free_list_pages);
            return Err(pages.corrupt(last, what));
        }
        if !seen.insert(next) {
            return Err(pages.corrupt(next, "the free list loops".into()));
        }
        let p = pages.page(next)?;
        if !page::checksum_ok(p) || page::kind_byte(p) != Kind::FreeList as u8 {
            return Err(pages.corrupt(next, "free-list page fails its checksum or kind".into()));
        }
        let (txn, next_txn) = (read_u64(p, 16), read_u64(p, NEXT_TXN));
        match writer {
            Some(w) if txn != w => {
                let what = format!("free-list page written by commit {txn}, the page before it names commit {w}");
                return Err(pages.corrupt(next, what));
            }
            None if txn > meta.txn => {
                let what = format!("free-list page written by commit {txn}, after commit {}", meta.txn);
                return Err(pages.corrupt(next, what));
            }
            _ => {}
        }
        if next_txn > txn {
            return Err(pages.corrupt(next, format!("free-list page links to a page of a later commit {next_txn}")));
        }
        let count = page::read_u16(p, 10) as usize;
        if count > EXTENTS_PER_PAGE {
            return Err(pages.corrupt(next, format!("free-list page claims {count} extents")));
        }
        for i in 0..count {
            let (start, len) = (read_u64(p, HEADER + 16 * i), read_u64(p, HEADER + 16 * i + 8));
            if start < 2 || len == 0 || start.checked_add(len).is_none_or(|end| end > meta.page_count) {
                return Err(pages.corrupt(next, format!("free extent {start}+{len} is outside the file")));
            }
            free.add_ready(start, len);
        }
        free.superseded.push(next);
        last = next;
        (next, writer) = (page::link(p), Some(next_txn));
    }
    pages.check_fault()?;
    Ok(free)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever order extents are freed in, the ready set is the union,
        /// merged, and `take` hands out each page once.
        #[test]
        fn extents_merge_and_hand_out_each_page_once(pages in proptest::collection::btree_set(2u64..300, 0..120)) {
            let mut free = FreePages::default();
            let mut shuffled: Vec<u64> = pages.iter().copied().collect();
            shuffled.reverse();
            let third = shuffled.len() / 3;
            shuffled.rotate_left(third);
            for p in &shuffled {
                free.add_ready(*p, 1);
            }
            let extents: Vec<_> = free.ready_extents().collect();
            for w in extents.windows(2) {
                prop_assert!(w[0].0 + w[0].1 < w[1].0, "extents {:?} and {:?} touch or overlap", w[0], w[1]);
            }
            prop_assert_eq!(free.ready_pages(), pages.len() as u64);
            // Merging the single pages in one go gives the same extents.
            let singles: Vec<(PageNo, u64)> = shuffled.iter().map(|&p| (p, 1)).collect();
            prop_assert_eq!(merged(singles), extents.clone());
            let mut handed = std::collections::BTreeSet::new();
            while let Some(p) = free.take(1) {
                prop_assert!(handed.insert(p), "page {} handed out twice", p);
            }
            prop_assert_eq!(handed, pages);
        }
    }

    fn segment(txn: u64, extents: Vec<(PageNo, u64)>, pages: Vec<PageNo>) -> Option<Segment> {
        Some(Segment { txn, extents, pages })
    }

    /// Segments wait for release whole, and release supersedes their pages.
    #[test]
    fn segments_wait_for_release_whole() {
        let mut free = FreePages::default();
        free.add_unsaved(vec![(10, 2)]);
        // Durable commit 5 persists what commit 4 freed with its own.
        free.saved(vec![40], segment(5, vec![(10, 2), (13, 1)], vec![50]));
        assert!(free.unsaved.is_empty());
        free.saved(vec![41], segment(7, vec![(20, 1)], vec![51, 52]));
        assert_eq!(free.take(1), None);
        free.release(4);
        assert_eq!(free.ready_pages(), 0, "a segment is released only once its whole span is");
        free.release(6);
        assert_eq!(free.ready_pages(), 3);
        assert_eq!(free.pending_pages(), 1);
        assert_eq!(free.segment_pages, 2);
        assert_eq!(free.superseded, [41, 50]);
        assert_eq!(free.list_pages().collect::<Vec<_>>(), [41, 50, 51, 52]);
        assert_eq!(free.take(2), Some(10));
        assert_eq!(merged(free.ready_extents().chain(free.pending_extents()).collect()), vec![(13, 1), (20, 1)]);
        free.release(u64::MAX);
        assert_eq!((free.pending_pages(), free.segment_pages, free.newest_segment()), (0, 0, None));
    }
}
