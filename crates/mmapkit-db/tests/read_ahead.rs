//! The store's map reads ahead only when asked to: by default every part of
//! it, the parts growth maps later included, carries `MADV_RANDOM`.
#![cfg(target_os = "linux")]

use std::path::Path;

use mmapkit_db::Database;

/// For each mapping of `path` in /proc/self/smaps, whether its `VmFlags` hold
/// `rr` (random-read advice).
fn random_flags(path: &Path) -> Vec<bool> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = path.to_str().unwrap();
    let mut inside = false;
    let mut found = Vec::new();
    for line in smaps.lines() {
        let is_header = line
            .split_once(' ')
            .and_then(|(range, _)| range.split_once('-'))
            .is_some_and(|(a, b)| usize::from_str_radix(a, 16).is_ok() && usize::from_str_radix(b, 16).is_ok());
        if is_header {
            inside = line.ends_with(name);
        } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
            found.push(flags.split_whitespace().any(|f| f == "rr"));
        }
    }
    found
}

fn fill(db: &Database) {
    let mut txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table("t").unwrap();
        for i in 0u32..20_000 {
            table.insert(&i.to_be_bytes(), &[7u8; 200]).unwrap();
        }
    }
    txn.commit().unwrap();
}

#[test]
fn the_map_is_advised_random_by_default_and_after_growth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.db");
    // SAFETY: no other process writes this file.
    let db = unsafe { Database::create(&path) }.unwrap();
    let before = random_flags(&path);
    fill(&db); // grows the file from a few pages to megabytes
    let after = random_flags(&path);
    assert!(!before.is_empty() && !after.is_empty(), "no mapping of {} found", path.display());
    assert!(before.iter().chain(&after).all(|&rr| rr), "before {before:?}, after growth {after:?}");
}

#[test]
fn read_ahead_true_leaves_the_kernels_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ahead.db");
    // SAFETY: no other process writes this file.
    let db = unsafe { Database::builder().read_ahead(true).create(&path) }.unwrap();
    fill(&db);
    let flags = random_flags(&path);
    assert!(!flags.is_empty() && flags.iter().all(|&rr| !rr), "{flags:?}");
}
