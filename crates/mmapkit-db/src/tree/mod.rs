//! The copy-on-write B+tree on the page store: node pages and their format,
//! lookups, inserts and removals, cursors and ranges, bottom-up builds, and
//! the catalog (the tree of tables). It reads pages through
//! [`PageSource`](crate::store::PageSource) and changes them through a write
//! transaction's [`TxnPages`](crate::store::TxnPages).

pub mod btree;
pub mod bulk;
pub mod catalog;
mod cursor;
pub mod node;
mod range;
pub mod reads;

pub use catalog::MAX_TABLE_NAME;
pub use range::Range;
