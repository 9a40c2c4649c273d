//! Verifying the whole file (`Database::check`), reporting every problem found.

use std::fmt;

use crate::error::Result;
use crate::store::page_header::{self, Kind};
use crate::store::{PAGE_SIZE, PageNo, PageSource, SnapshotPages};
use crate::tree::btree::MAX_DEPTH;
use crate::tree::catalog::{self, TableInfo};
use crate::tree::node::{Node, Value};
use crate::txn::Engine;

/// Problems past this many are counted, not listed.
const MAX_LISTED: usize = 10_000;

/// One thing wrong with the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The page it concerns, when there is one.
    pub page: Option<PageNo>,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.page {
            Some(page) => write!(f, "page {page}: {}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

/// What [`Database::check`](crate::Database::check) found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// The commit that was checked.
    pub txn: u64,
    /// Pages in the file's used range (including the two meta pages).
    pub page_count: u64,
    /// Pages reachable from the commit (tree nodes, overflow runs, the pages
    /// the free list is written on).
    pub pages_in_use: u64,
    /// Pages on the free list (ready or pending).
    pub pages_free: u64,
    /// Tables in the catalog.
    pub tables: u64,
    /// Entries over all tables.
    pub entries: u64,
    /// Every problem found (at most 10,000 listed; see `unlisted`).
    pub problems: Vec<Problem>,
    /// Problems found beyond those listed.
    pub unlisted: u64,
    /// What opening recovered from (see [`Database::recovery`](crate::Database::recovery)): not a
    /// problem of the commit checked, but a commit after it was lost.
    pub recovery: Option<String>,
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Unseen,
    Used,
    Free,
}

struct Checker<'a> {
    pages: &'a SnapshotPages<'a>,
    marks: Vec<Mark>,
    report: CheckReport,
}

impl Checker<'_> {
    fn problem(&mut self, page: Option<PageNo>, what: String) {
        if self.report.problems.len() < MAX_LISTED {
            self.report.problems.push(Problem { page, what });
        } else {
            self.report.unlisted += 1;
        }
    }

    /// Marks `n` pages from `start`; false (and a problem) if any is out of range or already marked.
    fn mark(&mut self, start: PageNo, n: u64, how: Mark, what: &str) -> bool {
        let end = start.checked_add(n);
        if start < 2 || end.is_none_or(|end| end > self.marks.len() as u64) {
            self.problem(Some(start), format!("{what} of {n} pages is outside pages 2..{}", self.marks.len()));
            return false;
        }
        for p in start..start + n {
            match self.marks[p as usize] {
                Mark::Unseen => self.marks[p as usize] = how,
                Mark::Used if how == Mark::Used => {
                    self.problem(Some(p), format!("{what} is reachable twice"));
                    return false;
                }
                _ => {
                    self.problem(Some(p), format!("{what} is both in use and on the free list"));
                    return false;
                }
            }
        }
        true
    }

    /// Checks the tree at `n` for keys in `lower..upper`; returns its entries
    /// (and the keys for the catalog).
    fn tree(
        &mut self,
        n: PageNo,
        (lower, upper): (Option<&[u8]>, Option<&[u8]>),
        depth: usize,
        leaf_depth: &mut Option<usize>,
        what: &str,
        out: &mut Option<Vec<(Vec<u8>, Vec<u8>)>>,
    ) -> u64 {
        if depth > MAX_DEPTH {
            self.problem(Some(n), format!("{what}: deeper than {MAX_DEPTH} levels"));
            return 0;
        }
        if !self.mark(n, 1, Mark::Used, &format!("{what} node")) {
            return 0;
        }
        let pages = self.pages;
        let bytes = match pages.page(n) {
            Ok(b) => b,
            Err(e) => {
                self.problem(Some(n), e.to_string());
                return 0;
            }
        };
        if !page_header::checksum_ok(bytes) {
            self.problem(Some(n), format!("{what}: checksum mismatch"));
        }
        let node = match Node::parse(bytes, n, pages.path()).and_then(|node| node.validate().map(|()| node)) {
            Ok(node) => node,
            Err(e) => {
                self.problem(Some(n), format!("{what}: {e}"));
                return 0;
            }
        };
        let mut keys = Vec::with_capacity(node.count());
        for i in 0..node.count() {
            match node.key(i) {
                Ok(k) => keys.push(k),
                Err(e) => {
                    self.problem(Some(n), format!("{what}: {e}"));
                    return 0;
                }
            }
        }
        for (i, k) in keys.iter().enumerate() {
            if i > 0 && keys[i - 1] >= *k {
                self.problem(Some(n), format!("{what}: keys {} and {i} are out of order", i - 1));
            }
            if lower.is_some_and(|l| *k < l) || upper.is_some_and(|u| *k >= u) {
                self.problem(Some(n), format!("{what}: key {i} is outside the range its parent gives"));
            }
        }
        if node.is_leaf() {
            match *leaf_depth {
                None => *leaf_depth = Some(depth),
                Some(d) if d != depth => self.problem(Some(n), format!("{what}: leaf at depth {depth}, others at {d}")),
                _ => {}
            }
            for i in 0..node.count() {
                let Ok((key, value)) = node.leaf_entry(i) else { continue };
                match value {
                    Value::Inline(v) => {
                        if let Some(out) = out.as_mut() {
                            out.push((key.to_vec(), v.to_vec()));
                        }
                    }
                    Value::Overflow { page: run, len } => {
                        self.overflow(n, run, len, what);
                        if out.is_some() {
                            self.problem(Some(n), format!("{what}: entry {i} has an overflow value"));
                        }
                    }
                }
            }
            return node.count() as u64;
        }
        let mut total = 0;
        for j in 0..=node.count() {
            let child = match node.child(j) {
                Ok(c) => c,
                Err(e) => {
                    self.problem(Some(n), format!("{what}: {e}"));
                    continue;
                }
            };
            let lo = if j == 0 { lower } else { Some(keys[j - 1]) };
            let hi = if j == node.count() { upper } else { Some(keys[j]) };
            total += self.tree(child, (lo, hi), depth + 1, leaf_depth, what, out);
        }
        total
    }

    fn overflow(&mut self, leaf: PageNo, run: PageNo, len: usize, what: &str) {
        let pages = page_header::run_pages(len);
        if !self.mark(run, pages, Mark::Used, &format!("{what} overflow run (from leaf {leaf})")) {
            return;
        }
        let Some(bytes) = self.pages.raw(run, pages) else { return };
        if !page_header::checksum_ok(bytes) {
            self.problem(Some(run), format!("{what}: overflow run checksum mismatch"));
        }
        if let Err(e) = self.pages.run(run, len) {
            self.problem(Some(run), e.to_string());
        }
    }
}

