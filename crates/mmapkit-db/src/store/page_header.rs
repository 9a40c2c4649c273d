//! The file's unit: fixed-size pages, their common header and checksum.
//!
//! Every page but the two meta pages starts with a 32-byte header:
//!
//! | bytes  | field                                                        |
//! |--------|--------------------------------------------------------------|
//! | 0..8   | xxh3 checksum of the rest of the page (or of the whole run)  |
//! | 8      | kind: leaf, branch, overflow, free list                      |
//! | 10..12 | entry count (nodes) / entries (free list)                    |
//! | 12..14 | start of the entry data (nodes)                              |
//! | 14..16 | bytes of dead entry data (nodes)                             |
//! | 16..24 | id of the transaction that wrote the page                    |
//! | 24..32 | leftmost child (branch), pages in the run (overflow), next page (free list) |
//!
//! All integers are little-endian (see `le_bytes.rs`). The node format is
//! described in `tree/node.rs`, the free-list page in `free_list.rs`, the meta
//! pages in `meta_page.rs`.

use xxhash_rust::xxh3::xxh3_64;

use super::le_bytes::{read_u64, write_u64};

/// Bytes per page.
pub const PAGE_SIZE: usize = 4096;
/// Bytes of the common page header.
pub const HEADER: usize = 32;

/// A page number: the page's byte offset divided by [`PAGE_SIZE`].
pub type PageNo = u64;

/// What a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Keys and values (or references to overflow runs).
    Leaf = 1,
    /// Separator keys and child page numbers.
    Branch = 2,
    /// The first page of a run holding one large value.
    Overflow = 3,
    /// A page of the persisted free-page list.
    FreeList = 4,
}

impl Kind {
    /// The kind a header's kind byte names, if it names one.
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Leaf,
            2 => Kind::Branch,
            3 => Kind::Overflow,
            4 => Kind::FreeList,
            _ => return None,
        })
    }

    /// The kind's name, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Leaf => "leaf",
            Kind::Branch => "branch",
            Kind::Overflow => "overflow",
            Kind::FreeList => "free-list",
        }
    }
}

/// The raw kind byte of a page.
pub fn kind_byte(page: &[u8]) -> u8 {
    page[8]
}

/// The checksum the page (or run) carries, at 0..8.
pub fn stored_checksum(page: &[u8]) -> u64 {
    read_u64(page, 0)
}

/// The id of the transaction that wrote the page, at 16..24.
pub fn written_by(page: &[u8]) -> u64 {
    read_u64(page, 16)
}

/// The field at 24..32 (leftmost child, run length or next page).
pub fn link(page: &[u8]) -> u64 {
    read_u64(page, 24)
}

/// Starts a fresh page (or run) of `kind`: zeroes the header.
pub fn init(page: &mut [u8], kind: Kind, link: u64) {
    page[..HEADER].fill(0);
    page[8] = kind as u8;
    write_u64(page, 24, link);
}

/// The checksum a page (or a whole overflow run) should carry.
pub fn checksum_of(bytes: &[u8]) -> u64 {
    xxh3_64(&bytes[8..])
}

/// Stamps the transaction id and checksum into a page or run about to be written.
pub fn seal(bytes: &mut [u8], txn: u64) {
    write_u64(bytes, 16, txn);
    let sum = checksum_of(bytes);
    write_u64(bytes, 0, sum);
}

/// Whether a page or run carries the checksum of its contents.
pub fn checksum_ok(bytes: &[u8]) -> bool {
    stored_checksum(bytes) == checksum_of(bytes)
}

/// Pages needed for an overflow run holding `value_len` bytes.
pub fn run_pages(value_len: usize) -> u64 {
    (HEADER + value_len).div_ceil(PAGE_SIZE) as u64
}
