//! Choosing the meta page an open starts from: the newest of the two whose
//! commit is whole on disk (see `meta_page.rs` for what each slot holds).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::meta_page::Meta;
use super::page_header::{self, HEADER, Kind, PAGE_SIZE, PageNo};
use crate::error::{Error, IoOp, Result};

/// The meta record an open starts from.
pub struct Picked {
    /// The record.
    pub meta: Meta,
    /// The slot it is in.
    pub slot: usize,
    /// The highest transaction id seen in a record that was passed over: new
    /// commits take ids above it, so none can make that record look whole.
    pub skipped: u64,
    /// Why a newer record was passed over, if one was.
    pub recovery: Option<String>,
}

/// Reads both meta pages and picks the newest whose commit fully reached the
/// disk. A newer record whose listed pages are not all there (a crash between
/// its write and its sync, or damage to one of them) is passed over and left
/// as it is; the next commit overwrites it.
///
/// `synced` is a commit this handle wrote and synced itself, whose pages are
/// not read back: ids only grow, so a record with that id is that commit.
pub fn pick_meta(file: &File, path: &Path, len: u64, synced: Option<u64>) -> Result<Picked> {
    let not_db = |reason: String| Error::NotADatabase { path: path.to_path_buf(), reason };
    if len < 2 * PAGE_SIZE as u64 {
        return Err(not_db(format!("{len} bytes is shorter than the two {PAGE_SIZE}-byte meta pages")));
    }
    let mut found = Vec::new();
    let mut reasons = Vec::new();
    let mut skipped = 0;
    // Records that need more pages than the file has, with their ids.
    let mut too_long = Vec::new();
    for slot in 0..2 {
        let mut buf = vec![0u8; PAGE_SIZE];
        file.read_exact_at(&mut buf, (slot * PAGE_SIZE) as u64).map_err(|e| Error::io(path, IoOp::ReadMetaPage, e))?;
        let decoded = Meta::decode(&buf);
        if let Ok((meta, _)) = &decoded {
            skipped = skipped.max(meta.txn);
        }
        match decoded {
            Ok((meta, _)) if meta.page_count.saturating_mul(PAGE_SIZE as u64) > len => too_long.push((
                meta.txn,
                format!(
                    "meta page {slot} (transaction {}) needs {} pages but the file has {} bytes (truncated?)",
                    meta.txn, meta.page_count, len
                ),
            )),
            Ok((meta, written)) => found.push((meta, written, slot)),
            Err(why) => reasons.push(format!("meta page {slot}: {why}")),
        }
    }
    found.sort_by_key(|(meta, _, _)| std::cmp::Reverse(meta.txn));
    let mut passed_over = Vec::new();
    for (meta, written, slot) in &found {
        let intact = if synced == Some(meta.txn) { Ok(()) } else { written_pages_intact(file, meta, written) };
        match intact {
            Ok(()) => {
                // A newer commit not all on disk is worth telling even though
                // the open succeeded. (An older record needing more pages than
                // the file kept is not news, and a meta page that does not
                // decode cannot be told apart from a torn write of a commit
                // that never returned.)
                passed_over.extend(too_long.iter().filter(|(txn, _)| *txn > meta.txn).map(|(_, why)| why.clone()));
                let recovery = (!passed_over.is_empty()).then(|| {
                    format!(
                        "opened transaction {} from meta page {slot}, passing over {}",
                        meta.txn,
                        passed_over.join("; ")
                    )
                });
                return Ok(Picked { meta: *meta, slot: *slot, skipped, recovery });
            }
            Err(why) => passed_over.push(format!("transaction {} (meta page {slot}): {why}", meta.txn)),
        }
    }
    reasons.extend(too_long.into_iter().map(|(_, why)| why));
    reasons.extend(passed_over);
    Err(not_db(reasons.join("; ")))
}

/// Whether every page a single-sync commit wrote carries its id and checksum.
fn written_pages_intact(file: &File, meta: &Meta, written: &[(PageNo, u64)]) -> Result<(), String> {
    for &(p, sum) in written {
        let mut header = [0u8; HEADER];
        file.read_exact_at(&mut header, p * PAGE_SIZE as u64).map_err(|e| format!("page {p}: {e}"))?;
        let pages =
            if page_header::kind_byte(&header) == Kind::Overflow as u8 { page_header::link(&header) } else { 1 };
        if p.checked_add(pages).is_none_or(|end| end > meta.page_count) {
            return Err(format!("written page {p} runs past the end"));
        }
        let mut bytes = vec![0u8; pages as usize * PAGE_SIZE];
        file.read_exact_at(&mut bytes, p * PAGE_SIZE as u64).map_err(|e| format!("page {p}: {e}"))?;
        let whole = page_header::written_by(&bytes) == meta.txn && page_header::stored_checksum(&bytes) == sum;
        if !whole || !page_header::checksum_ok(&bytes) {
            return Err(format!("page {p} of the commit never reached the disk"));
        }
    }
    Ok(())
}
