//! `mmapkit db stats`, `mmapkit db check` and `mmapkit db readers`: what a
//! database holds, whether it is sound, and who has it open.

use std::path::Path;

use anyhow::bail;
use serde::Serialize;

use super::{flat, open_error, open_read_only, open_read_only_for_cli};
use crate::common::units::format_bytes;

/// `mmapkit_db::Stats` as `stats --json` prints it.
#[derive(Serialize)]
struct StatsReport<'a> {
    path: &'a Path,
    /// The newest commit's id.
    txn: u64,
    page_size: usize,
    /// Pages in the used range, the two meta pages included.
    page_count: u64,
    /// The file's length.
    file_bytes: u64,
    /// Pages free for reuse now.
    free_pages: u64,
    /// Pages freed but still visible to a reader or the last durable commit.
    pending_pages: u64,
    tables: Vec<TableReport>,
}

/// One table in [`StatsReport`].
#[derive(Serialize)]
struct TableReport {
    name: String,
    entries: u64,
    /// Levels of its tree (0 when empty).
    depth: usize,
}

/// `mmapkit db stats`.
pub fn stats(path: &Path, json: bool) -> anyhow::Result<()> {
    let db = open_read_only_for_cli(path)?;
    let stats = db.stats().map_err(flat)?;
    let report = StatsReport {
        path,
        txn: stats.txn,
        page_size: stats.page_size,
        page_count: stats.page_count,
        file_bytes: stats.file_bytes,
        free_pages: stats.free_pages,
        pending_pages: stats.pending_pages,
        tables: stats
            .tables
            .into_iter()
            .map(|t| TableReport { name: t.name, entries: t.entries, depth: t.depth })
            .collect(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{}: {}, commit {}", path.display(), format_bytes(report.file_bytes), report.txn);
    println!(
        "pages: {} of {} ({} free, {} freed but still visible)",
        report.page_count,
        format_bytes(report.page_size as u64),
        report.free_pages,
        report.pending_pages
    );
    if report.tables.is_empty() {
        println!("no tables");
    }
    for table in &report.tables {
        println!("table {}: {}, depth {}", table.name, count(table.entries, "entry"), table.depth);
    }
    Ok(())
}

/// `mmapkit db check`: problems one per line on stdout, then a summary; an
/// error (exit status 1) unless the file is clean.
pub fn check(path: &Path) -> anyhow::Result<()> {
    let db = match open_read_only(path) {
        Ok(db) => db,
        // Damage found while opening (in the free list) is a problem to list like the others.
        Err(mmapkit_db::Error::Corrupt { page, what, .. }) => {
            println!("page {page}: {what}");
            println!("{}: cannot be opened: 1 problem", path.display());
            bail!("{}: the check found 1 problem", path.display());
        }
        Err(other) => return Err(open_error(path, other)),
    };
    let report = db.check().map_err(flat)?;
    if let Some(recovery) = &report.recovery {
        // A newer commit was not all on disk (a crash before its sync, or a damaged page): say so.
        println!("recovered on open: {recovery}");
    }
    for problem in &report.problems {
        println!("{problem}");
    }
    let found = report.problems.len() as u64 + report.unlisted;
    if report.unlisted > 0 {
        println!("... and {} more", count(report.unlisted, "problem"));
    }
    let verdict = if found == 0 { "no problems".to_string() } else { count(found, "problem") };
    println!(
        "{}: commit {}, {} ({} in use, {} free), {}, {}: {verdict}",
        path.display(),
        report.txn,
        count(report.page_count, "page"),
        report.pages_in_use,
        report.pages_free,
        count(report.tables, "table"),
        count(report.entries, "entry"),
    );
    if found > 0 {
        bail!("{}: the check found {verdict}", path.display());
    }
    Ok(())
}

/// "1 page", "2 pages", "1 entry", "3 entries".
fn count(n: u64, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {noun}s"),
    }
}

/// `mmapkit db readers`: one line per reader slot of another handle (this
/// command's own is left out), or with `clear_stale`, the slots cleared.
pub fn readers(path: &Path, clear_stale: bool) -> anyhow::Result<()> {
    let db = open_read_only_for_cli(path)?;
    let me = std::process::id();
    let slots = if clear_stale { db.clear_stale_readers() } else { db.readers() }.map_err(flat)?;
    let slots: Vec<_> = slots.into_iter().filter(|s| s.pid != me).collect();
    if clear_stale {
        println!("{}: cleared {} stale reader slot(s)", path.display(), slots.len());
    } else {
        println!("{}: {} reader slot(s) of other handles", path.display(), slots.len());
    }
    for s in &slots {
        let txn = match (s.txn, s.age) {
            (Some(txn), Some(age)) => format!("reads commit {txn} for {:.1}s ({} open)", age.as_secs_f64(), s.readers),
            _ => "no read transaction open".to_string(),
        };
        let alive = if s.alive { "alive" } else { "dead" };
        println!("  slot {:>3}  pid {:>7}  {alive:<5}  {txn}", s.slot, s.pid);
    }
    Ok(())
}
