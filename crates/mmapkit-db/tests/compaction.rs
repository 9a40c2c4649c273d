//! `compact_to` writes its new file's pages a MiB at a time: a copy of
//! several tables, many MiB long, with overflow runs of every length falling
//! across those MiB, reads back as a `BTreeMap` model of the source, with
//! `check` clean, after a reopen and after more writes to the copy.

mod support;

use support::stream;

use std::collections::BTreeMap;

use mmapkit_db::{Database, PAGE_SIZE};

type Model = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

fn create(path: &std::path::Path) -> Database {
    // SAFETY: the test's temporary file is written by nothing else.
    unsafe { Database::create(path) }.expect("create")
}

fn open(path: &std::path::Path) -> Database {
    // SAFETY: the test's temporary file is written by nothing else.
    unsafe { Database::open(path) }.expect("open")
}

fn assert_matches(db: &Database, model: &Model, when: &str) {
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{when}: {report:?}");
    let read = db.begin_read().unwrap();
    for (name, entries) in model {
        let t = read.open_table(name).unwrap();
        assert_eq!(t.len(), entries.len() as u64, "{when}: len of {name}");
        assert!(
            t.range(..).map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).eq(entries.clone()),
            "{when}: table {name} differs from the model"
        );
    }
}

/// Fills tables `small`, `runs` and `empty` with random entries (the `runs`
/// values from 0 to 20,000 bytes, most in overflow runs), then removes a
/// third of them, so the source's pages are scattered.
fn load(db: &Database) -> Model {
    let mut next = stream(0x2545_f491_4f6c_dd1d);
    let mut model = Model::new();
    let mut w = db.begin_write().unwrap();
    for (name, count, longest) in [("small", 60_000u64, 200u64), ("runs", 3_000, 20_000), ("empty", 0, 0)] {
        let entries = model.entry(name.to_string()).or_default();
        let mut t = w.open_table(name).unwrap();
        for _ in 0..count {
            let key = next().to_be_bytes().repeat(1 + (next() % 3) as usize);
            let value = vec![next() as u8; (next() % (longest + 1)) as usize];
            t.insert(&key, &value).unwrap();
            entries.insert(key, value);
        }
        let doomed: Vec<Vec<u8>> = entries.keys().filter(|_| next().is_multiple_of(3)).cloned().collect();
        for key in doomed {
            assert!(t.remove(&key).unwrap());
            entries.remove(&key);
        }
    }
    w.commit().unwrap();
    model
}

#[test]
fn a_compacted_copy_written_a_mib_at_a_time_holds_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("source.db"));
    let mut model = load(&db);
    assert_matches(&db, &model, "the source");

    let path = dir.path().join("copy.db");
    db.compact_to(&path).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 8 << 20, "the copy is {len} bytes: too short to span several writes");
    let copy = open(&path);
    let stats = copy.stats().unwrap();
    assert_eq!(stats.free_pages, 0, "a compacted copy has no free pages");
    assert!(stats.page_count * PAGE_SIZE as u64 <= len, "{} pages in a file of {len} bytes", stats.page_count);
    assert_matches(&copy, &model, "the copy");
    drop(copy);

    // The copy reopens and takes more writes like any database.
    let copy = open(&path);
    assert_matches(&copy, &model, "the copy reopened");
    let mut next = stream(77);
    let mut w = copy.begin_write().unwrap();
    {
        let mut t = w.open_table("runs").unwrap();
        let entries = model.get_mut("runs").unwrap();
        let keys: Vec<Vec<u8>> = entries.keys().filter(|_| next().is_multiple_of(2)).cloned().collect();
        for key in keys {
            assert!(t.remove(&key).unwrap());
            entries.remove(&key);
        }
        for _ in 0..500 {
            let key = next().to_le_bytes().to_vec();
            let value = vec![next() as u8; (next() % 9_000) as usize];
            t.insert(&key, &value).unwrap();
            entries.insert(key, value);
        }
    }
    w.commit().unwrap();
    assert_matches(&copy, &model, "the copy after more writes");
    drop(copy);
    assert_matches(&open(&path), &model, "the copy after more writes, reopened");
}

#[test]
fn a_compacted_copy_of_an_empty_database_and_of_one_page_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("source.db"));
    let mut model = Model::new();
    let path = dir.path().join("empty-copy.db");
    db.compact_to(&path).unwrap();
    assert!(open(&path).check().unwrap().is_clean());

    let mut w = db.begin_write().unwrap();
    w.open_table("one").unwrap().insert(b"k", b"v").unwrap();
    w.commit().unwrap();
    model.entry("one".to_string()).or_default().insert(b"k".to_vec(), b"v".to_vec());
    let path = dir.path().join("one-copy.db");
    db.compact_to(&path).unwrap();
    assert_matches(&open(&path), &model, "a copy of one entry");
}
