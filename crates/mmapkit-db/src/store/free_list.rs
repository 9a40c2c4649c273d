//! The free list on disk: how a durable commit writes the free pages (see
//! `free_pages.rs`) into the file, and how opening reads them back.
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
//! A free-list page (kind 4; the common header is described in `page_header.rs`):
//!
//! | bytes      | field                                                        |
//! |------------|--------------------------------------------------------------|
//! | 10..12     | extents on the page (at most 253)                            |
//! | 16..24     | the durable commit that wrote the page                       |
//! | 24..32     | next page of the chain (0: none)                             |
//! | 32..4080   | extents, 16 bytes each: first page, pages                    |
//! | 4080..4088 | the commit that wrote the next page (0: none)                |
//! | 4088..4096 | zero                                                         |

use std::collections::HashSet;

use super::free_pages::{FreePages, SavedList, Segment, merged, merged_sorted};
use super::le_bytes::{read_u16, read_u64, write_u16, write_u64};
use super::meta_page::Meta;
use super::page_header::{self, HEADER, Kind, PAGE_SIZE, PageNo};
use super::page_source::PageSource;
use super::snapshot::SnapshotPages;
use super::txn_pages::TxnPages;
use crate::error::Result;

/// Where a free-list page records the commit that wrote its next page.
const NEXT_TXN: usize = PAGE_SIZE - 16;
/// Extents per free-list page: 16 bytes each, between the header and [`NEXT_TXN`].
pub const EXTENTS_PER_PAGE: usize = (NEXT_TXN - HEADER) / 16;

/// Writes the free list of durable commit `txn` into pages of `pages`, as the
/// last step before its pages are sealed: the pages the previous list no
/// longer needs are freed, the commit's segment (what it and the commits since
/// the last durable one freed) and then the ready list get new pages. The
/// writer's state is left as it was (an aborted commit changes nothing); the
/// result is handed to [`FreePages::saved`] once the commit is durable.
pub fn save(pages: &mut TxnPages<'_>, txn: u64) -> SavedList {
    pages.free_superseded_list();
    let freed = merged(pages.free_pages().unsaved().iter().chain(pages.freed()).copied().collect());
    let segment: Vec<PageNo> = (0..freed.len().div_ceil(EXTENTS_PER_PAGE)).map(|_| pages.alloc(1)).collect();
    // Taking a page for the list can split a merged extent (a recycled page
    // next to a ready run), so the count is taken again after the pages it
    // asked for are taken, until the list holds them all (a list page left
    // over holds no extent).
    let mut list = Vec::new();
    let ready = loop {
        let ready = merged_sorted(pages.free_pages().ready_extents(), pages.recycled().ready_extents());
        let needed = ready.len().div_ceil(EXTENTS_PER_PAGE);
        if list.len() >= needed {
            break ready;
        }
        while list.len() < needed {
            list.push(pages.alloc(1));
        }
    };
    let older = pages.free_pages().newest_segment();
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
        write_page(pages.page_mut(p), part, next, next_txn);
    }
    let first = chain.first().map(|&(p, _)| p).or(older.map(|(p, _)| p)).unwrap_or(0);
    let count = chain.len() as u64 + pages.free_pages().segment_pages();
    let segment = (!segment.is_empty()).then_some(Segment { txn, extents: freed, pages: segment });
    SavedList { first, pages: count, list, segment }
}

/// Fills `buf` as a free-list page holding `extents` (at most
/// [`EXTENTS_PER_PAGE`]), linked to page `next`, written by commit `next_txn`.
fn write_page(buf: &mut [u8], extents: &[(PageNo, u64)], next: PageNo, next_txn: u64) {
    page_header::init(buf, Kind::FreeList, next);
    write_u16(buf, 10, extents.len() as u16);
    for (i, &(start, len)) in extents.iter().enumerate() {
        write_u64(buf, HEADER + 16 * i, start);
        write_u64(buf, HEADER + 16 * i + 8, len);
    }
    write_u64(buf, NEXT_TXN, next_txn);
}

