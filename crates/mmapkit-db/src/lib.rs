//! An embedded, transactional key-value store on a memory-mapped file, in the
//! family of LMDB, bbolt and redb: a copy-on-write B+tree, one writer and any
//! number of concurrent readers, and reads that return slices of the mapping
//! (no copy).
//!
//! Where it differs from them:
//! - **No map size to configure.** The file is mapped read-only inside a large
//!   reservation of address space ([`mmapkit::GrowableReadMap`]) and grows in
//!   place: growth never waits for readers (bbolt) and never runs out of a
//!   fixed map (LMDB's `MDB_MAP_FULL`).
//! - **No SIGBUS, no zeros.** A file truncated or failing under the process is
//!   an error ([`Error::Fault`]) for the read that hit it, through the core's
//!   fault guard. Every page a read uses, every page of a returned value
//!   included, is checked present when it is read, so a key or value returned
//!   as `Ok` is the file's bytes (a truncation after it returned turns the
//!   slice's bytes into zeros, as for any mapped slice).
//! - **Writes go through `pwrite` and `fdatasync`**, never through a writable
//!   mapping: a stray pointer cannot corrupt the file, a full disk is an error.
//! - **The file shrinks**: free pages at its end are returned when it is closed,
//!   and [`Database::compact_to`] writes a compacted copy.
//!
//! ```
//! # fn main() -> mmapkit_db::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("my.db");
//! use mmapkit_db::{Database, TableDefinition};
//!
//! // Keys are (name, year) pairs, ordered by name then year; values are u64.
//! const HARVEST: TableDefinition<(&str, u16), u64> = TableDefinition::new("harvest");
//! // Keys and values as strings.
//! const COLOUR: TableDefinition<&str, &str> = TableDefinition::new("colour");
//!
//! // SAFETY: no other process writes this file while it is open.
//! let db = unsafe { Database::create(&path)? };
//!
//! let mut txn = db.begin_write()?;
//! {
//!     let mut harvest = txn.open_typed(HARVEST)?;
//!     harvest.insert(("apple", 2024), 310)?;
//!     harvest.insert(("apple", 2025), 280)?;
//!     harvest.insert(("pear", 2025), 95)?;
//!     // `insert` gives back what it replaced.
//!     assert_eq!(harvest.insert(("pear", 2025), 97)?, Some(95));
//!     let mut colour = txn.open_typed(COLOUR)?;
//!     colour.insert("apple", "red")?;
//!     colour.insert("banana", "yellow")?;
//! }
//! txn.commit()?; // durable when it returns
//!
//! let read = db.begin_read()?;
//! let harvest = read.open_typed(HARVEST)?;
//! let apples: Vec<((&str, u16), u64)> =
//!     harvest.range(("apple", 0)..("apple", u16::MAX))?.collect::<Result<_, _>>()?;
//! assert_eq!(apples, [(("apple", 2024), 310), (("apple", 2025), 280)]);
//! assert_eq!(harvest.last()?, Some((("pear", 2025), 97)));
//!
//! // A `&str` value is a slice of the mapped file: no copy.
//! let colour = read.open_typed(COLOUR)?;
//! assert_eq!(colour.get("banana")?, Some("yellow"));
//!
//! // The same table through the raw API: keys and values as bytes.
//! let raw = read.open_table("colour")?;
//! assert_eq!(raw.get(b"apple")?, Some(&b"red"[..]));
//! assert!(db.check()?.is_clean());
//! # Ok(())
//! # }
//! ```
//!
//! # Tables
//!
//! A table maps keys to values, both byte strings underneath, in key order.
//! [`TableDefinition`] names a typed table: its key type implements [`Key`]
//! (integers, `bool`, strings, byte strings and arrays, `Option` and tuples
//! do; a user type implements [`Value`] and [`Key`] itself), its value type
//! [`Value`]. A key's bytes sort as the keys do (integers big-endian with the
//! sign bit flipped, tuples element by element), so the tree's byte order is
//! the type's. A table records its types when it is created and refuses to
//! open as others ([`Error::TableTypeMismatch`]); those records live in a
//! table of the store's own, named with a leading zero byte (such names are
//! reserved, and hidden from `list_tables`).
//!
//! A typed lookup (`get`, `contains_key`, a range's bounds) makes no heap
//! allocation: a byte or string key is looked up as its own bytes
//! ([`Value::as_bytes`]), and a key of fixed width (integers, `bool`, and
//! `Option`s and tuples of them) is encoded on the stack
//! ([`Value::encode_inline`]). An insert stores a byte or string value from
//! its own bytes too.
//!
//! Both kinds of table offer lookups, ranges from either end, `first` and
//! `last`, and, in a write transaction: inserts (raw `insert` does not read
//! the old value; raw `replace` and typed `insert` return it), removals (raw
//! `remove` and `take`, typed `remove`), `pop_first`/`pop_last`, `retain`,
//! `retain_in`, `extract_if`, `extract_from_if`, `delete_range`, `clear`, and
//! `insert_reserve`, which hands out a value's bytes to fill in place. Prefix
//! ranges take the leading bytes of the keys (of their encodings, for typed
//! tables: the start of a string, the first elements of a tuple). [`WriteTransaction::bulk_load`] builds a
//! table from sorted input much faster than one insert per entry, and
//! [`WriteTransaction::rename_table`] renames one.
//!
//! Every table also has a sequence number, a counter for ids
//! ([`Table::next_sequence`], `sequence`, `set_sequence`; `sequence` on read
//! tables): it moves only with a commit, restarts at 0 for a deleted table,
//! follows a renamed one and is kept by a compacted copy. Sequence numbers
//! live in another table of the store's own, so the file format is the same.
//!
//! # Transactions
//!
//! [`Database::begin_read`] gives a [`ReadTransaction`]: a snapshot of the
//! newest commit that never changes and never blocks anyone. The single
//! [`WriteTransaction`] copies every page it changes to a new page and commits
//! by writing those pages, syncing, then writing one of two checksummed meta
//! pages and syncing again (a small commit lists its pages and their checksums
//! in the meta page and syncs once); opening picks the newest meta page whose
//! commit is whole on disk, so a crash at any instant leaves the last durable
//! commit. Inside the write transaction, [`WriteTransaction::savepoint`]
//! copies its state and [`WriteTransaction::restore_savepoint`] goes back to
//! it, undoing what came after without aborting. Pages a commit frees
//! are reused only once no reader can see them and a durable commit no longer
//! refers to them, so a steady update workload keeps the file's size bounded.
//!
//! # Soundness
//!
//! Values are `&[u8]` slices of the mapped file, valid for the read
//! transaction's life. Rust requires that those bytes do not change meanwhile.
//! mmapkit-db handles keep that promise in every process (they write only
//! pages no read transaction anywhere can see); a program that writes the
//! file by other means would break it and cannot be stopped, so
//! [`Database::create`] and [`Database::open`] are `unsafe` with that
//! contract. Truncation is not part
//! of it: the fault guard turns it into errors.
//!
//! # Processes
//!
//! Any number of processes may have a database open, reading and writing.
//! They share a lock file beside it (`<file>-lock`): each handle keeps there
//! the oldest snapshot its read transactions hold, so no writer reuses a page
//! a reader in another process can see, and a reader killed with `SIGKILL` is
//! found by a lock the kernel drops when it dies, and its slot cleared
//! ([`Database::readers`], [`Database::clear_stale_readers`]). Writers take
//! turns: [`Database::begin_write`] waits for another handle's write
//! transaction (or its commits not yet durable) for as long as
//! [`Builder::write_lock_timeout`] says, then fails naming the holder's pid.
//! A read transaction sees this handle's newest commit or the newest durable
//! one of another process, and maps what the file grew by first. A write
//! killed mid-commit leaves the last durable commit to everyone.
//! [`Database::begin_read_owned`] gives a transaction that is
//! `Send + 'static`.
//!
//! # Integrity
//!
//! Every page carries an xxh3 checksum, every meta page too. Reads verify a
//! page's checksum the first time they meet it (a bit per page remembers that
//! it matched, until the page is written again; pages this handle's commits
//! write are marked from the bytes they sealed), and check every length and
//! offset they follow against the page and file bounds, so damage present
//! when a page is first read gives [`Error::Corrupt`], never wrong bytes, a
//! panic or an out-of-bounds read (a page that rots on disk after it was
//! checked, and is read back after the page cache dropped it, is not checked
//! again; [`Database::check`] always is). `check` verifies checksums,
//! ordering, counts and that every page is used or free exactly once.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

// The layers, each on the one below: the page store (the file, its formats,
// commits on disk), the B+tree on its pages, transactions on the tree, and
// `Database`, the front; typed tables over the raw ones. `check`, `stats` and `compact` are operations on a
// whole database.
mod check;
mod compact;
mod db;
mod error;
mod stats;
mod store;
mod tree;
mod txn;
mod typed;

pub use check::{CheckReport, Problem};
pub use db::{Builder, Database};
pub use error::{Error, IoOp, Result};
pub use stats::{Stats, TableStats};
pub use store::reader_slots::ReaderInfo;
pub use store::{DEFAULT_MAX_SIZE, FileStorage, PAGE_SIZE, PageNo, Storage, WRITE_PIECE};
pub use tree::{MAX_TABLE_NAME, Range};
pub use txn::{
    Durability, MAX_KEY, MAX_VALUE, OwnedReadTransaction, ReadTable, ReadTransaction, ReadableTable, Savepoint, Table,
    WriteTransaction,
};
pub use typed::{
    Key, MultimapRange, MultimapTable, MultimapTableDefinition, MultimapValues, OwnedEntry, ReadMultimapTable,
    TableDefinition, TupleElement, TypedRange, TypedReadTable, TypedTable, Value,
};
