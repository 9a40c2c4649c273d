//! Which pages are known to match their checksum: for each page, the low 32
//! bits of the checksum it carried when a read hashed it (or when this
//! handle's commit wrote it from the bytes it sealed), 0 for none. A read
//! hashes a page whose stored checksum does not match its tag and otherwise
//! only compares the two. What this catches is damage present when a page is
//! first read in each life; a page that changes on disk later (bit rot, read
//! back after the page cache dropped it) under the same checksum is not
//! checked again.
//!
//! A committed page never changes while a snapshot can reach it (the tree is
//! copy-on-write and a freed page is reused only when no reader in any
//! process can see it). When a writer, in this process or another, writes a
//! page again, the page's new checksum differs from the tag (but for one
//! chance in 2^32), so the new contents are hashed before they are trusted:
//! a tag cannot vouch for bytes another process wrote. This handle's own
//! writer also clears a page's tag before it writes the page again.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::page_header::{PAGE_SIZE, PageNo};

/// Pages per chunk of tags: 1 GiB of file in 1 MiB of tags.
const CHUNK_PAGES: u64 = 1 << 18;

/// The tags, one per page the file can grow to, in chunks allocated the first
/// time a page of theirs is verified.
pub struct Verified {
    chunks: Box<[OnceLock<Box<[AtomicU32]>>]>,
}

/// The tag of a page whose stored checksum is `checksum` (never 0).
fn tag(checksum: u64) -> u32 {
    (checksum as u32).max(1)
}

impl Verified {
    /// Room for a file of up to `max_bytes`.
    pub fn new(max_bytes: usize) -> Verified {
        let chunks = (max_bytes as u64 / PAGE_SIZE as u64).div_ceil(CHUNK_PAGES);
        Verified { chunks: (0..chunks).map(|_| OnceLock::new()).collect() }
    }

    /// Page `n`'s tag (allocating its chunk if `make`).
    fn slot(&self, n: PageNo, make: bool) -> Option<&AtomicU32> {
        let chunk = self.chunks.get(usize::try_from(n / CHUNK_PAGES).ok()?)?;
        let tags = match chunk.get() {
            Some(tags) => tags,
            None if make => chunk.get_or_init(|| (0..CHUNK_PAGES).map(|_| AtomicU32::new(0)).collect()),
            None => return None,
        };
        Some(&tags[(n % CHUNK_PAGES) as usize])
    }

    /// Whether page `n`, now carrying `checksum`, matched it when last hashed.
    pub fn contains(&self, n: PageNo, checksum: u64) -> bool {
        self.slot(n, false).is_some_and(|t| t.load(Ordering::Relaxed) == tag(checksum))
    }

    /// Records that page `n`'s contents matched their stored `checksum`.
    pub fn insert(&self, n: PageNo, checksum: u64) {
        if let Some(t) = self.slot(n, true) {
            t.store(tag(checksum), Ordering::Relaxed);
        }
    }

    /// Forgets pages `start..start + count`, about to be written.
    pub fn forget(&self, start: PageNo, count: u64) {
        for n in start..start.saturating_add(count) {
            if let Some(t) = self.slot(n, false) {
                t.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_only_the_checksum_they_were_taken_with() {
        let v = Verified::new(2 << 30); // two chunks
        let last = 2 * CHUNK_PAGES - 1;
        assert!(!v.contains(3, 77));
        for n in [3, 64, CHUNK_PAGES, last, last + 1] {
            v.insert(n, 77 + n); // the last one is past the end: ignored
        }
        assert!(v.contains(3, 80) && v.contains(64, 141) && v.contains(CHUNK_PAGES, 77 + CHUNK_PAGES));
        assert!(v.contains(last, 77 + last) && !v.contains(last + 1, 77 + last + 1));
        assert!(!v.contains(3, 81), "a page rewritten with another checksum is hashed again");
        assert!(!v.contains(4, 81) && !v.contains(CHUNK_PAGES + 1, 77));
        v.forget(60, 5);
        v.forget(CHUNK_PAGES - 1, 2);
        assert!(v.contains(3, 80) && !v.contains(64, 141) && !v.contains(CHUNK_PAGES, 77 + CHUNK_PAGES));
        v.insert(9, 0);
        assert!(v.contains(9, 0), "a checksum whose low bits are zero still gets a tag");
    }
}
