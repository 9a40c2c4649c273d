//! Savepoints: a write transaction's state at one moment, to go back to
//! without aborting the whole transaction.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::write::WriteTransaction;
use crate::error::{Error, Result};
use crate::store::{PageNo, SavedPages};
use crate::tree::catalog::TableInfo;

/// Numbers write transactions apart, so a savepoint is only ever restored
/// into the transaction it came from.
static SERIALS: AtomicU64 = AtomicU64::new(1);

/// The next transaction serial number.
pub(crate) fn next_serial() -> u64 {
    SERIALS.fetch_add(1, Ordering::Relaxed)
}

/// The savepoints of one write transaction that can still be restored.
#[derive(Default)]
pub(crate) struct Savepoints {
    /// Ids handed out so far.
    issued: u64,
    /// Ids that can be restored: restoring one drops those taken after it.
    live: std::collections::BTreeSet<u64>,
}

/// A write transaction's state when [`WriteTransaction::savepoint`] was
/// called: every table and every page it had changed, copied. Restoring it
/// ([`WriteTransaction::restore_savepoint`]) undoes what the transaction did
/// since, and it can be restored again later; restoring it also drops the
/// savepoints taken after it. It belongs to its transaction and ends with it.
pub struct Savepoint {
    serial: u64,
    id: u64,
    pages: SavedPages,
    catalog: PageNo,
    tables: BTreeMap<String, TableInfo>,
    broken: Option<String>,
}

impl Savepoint {
    /// Bytes of page copies it holds: the pages its transaction had changed.
    pub fn size(&self) -> usize {
        self.pages.bytes()
    }
}

impl std::fmt::Debug for Savepoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Savepoint").field("id", &self.id).field("bytes", &self.size()).finish_non_exhaustive()
    }
}

impl WriteTransaction<'_> {
    /// Takes a savepoint: a copy of the transaction's state now (its cost is
    /// a copy of every page the transaction has changed so far).
    pub fn savepoint(&mut self) -> Result<Savepoint> {
        self.usable()?;
        let (serial, state) = self.savepoint_parts();
        let (catalog, tables, broken) = (*state.catalog, state.tables.clone(), state.broken.clone());
        let points = &mut *state.savepoints;
        points.issued += 1;
        let id = points.issued;
        points.live.insert(id);
        Ok(Savepoint { serial, id, pages: state.pages.save(), catalog, tables, broken })
    }

    /// Goes back to `savepoint`: every change made since it was taken is
    /// undone (a change that failed half-way too, which lets the transaction
    /// go on). Savepoints taken after it can no longer be restored.
    /// [`Error::Savepoint`] for a savepoint of another transaction or one
    /// that was dropped by restoring an earlier one.
    pub fn restore_savepoint(&mut self, savepoint: &Savepoint) -> Result<()> {
        let (serial, state) = self.savepoint_parts();
        let why = if savepoint.serial != serial {
            "it belongs to another write transaction"
        } else if !state.savepoints.live.contains(&savepoint.id) {
            "an earlier savepoint was restored after it was taken"
        } else {
            state.savepoints.live.retain(|&id| id <= savepoint.id);
            state.pages.restore(&savepoint.pages);
            *state.catalog = savepoint.catalog;
            *state.tables = savepoint.tables.clone();
            *state.broken = savepoint.broken.clone();
            return Ok(());
        };
        Err(Error::Savepoint { why })
    }
}
