//! The copy-on-write B+tree: lookups over any [`PageSource`], and inserts and
//! removals that copy the path they change into the write transaction.

use std::ops::Bound;

use crate::error::Result;
use crate::store::le_bytes::{read_u16, read_u64};
use crate::store::page_header::{self, HEADER, Kind, PAGE_SIZE, PageNo};
use crate::store::{PageSource, TxnPages};
use crate::tree::node::{self, BRANCH_ENTRY_HEADER, MAX_ENTRY, Node, Value, edit};

/// Deeper than this, a tree must have a cycle: a damaged file, not a real tree.
pub const MAX_DEPTH: usize = 32;
/// A node using fewer bytes than this after a removal is merged with a
/// neighbour whenever the two fit in one page.
const UNDERFULL: usize = PAGE_SIZE / 4;
/// A node using fewer bytes than this after a removal is merged with a
/// neighbour when the two fit in [`MERGED_MOST`] bytes. Removals spread over
/// the tree then leave its pages more than half full, and a transaction that
/// removes all over the tree needs fewer new pages for its copies: a merge
/// frees a page the transaction wrote, which its next copy reuses at once.
const HALF_FULL: usize = PAGE_SIZE / 2;
/// The most bytes a merge of a node under [`HALF_FULL`] may make: seven
/// eighths of a page, so that the merged node has room for inserts, and the
/// two halves of a split node (about half a page each) do not merge back
/// with each other.
const MERGED_MOST: usize = (PAGE_SIZE - HEADER) * 7 / 8;

/// Whether a node using `used` bytes is merged with a neighbour into a node
/// of `merged` bytes (entries, slots and, between branches, the separator).
fn worth_merging(used: usize, merged: usize) -> bool {
    merged <= PAGE_SIZE - HEADER && (used < UNDERFULL || (used < HALF_FULL && merged <= MERGED_MOST))
}

/// Parses page `n` as a node.
pub fn node<P: PageSource + ?Sized>(pages: &P, n: PageNo) -> Result<Node<'_>> {
    Node::parse(pages.page(n)?, n, pages.path())
}

/// Finds `key` in the tree at `root` (0: empty tree).
pub fn get<'p, P: PageSource + ?Sized>(pages: &'p P, root: PageNo, key: &[u8]) -> Result<Option<Value<'p>>> {
    if root == 0 {
        return Ok(None);
    }
    let mut n = node(pages, root)?;
    for _ in 0..MAX_DEPTH {
        if n.is_leaf() {
            return match n.search(key)? {
                Ok(i) => Ok(Some(n.leaf_entry(i)?.1)),
                Err(_) => Ok(None),
            };
        }
        n = node(pages, n.child(n.child_for(key)?)?)?;
    }
    Err(pages.corrupt(root, format!("tree under page {root} is deeper than {MAX_DEPTH} levels")))
}

/// The bytes of a value, following an overflow reference.
pub fn value_bytes<'p, P: PageSource + ?Sized>(pages: &'p P, value: Value<'p>) -> Result<&'p [u8]> {
    match value {
        Value::Inline(bytes) => Ok(bytes),
        Value::Overflow { page, len } => pages.run(page, len),
    }
}

/// A node of this transaction's to change: `n` itself, or a copy of it on a
/// new page once its bytes parse and validate as a node (an edit relies on
/// the bounds `validate` checks).
fn owned(pages: &mut TxnPages<'_>, n: PageNo) -> Result<PageNo> {
    let path = pages.file_path();
    pages.owned(n, |bytes| Node::parse(bytes, n, path)?.validate())
}

/// Rewrites every node this transaction owns whose entries are out of key
/// order (inserts place them where there is room), so that each committed
/// page holds them in order and a range scan reads it in one sweep.
pub fn order_for_scans(pages: &mut TxnPages<'_>) {
    for bytes in pages.dirty_pages_mut() {
        let node = matches!(Kind::from_byte(page_header::kind_byte(bytes)), Some(Kind::Leaf | Kind::Branch));
        if node && !edit::in_order(bytes) {
            edit::compact(bytes);
        }
    }
}

