//! B+tree nodes: slotted pages of leaf entries or branch entries.
//!
//! A node is a page of kind 1 (leaf) or 2 (branch) under the common header
//! (`store/page_header.rs`), whose node fields are the entry count (10..12),
//! the start of the entry data (12..14), the dead bytes in it (14..16) and, in
//! a branch, the leftmost child (24..32). After the header comes an array of
//! slots, one per entry, in key order; entries are packed from the end of the
//! page downwards:
//!
//! | bytes                    | field                                             |
//! |--------------------------|---------------------------------------------------|
//! | 0..32                    | the common page header                            |
//! | 32..32 + 6 * count       | slots: entry offset (`u16`), key head (4 bytes)   |
//! | up to the data start     | free space                                        |
//! | data start..4096         | entries, and dead bytes of removed ones           |
//!
//! A slot's key head is the first four bytes of its entry's key (big-endian,
//! zero-padded), so a binary search compares within the slot array and reads
//! an entry only when the heads tie. Removing an entry leaves dead bytes that
//! a compaction reclaims when an insert needs them.
//!
//! | leaf entry | field                                                          |
//! |------------|----------------------------------------------------------------|
//! | 0..2       | key length                                                     |
//! | 2          | flags: `OVERFLOW` (1) when the value is in an overflow run     |
//! | 3..7       | value length                                                   |
//! | 7..        | the key, then the value, or (`OVERFLOW`) the run's first page  |
//!
//! | branch entry | field                                                        |
//! |--------------|--------------------------------------------------------------|
//! | 0..2         | key length                                                   |
//! | 2..10        | child page                                                   |
//! | 10..         | the key                                                      |
//!
//! Child `j` of a branch holds the keys from separator `j-1` (inclusive) to
//! separator `j`; child 0 is the leftmost, stored in the page header.
//!
//! Every read of a node checks what it reads against the page bounds: a damaged
//! page is a [`Error::Corrupt`], never an out-of-bounds access or a panic.

use std::cmp::Ordering;
use std::path::Path;

use crate::error::{Error, Result};
use crate::store::le_bytes::{read_u16, read_u32, read_u64};
use crate::store::page_header::{self, HEADER, Kind, PAGE_SIZE, PageNo};

/// Bytes of a slot: entry offset and key head.
pub const SLOT: usize = 6;
/// The most bytes one entry (with its slot) may take: a third of the page, so
/// that any split of an overfull node yields two halves that fit.
pub const MAX_ENTRY: usize = (PAGE_SIZE - HEADER) / 3;
/// Bytes of a leaf entry before its key.
pub const LEAF_ENTRY_HEADER: usize = 7;
/// Bytes of a branch entry before its key.
pub const BRANCH_ENTRY_HEADER: usize = 10;
/// Flag: the value lives in an overflow run.
pub const OVERFLOW: u8 = 1;

/// A leaf's value: inline bytes, or where the overflow run is.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// Stored in the leaf.
    Inline(&'a [u8]),
    /// Stored in a run of pages starting at `page`, `len` bytes after the run's header.
    Overflow {
        /// First page of the run.
        page: PageNo,
        /// The value's length.
        len: usize,
    },
}

/// A read-only, bounds-checked view of one node page.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    bytes: &'a [u8],
    page: PageNo,
    path: &'a Path,
    count: usize,
    leaf: bool,
}

