//! Pages written to the file before their commit, in big sequential writes:
//! how a bulk build ([`crate::bulk`]) streams its tree out instead of holding
//! every page in memory until the commit.
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

/// Bytes gathered before one write.
const BATCH: usize = 8 << 20;

/// A [`Sink`] that gives each finished page the next number past the end
/// and writes them out in batches of contiguous pages.
pub struct WriteAhead<'t, 'db> {
    db: &'db Database,
    store: &'t mut Store<'db>,
    txn: u64,
    batch: Vec<u8>,
    batch_start: PageNo,
}

impl<'t, 'db> WriteAhead<'t, 'db> {
    /// Writes pages of transaction `txn`, placed by `store`, to `db`'s file.
    pub fn new(db: &'db Database, store: &'t mut Store<'db>, txn: u64) -> WriteAhead<'t, 'db> {
        WriteAhead { db, store, txn, batch: Vec::new(), batch_start: 0 }
    }

    /// Writes what is still gathered.
    pub fn finish(mut self) -> Result<()> {
        self.write_batch()
    }

    fn write_batch(&mut self) -> Result<()> {
        if !self.batch.is_empty() {
            self.db.write_contiguous(self.batch_start, &self.batch, self.store.page_count)?;
            self.batch.clear();
        }
        Ok(())
    }
}

impl Sink for WriteAhead<'_, '_> {
    fn put(&mut self, bytes: &mut [u8]) -> Result<PageNo> {
        let n = self.store.place_ahead((bytes.len() / PAGE_SIZE) as u64);
        page::seal(bytes, self.txn);
        if bytes.len() >= BATCH {
            // A big overflow run goes out as it is, not copied into the batch.
            self.write_batch()?;
            self.db.write_contiguous(n, bytes, self.store.page_count)?;
            return Ok(n);
        }
        let follows = self.batch_start + (self.batch.len() / PAGE_SIZE) as u64 == n;
        if !follows || self.batch.len() + bytes.len() > BATCH {
            self.write_batch()?;
        }
        if self.batch.is_empty() {
            self.batch_start = n;
        }
        self.batch.extend_from_slice(bytes);
        Ok(n)
    }

    fn out_of_order(&self) -> Error {
        self.store.corrupt(0, "entries given to a bulk build out of order".into())
    }
}
