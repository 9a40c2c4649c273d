//! The two meta pages: which tree is current, and how to tell it is intact.
//!
//! Pages 0 and 1 each hold a meta record. A durable commit writes the slot
//! not holding the last durable meta, after the pages it refers to are on
//! disk; opening takes the valid record with the higher transaction id, so a
//! commit torn by a crash falls back to the one before.
//!
//! | bytes  | field                                      |
//! |--------|--------------------------------------------|
//! | 0..8   | magic `MMAPKVDB`                           |
//! | 8..12  | format version                             |
//! | 12..16 | page size                                  |
//! | 16..24 | transaction id                             |
//! | 24..32 | root of the table catalog (0: no tables)   |
//! | 32..40 | first page of the free list (0: none)      |
//! | 40..48 | pages in use: the file's high-water mark   |
//! | 48..56 | free-list extents                          |
//! | 56..64 | xxh3 checksum of bytes 0..56               |

use xxhash_rust::xxh3::xxh3_64;

use crate::page::{PAGE_SIZE, PageNo, read_u32, read_u64, write_u32, write_u64};

/// Identifies the file format.
pub const MAGIC: [u8; 8] = *b"MMAPKVDB";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the record.
pub const META_LEN: usize = 64;

/// One meta record: a committed state of the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// The transaction that produced this state.
    pub txn: u64,
    /// Root of the catalog tree (table name → root and length), 0 when empty.
    pub catalog: PageNo,
    /// First page of the persisted free list, 0 when none.
    pub freelist: PageNo,
    /// Pages `0..page_count` are in use or free; beyond is unused file.
    pub page_count: u64,
    /// Extents in the persisted free list.
    pub free_extents: u64,
}

impl Meta {
    /// The state of a new, empty database.
    pub fn empty() -> Meta {
        Meta { txn: 0, catalog: 0, freelist: 0, page_count: 2, free_extents: 0 }
    }

    /// The record as written to its page.
    pub fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        write_u32(&mut b, 8, VERSION);
        write_u32(&mut b, 12, PAGE_SIZE as u32);
        write_u64(&mut b, 16, self.txn);
        write_u64(&mut b, 24, self.catalog);
        write_u64(&mut b, 32, self.freelist);
        write_u64(&mut b, 40, self.page_count);
        write_u64(&mut b, 48, self.free_extents);
        let sum = xxh3_64(&b[..56]);
        write_u64(&mut b, 56, sum);
        b
    }

    /// Decodes and checks one record: `Err` says what is wrong with it.
    pub fn decode(b: &[u8]) -> Result<Meta, String> {
        if b.len() < META_LEN {
            return Err("meta page is cut short".into());
        }
        if b[0..8] != MAGIC {
            return Err("wrong magic (not an mmapkit-db file)".into());
        }
        if read_u64(b, 56) != xxh3_64(&b[..56]) {
            return Err("checksum mismatch".into());
        }
        let version = read_u32(b, 8);
        if version != VERSION {
            return Err(format!("format version {version}, this build reads version {VERSION}"));
        }
        let page_size = read_u32(b, 12);
        if page_size as usize != PAGE_SIZE {
            return Err(format!("page size {page_size}, this build uses {PAGE_SIZE}"));
        }
        let meta = Meta {
            txn: read_u64(b, 16),
            catalog: read_u64(b, 24),
            freelist: read_u64(b, 32),
            page_count: read_u64(b, 40),
            free_extents: read_u64(b, 48),
        };
        if meta.page_count < 2 {
            return Err(format!("page count {} is below the two meta pages", meta.page_count));
        }
        for (what, page) in [("catalog root", meta.catalog), ("free list", meta.freelist)] {
            if page == 1 || (page != 0 && page >= meta.page_count) {
                return Err(format!("{what} page {page} is outside pages 2..{}", meta.page_count));
            }
        }
        Ok(meta)
    }
}
