//! Fuzzes opening, checking, reading and writing a damaged database file.
//!
//! The first byte of the input picks the mode:
//! - even: the rest of the input is the whole file;
//! - odd: the rest is a script of edits to a valid base database (built once
//!   per process: tables, a few hundred keys, overflow values, free pages),
//!   which reaches much deeper than random files, since most of the file stays
//!   well formed. One edit can recompute a page's checksum, so that damage gets
//!   past the checksums and meets the structural checks.
//!
//! Whatever the bytes, every operation must return a result or an error:
//! never panic, crash or hang.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mmapkit_db::{Database, Durability, PAGE_SIZE};

struct Base {
    _dir: tempfile::TempDir,
    /// Where each input's file is written.
    path: PathBuf,
    bytes: Vec<u8>,
    keys: Vec<(&'static str, Vec<u8>)>,
}

fn temp_dir() -> tempfile::TempDir {
    // tmpfs when there is one: each input writes and syncs a file.
    tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("a temporary directory")
}

/// Opens a file that this process alone uses: the fuzz input, written while no handle is open.
fn open(path: &Path) -> mmapkit_db::Result<Database> {
    // SAFETY: the file is private to this process and changed only while closed.
    unsafe { Database::open(path) }
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = temp_dir();
        let build = dir.path().join("base.db");
        let mut keys = Vec::new();
        {
            // SAFETY: a new private file.
            let db = unsafe { Database::create(&build) }.expect("create the base database");
            let mut txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table("small").unwrap();
                for i in 0..300u32 {
                    let k = format!("k{i:04}").into_bytes();
                    t.insert(&k, &vec![i as u8; 20 + (i as usize * 7) % 200]).unwrap();
                    keys.push(("small", k));
                }
            }
            {
                let mut t = txn.open_table("large").unwrap();
                for i in 0..6u32 {
                    let k = format!("big{i}").into_bytes();
                    t.insert(&k, &vec![i as u8; 5000 + i as usize * 3000]).unwrap();
                    keys.push(("large", k));
                }
                let long = vec![b'L'; 900];
                t.insert(&long, b"a long key").unwrap();
                keys.push(("large", long));
            }
            txn.open_table("empty").unwrap();
            txn.commit().unwrap();
            let mut txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table("small").unwrap();
                for i in (0..300u32).step_by(4) {
                    t.remove(format!("k{i:04}").as_bytes()).unwrap();
                }
                let mut t = txn.open_table("large").unwrap();
                t.remove(b"big2").unwrap();
                t.insert(b"big3", &[9u8; 12_000]).unwrap();
            }
            txn.commit().unwrap();
            let mut txn = db.begin_write().unwrap();
            txn.open_table("small").unwrap().insert(b"k9999", b"last").unwrap();
            txn.commit().unwrap();
            keys.push(("small", b"k9999".to_vec()));
        }
        let bytes = std::fs::read(&build).unwrap();
        let path = dir.path().join("fuzzed.db");
        Base { _dir: dir, path, bytes, keys }
    })
}

/// Reads the input a little at a time.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([self.byte()?, self.byte()?, self.byte()?, self.byte()?]))
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// Applies the edit script to a copy of the base file.
fn edit(bytes: &mut Vec<u8>, script: &mut Input<'_>) {
    while let Some(op) = script.byte() {
        if bytes.is_empty() {
            return;
        }
        let len = bytes.len();
        match op % 6 {
            0 => {
                let Some(at) = script.u32() else { return };
                let bit = op >> 5;
                bytes[at as usize % len] ^= 1 << bit;
            }
            1 => {
                let (Some(at), Some(v)) = (script.u32(), script.byte()) else { return };
                bytes[at as usize % len] = v;
            }
            2 => {
                let (Some(at), Some(n)) = (script.u32(), script.byte()) else { return };
                let at = at as usize % len;
                let src = script.take(n as usize);
                let n = src.len().min(len - at);
                bytes[at..at + n].copy_from_slice(&src[..n]);
            }
            3 => {
                let Some(to) = script.u32() else { return };
                bytes.truncate(to as usize % (len + 1));
            }
            4 => {
                let Some(p) = script.byte() else { return };
                let pages = len / PAGE_SIZE;
                if pages > 0 {
                    let p = p as usize % pages;
                    bytes[p * PAGE_SIZE..(p + 1) * PAGE_SIZE].fill(0);
                }
            }
            _ => {
                // Recompute the checksum of a page (of a whole run for an overflow page).
                let Some(p) = script.byte() else { return };
                let pages = len / PAGE_SIZE;
                if pages > 2 {
                    let p = 2 + p as usize % (pages - 2);
                    let page = &bytes[p * PAGE_SIZE..(p + 1) * PAGE_SIZE];
                    let run = if page[8] == 3 { u64::from_le_bytes(page[24..32].try_into().unwrap()) } else { 1 };
                    let end = (p as u64).saturating_add(run.max(1)).min(pages as u64) as usize;
                    let unit = &mut bytes[p * PAGE_SIZE..end * PAGE_SIZE];
                    let sum = xxhash_rust::xxh3::xxh3_64(&unit[8..]);
                    unit[..8].copy_from_slice(&sum.to_le_bytes());
                    relist(bytes, p as u64, sum);
                }
            }
        }
    }
}

