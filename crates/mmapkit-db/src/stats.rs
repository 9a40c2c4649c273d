//! What the file holds, without scanning it (`Database::stats`).

use crate::error::Result;
use crate::store::{PAGE_SIZE, PageNo, PageSource};
use crate::tree::btree::{MAX_DEPTH, node};
use crate::tree::catalog;
use crate::txn::{Engine, ReadTransaction};

/// Sizes and counts of a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// The newest commit's id.
    pub txn: u64,
    /// Bytes per page.
    pub page_size: usize,
    /// Pages in the file's used range (including the two meta pages).
    pub page_count: u64,
    /// The file's length in bytes (the used range plus space grown ahead).
    pub file_bytes: u64,
    /// Pages free for reuse now.
    pub free_pages: u64,
    /// Pages freed but still visible to a reader or to the last durable commit.
    pub pending_pages: u64,
    /// Every table.
    pub tables: Vec<TableStats>,
}

/// One table's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// Its name.
    pub name: String,
    /// Entries.
    pub entries: u64,
    /// Levels of its tree (0 when empty).
    pub depth: usize,
}

fn depth(pages: &dyn PageSource, mut n: PageNo) -> Result<usize> {
    let mut levels = 0;
    while n != 0 && levels < MAX_DEPTH {
        levels += 1;
        let view = node(pages, n)?;
        if view.is_leaf() {
            break;
        }
        n = view.child(0)?;
    }
    Ok(levels)
}

/// Sizes and counts of `engine`'s newest commit (see `Database::stats`).
pub fn stats(engine: &Engine) -> Result<Stats> {
    // The free pages as of the newest commit (the writer's turn held, so no
    // process commits meanwhile), and everything else from a snapshot of it.
    let (writer, _) = engine.held_turn()?;
    let (free_pages, pending_pages) = (writer.free_pages().ready_pages(), writer.free_pages().pending_pages());
    let read = ReadTransaction::begin(engine)?;
    drop(writer);
    let (meta, pages) = (read.meta(), read.pages());
    let mut tables = Vec::new();
    for name in read.list_tables()? {
        let info = catalog::lookup(pages, meta.catalog, &name)?.unwrap_or_default();
        tables.push(TableStats { name, entries: info.len, depth: depth(pages, info.root)? });
    }
    pages.check_fault()?;
    Ok(Stats {
        txn: meta.txn,
        page_size: PAGE_SIZE,
        page_count: meta.page_count,
        file_bytes: engine.store().file_len(),
        free_pages,
        pending_pages,
        tables,
    })
}