/// A node split in two: the right half's first key and page.
struct Split {
    key: Vec<u8>,
    right: PageNo,
}

/// What an insert replaced: nothing, a value (its bytes, when asked for), or
/// a value whose bytes were not asked for.
pub type Replaced = Option<Option<Vec<u8>>>;

/// Inserts or replaces `key` → `value` in the tree at `root`; returns the new
/// root and what was replaced (with the old value's bytes if `want_old`).
pub fn insert(
    pages: &mut TxnPages<'_>,
    root: PageNo,
    key: &[u8],
    value: &[u8],
    want_old: bool,
) -> Result<(PageNo, Replaced)> {
    let stored = if node::LEAF_ENTRY_HEADER + key.len() + value.len() + node::SLOT <= MAX_ENTRY {
        Value::Inline(value)
    } else {
        Value::Overflow { page: pages.write_run(value), len: value.len() }
    };
    let mut entry = Vec::with_capacity(node::LEAF_ENTRY_HEADER + key.len() + value.len().min(MAX_ENTRY));
    node::encode_leaf(&mut entry, key, stored);
    if root == 0 {
        let leaf = pages.alloc(1);
        edit::build(pages.page_mut(leaf), Kind::Leaf, 0, [entry.as_slice()]);
        return Ok((leaf, None));
    }
    let (new_root, split, replaced) = insert_into(pages, root, key, &entry, want_old, 0)?;
    let Some(split) = split else { return Ok((new_root, replaced)) };
    let top = pages.alloc(1);
    let mut sep = Vec::new();
    node::encode_branch(&mut sep, &split.key, split.right);
    edit::build(pages.page_mut(top), Kind::Branch, new_root, [sep.as_slice()]);
    Ok((top, replaced))
}

fn insert_into(
    pages: &mut TxnPages<'_>,
    n: PageNo,
    key: &[u8],
    entry: &[u8],
    want_old: bool,
    depth: usize,
) -> Result<(PageNo, Option<Split>, Replaced)> {
    if depth >= MAX_DEPTH {
        return Err(pages.corrupt(n, format!("tree is deeper than {MAX_DEPTH} levels")));
    }
    let n = owned(pages, n)?;
    let view = node(pages, n)?;
    if view.is_leaf() {
        // Whether the key is there, its old value (if wanted), and the
        // overflow run that held it.
        let (at, old, run) = match view.search(key)? {
            Ok(i) => {
                let value = view.leaf_entry(i)?.1;
                let bytes = if want_old { Some(value_bytes(pages, value)?.to_vec()) } else { None };
                let run = match value {
                    Value::Overflow { page, len } => Some((page, len)),
                    Value::Inline(_) => None,
                };
                (i, Some(bytes), run)
            }
            Err(i) => (i, None, None),
        };
        if let Some((page, len)) = run {
            pages.free(page, page_header::run_pages(len));
        }
        let p = pages.page_mut(n);
        let fits = if old.is_some() { edit::replace(p, at, entry) } else { edit::insert(p, at, entry) };
        if fits {
            return Ok((n, None, old));
        }
        // `replace` removed the old entry when the new one did not fit.
        let split = split_node(pages, n, at, entry)?;
        return Ok((n, Some(split), old));
    }
    let j = view.child_for(key)?;
    let child = view.child(j)?;
    let (new_child, split, replaced) = insert_into(pages, child, key, entry, want_old, depth + 1)?;
    edit::set_child(pages.page_mut(n), j, new_child);
    let Some(split) = split else { return Ok((n, None, replaced)) };
    let mut sep = Vec::new();
    node::encode_branch(&mut sep, &split.key, split.right);
    if edit::insert(pages.page_mut(n), j, &sep) {
        return Ok((n, None, replaced));
    }
    let split = split_node(pages, n, j, &sep)?;
    Ok((n, Some(split), replaced))
}

