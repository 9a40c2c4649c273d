//! The page store: the file, its mapping and the I/O under it, the formats of
//! the pages every layer above shares (the page header, the meta pages, the
//! free list), the choice of meta page at open, page verification, and the
//! write transaction's page allocator. The tree sits on it and sees pages
//! only through [`PageSource`] and [`TxnPages`]; transactions open it as a
//! [`PageStore`].
//!
//! Pages 0 and 1 are the meta pages (`meta_page.rs`); every other page starts
//! with the common header (`page_header.rs`) and is a tree node
//! (`tree/node.rs`), part of an overflow run, or a free-list page
//! (`free_list.rs`).

mod file_lock;
mod free_list;
mod free_pages;
pub mod le_bytes;
pub mod lock_file;
mod meta_page;
mod page_file;
pub mod page_header;
mod page_source;
mod page_store;
pub mod reader_slots;
mod recovery;
mod snapshot;
mod txn_pages;
mod verified;
mod write_io;
mod writer_state;

pub use meta_page::Meta;
pub use page_header::{PAGE_SIZE, PageNo};
pub use page_source::PageSource;
pub use page_store::{Config, DEFAULT_MAX_SIZE, HeldTurn, PageStore};
pub use snapshot::SnapshotPages;
pub use txn_pages::{SavedPages, TxnPages};
pub use write_io::{FileStorage, Storage, WRITE_PIECE};
