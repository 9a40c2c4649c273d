//! Which pages are known to match their checksum: one bit per page, set when
//! a read has hashed the page, or when this handle's commit has just written
//! it from the bytes it sealed. Reads hash a page the first time they meet it
//! and then only test its bit. What this catches is damage present when a
//! page is first read; a page that changes on disk later (bit rot, read back
//! after the page cache dropped it) is not checked again.
//!
//! A committed page never changes while a snapshot can reach it (the tree is
//! copy-on-write and a freed page is reused only when no reader can see it),
//! so once its checksum has matched, it keeps matching. The writer clears a
//! page's bit before it writes the page again; at that moment no reader can
//! reach the page, and the commit that makes it reachable again is published
//! under a lock that orders the clearing before any reader's next look.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::page_header::{PAGE_SIZE, PageNo};

/// Pages per chunk of bits: 1 GiB of file in 32 KiB of bits.
const CHUNK_PAGES: u64 = 1 << 18;

/// The bits, one per page the file can grow to, in chunks allocated the first
/// time a page of theirs is verified.
pub struct Verified {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
}

impl Verified {
    /// Room for a file of up to `max_bytes`.
    pub fn new(max_bytes: usize) -> Verified {
        let chunks = (max_bytes as u64 / PAGE_SIZE as u64).div_ceil(CHUNK_PAGES);
        Verified { chunks: (0..chunks).map(|_| OnceLock::new()).collect() }
    }

    /// Page `n`'s word (allocating its chunk if `make`) and bit.
    fn slot(&self, n: PageNo, make: bool) -> Option<(&AtomicU64, u64)> {
        let chunk = self.chunks.get(usize::try_from(n / CHUNK_PAGES).ok()?)?;
        let words = match chunk.get() {
            Some(words) => words,
            None if make => chunk.get_or_init(|| (0..CHUNK_PAGES / 64).map(|_| AtomicU64::new(0)).collect()),
            None => return None,
        };
        Some((&words[(n % CHUNK_PAGES / 64) as usize], 1 << (n % 64)))
    }

    /// Whether page `n`'s checksum has matched since it was last written.
    pub fn contains(&self, n: PageNo) -> bool {
        self.slot(n, false).is_some_and(|(word, bit)| word.load(Ordering::Relaxed) & bit != 0)
    }

    /// Records that page `n`'s checksum matched.
    pub fn insert(&self, n: PageNo) {
        if let Some((word, bit)) = self.slot(n, true) {
            word.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Forgets pages `start..start + count`, about to be written.
    pub fn forget(&self, start: PageNo, count: u64) {
        for n in start..start.saturating_add(count) {
            if let Some((word, bit)) = self.slot(n, false) {
                word.fetch_and(!bit, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_set_and_forgotten_page_by_page() {
        let v = Verified::new(2 << 30); // two chunks
        let last = 2 * CHUNK_PAGES - 1;
        assert!(!v.contains(3));
        for n in [3, 64, CHUNK_PAGES, last, last + 1] {
            v.insert(n); // the last one is past the end: ignored
        }
        assert!(v.contains(3) && v.contains(64) && v.contains(CHUNK_PAGES) && v.contains(last));
        assert!(!v.contains(4) && !v.contains(63) && !v.contains(CHUNK_PAGES + 1) && !v.contains(last + 1));
        v.forget(60, 5);
        v.forget(CHUNK_PAGES - 1, 2);
        assert!(v.contains(3) && !v.contains(64) && !v.contains(CHUNK_PAGES) && v.contains(last));
    }
}