/// Splits owned node `n`, which `entry` (to go at position `at`) did not fit.
fn split_node(pages: &mut TxnPages<'_>, n: PageNo, at: usize, entry: &[u8]) -> Result<Split> {
    let copy = pages.page(n)?.to_vec();
    let path = pages.file_path();
    let view = Node::parse(&copy, n, path)?;
    let mut entries: Vec<&[u8]> = (0..view.count()).map(|i| view.entry(i)).collect::<Result<_>>()?;
    entries.insert(at, entry);
    let sizes: Vec<usize> = entries.iter().map(|e| e.len() + node::SLOT).collect();
    let total: usize = sizes.iter().sum();
    let leaf = view.is_leaf();
    // Appending at the end (sequential keys, compaction): keep the left node
    // full. Otherwise split the bytes in half.
    let mut s = if at == entries.len() - 1 {
        if leaf { entries.len() - 1 } else { entries.len() - 2 }
    } else {
        let mut acc = 0;
        let mut s = 0;
        while s < entries.len() - 1 && acc + sizes[s] <= total / 2 {
            acc += sizes[s];
            s += 1;
        }
        s.max(1)
    };
    let room = PAGE_SIZE - HEADER;
    // Make sure both halves fit (the middle entry moves up out of a branch).
    while sizes[..s].iter().sum::<usize>() > room {
        s -= 1;
    }
    let right_start = if leaf { s } else { s + 1 };
    while sizes[right_start.min(entries.len())..].iter().sum::<usize>() > room && s + 1 < entries.len() {
        s += 1;
    }
    let right = pages.alloc(1);
    if leaf {
        let key = separator(&leaf_key(entries[s - 1]), &leaf_key(entries[s]));
        edit::build(pages.page_mut(right), Kind::Leaf, 0, entries[s..].iter().copied());
        edit::build(pages.page_mut(n), Kind::Leaf, 0, entries[..s].iter().copied());
        Ok(Split { key, right })
    } else {
        let middle = entries[s];
        let key = middle[BRANCH_ENTRY_HEADER..].to_vec();
        let child = read_u64(middle, 2);
        edit::build(pages.page_mut(right), Kind::Branch, child, entries[s + 1..].iter().copied());
        edit::build(pages.page_mut(n), Kind::Branch, page_header::link(&copy), entries[..s].iter().copied());
        Ok(Split { key, right })
    }
}

/// The shortest prefix of `right` that sorts after `left` (`left < right`):
/// a separator between the two halves of a split leaf. Short separators keep
/// more children in a branch page.
pub fn separator(left: &[u8], right: &[u8]) -> Vec<u8> {
    let common = left.iter().zip(right).take_while(|(a, b)| a == b).count();
    right[..(common + 1).min(right.len())].to_vec()
}

fn leaf_key(entry: &[u8]) -> Vec<u8> {
    let klen = read_u16(entry, 0) as usize;
    entry[node::LEAF_ENTRY_HEADER..node::LEAF_ENTRY_HEADER + klen].to_vec()
}