/// Checks `engine`'s newest commit (see `Database::check`).
pub fn check(engine: &Engine) -> Result<CheckReport> {
    let store = engine.store();
    let (writer, meta) = engine.held_turn()?;
    // Unverified reads: a checksum mismatch is reported as such, and the
    // node is still looked into for what else is wrong.
    let pages = store.snapshot(&meta).unverified();
    let mut c = Checker {
        pages: &pages,
        marks: vec![Mark::Unseen; meta.page_count.min(store.file_len() / PAGE_SIZE as u64) as usize],
        report: CheckReport {
            txn: meta.txn,
            page_count: meta.page_count,
            recovery: store.recovery().map(str::to_string),
            ..CheckReport::default()
        },
    };
    if (c.marks.len() as u64) < meta.page_count {
        c.problem(None, format!("the file holds {} pages, the commit needs {}", c.marks.len(), meta.page_count));
    }
    // The other meta slot may be older or torn by a crash; only the current commit must be sound.
    let on_disk = store.meta_in_slot(writer.durable_slot());
    if meta.txn == writer.last_durable() && on_disk != Some(meta) {
        c.problem(Some(writer.durable_slot() as u64), "the meta page on disk differs from the open commit".into());
    }
    let mut tables = Some(Vec::new());
    if meta.catalog != 0 {
        let mut depth = None;
        c.tree(meta.catalog, (None, None), 0, &mut depth, "catalog", &mut tables);
    }
    for (name, value) in tables.unwrap_or_default() {
        let label = format!("table {:?}", String::from_utf8_lossy(&name));
        let info = match catalog::decode(&pages, meta.catalog, &value) {
            Ok(info) => info,
            Err(e) => {
                c.problem(Some(meta.catalog), format!("{label}: {e}"));
                continue;
            }
        };
        c.report.tables += 1;
        let TableInfo { root, len } = info;
        let found = if root == 0 { 0 } else { c.tree(root, (None, None), 0, &mut None, &label, &mut None) };
        if found != len {
            c.problem(Some(root), format!("{label}: the catalog says {len} entries, the tree holds {found}"));
        }
        c.report.entries += found;
    }
    // The pages the free list is written on: the last durable commit's
    // ready list, the segments released since (both freed by the next
    // durable commit) and the pending segments.
    for p in writer.free_pages().list_pages() {
        if c.mark(p, 1, Mark::Used, "free-list page") {
            match pages.page(p) {
                Ok(b) if page_header::checksum_ok(b) && page_header::kind_byte(b) == Kind::FreeList as u8 => {}
                _ => c.problem(Some(p), "free-list page fails its checksum or kind".into()),
            }
        }
    }
    let free = writer.free_pages();
    let free: Vec<(PageNo, u64)> = free.ready_extents().chain(free.pending_extents()).collect();
    for (start, len) in free {
        c.mark(start, len, Mark::Free, "free extent");
    }
    let mut leaked = Vec::new();
    for (p, mark) in c.marks.iter().enumerate().skip(2) {
        match mark {
            Mark::Unseen => leaked.push(p as u64),
            Mark::Used => c.report.pages_in_use += 1,
            Mark::Free => c.report.pages_free += 1,
        }
    }
    for p in leaked {
        c.problem(Some(p), "neither in use nor free (leaked)".into());
    }
    pages.check_fault()?;
    Ok(c.report)
}