impl<'a> Node<'a> {
    /// Checks the page's kind and entry count and returns a view of it.
    pub fn parse(bytes: &'a [u8], page: PageNo, path: &'a Path) -> Result<Node<'a>> {
        let bad = |what: String| Error::Corrupt { path: path.to_path_buf(), page, what };
        if bytes.len() != PAGE_SIZE {
            return Err(bad(format!("node of {} bytes", bytes.len())));
        }
        let leaf = match Kind::from_byte(page_header::kind_byte(bytes)) {
            Some(Kind::Leaf) => true,
            Some(Kind::Branch) => false,
            Some(other) => return Err(bad(format!("expected a tree node, found a {} page", other.name()))),
            None => return Err(bad(format!("unknown page kind {}", page_header::kind_byte(bytes)))),
        };
        let count = read_u16(bytes, 10) as usize;
        if HEADER + SLOT * count > PAGE_SIZE {
            return Err(bad(format!("entry count {count} does not fit in a page")));
        }
        Ok(Node { bytes, page, path, count, leaf })
    }

    fn bad(&self, what: String) -> Error {
        Error::Corrupt { path: self.path.to_path_buf(), page: self.page, what }
    }

    /// The page this view reads.
    pub fn page(&self) -> PageNo {
        self.page
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.leaf
    }

    /// Number of entries (keys).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Offset of entry `i`, checked to lie after the slot array and leave room
    /// for the entry's fixed part.
    fn offset(&self, i: usize) -> Result<usize> {
        let off = read_u16(self.bytes, HEADER + SLOT * i) as usize;
        let fixed = if self.leaf { LEAF_ENTRY_HEADER } else { BRANCH_ENTRY_HEADER };
        if off < HEADER + SLOT * self.count || off + fixed > PAGE_SIZE {
            return Err(self.bad(format!("entry {i} at offset {off} is outside the entry area")));
        }
        Ok(off)
    }

    /// The encoded bytes of entry `i` (fixed part, key and inline value).
    pub fn entry(&self, i: usize) -> Result<&'a [u8]> {
        let off = self.offset(i)?;
        let klen = read_u16(self.bytes, off) as usize;
        let len = if self.leaf {
            let vlen = read_u32(self.bytes, off + 3) as usize;
            let stored = if self.bytes[off + 2] & OVERFLOW != 0 { 8 } else { vlen };
            LEAF_ENTRY_HEADER + klen + stored
        } else {
            BRANCH_ENTRY_HEADER + klen
        };
        match self.bytes.get(off..off + len) {
            Some(entry) => Ok(entry),
            None => Err(self.bad(format!("entry {i} at offset {off} runs {len} bytes past the page end"))),
        }
    }

    /// Key of entry `i`.
    pub fn key(&self, i: usize) -> Result<&'a [u8]> {
        let entry = self.entry(i)?;
        let klen = read_u16(entry, 0) as usize;
        let start = if self.leaf { LEAF_ENTRY_HEADER } else { BRANCH_ENTRY_HEADER };
        Ok(&entry[start..start + klen])
    }

    /// Key and value of leaf entry `i`.
    pub fn leaf_entry(&self, i: usize) -> Result<(&'a [u8], Value<'a>)> {
        let entry = self.entry(i)?;
        let klen = read_u16(entry, 0) as usize;
        let vlen = read_u32(entry, 3) as usize;
        let key = &entry[LEAF_ENTRY_HEADER..LEAF_ENTRY_HEADER + klen];
        let rest = &entry[LEAF_ENTRY_HEADER + klen..];
        if entry[2] & OVERFLOW != 0 {
            Ok((key, Value::Overflow { page: read_u64(rest, 0), len: vlen }))
        } else {
            Ok((key, Value::Inline(rest)))
        }
    }

    /// Child `j` of a branch, `0..=count`.
    pub fn child(&self, j: usize) -> Result<PageNo> {
        if j == 0 {
            return Ok(page_header::link(self.bytes));
        }
        let entry = self.entry(j - 1)?;
        Ok(read_u64(entry, 2))
    }

    /// The key head stored in slot `i`.
    fn head(&self, i: usize) -> u32 {
        u32::from_be_bytes(self.bytes[HEADER + SLOT * i + 2..HEADER + SLOT * i + 6].try_into().expect("4 bytes"))
    }

    /// Asks the CPU to start loading entries `from..from + n` at once, for a
    /// scan about to read them: every cache line from the lowest entry's start
    /// to past the highest one's (committed pages hold their entries in key
    /// order, so that is the run of bytes the scan reads).
    pub fn prefetch(&self, from: usize, n: usize) {
        let offsets = (from..(from + n).min(self.count)).map(|i| read_u16(self.bytes, HEADER + SLOT * i) as usize);
        let (low, high) = offsets.fold((PAGE_SIZE, 0), |(lo, hi), off| (lo.min(off), hi.max(off)));
        // The last entry's key and value, as far as a typical entry reaches.
        let end = (high + 256).min(PAGE_SIZE);
        for line in (low & !63..end).step_by(64) {
            mmapkit::prefetch(self.bytes[line..].as_ptr());
        }
    }

    /// Binary search among the keys: `Ok(i)` where key `i` equals `key`,
    /// `Err(i)` where it would be inserted. Heads decide most steps; a damaged
    /// head can misdirect the search (a wrong answer, which `check` reports),
    /// never an out-of-bounds read.
    pub fn search(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        let wanted = head_of(key);
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let order = match self.head(mid).cmp(&wanted) {
                Ordering::Equal => self.key(mid)?.cmp(key),
                other => other,
            };
            match order {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(lo))
    }

    /// The child of a branch that covers `key`.
    pub fn child_for(&self, key: &[u8]) -> Result<usize> {
        Ok(match self.search(key)? {
            Ok(i) => i + 1,
            Err(i) => i,
        })
    }

    /// Checks every entry and the free-space accounting, as an edit of the page
    /// relies on: entries inside the data area, their bytes plus the dead bytes
    /// exactly filling it.
    pub fn validate(&self) -> Result<()> {
        let start = read_u16(self.bytes, 12) as usize;
        let start = if start == 0 { PAGE_SIZE } else { start };
        let garbage = read_u16(self.bytes, 14) as usize;
        if start < HEADER + SLOT * self.count || start > PAGE_SIZE {
            return Err(self.bad(format!("data area start {start} overlaps the slots or the page end")));
        }
        if let Some(live) = self.live_bytes(start)
            && live + garbage == PAGE_SIZE - start
            && (self.leaf || self.count > 0 || page_header::link(self.bytes) != 0)
        {
            return Ok(());
        }
        // Something is wrong: find what, entry by entry, to name it.
        let mut live = 0;
        let skip = if self.leaf { LEAF_ENTRY_HEADER } else { BRANCH_ENTRY_HEADER };
        for i in 0..self.count {
            let entry = self.entry(i)?;
            let off = entry.as_ptr() as usize - self.bytes.as_ptr() as usize;
            if off < start {
                return Err(self.bad(format!("entry {i} at offset {off} is below the data area ({start})")));
            }
            live += entry.len();
            let key = &entry[skip..skip + read_u16(entry, 0) as usize];
            if self.head(i) != head_of(key) {
                return Err(self.bad(format!("slot {i} holds the wrong key head")));
            }
        }
        if live + garbage != PAGE_SIZE - start {
            return Err(self.bad(format!(
                "{live} live and {garbage} dead bytes do not fill the {} bytes of entry data",
                PAGE_SIZE - start
            )));
        }
        if !self.leaf && self.count == 0 && page_header::link(self.bytes) == 0 {
            return Err(self.bad("branch without children".into()));
        }
        Ok(())
    }

    /// The bytes of the entries, if every one lies between `start` (at or
    /// after the slot array) and the page end and its slot holds its key's
    /// head: the checks of [`validate`](Self::validate), in one tight pass
    /// over the slots, with `None` for any failure.
    fn live_bytes(&self, start: usize) -> Option<usize> {
        let b = self.bytes;
        let skip = if self.leaf { LEAF_ENTRY_HEADER } else { BRANCH_ENTRY_HEADER };
        let mut live = 0;
        for i in 0..self.count {
            let slot = HEADER + SLOT * i;
            let off = read_u16(b, slot) as usize;
            if off < start || off + skip > PAGE_SIZE {
                return None;
            }
            let klen = read_u16(b, off) as usize;
            let len = if !self.leaf {
                BRANCH_ENTRY_HEADER + klen
            } else if b[off + 2] & OVERFLOW != 0 {
                LEAF_ENTRY_HEADER + klen + 8
            } else {
                LEAF_ENTRY_HEADER + klen + read_u32(b, off + 3) as usize
            };
            if off + len > PAGE_SIZE {
                return None;
            }
            live += len;
            let mut head = [0u8; 4];
            let k = klen.min(4);
            head[..k].copy_from_slice(&b[off + skip..off + skip + k]);
            if b[slot + 2..slot + 6] != head {
                return None;
            }
        }
        Some(live)
    }
}

