//! The catalog: a tree of its own mapping each table's name to its root page
//! and entry count, so `len()` costs one lookup.

use crate::error::{Error, Result};
use crate::store::PageNo;
use crate::store::PageSource;
use crate::store::le_bytes::read_u64;
use crate::tree::btree::{self, value_bytes};

/// Longest table name, in bytes.
pub const MAX_TABLE_NAME: usize = 255;

/// Where a table lives and how many entries it has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableInfo {
    /// Root page of the table's tree, 0 when the table is empty.
    pub root: PageNo,
    /// Entries in the table.
    pub len: u64,
}

impl TableInfo {
    /// The catalog value.
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.root.to_le_bytes());
        b[8..].copy_from_slice(&self.len.to_le_bytes());
        b
    }
}

/// The table that records typed tables' key and value types. Names
/// starting with a zero byte are the store's own.
pub const TYPES_TABLE: &str = "\0types";

/// The table that holds each table's sequence number (see
/// `Table::next_sequence`): table name to a little-endian `u64`.
pub const SEQUENCES_TABLE: &str = "\0sequences";

/// Whether `name` is one of the store's own tables, hidden from listings.
pub fn is_internal(name: &str) -> bool {
    name.starts_with('\0')
}

/// Checks a table name.
pub fn check_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "a table name cannot be empty"
    } else if is_internal(name) {
        "names starting with a zero byte are reserved for the store's own tables"
    } else if name.len() > MAX_TABLE_NAME {
        "a table name is at most 255 bytes"
    } else {
        return Ok(());
    };
    Err(Error::InvalidTableName { name: name.to_string(), why })
}

/// Looks `name` up in the catalog at `root`.
pub fn lookup<P: PageSource + ?Sized>(pages: &P, root: PageNo, name: &str) -> Result<Option<TableInfo>> {
    match btree::get(pages, root, name.as_bytes())? {
        None => Ok(None),
        Some(v) => decode(pages, root, value_bytes(pages, v)?).map(Some),
    }
}

/// Decodes a catalog value.
pub fn decode<P: PageSource + ?Sized>(pages: &P, catalog: PageNo, v: &[u8]) -> Result<TableInfo> {
    if v.len() != 16 {
        return Err(pages.corrupt(catalog, format!("catalog entry of {} bytes, expected 16", v.len())));
    }
    Ok(TableInfo { root: read_u64(v, 0), len: read_u64(v, 8) })
}

/// Every table name, in order.
pub fn names(pages: &dyn PageSource, root: PageNo) -> Result<Vec<String>> {
    let range = crate::tree::range::Range::new(pages, root, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded);
    range
        .map(|item| {
            let (k, _) = item?;
            String::from_utf8(k.to_vec()).map_err(|_| pages.corrupt(root, "table name is not UTF-8".into()))
        })
        .collect()
}
