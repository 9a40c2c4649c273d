//! The lock file beside the database (`<file>-lock`): what processes sharing
//! the database tell each other. It is mapped shared and read-write by every
//! handle, and used only through atomics; nothing in it is ever needed to
//! recover the database (the file's meta pages are the truth).
//!
//! | bytes      | field                                                        |
//! |------------|--------------------------------------------------------------|
//! | 0..8       | magic `MMAPKVLK`                                             |
//! | 8..16      | layout: format version (high 32 bits), reader slots (low 32) |
//! | 64..112    | the published commit: a sequence word, then the meta record's fields (see below) |
//! | 128..136   | the process holding the writer's turn (0: none)              |
//! | 256..      | reader slots, 64 bytes each (see `reader_slots.rs`)          |
//!
//! The *published commit* is the newest durable commit, written by the
//! process holding the writer's turn after the commit's meta page (so it
//! never names a commit that is not whole in the file), under a sequence
//! lock: the sequence word is odd while the fields change. Commits made with
//! `Durability::None` are not published: other processes see them once a
//! durable commit covers them.
//!
//! A file of all zeros is a valid, empty table: the first opener writes the
//! magic and layout with a compare-and-swap, so openers racing to create the
//! file need no lock of their own.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering, fence};

use mmapkit::MapRaw;

use super::meta_page::Meta;
use crate::error::{Error, IoOp, Result};

const MAGIC: u64 = u64::from_le_bytes(*b"MMAPKVLK");
const VERSION: u64 = 1;
/// Reader slots in the table: one per open handle that reads.
pub const SLOTS: usize = 252;
/// Where the slots begin, and each slot's size.
const SLOTS_AT: usize = 256;
pub(super) const SLOT_LEN: usize = 64;
/// The lock file's length.
const LEN: usize = SLOTS_AT + SLOTS * SLOT_LEN;
const LAYOUT: u64 = (VERSION << 32) | SLOTS as u64;

const PUBLISHED_AT: usize = 64;
const WRITER_AT: usize = 128;

/// The lock file's path for the database at `db`.
pub fn path_for(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-lock");
    PathBuf::from(name)
}

/// The mapped lock file.
pub struct LockFile {
    path: PathBuf,
    /// The open file: its byte-range locks show which slots' owners are alive.
    file: std::fs::File,
    map: MapRaw,
}

impl LockFile {
    /// Opens (creating if needed) the lock file of the database at `db`.
    pub fn open(db: &Path) -> Result<LockFile> {
        let path = path_for(db);
        let io = |op| {
            let path = &path;
            move |error| Error::io(path, op, error)
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(IoOp::OpenLockFile))?;
        let len = file.metadata().map_err(io(IoOp::Stat))?.len();
        if len < LEN as u64 {
            // Zeros are an empty table; a racing opener sets the same length.
            file.set_len(LEN as u64).map_err(io(IoOp::OpenLockFile))?;
        }
        let map = MapRaw::map(&file).map_err(|e| Error::io(&path, IoOp::MapLockFile, std::io::Error::other(e)))?;
        let lock = LockFile { path, file, map };
        let magic = lock.word(0);
        if let Err(found) = magic.compare_exchange(0, MAGIC, Ordering::SeqCst, Ordering::SeqCst)
            && found != MAGIC
        {
            return Err(lock.not_ours(format!("its magic is {found:#018x}")));
        }
        match lock.word(8).compare_exchange(0, LAYOUT, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => {}
            Err(found) if found == LAYOUT => {}
            Err(found) => {
                return Err(lock.not_ours(format!(
                    "it has format {} with {} slots, this build uses format {VERSION} with {SLOTS}",
                    found >> 32,
                    found & u64::from(u32::MAX)
                )));
            }
        }
        Ok(lock)
    }