/// Removes `key` from the tree at `root`; returns the new root (0 when the
/// tree became empty) and what was removed: `None` if the key was not there,
/// else its value's bytes if `want_old` (an empty `Some(None)` if not).
///
/// The key is looked for first without changing anything (a key that is not
/// there copies no page); the path found is then copied into the transaction
/// and edited without searching again.
pub fn remove(pages: &mut TxnPages<'_>, root: PageNo, key: &[u8], want_old: bool) -> Result<(PageNo, Replaced)> {
    if root == 0 {
        return Ok((root, None));
    }
    // The node at each level on the way down, and the child taken there
    // (`taken[d]` leads from `nodes[d]` to `nodes[d + 1]`); the last is the leaf.
    let mut nodes = [0 as PageNo; MAX_DEPTH];
    let mut taken = [0usize; MAX_DEPTH];
    let mut depth = 0;
    let mut n = root;
    let slot = loop {
        if depth >= MAX_DEPTH {
            return Err(pages.corrupt(root, format!("tree under page {root} is deeper than {MAX_DEPTH} levels")));
        }
        nodes[depth] = n;
        let view = node(pages, n)?;
        if view.is_leaf() {
            match view.search(key)? {
                Ok(i) => break i,
                Err(_) => return Ok((root, None)),
            }
        }
        let j = view.child_for(key)?;
        taken[depth] = j;
        depth += 1;
        n = view.child(j)?;
    };
    // Own the path from the top (a copy names its new page in its owned
    // parent), then edit the leaf.
    for d in 0..=depth {
        let page = owned(pages, nodes[d])?;
        if d > 0 && page != nodes[d] {
            edit::set_child(pages.page_mut(nodes[d - 1]), taken[d - 1], page);
        }
        nodes[d] = page;
    }
    let leaf = nodes[depth];
    let value = node(pages, leaf)?.leaf_entry(slot)?.1;
    let old = if want_old { Some(value_bytes(pages, value)?.to_vec()) } else { None };
    if let Value::Overflow { page, len } = value {
        pages.free(page, page_header::run_pages(len));
    }
    edit::remove(pages.page_mut(leaf), slot);
    // From the bottom, merge each node left underfull with a neighbour.
    for d in (0..depth).rev() {
        if edit::used(pages.page(nodes[d + 1])?) < HALF_FULL {
            merge_child(pages, nodes[d], taken[d])?;
        }
    }
    Ok((collapse(pages, nodes[0])?, Some(old)))
}

/// The root after removals: an empty leaf or a branch with one child is not
/// worth a level, so such roots are freed down to the first that is (0 for
/// an empty tree).
fn collapse(pages: &mut TxnPages<'_>, mut root: PageNo) -> Result<PageNo> {
    for _ in 0..MAX_DEPTH {
        let view = node(pages, root)?;
        if view.count() > 0 {
            break;
        }
        let next = if view.is_leaf() { 0 } else { view.child(0)? };
        pages.free(root, 1);
        root = next;
        if root == 0 {
            break;
        }
    }
    Ok(root)
}

/// The first and last children of branch `view` (page `n`) that may hold
/// keys within (`start`, `end`).
fn children_spanning(
    pages: &TxnPages<'_>,
    n: PageNo,
    view: &Node<'_>,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
) -> Result<(usize, usize)> {
    let first = match start {
        Bound::Included(k) | Bound::Excluded(k) => view.child_for(k)?,
        Bound::Unbounded => 0,
    };
    let last = match end {
        Bound::Included(k) | Bound::Excluded(k) => view.child_for(k)?,
        Bound::Unbounded => view.count(),
    };
    if last < first {
        return Err(pages.corrupt(n, "a branch's keys are out of order".into()));
    }
    Ok((first, last))
}

