//! Typed tables on the byte-keyed store: keys and values of Rust types,
//! written through [`Value`] and ordered through [`Key`], in tables named by
//! a [`TableDefinition`]. A typed table is a raw table whose bytes are the
//! types' encodings; it records its types when created, and opening it with
//! others is an error. A multimap table maps each key to a sorted set of
//! values.

mod codec;
mod definition;
mod impls;
mod multimap;
mod range;
mod read_table;
mod table;
mod traits;

pub use definition::TableDefinition;
pub use multimap::{MultimapRange, MultimapTable, MultimapTableDefinition, MultimapValues, ReadMultimapTable};
pub use range::TypedRange;
pub use read_table::TypedReadTable;
pub use table::{OwnedEntry, TypedTable};
pub use traits::{Key, TupleElement, Value};