    fn not_ours(&self, why: String) -> Error {
        Error::LockFile { path: self.path.clone(), reason: format!("not an mmapkit-db lock file: {why}") }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open lock file, for the byte-range locks slots are held by.
    pub fn descriptor(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.file.as_fd()
    }

    /// The word at byte `at` (a multiple of 8 inside the file).
    pub(super) fn word(&self, at: usize) -> &AtomicU64 {
        assert!(at.is_multiple_of(8) && at + 8 <= LEN, "lock-file word {at} is outside the {LEN}-byte table");
        // SAFETY: the map is at least LEN bytes long (the file was made so
        // before it was mapped, and the map's length is the file's), page
        // aligned, so `at` (a multiple of 8 below LEN - 8) is an aligned word
        // inside it; it lives as long as `self`; and every process uses these
        // bytes only through atomics.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(at).cast()) }
    }

    /// Word `k` of reader slot `slot`.
    pub(super) fn slot_word(&self, slot: usize, k: usize) -> &AtomicU64 {
        self.word(SLOTS_AT + slot * SLOT_LEN + 8 * k)
    }

    /// The published commit, if one was ever published. `None` also when a
    /// publisher stays mid-change for longer than a publication takes (it
    /// died there): the next writer publishes again.
    pub fn published(&self) -> Option<Meta> {
        let seq = self.word(PUBLISHED_AT);
        for tries in 0u32.. {
            let before = seq.load(Ordering::Acquire);
            if !before.is_multiple_of(2) {
                if tries > 10_000 {
                    return None;
                }
                std::thread::yield_now();
                continue;
            }
            let f: [u64; 5] = std::array::from_fn(|k| self.word(PUBLISHED_AT + 8 + 8 * k).load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == before {
                let meta = Meta { txn: f[0], catalog: f[1], freelist: f[2], page_count: f[3], free_list_pages: f[4] };
                return (before != 0).then_some(meta);
            }
        }
        None
    }

    /// The id of the published commit (`None` if none was, or a publisher
    /// died mid-change): two loads.
    pub fn published_txn(&self) -> Option<u64> {
        let txn = self.word(PUBLISHED_AT + 8).load(Ordering::SeqCst);
        let seq = self.word(PUBLISHED_AT).load(Ordering::SeqCst);
        (seq != 0 && seq.is_multiple_of(2)).then_some(txn)
    }

    /// Publishes `meta`, a durable commit whose meta page is written. Only
    /// the holder of the writer's turn calls this.
    pub fn publish(&self, meta: &Meta) {
        let seq = self.word(PUBLISHED_AT);
        let start = seq.load(Ordering::Relaxed) | 1;
        seq.store(start, Ordering::Relaxed);
        fence(Ordering::Release);
        let f = [meta.txn, meta.catalog, meta.freelist, meta.page_count, meta.free_list_pages];
        for (k, v) in f.into_iter().enumerate() {
            self.word(PUBLISHED_AT + 8 + 8 * k).store(v, Ordering::Relaxed);
        }
        seq.store(start + 1, Ordering::SeqCst);
    }

    /// Records the process holding the writer's turn (0: none).
    pub fn set_writer(&self, pid: u32) {
        self.word(WRITER_AT).store(u64::from(pid), Ordering::SeqCst);
    }

    /// The process that last said it holds the writer's turn, if any.
    pub fn writer(&self) -> Option<u32> {
        u32::try_from(self.word(WRITER_AT).load(Ordering::SeqCst)).ok().filter(|&pid| pid != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_commit_round_trips_and_a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let a = LockFile::open(&db).unwrap();
        assert_eq!((a.published(), a.published_txn(), a.writer()), (None, None, None));
        let meta = Meta { txn: 7, catalog: 9, freelist: 11, page_count: 40, free_list_pages: 2 };
        a.publish(&meta);
        a.set_writer(1234);
        let b = LockFile::open(&db).unwrap();
        assert_eq!((b.published(), b.published_txn(), b.writer()), (Some(meta), Some(7), Some(1234)));
        assert_eq!(std::fs::metadata(path_for(&db)).unwrap().len(), LEN as u64);

        let other = dir.path().join("y.db");
        std::fs::write(path_for(&other), vec![0xabu8; LEN]).unwrap();
        let err = LockFile::open(&other).err().expect("a foreign lock file is refused");
        assert!(matches!(err, Error::LockFile { .. }) && err.to_string().contains("y.db-lock"), "{err}");
        let mut bytes = vec![0u8; LEN];
        bytes[..8].copy_from_slice(b"MMAPKVLK");
        bytes[8..16].copy_from_slice(&((9u64 << 32) | 3).to_le_bytes());
        std::fs::write(path_for(&other), bytes).unwrap();
        let err = LockFile::open(&other).err().expect("another format is refused");
        assert!(err.to_string().contains("format 9 with 3 slots"), "{err}");
    }

    #[test]
    fn a_publication_left_half_done_reads_as_none_until_published_again() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::open(&dir.path().join("torn.db")).unwrap();
        let meta = Meta { txn: 3, catalog: 4, freelist: 0, page_count: 9, free_list_pages: 0 };
        lock.publish(&meta);
        // A publisher that died after marking the record as changing.
        lock.word(PUBLISHED_AT).fetch_add(1, Ordering::SeqCst);
        assert_eq!((lock.published(), lock.published_txn()), (None, None));
        let newer = Meta { txn: 5, ..meta };
        lock.publish(&newer);
        assert_eq!((lock.published(), lock.published_txn()), (Some(newer), Some(5)));
    }
}