/// Removes the entries with a key within (`start`, `end`) that `keep`
/// refuses from the tree at `root`, in one walk of it: `keep` sees each
/// entry in key order where it lies, a leaf is rewritten only when it loses
/// an entry (built afresh from those it keeps), and each branch merges the
/// children left underfull. Returns the new root and how many entries went.
pub fn retain(
    pages: &mut TxnPages<'_>,
    root: PageNo,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    keep: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<(PageNo, u64)> {
    if root == 0 || range_is_empty(start, end) {
        return Ok((root, 0));
    }
    let mut gone = Vec::new();
    let mut scratch = pages.take_buffer();
    let walked = retain_from(pages, root, (start, end), keep, (&mut gone, &mut scratch), 0);
    pages.give_back(scratch);
    let (root, removed) = walked?;
    Ok((collapse(pages, root)?, removed))
}

/// The scratch space of [`retain_from`]: the slots a leaf loses (with their
/// overflow runs) and a page buffer to build the leaf that is left in.
type RetainScratch<'s> = (&'s mut Vec<(usize, Option<(PageNo, u64)>)>, &'s mut Box<[u8]>);

fn retain_from(
    pages: &mut TxnPages<'_>,
    n: PageNo,
    (start, end): (Bound<&[u8]>, Bound<&[u8]>),
    keep: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    (gone, scratch): RetainScratch<'_>,
    depth: usize,
) -> Result<(PageNo, u64)> {
    if depth >= MAX_DEPTH {
        return Err(pages.corrupt(n, format!("tree is deeper than {MAX_DEPTH} levels")));
    }
    let view = node(pages, n)?;
    if view.is_leaf() {
        // The slots refused, with their overflow runs: `keep` sees the
        // entries before anything changes.
        gone.clear();
        let mut kept_bytes = 0;
        for i in 0..view.count() {
            let (key, value) = view.leaf_entry(i)?;
            if within(key, start, end) && !keep(key, value_bytes(pages, value)?) {
                let run = match value {
                    Value::Overflow { page, len } => Some((page, page_header::run_pages(len))),
                    Value::Inline(_) => None,
                };
                gone.push((i, run));
            } else {
                let stored = match value {
                    Value::Inline(bytes) => bytes.len(),
                    Value::Overflow { .. } => 8,
                };
                kept_bytes += node::LEAF_ENTRY_HEADER + key.len() + stored + node::SLOT;
            }
        }
        if gone.is_empty() {
            return Ok((n, 0));
        }
        // The leaf that is left is built in one pass from the entries kept,
        // read (and bounds-checked) just above: no copy of the whole page, no
        // dead bytes, the entries in key order.
        if kept_bytes > PAGE_SIZE - HEADER {
            return Err(pages.corrupt(n, format!("a leaf's entries take {kept_bytes} bytes, more than a page")));
        }
        let mut refused = gone.iter().map(|&(i, _)| i).peekable();
        let kept = (0..view.count()).filter(|&i| refused.next_if_eq(&i).is_none());
        let link = page_header::link(pages.page(n)?);
        // Each entry decoded in the loop above, from these same bytes; one
        // that no longer does stops the build, and the leaf is left alone.
        let mut failed = None;
        let entries = kept.map_while(|i| view.entry(i).map_err(|e| failed = Some(e)).ok());
        edit::build(scratch, Kind::Leaf, link, entries);
        if let Some(error) = failed {
            return Err(error);
        }
        let built = std::mem::replace(scratch, pages.take_buffer());
        let n = pages.install(n, built)?;
        for &(_, run) in gone.iter() {
            if let Some((page, count)) = run {
                pages.free(page, count);
            }
        }
        return Ok((n, gone.len() as u64));
    }
    // Children first..=last may hold keys in the range.
    let (first, last) = children_spanning(pages, n, &view, start, end)?;
    let children: Vec<PageNo> = (first..=last).map(|j| view.child(j)).collect::<Result<_>>()?;
    let mut removed = 0;
    let mut changed = Vec::new();
    for (j, child) in (first..).zip(children) {
        let (new_child, count) = retain_from(pages, child, (start, end), keep, (gone, scratch), depth + 1)?;
        if count > 0 {
            changed.push((j, new_child));
            removed += count;
        }
    }
    if changed.is_empty() {
        return Ok((n, 0));
    }
    let n = owned(pages, n)?;
    for &(j, child) in &changed {
        edit::set_child(pages.page_mut(n), j, child);
    }
    // Merge the changed children left underfull, from the last so that a
    // merge moves no child still to be looked at.
    for &(j, _) in changed.iter().rev() {
        merge_while_underfull(pages, n, j)?;
    }
    Ok((n, removed))
}

/// Removes every entry with a key within (`start`, `end`) from the tree at
/// `root`; returns the new root and how many entries went. A subtree whose
/// keys all lie inside is freed whole (its leaves read for their count and
/// their overflow runs, never copied); only the nodes on the two edges of
/// the range are copied and edited.
pub fn delete_range(
    pages: &mut TxnPages<'_>,
    root: PageNo,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
) -> Result<(PageNo, u64)> {
    if root == 0 || range_is_empty(start, end) {
        return Ok((root, 0));
    }
    let (root, removed) = delete_range_from(pages, root, start, end, 0)?;
    Ok((collapse(pages, root)?, removed))
}

/// Whether no key can lie within (`start`, `end`).
fn range_is_empty(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e)) | (Bound::Excluded(s), Bound::Included(e)) => {
            s >= e
        }
        _ => false,
    }
}