/// Where a meta record lists page `p` as written by its commit, with the
/// checksum opening verifies, updates that checksum and the record's own, so
/// that a resealed page is taken as written rather than as a torn commit.
fn relist(bytes: &mut [u8], p: u64, sum: u64) {
    const META_LEN: usize = 72;
    const ENTRY: usize = 16;
    for slot in 0..2 {
        let meta = slot * PAGE_SIZE;
        let Some(record) = bytes.get(meta..meta + PAGE_SIZE) else { return };
        let listed = u32::from_le_bytes(record[56..60].try_into().unwrap()) as usize;
        if META_LEN + ENTRY * listed > PAGE_SIZE {
            continue;
        }
        let Some(i) = (0..listed).find(|i| record[META_LEN + ENTRY * i..][..8] == p.to_le_bytes()) else {
            continue;
        };
        let at = meta + META_LEN + ENTRY * i + 8;
        bytes[at..at + 8].copy_from_slice(&sum.to_le_bytes());
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&bytes[meta..meta + 64]);
        h.update(&bytes[meta + META_LEN..meta + META_LEN + ENTRY * listed]);
        let record_sum = h.digest();
        bytes[meta + 64..meta + 72].copy_from_slice(&record_sum.to_le_bytes());
    }
}

/// Everything a program might do with the file. Results are ignored: only
/// panics, crashes and hangs are failures; errors must at least display.
fn exercise(db: &Database, keys: &[(&'static str, Vec<u8>)], extra: &[u8]) {
    let _ = db.check().map(|report| report.problems.iter().map(|p| p.to_string().len()).sum::<usize>());
    let _ = db.stats();
    let Ok(read) = db.begin_read() else { return };
    let mut names = vec!["small".to_string(), "large".to_string(), "empty".to_string()];
    if let Ok(listed) = read.list_tables() {
        names.extend(listed);
    }
    for name in &names {
        let table = match read.open_table(name) {
            Ok(t) => t,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                continue;
            }
        };
        for (_, key) in keys.iter().filter(|(t, _)| t == name) {
            let _ = table.get(key);
        }
        let _ = table.get(extra);
        let _ = (table.first(), table.last(), table.len());
        // A damaged tree must not make these endless (the fuzzer's timeout judges).
        let _ = table.range(..).count();
        let _ = table.range(..).rev().count();
        let mut both = table.range(extra..);
        while let Some(item) = both.next() {
            if item.is_err() || both.next_back().is_none() {
                break;
            }
        }
    }
    drop(read);
    if let Ok(mut txn) = db.begin_write() {
        txn.set_durability(if extra.first().is_some_and(|b| b & 1 == 1) {
            Durability::None
        } else {
            Durability::Immediate
        });
        let _ = (|| -> mmapkit_db::Result<()> {
            let mut t = txn.open_table("small")?;
            t.remove(b"k0001")?;
            t.remove(b"k0002")?;
            t.insert(b"fuzz-new", b"value")?;
            t.insert(extra, &[1u8; 6000])?;
            t.insert(b"k0003", b"replaced")?;
            drop(t);
            let mut t = txn.open_table("large")?;
            t.remove(b"big1")?;
            t.insert(b"big4", b"now small")?;
            drop(t);
            txn.delete_table("empty")?;
            Ok(())
        })();
        let _ = txn.commit();
    }
    let _ = db.check();
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let mut input = Input(data);
    let Some(mode) = input.byte() else { return };
    let extra: Vec<u8> = data.iter().rev().take(16).copied().collect();
    let bytes = if mode % 2 == 0 {
        input.0.to_vec()
    } else {
        let mut bytes = base.bytes.clone();
        edit(&mut bytes, &mut input);
        bytes
    };
    std::fs::write(&base.path, &bytes).unwrap();
    if let Ok(db) = open(&base.path) {
        exercise(&db, &base.keys, &extra);
        drop(db);
        // What the writes left behind opens and checks too.
        if let Ok(db) = open(&base.path) {
            exercise(&db, &base.keys, &extra);
        }
    }
});
