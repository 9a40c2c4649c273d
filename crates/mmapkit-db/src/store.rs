//! A write transaction's pages: copies it owns (dirty pages, written at
//! commit) over the snapshot it started from, and the page allocator.
//!
//! A page is in `dirty` exactly when this transaction allocated it, so a page
//! of the committed tree is never changed: the first change copies it to a new
//! page (copy-on-write) and frees the old one for after the commit.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::freelist::FreePages;
use crate::node::Node;
use crate::page::{self, PAGE_SIZE, PageNo};
use crate::pages::{MapPages, Pages, run_value};

/// The pages a write transaction sees and changes.
pub struct Store<'db> {
    /// The snapshot the transaction started from.
    pub base: MapPages<'db>,
    /// Pages (and overflow runs, keyed by first page) allocated by this transaction.
    pub dirty: HashMap<PageNo, Box<[u8]>>,
    /// Free pages from earlier commits, as of the transaction's start.
    pub free: FreePages,
    /// Pages this transaction allocated and freed again: reusable at once.
    pub recycled: FreePages,
    /// Pages of the committed state freed by this transaction.
    pub freed: Vec<(PageNo, u64)>,
    /// Extents taken from `free`, to give back if the transaction aborts.
    pub taken: Vec<(PageNo, u64)>,
    /// Page buffers to reuse (from earlier transactions and freed dirty
    /// pages): a batch of inserts would otherwise allocate and fault in
    /// megabytes of fresh memory every time.
    pub spare: Vec<Box<[u8]>>,
    /// High-water mark: pages `0..page_count` are allocated or free.
    pub page_count: u64,
    /// Where pages written ahead of the commit (by [`place_ahead`](Self::place_ahead))
    /// begin: every page from here on that is not dirty was written ahead.
    pub ahead_from: Option<PageNo>,
}

impl<'db> Store<'db> {
    /// A store over `base` with the writer's free pages.
    pub fn new(base: MapPages<'db>, free: FreePages) -> Store<'db> {
        let page_count = base.page_count;
        Store {
            base,
            dirty: HashMap::new(),
            free,
            recycled: FreePages::default(),
            freed: Vec::new(),
            taken: Vec::new(),
            spare: Vec::new(),
            page_count,
            ahead_from: None,
        }
    }

    /// Allocates `n` contiguous pages, zeroed, owned by this transaction.
    pub fn alloc(&mut self, n: u64) -> PageNo {
        let start = self.place(n);
        let bytes = if n == 1 {
            let mut page = self.buffer();
            page.fill(0);
            page
        } else {
            vec![0u8; n as usize * PAGE_SIZE].into_boxed_slice()
        };
        self.dirty.insert(start, bytes);
        start
    }

    /// A page-sized buffer with any contents: a spare one, or a new one.
    fn buffer(&mut self) -> Box<[u8]> {
        self.spare.pop().unwrap_or_else(|| vec![0u8; PAGE_SIZE].into_boxed_slice())
    }

    /// Where `n` new contiguous pages go: recycled, free, or past the end.
    fn place(&mut self, n: u64) -> PageNo {
        if let Some(start) = self.recycled.take(n) {
            return start;
        }
        if let Some(start) = self.free.take(n) {
            self.taken.push((start, n));
            return start;
        }
        self.page_count += n;
        self.page_count - n
    }

    /// Places `n` pages past the end for bytes the caller writes to the file
    /// before the commit. They are final: this transaction can no longer read,
    /// change or free them (the store refuses with an error naming the page).
    pub fn place_ahead(&mut self, n: u64) -> PageNo {
        self.ahead_from.get_or_insert(self.page_count);
        self.page_count += n;
        self.page_count - n
    }

    /// Whether page `n` was written ahead.
    fn is_ahead(&self, n: PageNo) -> bool {
        self.ahead_from.is_some_and(|from| n >= from) && !self.dirty.contains_key(&n)
    }

    fn written_ahead(&self, n: PageNo) -> Error {
        self.corrupt(n, format!("page {n} was written ahead of the commit and is final"))
    }

    /// Frees `n` pages starting at `start` (a page or a whole run).
    pub fn free(&mut self, start: PageNo, n: u64) {
        if let Some(bytes) = self.dirty.remove(&start) {
            if bytes.len() == PAGE_SIZE {
                self.spare.push(bytes);
            }
            self.recycled.add_ready(start, n);
        } else {
            self.freed.push((start, n));
        }
    }

    /// A page of this transaction's to change: `n` itself if this transaction
    /// owns it, else a checked copy of node `n` on a new page (and `n` freed).
    pub fn owned(&mut self, n: PageNo) -> Result<PageNo> {
        if self.dirty.contains_key(&n) {
            return Ok(n);
        }
        if self.is_ahead(n) {
            return Err(self.written_ahead(n));
        }
        let mut copy = self.buffer();
        {
            let bytes = self.base.page(n)?;
            Node::parse(bytes, n, self.base.path)?.validate()?;
            copy.copy_from_slice(bytes);
        }
        self.base.check_fault()?;
        let new = self.place(1);
        self.dirty.insert(new, copy);
        self.free(n, 1);
        Ok(new)
    }

    /// The bytes of a page this transaction owns.
    pub fn page_mut(&mut self, n: PageNo) -> &mut [u8] {
        self.dirty.get_mut(&n).expect("page_mut is called only on owned pages")
    }

    /// Writes a new overflow run holding `value`; returns its first page.
    pub fn write_run(&mut self, value: &[u8]) -> PageNo {
        let pages = page::run_pages(value.len());
        let start = self.alloc(pages);
        let run = self.page_mut(start);
        page::init(run, page::Kind::Overflow, pages);
        run[page::HEADER..page::HEADER + value.len()].copy_from_slice(value);
        start
    }
}

impl Pages for Store<'_> {
    fn path(&self) -> &Path {
        self.base.path
    }

    fn page(&self, n: PageNo) -> Result<&[u8]> {
        match self.dirty.get(&n) {
            Some(p) => Ok(&p[..PAGE_SIZE]),
            None if self.is_ahead(n) => Err(self.written_ahead(n)),
            None => self.base.page(n),
        }
    }

    fn run(&self, n: PageNo, len: usize) -> Result<&[u8]> {
        match self.dirty.get(&n) {
            Some(run) if run.len() as u64 == page::run_pages(len) * PAGE_SIZE as u64 => run_value(run, n, len, self),
            Some(_) => Err(self.corrupt(n, format!("page {n} is not an overflow run of a {len}-byte value"))),
            None if self.is_ahead(n) => Err(self.written_ahead(n)),
            None => self.base.run(n, len),
        }
    }

    fn check_fault(&self) -> Result<()> {
        self.base.check_fault()
    }
}
