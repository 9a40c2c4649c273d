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
//! How the free pages are written to the file is `free_list.rs`'s part.

use std::collections::{BTreeMap, VecDeque};

use super::page_header::PageNo;

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
    /// The free list as the file holds it, written by durable commit `txn`
    /// on `pages` (in chain order): every extent pending in one segment of
    /// `txn`, released whole like any other.
    pub fn loaded(txn: u64, extents: Vec<(PageNo, u64)>, pages: Vec<PageNo>) -> FreePages {
        let mut free = FreePages::default();
        if !pages.is_empty() {
            free.segment_pages = pages.len() as u64;
            free.segments.push_back(Segment { txn, extents: merged(extents), pages });
        }
        free
    }

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
    pub(super) fn newest_segment(&self) -> Option<(PageNo, u64)> {
        let newest = self.segments.back()?;
        Some((*newest.pages.first()?, newest.txn))
    }

    /// Pages the pending segments are written on.
    pub(super) fn segment_pages(&self) -> u64 {
        self.segment_pages
    }

    /// Extents freed since the last durable commit, not written yet.
    pub(super) fn unsaved(&self) -> &[(PageNo, u64)] {
        &self.unsaved
    }

    /// Pages of the last durable commit's list that the next one does not reach.
    pub(super) fn superseded(&self) -> &[PageNo] {
        &self.superseded
    }
}

/// The free list as a durable commit wrote it: what the meta page names, and
/// what [`FreePages::saved`] is given once the commit is durable.
#[derive(Debug)]
pub struct SavedList {
    /// The chain's first page (0: none), for the meta page.
    pub first: PageNo,
    /// Pages of the chain to read, for the meta page.
    pub pages: u64,
    /// The ready list's pages.
    pub list: Vec<PageNo>,
    /// The commit's segment, if it freed anything.
    pub segment: Option<Segment>,
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

/// [`merged`] of two sequences of extents, each sorted and disjoint from
/// the other (the ready extents of two [`FreePages`]): one pass, no sort.
pub fn merged_sorted(
    a: impl Iterator<Item = (PageNo, u64)>,
    b: impl Iterator<Item = (PageNo, u64)>,
) -> Vec<(PageNo, u64)> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    let mut out: Vec<(PageNo, u64)> = Vec::new();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => None,
        };
        let Some((start, len)) = next else { break };
        if len == 0 {
            continue;
        }
        match out.last_mut() {
            Some((s, l)) if *s + *l == start => *l += len,
            _ => out.push((start, len)),
        }
    }
    out
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

    proptest! {
        /// Two sorted, disjoint sets of extents merge in one pass as a sort
        /// of both merges them.
        #[test]
        fn sorted_extents_merge_as_a_sort_does(
            pages in proptest::collection::btree_set(2u64..400, 0..150),
            split: u64,
        ) {
            let (mut a, mut b) = (FreePages::default(), FreePages::default());
            for (k, &p) in pages.iter().enumerate() {
                if split.rotate_left(k as u32) & 1 == 0 { a.add_ready(p, 1) } else { b.add_ready(p, 1) }
            }
            let both: Vec<(PageNo, u64)> = a.ready_extents().chain(b.ready_extents()).collect();
            prop_assert_eq!(merged_sorted(a.ready_extents(), b.ready_extents()), merged(both));
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