/// Reads the free list `meta` names, as one pending segment of commit
/// `meta.txn`: a reader in another process may still see a snapshot older
/// than `meta`, so nothing on the list is reused before every reader's
/// snapshot is at least `meta` (with none, at once). Errors name the page
/// that is wrong.
pub fn load(pages: &SnapshotPages<'_>, meta: &Meta) -> Result<FreePages> {
    let (mut extents, mut chain) = (Vec::new(), Vec::new());
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
        if !page_header::checksum_ok(p) || page_header::kind_byte(p) != Kind::FreeList as u8 {
            return Err(pages.corrupt(next, "free-list page fails its checksum or kind".into()));
        }
        let (txn, next_txn) = (page_header::written_by(p), read_u64(p, NEXT_TXN));
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
        let count = read_u16(p, 10) as usize;
        if count > EXTENTS_PER_PAGE {
            return Err(pages.corrupt(next, format!("free-list page claims {count} extents")));
        }
        for i in 0..count {
            let (start, len) = (read_u64(p, HEADER + 16 * i), read_u64(p, HEADER + 16 * i + 8));
            if start < 2 || len == 0 || start.checked_add(len).is_none_or(|end| end > meta.page_count) {
                return Err(pages.corrupt(next, format!("free extent {start}+{len} is outside the file")));
            }
            extents.push((start, len));
        }
        chain.push(next);
        last = next;
        (next, writer) = (page_header::link(p), Some(next_txn));
    }
    pages.check_fault()?;
    Ok(FreePages::loaded(meta.txn, extents, chain))
}

#[cfg(test)]
mod tests {
    use super::EXTENTS_PER_PAGE;
    use crate::store::free_pages::{FreePages, merged};
    use crate::store::page_store::{Config, PageStore};
    use crate::store::txn_pages::TxnPages;

    /// The extents the ready list of a commit with these free pages holds.
    fn ready_list(pages: &mut TxnPages<'_>) -> Vec<(u64, u64)> {
        let (_, free, recycled) = pages.parts_for_test();
        merged(free.ready_extents().chain(recycled.ready_extents()).collect())
    }

    /// Taking a page for the ready list from a recycled page between two ready
    /// runs splits one persisted extent into two; when that crosses a page's
    /// worth, the list must grow, or the reopened file's free list comes up short.
    #[test]
    fn the_ready_list_holds_every_extent_when_its_own_page_splits_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.db");
        // SAFETY: the file is this test's own, in its own directory.
        let (mut store, meta) = unsafe { PageStore::open(&path, &Config::default(), true) }.unwrap();
        let mut w = store.begin_write(|_| meta).unwrap();
        // Pages 8..13 and 100.. are declared free in a file of 2,000 pages:
        // page 10 recycled between the ready runs 8..10 and 11..13, and single
        // ready pages, as many as make the merged extents exactly one list page's worth.
        {
            let (page_count, writer_free, recycled) = w.parts_for_test();
            *page_count = 2_000;
            recycled.add_ready(10, 1);
            let mut free = FreePages::default();
            free.add_ready(8, 2);
            free.add_ready(11, 2);
            for i in 0..EXTENTS_PER_PAGE as u64 - 1 {
                free.add_ready(100 + 2 * i, 1);
            }
            *writer_free = free;
        }
        assert_eq!(ready_list(&mut w).len(), EXTENTS_PER_PAGE);
        // No table changed and nothing was freed: the first page taken is the
        // list's, page 10 (recycled pages go first).
        let committed = store.commit(&mut w, meta.catalog, true).unwrap();
        drop(w);
        store.close(&committed);
        drop(store);

        // SAFETY: the file is this test's own, and the store that had it open is closed.
        let (store, meta) = unsafe { PageStore::open(&path, &Config::default(), false) }.unwrap();
        // The list read back is pending until a writer finds no older reader: at its first transaction.
        let mut w = store.begin_write(|_| meta).unwrap();
        let ready: Vec<(u64, u64)> = w.parts_for_test().1.ready_extents().collect();
        // Pages 10 and 8 hold the list: the rest of the run is two extents.
        assert_eq!(ready[..2], [(9, 1), (11, 2)]);
        assert_eq!(ready.len(), EXTENTS_PER_PAGE + 1);
    }
}
