//! The two meta pages: which tree is current, and how to tell it is intact.
//!
//! Pages 0 and 1 each hold a meta record. A durable commit writes the slot
//! not holding the last durable meta; opening takes the valid record with the
//! higher transaction id, so a commit torn by a crash falls back to the one
//! before.
//!
//! A commit that wrote at most [`MAX_WRITTEN`] pages (or runs), with no
//! unsynced commit before it, lists them with their checksums in its record
//! and syncs once, pages and meta together; opening then checks that every
//! listed page holds exactly what was written (its id and the listed checksum),
//! and falls back if one does not (it never reached the disk). Other commits
//! sync their pages first and write the meta afterwards, with a second sync.
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
//! | 48..56 | pages of the free list to read (see `free_list.rs`) |
//! | 56..60 | pages listed as written by the commit      |
//! | 60..64 | zero                                       |
//! | 64..72 | xxh3 checksum of bytes 0..64 and the list  |
//! | 72..   | the list: (first page, checksum) per page or run |
//!
//! A record of another format version or page size is refused, never
//! read: this code reads and writes format [`VERSION`] only.

use super::le_bytes::{read_u32, read_u64, write_u32, write_u64};
use super::page_header::{PAGE_SIZE, PageNo};

/// Identifies the file format.
pub const MAGIC: [u8; 8] = *b"MMAPKVDB";
/// The format version this code writes and reads.
pub const VERSION: u32 = 2;
/// Bytes of the record before the list of written pages.
pub const META_LEN: usize = 72;
/// The most written pages a record lists (a commit writing more syncs twice).
pub const MAX_WRITTEN: usize = (PAGE_SIZE - META_LEN) / 16;

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
    /// Pages of the persisted free list's chain to read from `freelist`.
    pub free_list_pages: u64,
}

impl Meta {
    /// The state of a new, empty database.
    pub fn empty() -> Meta {
        Meta { txn: 0, catalog: 0, freelist: 0, page_count: 2, free_list_pages: 0 }
    }

    /// The record as written to its page, listing `written` pages and their
    /// checksums (at most [`MAX_WRITTEN`]).
    pub fn encode(&self, written: &[(PageNo, u64)]) -> Vec<u8> {
        assert!(written.len() <= MAX_WRITTEN, "a meta record lists at most {MAX_WRITTEN} pages");
        let mut b = vec![0u8; META_LEN + 16 * written.len()];
        b[0..8].copy_from_slice(&MAGIC);
        write_u32(&mut b, 8, VERSION);
        write_u32(&mut b, 12, PAGE_SIZE as u32);
        write_u64(&mut b, 16, self.txn);
        write_u64(&mut b, 24, self.catalog);
        write_u64(&mut b, 32, self.freelist);
        write_u64(&mut b, 40, self.page_count);
        write_u64(&mut b, 48, self.free_list_pages);
        write_u32(&mut b, 56, written.len() as u32);
        for (i, &(p, sum)) in written.iter().enumerate() {
            write_u64(&mut b, META_LEN + 16 * i, p);
            write_u64(&mut b, META_LEN + 16 * i + 8, sum);
        }
        let sum = checksum(&b);
        write_u64(&mut b, 64, sum);
        b
    }

    /// Decodes and checks one record (a whole meta page): the record and the
    /// pages it lists as written, or what is wrong with it.
    pub fn decode(b: &[u8]) -> Result<(Meta, Vec<(PageNo, u64)>), String> {
        if b.len() < META_LEN {
            return Err("meta page is cut short".into());
        }
        if b[0..8] != MAGIC {
            return Err("wrong magic (not an mmapkit-db file)".into());
        }
        let listed = read_u32(b, 56) as usize;
        if listed > MAX_WRITTEN || META_LEN + 16 * listed > b.len() {
            return Err(format!("lists {listed} written pages, more than fit"));
        }
        let record = &b[..META_LEN + 16 * listed];
        if read_u64(record, 64) != checksum(record) {
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
            free_list_pages: read_u64(b, 48),
        };
        if meta.page_count < 2 {
            return Err(format!("page count {} is below the two meta pages", meta.page_count));
        }
        for (what, page) in [("catalog root", meta.catalog), ("free list", meta.freelist)] {
            if page == 1 || (page != 0 && page >= meta.page_count) {
                return Err(format!("{what} page {page} is outside pages 2..{}", meta.page_count));
            }
        }
        if (meta.freelist == 0) != (meta.free_list_pages == 0) || meta.free_list_pages > meta.page_count {
            return Err(format!(
                "a free list of {} pages from page {} does not fit {} pages",
                meta.free_list_pages, meta.freelist, meta.page_count
            ));
        }
        let written: Vec<(PageNo, u64)> =
            (0..listed).map(|i| (read_u64(b, META_LEN + 16 * i), read_u64(b, META_LEN + 16 * i + 8))).collect();
        if let Some((p, _)) = written.iter().find(|&&(p, _)| p < 2 || p >= meta.page_count) {
            return Err(format!("lists written page {p}, outside pages 2..{}", meta.page_count));
        }
        Ok((meta, written))
    }
}

/// The record's checksum: bytes 0..64 and the list after the checksum field.
fn checksum(record: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&record[..64]);
    h.update(&record[META_LEN..]);
    h.digest()
}
