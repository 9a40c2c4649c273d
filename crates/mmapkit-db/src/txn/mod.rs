//! Transactions on the tree: read transactions, each a snapshot of one
//! commit, and the one write transaction, which changes copies of pages and
//! commits them through the page store. [`Engine`] is what both begin from.

mod engine;
mod owned;
mod read;
mod readable;
mod savepoint;
mod sequence;
mod table_types;
mod write;

pub use engine::Engine;
pub use owned::OwnedReadTransaction;
pub use read::{ReadTable, ReadTransaction};
pub use readable::ReadableTable;
pub use savepoint::Savepoint;
pub(crate) use table_types::TableTypes;
pub(crate) use write::KeyBounds;
pub use write::{Durability, MAX_KEY, MAX_VALUE, Table, WriteTransaction};
