//! Sequence numbers: a counter per table that only goes up, committed with
//! the transaction that moved it (an aborted one leaves it where it was), for
//! ids and the like. They live in a table of the store's own
//! ([`SEQUENCES_TABLE`]), from table name to a little-endian `u64`; a table
//! without an entry is at 0. A rename takes the number along, a delete drops
//! it, a savepoint restores it, a compacted copy keeps it.

use super::read::ReadTable;
use super::write::{Table, WriteTransaction};
use crate::error::{Error, Result};
use crate::store::{PageNo, PageSource};
use crate::tree::catalog::{self, SEQUENCES_TABLE};
use crate::tree::reads;

/// The sequence number of table `name` in the tree of sequences at `root`.
fn stored(pages: &dyn PageSource, root: PageNo, name: &str) -> Result<u64> {
    match reads::get(pages, root, name.as_bytes())? {
        None => Ok(0),
        Some(bytes) => match <[u8; 8]>::try_from(bytes) {
            Ok(bytes) => Ok(u64::from_le_bytes(bytes)),
            Err(_) => Err(Error::Decode {
                table: name.to_string(),
                what: format!("its sequence number: {} bytes where it takes 8", bytes.len()),
            }),
        },
    }
}

impl WriteTransaction<'_> {
    /// Table `name`'s sequence number as this transaction has it.
    fn sequence_of(&self, name: &str) -> Result<u64> {
        match self.table_info(SEQUENCES_TABLE)? {
            Some(info) => stored(self.pages(), info.root, name),
            None => Ok(0),
        }
    }

    /// Sets table `name`'s sequence number (0 removes its entry).
    fn set_sequence_of(&mut self, name: &str, value: u64) -> Result<()> {
        if value == 0 {
            if self.table_info(SEQUENCES_TABLE)?.is_some() {
                self.open_any(SEQUENCES_TABLE)?.remove(name.as_bytes())?;
            }
            return Ok(());
        }
        self.open_any(SEQUENCES_TABLE)?.insert(name.as_bytes(), &value.to_le_bytes())
    }

    /// Drops the sequence number of table `name` (deleted), or moves it to
    /// `to` (renamed).
    pub(super) fn move_sequence(&mut self, name: &str, to: Option<&str>) -> Result<()> {
        if self.table_info(SEQUENCES_TABLE)?.is_none() {
            return Ok(());
        }
        let mut sequences = self.open_any(SEQUENCES_TABLE)?;
        if let (Some(value), Some(to)) = (sequences.take(name.as_bytes())?, to) {
            sequences.insert(to.as_bytes(), &value)?;
        }
        Ok(())
    }
}

impl Table<'_, '_> {
    /// The table's sequence number: 0 until [`next_sequence`](Self::next_sequence)
    /// or [`set_sequence`](Self::set_sequence) moves it.
    pub fn sequence(&self) -> Result<u64> {
        self.txn.sequence_of(&self.name)
    }

    /// Adds one to the table's sequence number and returns it (1 the first
    /// time): a number no earlier committed call returned, for a new key.
    /// It is kept by the commit, undone by an abort or by restoring a
    /// savepoint taken before. [`Error::SequenceOverflow`] at `u64::MAX`.
    ///
    /// ```
    /// # fn demo(table: &mut mmapkit_db::Table<'_, '_>) -> mmapkit_db::Result<()> {
    /// let id = table.next_sequence()?;
    /// table.insert(&id.to_be_bytes(), b"a new row")?;
    /// assert_eq!(table.sequence()?, id);
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_sequence(&mut self) -> Result<u64> {
        self.txn.usable()?;
        let next =
            self.sequence()?.checked_add(1).ok_or_else(|| Error::SequenceOverflow { table: self.name.clone() })?;
        self.set_sequence(next)?;
        Ok(next)
    }

    /// Sets the table's sequence number to `value` (which may be lower than
    /// it was): the next [`next_sequence`](Self::next_sequence) returns `value + 1`.
    pub fn set_sequence(&mut self, value: u64) -> Result<()> {
        self.txn.usable()?;
        self.txn.set_sequence_of(&self.name, value)
    }
}

impl ReadTable<'_> {
    /// The table's sequence number in this snapshot (see [`Table::next_sequence`]).
    pub fn sequence(&self) -> Result<u64> {
        match catalog::lookup(self.pages, self.catalog, SEQUENCES_TABLE).map_err(|e| self.pages.fault_first(e))? {
            Some(info) => stored(self.pages, info.root, &self.name),
            None => Ok(0),
        }
    }
}