/// Whether `key` lies within (`start`, `end`).
fn within(key: &[u8], start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    let above = match start {
        Bound::Included(s) => key >= s,
        Bound::Excluded(s) => key > s,
        Bound::Unbounded => true,
    };
    let below = match end {
        Bound::Included(e) => key <= e,
        Bound::Excluded(e) => key < e,
        Bound::Unbounded => true,
    };
    above && below
}

fn delete_range_from(
    pages: &mut TxnPages<'_>,
    n: PageNo,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    depth: usize,
) -> Result<(PageNo, u64)> {
    if depth >= MAX_DEPTH {
        return Err(pages.corrupt(n, format!("tree is deeper than {MAX_DEPTH} levels")));
    }
    let view = node(pages, n)?;
    if view.is_leaf() {
        let mut at = Vec::new();
        let mut runs = Vec::new();
        for i in 0..view.count() {
            let (key, value) = view.leaf_entry(i)?;
            if within(key, start, end) {
                at.push(i);
                if let Value::Overflow { page, len } = value {
                    runs.push((page, page_header::run_pages(len)));
                }
            }
        }
        if at.is_empty() {
            return Ok((n, 0));
        }
        let n = owned(pages, n)?;
        for (page, count) in runs {
            pages.free(page, count);
        }
        let removed = at.len() as u64;
        edit::remove_many(pages.page_mut(n), at);
        return Ok((n, removed));
    }
    // Children first..=last may hold keys in the range; those strictly
    // between them hold nothing else.
    let (first, last) = children_spanning(pages, n, &view, start, end)?;
    let inner: Vec<PageNo> = (first + 1..last).map(|j| view.child(j)).collect::<Result<_>>()?;
    let edges: Vec<PageNo> =
        if first == last { vec![view.child(first)?] } else { vec![view.child(first)?, view.child(last)?] };
    let mut removed = 0;
    for &child in &inner {
        removed += drop_subtree(pages, child, depth + 1)?;
    }
    let mut edited = Vec::with_capacity(edges.len());
    for &child in &edges {
        let (new_child, count) = delete_range_from(pages, child, start, end, depth + 1)?;
        removed += count;
        edited.push(new_child);
    }
    if inner.is_empty() && removed == 0 {
        return Ok((n, 0));
    }
    let n = owned(pages, n)?;
    let p = pages.page_mut(n);
    // Entry j - 1 holds child j: the inner children's entries go, and the
    // last child's separator (the key before it) now follows the first child.
    for j in (first + 1..last).rev() {
        edit::remove(p, j - 1);
    }
    edit::set_child(p, first, edited[0]);
    if let Some(&after) = edited.get(1) {
        edit::set_child(p, first + 1, after);
    }
    // Merge the edited children left underfull, the second first.
    for j in (first..first + edited.len()).rev() {
        merge_while_underfull(pages, n, j)?;
    }
    Ok((n, removed))
}

/// Frees the subtree at `n` whole; returns how many entries its leaves held.
fn drop_subtree(pages: &mut TxnPages<'_>, n: PageNo, depth: usize) -> Result<u64> {
    if depth >= MAX_DEPTH {
        return Err(pages.corrupt(n, format!("tree is deeper than {MAX_DEPTH} levels")));
    }
    let view = node(pages, n)?;
    let mut entries = 0;
    if view.is_leaf() {
        let mut runs = Vec::new();
        for i in 0..view.count() {
            if let Value::Overflow { page, len } = view.leaf_entry(i)?.1 {
                runs.push((page, page_header::run_pages(len)));
            }
        }
        entries = view.count() as u64;
        for (page, count) in runs {
            pages.free(page, count);
        }
    } else {
        let children: Vec<PageNo> = (0..=view.count()).map(|j| view.child(j)).collect::<Result<_>>()?;
        for child in children {
            entries += drop_subtree(pages, child, depth + 1)?;
        }
    }
    pages.free(n, 1);
    Ok(entries)
}