/// The first four bytes of a key, zero-padded, as a big-endian number: heads
/// order like the keys they come from, except that ties need the whole key.
pub fn head_of(key: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = key.len().min(4);
    b[..n].copy_from_slice(&key[..n]);
    u32::from_be_bytes(b)
}

/// Encodes a leaf entry into `out` (cleared first).
pub fn encode_leaf(out: &mut Vec<u8>, key: &[u8], value: Value<'_>) {
    out.clear();
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    match value {
        Value::Inline(v) => {
            out.push(0);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(v);
        }
        Value::Overflow { page, len } => {
            out.push(OVERFLOW);
            out.extend_from_slice(&(len as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&page.to_le_bytes());
        }
    }
}

/// Encodes a branch entry into `out` (cleared first).
pub fn encode_branch(out: &mut Vec<u8>, key: &[u8], child: PageNo) {
    out.clear();
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&child.to_le_bytes());
    out.extend_from_slice(key);
}

/// Operations on a node page this transaction owns (a dirty copy). The page
/// was either built here or parsed and checked before being copied.
pub mod edit {
    use super::*;
    use crate::store::le_bytes::{write_u16, write_u64};

    /// Writes slot `i`: the entry's offset and its key's head.
    fn write_slot(p: &mut [u8], i: usize, offset: usize, entry: &[u8]) {
        let skip = if page_header::kind_byte(p) == Kind::Leaf as u8 { LEAF_ENTRY_HEADER } else { BRANCH_ENTRY_HEADER };
        let klen = read_u16(entry, 0) as usize;
        let at = HEADER + SLOT * i;
        write_u16(p, at, offset as u16);
        p[at + 2..at + 6].copy_from_slice(&head_of(&entry[skip..skip + klen]).to_be_bytes());
    }

