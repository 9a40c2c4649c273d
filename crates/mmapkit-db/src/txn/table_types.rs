//! The record of each typed table's key and value types: a table of the
//! store's own ([`TYPES_TABLE`]) from table name to the two type names,
//! written when a table is first opened typed. A table without a record
//! holds bytes: it opens as (`bytes`, `bytes`), or as any types while empty.

use super::read::ReadTransaction;
use super::write::WriteTransaction;
use crate::error::{Error, Result};
use crate::tree::catalog::TYPES_TABLE;

/// The type names of bytes keys and values, what a table without a record holds.
const BYTES: &str = "bytes";

/// A table's key and value type names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableTypes {
    /// The key type's name.
    pub key: String,
    /// The value type's name.
    pub value: String,
}

impl TableTypes {
    fn encode(&self) -> Vec<u8> {
        [self.key.as_bytes(), &[0], self.value.as_bytes()].concat()
    }

    fn decode(table: &str, bytes: &[u8]) -> Result<TableTypes> {
        let text = std::str::from_utf8(bytes).ok();
        match text.and_then(|t| t.split_once('\0')) {
            Some((key, value)) => Ok(TableTypes { key: key.to_string(), value: value.to_string() }),
            None => Err(Error::Decode { table: table.to_string(), what: format!("type record {bytes:?}") }),
        }
    }

    fn bytes() -> TableTypes {
        TableTypes { key: BYTES.to_string(), value: BYTES.to_string() }
    }

    /// Whether a table recorded as `stored` (if at all) with `len` entries
    /// can be opened as `self`.
    fn check(&self, table: &str, stored: Option<TableTypes>, len: u64) -> Result<()> {
        let stored = match stored {
            Some(stored) => stored,
            None if len == 0 => return Ok(()),
            None => TableTypes::bytes(),
        };
        if stored == *self {
            return Ok(());
        }
        Err(Error::TableTypeMismatch {
            table: table.to_string(),
            stored: format!("({}, {})", stored.key, stored.value),
            requested: format!("({}, {})", self.key, self.value),
        })
    }
}

impl WriteTransaction<'_> {
    /// The types recorded for table `name`, if any.
    fn recorded_types(&mut self, name: &str) -> Result<Option<TableTypes>> {
        if self.table_len(TYPES_TABLE)?.is_none() {
            return Ok(None);
        }
        let types = self.open_any(TYPES_TABLE)?;
        types.get(name.as_bytes())?.map(|bytes| TableTypes::decode(name, bytes)).transpose()
    }

    /// Checks that table `name` (which may not exist yet) can be opened as
    /// `types`, and records them if it has no record.
    pub(crate) fn claim_types(&mut self, name: &str, types: &TableTypes) -> Result<()> {
        let stored = self.recorded_types(name)?;
        let len = self.table_len(name)?.unwrap_or(0);
        let recorded = stored.is_some();
        types.check(name, stored, len)?;
        if !recorded {
            self.open_any(TYPES_TABLE)?.insert(name.as_bytes(), &types.encode())?;
        }
        Ok(())
    }

    /// Forgets the types of table `name` (deleted), or moves them to `to` (renamed).
    pub(crate) fn move_types(&mut self, name: &str, to: Option<&str>) -> Result<()> {
        if self.table_len(TYPES_TABLE)?.is_none() {
            return Ok(());
        }
        let mut types = self.open_any(TYPES_TABLE)?;
        if let (Some(record), Some(to)) = (types.take(name.as_bytes())?, to) {
            types.insert(to.as_bytes(), &record)?;
        }
        Ok(())
    }
}

impl ReadTransaction<'_> {
    /// Checks that table `name` (with `len` entries) can be read as `types`.
    pub(crate) fn check_types(&self, name: &str, len: u64, types: &TableTypes) -> Result<()> {
        let stored = match self.open_any(TYPES_TABLE) {
            Ok(table) => table.get(name.as_bytes())?.map(|bytes| TableTypes::decode(name, bytes)).transpose()?,
            Err(Error::TableNotFound(_)) => None,
            Err(e) => return Err(e),
        };
        types.check(name, stored, len)
    }
}