/// Merges child `j` of owned branch `n` with its neighbours for as long as it
/// is underfull and a merge fits (a merged node can be underfull still).
fn merge_while_underfull(pages: &mut TxnPages<'_>, n: PageNo, j: usize) -> Result<()> {
    loop {
        let view = node(pages, n)?;
        if j > view.count() || edit::used(pages.page(view.child(j)?)?) >= HALF_FULL {
            return Ok(());
        }
        let before = view.count();
        merge_child(pages, n, j)?;
        if node(pages, n)?.count() == before {
            return Ok(());
        }
    }
}

/// Merges child `j` of owned branch `n` with a neighbour if
/// [`worth_merging`] says so, the right one first, else the left one.
fn merge_child(pages: &mut TxnPages<'_>, n: PageNo, j: usize) -> Result<()> {
    let count = node(pages, n)?.count();
    if j < count && merge_pair(pages, n, j, true)? {
        return Ok(());
    }
    if j > 0 && j <= count {
        merge_pair(pages, n, j - 1, false)?;
    }
    Ok(())
}

/// Merges children `a` and `a + 1` of owned branch `n`, separated by key
/// `a`, if [`worth_merging`] says so for the left one (`left_decides`) or the
/// right one; returns whether it did. The merged node is built in one pass on
/// the left one's page (or, if that is not this transaction's, on a new page).
fn merge_pair(pages: &mut TxnPages<'_>, n: PageNo, a: usize, left_decides: bool) -> Result<bool> {
    let view = node(pages, n)?;
    let (left, right) = (view.child(a)?, view.child(a + 1)?);
    let sep_len = view.key(a)?.len();
    // What the two pages' headers say they use, to pass over a merge that
    // cannot be before copying anything (the entries decide below).
    let (lpage, rpage) = (pages.page(left)?, pages.page(right)?);
    let leaves = page_header::kind_byte(lpage) == Kind::Leaf as u8;
    let extra = if leaves { 0 } else { BRANCH_ENTRY_HEADER + sep_len + node::SLOT };
    let (lused, rused) = (edit::used_checked(lpage), edit::used_checked(rpage));
    if let (Some(l), Some(r)) = (lused, rused)
        && !worth_merging(if left_decides { l } else { r }, l + r + extra)
    {
        return Ok(false);
    }
    // Two leaves, the left one this transaction's and without dead bytes (as
    // `retain` leaves them): the right one's entries go after the left one's
    // in its page, which is neither copied nor rebuilt.
    if leaves && pages.owns(left) && edit::is_tight(lpage) {
        let mut rcopy = [0u8; PAGE_SIZE];
        rcopy.copy_from_slice(rpage);
        let rview = Node::parse(&rcopy, right, pages.file_path())?;
        if !rview.is_leaf() {
            return Err(pages.corrupt(n, "children of one branch at different depths".into()));
        }
        let l = edit::used(pages.page(left)?);
        let wanted = |r: usize| worth_merging(if left_decides { l } else { r }, l + r);
        if !edit::append(pages.page_mut(left), &rview, wanted)? {
            return Ok(false);
        }
        pages.free(right, 1);
        edit::remove(pages.page_mut(n), a);
        return Ok(true);
    }
    let sep = node(pages, n)?.key(a)?.to_vec();
    let path = pages.file_path();
    let (lcopy, rcopy) = (pages.page(left)?.to_vec(), pages.page(right)?.to_vec());
    let (lview, rview) = (Node::parse(&lcopy, left, path)?, Node::parse(&rcopy, right, path)?);
    if lview.is_leaf() != rview.is_leaf() {
        return Err(pages.corrupt(n, "children of one branch at different depths".into()));
    }
    let mut between = Vec::new();
    if !lview.is_leaf() {
        node::encode_branch(&mut between, &sep, rview.child(0)?);
    }
    let mut entries: Vec<&[u8]> = Vec::with_capacity(lview.count() + rview.count() + 1);
    for i in 0..lview.count() {
        entries.push(lview.entry(i)?);
    }
    if !between.is_empty() {
        entries.push(&between);
    }
    for i in 0..rview.count() {
        entries.push(rview.entry(i)?);
    }
    let used = |from: &[&[u8]]| from.iter().map(|e| e.len() + node::SLOT).sum::<usize>();
    let decides = if left_decides { &entries[..lview.count()] } else { &entries[entries.len() - rview.count()..] };
    if !worth_merging(used(decides), used(&entries)) {
        return Ok(false);
    }
    let kind = if lview.is_leaf() { Kind::Leaf } else { Kind::Branch };
    let merged = pages.rewritten(left)?;
    edit::build(pages.page_mut(merged), kind, page_header::link(&lcopy), entries);
    pages.free(right, 1);
    let p = pages.page_mut(n);
    edit::set_child(p, a, merged);
    edit::remove(p, a);
    Ok(true)
}

