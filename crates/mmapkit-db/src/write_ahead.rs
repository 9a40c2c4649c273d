//! Pages written to the file before their commit, one after another as they
//! are finished: how a bulk build ([`crate::bulk`]) streams its tree out
//! instead of holding every page in memory until the commit.
//!
//! The pages go past the last page any snapshot or durable state uses (the
//! end of the file, less free pages at its end), so nothing can see them
//! until the commit's meta record points at them; a commit that wrote ahead
//! syncs its pages before it writes that record.

use crate::bulk::Sink;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::page::{self, PAGE_SIZE, PageNo};
use crate::pages::Pages;
use crate::store::Store;

/// Bytes written before the disk is asked to start on them.
const WRITEBACK_EVERY: u64 = (8 << 20) / PAGE_SIZE as u64;

/// A [`Sink`] that gives each finished page the next number past the end,
/// writes it at once from its own buffer, and starts write-back of every
/// 8 MiB written.
pub struct WriteAhead<'t, 'db> {
    db: &'db Database,
    store: &'t mut Store<'db>,
    txn: u64,
    /// The first page written since write-back was last started.
    unflushed_from: Option<PageNo>,
}

impl<'t, 'db> WriteAhead<'t, 'db> {
    /// Writes pages of transaction `txn`, placed by `store`, to `db`'s file.
    pub fn new(db: &'db Database, store: &'t mut Store<'db>, txn: u64) -> WriteAhead<'t, 'db> {
        WriteAhead { db, store, txn, unflushed_from: None }
    }

    /// Starts write-back of what is left.
    pub fn finish(mut self) {
        self.start_writeback();
    }

    fn start_writeback(&mut self) {
        if let Some(from) = self.unflushed_from.take() {
            self.db.start_writeback(from, self.store.page_count - from);
        }
    }
}

impl Sink for WriteAhead<'_, '_> {
    fn put(&mut self, bytes: &mut [u8]) -> Result<PageNo> {
        let n = self.store.place_ahead((bytes.len() / PAGE_SIZE) as u64);
        page::seal(bytes, self.txn);
        self.db.write_ahead(n, bytes, self.store.page_count)?;
        let from = *self.unflushed_from.get_or_insert(n);
        if self.store.page_count - from >= WRITEBACK_EVERY {
            self.start_writeback();
        }
        Ok(n)
    }

    fn out_of_order(&self) -> Error {
        self.store.corrupt(0, "entries given to a bulk build out of order".into())
    }
}