    fn count(p: &[u8]) -> usize {
        read_u16(p, 10) as usize
    }

    fn data_start(p: &[u8]) -> usize {
        match read_u16(p, 12) as usize {
            0 => PAGE_SIZE,
            n => n,
        }
    }

    fn garbage(p: &[u8]) -> usize {
        read_u16(p, 14) as usize
    }

    /// Writes a fresh node of `kind` holding `entries`, in order.
    pub fn build<'e>(p: &mut [u8], kind: Kind, link: u64, entries: impl IntoIterator<Item = &'e [u8]>) {
        page_header::init(p, kind, link);
        let mut n = 0;
        let mut top = PAGE_SIZE;
        for e in entries {
            top -= e.len();
            p[top..top + e.len()].copy_from_slice(e);
            write_slot(p, n, top, e);
            n += 1;
        }
        write_u16(p, 10, n as u16);
        write_u16(p, 12, top as u16);
        write_u16(p, 14, 0);
    }

    /// Whether the entries lie in key order, each below the one before (as
    /// [`build`] lays them out), so a scan reads the page in one sweep.
    pub fn in_order(p: &[u8]) -> bool {
        (1..count(p)).all(|i| read_u16(p, HEADER + SLOT * i) < read_u16(p, HEADER + SLOT * (i - 1)))
    }

    /// Rewrites the node without dead bytes, its entries in key order.
    pub fn compact(p: &mut [u8]) {
        let copy = p.to_vec();
        let n = count(&copy);
        let leaf = page_header::kind_byte(&copy) == Kind::Leaf as u8;
        let kind = if leaf { Kind::Leaf } else { Kind::Branch };
        let view = Node { bytes: &copy, page: 0, path: Path::new(""), count: n, leaf };
        let entries: Vec<&[u8]> = (0..n).map(|i| view.entry(i).expect("owned node is well formed")).collect();
        build(p, kind, page_header::link(&copy), entries);
    }

    /// Bytes in use by entries and slots.
    pub fn used(p: &[u8]) -> usize {
        (PAGE_SIZE - data_start(p) - garbage(p)) + SLOT * count(p)
    }

    /// [`used`] for a page not known to be well formed: `None` if its
    /// header's figures do not add up within the page.
    pub fn used_checked(p: &[u8]) -> Option<usize> {
        let live = PAGE_SIZE.checked_sub(data_start(p))?.checked_sub(garbage(p))?;
        Some(live + SLOT * count(p))
    }

    /// Appends the entries of `from`, a node of the same kind whose keys all
    /// sort after this one's, after this node's own, if `wanted` says yes to
    /// the bytes they use (entries and slots): `false` (nothing changed) if
    /// it does not, if the node has dead bytes or if they do not fit. The
    /// entries keep their key order in the page, each below the one before.
    pub fn append(p: &mut [u8], from: &Node<'_>, wanted: impl FnOnce(usize) -> bool) -> Result<bool> {
        if garbage(p) != 0 {
            return Ok(false);
        }
        let n = count(p);
        let mut need = 0;
        for i in 0..from.count() {
            need += from.entry(i)?.len() + SLOT;
        }
        let mut top = data_start(p);
        if HEADER + SLOT * n + need > top || !wanted(need) {
            return Ok(false);
        }
        for i in 0..from.count() {
            let e = from.entry(i)?;
            top -= e.len();
            p[top..top + e.len()].copy_from_slice(e);
            write_slot(p, n + i, top, e);
        }
        write_u16(p, 10, (n + from.count()) as u16);
        write_u16(p, 12, top as u16);
        Ok(true)
    }

    /// Whether the node has no dead bytes.
    pub fn is_tight(p: &[u8]) -> bool {
        garbage(p) == 0
    }

    /// Inserts an encoded entry at position `i`; `false` if it does not fit.
    pub fn insert(p: &mut [u8], i: usize, entry: &[u8]) -> bool {
        let n = count(p);
        let need = entry.len() + SLOT;
        let slots_end = HEADER + SLOT * n;
        if data_start(p) - slots_end < need {
            if data_start(p) - slots_end + garbage(p) < need {
                return false;
            }
            compact(p);
        }
        let top = data_start(p) - entry.len();
        p[top..top + entry.len()].copy_from_slice(entry);
        let at = HEADER + SLOT * i;
        p.copy_within(at..HEADER + SLOT * n, at + SLOT);
        write_slot(p, i, top, entry);
        write_u16(p, 10, (n + 1) as u16);
        write_u16(p, 12, top as u16);
        true
    }

    /// Removes entry `i` (its bytes become dead).
    pub fn remove(p: &mut [u8], i: usize) {
        let n = count(p);
        let len = entry_len(p, i);
        let at = HEADER + SLOT * i;
        p.copy_within(at + SLOT..HEADER + SLOT * n, at);
        write_u16(p, 10, (n - 1) as u16);
        let g = garbage(p) + len;
        write_u16(p, 14, g as u16);
    }

    /// Removes the entries at positions `at` (increasing), their bytes
    /// becoming dead: one pass over the slots, however many go.
    pub fn remove_many(p: &mut [u8], at: impl IntoIterator<Item = usize>) {
        let n = count(p);
        let mut at = at.into_iter().peekable();
        let (mut kept, mut dead) = (0, 0);
        for i in 0..n {
            if at.next_if_eq(&i).is_some() {
                dead += entry_len(p, i);
                continue;
            }
            if kept != i {
                p.copy_within(HEADER + SLOT * i..HEADER + SLOT * (i + 1), HEADER + SLOT * kept);
            }
            kept += 1;
        }
        write_u16(p, 10, kept as u16);
        let g = garbage(p) + dead;
        write_u16(p, 14, g as u16);
    }

    /// Replaces entry `i` with `entry`; `false` (entry `i` removed) if it does not fit.
    pub fn replace(p: &mut [u8], i: usize, entry: &[u8]) -> bool {
        let off = read_u16(p, HEADER + SLOT * i) as usize;
        if entry_len(p, i) == entry.len() {
            p[off..off + entry.len()].copy_from_slice(entry);
            return true;
        }
        remove(p, i);
        insert(p, i, entry)
    }

    fn entry_len(p: &[u8], i: usize) -> usize {
        let view =
            Node { bytes: p, page: 0, path: Path::new(""), count: count(p), leaf: page_header::kind_byte(p) == 1 };
        view.entry(i).expect("owned node is well formed").len()
    }

    /// Sets child `j` of a branch.
    pub fn set_child(p: &mut [u8], j: usize, child: PageNo) {
        if j == 0 {
            write_u64(p, 24, child);
        } else {
            let off = read_u16(p, HEADER + SLOT * (j - 1)) as usize;
            write_u64(p, off + 2, child);
        }
    }
}