/// Where the value under `key` lies in the tree at `root`: the page holding
/// its bytes (the leaf, or the overflow run's first page) and their offset
/// in that page (or run), if the key is there.
pub fn locate<P: PageSource + ?Sized>(pages: &P, root: PageNo, key: &[u8]) -> Result<Option<(PageNo, usize)>> {
    if root == 0 {
        return Ok(None);
    }
    let mut n = root;
    for _ in 0..MAX_DEPTH {
        let view = node(pages, n)?;
        if view.is_leaf() {
            let Ok(i) = view.search(key)? else { return Ok(None) };
            return Ok(Some(match view.leaf_entry(i)?.1 {
                Value::Inline(bytes) => (n, bytes.as_ptr() as usize - pages.page(n)?.as_ptr() as usize),
                Value::Overflow { page, .. } => (page, HEADER),
            }));
        }
        n = view.child(view.child_for(key)?)?;
    }
    Err(pages.corrupt(root, format!("tree under page {root} is deeper than {MAX_DEPTH} levels")))
}

/// Frees every page of the tree at `root` (a deleted table).
pub fn free_tree(pages: &mut TxnPages<'_>, root: PageNo, depth: usize) -> Result<()> {
    if root == 0 {
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Err(pages.corrupt(root, format!("tree is deeper than {MAX_DEPTH} levels")));
    }
    let view = node(pages, root)?;
    let mut children = Vec::new();
    let mut runs = Vec::new();
    if view.is_leaf() {
        for i in 0..view.count() {
            if let Value::Overflow { page, len } = view.leaf_entry(i)?.1 {
                runs.push((page, page_header::run_pages(len)));
            }
        }
    } else {
        for j in 0..=view.count() {
            children.push(view.child(j)?);
        }
    }
    for (page, count) in runs {
        pages.free(page, count);
    }
    for child in children {
        free_tree(pages, child, depth + 1)?;
    }
    pages.free(root, 1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::separator;
    use proptest::prelude::*;

    proptest! {
        /// The separator sorts after the left key and at or before the right one.
        #[test]
        fn separator_splits_the_keys(
            mut a in proptest::collection::vec(0u8..4, 0..8),
            mut b in proptest::collection::vec(0u8..4, 0..8),
        ) {
            if a == b {
                b.push(0);
            }
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            let sep = separator(&a, &b);
            prop_assert!(a < sep && sep <= b, "{:?} < {:?} <= {:?}", a, sep, b);
            prop_assert!(b.starts_with(&sep));
        }
    }
}
