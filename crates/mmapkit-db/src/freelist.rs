//! Free pages: which pages may be written by the next transaction, and which
//! must wait until no reader (and no durable state) can still see them.
//!
//! Pages a commit frees are *pending*, tagged with that commit's id; they
//! become *ready* once every open reader's snapshot is at least that id and a
//! durable commit has been made at or after it (so the state on disk never
//! refers to a page that was overwritten). Ready pages are kept as merged
//! extents, which also serve the contiguous runs large values need.
//!
//! On disk the free list is a chain of pages of `(start, length)` extents
//! written by each durable commit. After a restart no reader exists, so every
//! extent in it is ready.

use std::collections::BTreeMap;

use crate::page::PageNo;

/// The free pages known to the writer.
#[derive(Clone, Debug, Default)]
pub struct FreePages {
    /// Reusable now: start → length, disjoint and merged.
    ready: BTreeMap<PageNo, u64>,
    /// Freed by commit `txn`: reusable once released.
    pending: Vec<(u64, Vec<(PageNo, u64)>)>,
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

    /// Records the extents freed by commit `txn`.
    pub fn add_pending(&mut self, txn: u64, extents: Vec<(PageNo, u64)>) {
        if !extents.is_empty() {
            self.pending.push((txn, extents));
        }
    }

    /// Makes ready every extent freed by a commit with id at most `upto`.
    pub fn release(&mut self, upto: u64) {
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending).into_iter().partition(|(t, _)| *t <= upto);
        self.pending = later;
        for (_, extents) in now {
            for (start, len) in extents {
                self.add_ready(start, len);
            }
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

    /// Pages waiting for readers or a durable commit.
    pub fn pending_pages(&self) -> u64 {
        self.pending.iter().flat_map(|(_, e)| e).map(|(_, len)| len).sum()
    }

    /// Ready extents, in page order.
    pub fn ready_extents(&self) -> impl Iterator<Item = (PageNo, u64)> + '_ {
        self.ready.iter().map(|(&s, &l)| (s, l))
    }

    /// Pending extents (any tag).
    pub fn pending_extents(&self) -> impl Iterator<Item = (PageNo, u64)> + '_ {
        self.pending.iter().flat_map(|(_, e)| e.iter().copied())
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

    #[test]
    fn pending_pages_wait_for_release() {
        let mut free = FreePages::default();
        free.add_pending(5, vec![(10, 2)]);
        free.add_pending(7, vec![(20, 1)]);
        assert_eq!(free.take(1), None);
        free.release(6);
        assert_eq!(free.ready_pages(), 2);
        assert_eq!(free.pending_pages(), 1);
        assert_eq!(free.take(2), Some(10));
        assert_eq!(merged(free.ready_extents().chain(free.pending_extents()).collect()), vec![(20, 1)]);
    }
}
