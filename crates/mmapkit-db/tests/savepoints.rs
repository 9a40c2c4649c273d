//! Savepoints in a write transaction, against a model: inserts and removals
//! (of entries committed before and made since, small and overflowing),
//! savepoints, restores of any live savepoint (and refusals of dropped
//! ones), then a commit or an abort; after each, the file is checked clean
//! (every page used or free exactly once: what a restore gives back to the
//! allocator is right) and holds the model.

use std::collections::BTreeMap;

use mmapkit_db::{Database, Error, Savepoint};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, usize),
    Remove(u8),
    Save,
    Restore(usize),
    Table(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (any::<u8>(), prop_oneof![3 => 0usize..200, 1 => 3000usize..9000]).prop_map(|(k, n)| Op::Insert(k, n)),
        6 => any::<u8>().prop_map(Op::Remove),
        2 => Just(Op::Save),
        2 => (0usize..8).prop_map(Op::Restore),
        1 => any::<u8>().prop_map(Op::Table),
    ]
}

fn create(path: &std::path::Path) -> Database {
    // SAFETY: the test's temporary file is written by nothing else.
    unsafe { Database::create(path) }.unwrap()
}

/// Every table's entries.
fn contents(db: &Database) -> BTreeMap<String, Model> {
    let read = db.begin_read().unwrap();
    let names = read.list_tables().unwrap();
    names
        .into_iter()
        .map(|name| {
            let t = read.open_table(&name).unwrap();
            let entries = t.range(..).map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect();
            (name, entries)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn restoring_a_savepoint_undoes_what_came_after(
        rounds in proptest::collection::vec((proptest::collection::vec(op(), 1..40), any::<bool>()), 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = create(&dir.path().join("save.db"));
        let mut committed: BTreeMap<String, Model> = BTreeMap::new();
        for (ops, commit) in rounds {
            let mut w = db.begin_write().unwrap();
            let mut model = committed.clone();
            // (savepoint, the model then, whether it can still be restored)
            let mut saved: Vec<(Savepoint, BTreeMap<String, Model>, bool)> = Vec::new();
            let mut table = "t".to_string();
            for op in ops {
                match op {
                    Op::Insert(k, n) => {
                        let value = vec![k ^ n as u8; n];
                        w.open_table(&table).unwrap().insert(&[k], &value).unwrap();
                        model.entry(table.clone()).or_default().insert(vec![k], value);
                    }
                    Op::Remove(k) => {
                        let had = w.open_table(&table).unwrap().remove(&[k]).unwrap();
                        model.entry(table.clone()).or_default();
                        prop_assert_eq!(had, model.get_mut(&table).unwrap().remove(&vec![k]).is_some());
                    }
                    Op::Save => {
                        let point = w.savepoint().unwrap();
                        saved.push((point, model.clone(), true));
                    }
                    Op::Restore(i) if i < saved.len() => {
                        let live = saved[i].2;
                        match w.restore_savepoint(&saved[i].0) {
                            Ok(()) => {
                                prop_assert!(live, "a dropped savepoint was restored");
                                model = saved[i].1.clone();
                                for later in &mut saved[i + 1..] {
                                    later.2 = false;
                                }
                            }
                            Err(Error::Savepoint { .. }) => prop_assert!(!live, "a live savepoint was refused"),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    Op::Restore(_) => {}
                    Op::Table(n) => table = format!("t{}", n % 3),
                }
            }
            for (name, entries) in &model {
                let t = w.open_table(name).unwrap();
                let got: Model = t.range(..).map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect();
                prop_assert_eq!(&got, entries, "table {} before the commit", name);
                prop_assert_eq!(t.len(), entries.len() as u64);
            }
            drop(saved);
            if commit {
                w.commit().unwrap();
                committed = model;
            } else {
                w.abort();
            }
            let report = db.check().unwrap();
            prop_assert!(report.is_clean(), "{:?}", report.problems);
            prop_assert_eq!(contents(&db), committed.clone());
        }
    }
}

#[test]
fn a_savepoint_restores_only_into_its_own_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("own.db"));
    let mut w = db.begin_write().unwrap();
    w.open_table("t").unwrap().insert(b"a", b"1").unwrap();
    let point = w.savepoint().unwrap();
    w.commit().unwrap();
    let mut w = db.begin_write().unwrap();
    let refused = w.restore_savepoint(&point);
    assert!(matches!(refused, Err(Error::Savepoint { why }) if why.contains("another")), "{refused:?}");
}

#[test]
fn a_savepoint_survives_tables_created_renamed_and_deleted_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("tables.db"));
    let mut w = db.begin_write().unwrap();
    for i in 0..300u32 {
        w.open_table("kept").unwrap().insert(&i.to_be_bytes(), &[3; 50]).unwrap();
    }
    w.commit().unwrap();
    let mut w = db.begin_write().unwrap();
    let point = w.savepoint().unwrap();
    w.open_table("new").unwrap().insert(b"x", b"y").unwrap();
    w.rename_table("kept", "renamed").unwrap();
    assert!(w.delete_table("new").unwrap());
    w.open_table("renamed").unwrap().insert(b"z", &[9; 5000]).unwrap();
    w.restore_savepoint(&point).unwrap();
    assert_eq!(w.list_tables().unwrap(), ["kept"]);
    assert_eq!(w.open_table("kept").unwrap().len(), 300);
    w.commit().unwrap();
    assert!(db.check().unwrap().is_clean());
    assert_eq!(db.begin_read().unwrap().list_tables().unwrap(), ["kept"]);
}

#[test]
fn a_savepoint_taken_before_a_failed_bulk_load_lets_the_transaction_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("bulk.db"));
    let keys: Vec<[u8; 4]> = (0..30_000u32).map(u32::to_be_bytes).collect();
    let mut w = db.begin_write().unwrap();
    w.open_table("before").unwrap().insert(b"k", b"v").unwrap();
    let point = w.savepoint().unwrap();
    // Enough entries that pages were written ahead before the bad one.
    let bad = keys.iter().map(|k| (&k[..], &b"value"[..])).chain([(&b"\x00"[..], &b"late"[..])]);
    assert!(matches!(w.bulk_load("loaded", bad), Err(Error::BulkLoad { index: 30_000, .. })));
    assert!(matches!(w.open_table("before"), Err(Error::Poisoned { .. })));
    w.restore_savepoint(&point).unwrap();
    assert_eq!(w.bulk_load("loaded", keys.iter().map(|k| (&k[..], &k[..]))).unwrap(), 30_000);
    w.commit().unwrap();
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    let read = db.begin_read().unwrap();
    assert_eq!(read.list_tables().unwrap(), ["before", "loaded"]);
    let loaded = read.open_table("loaded").unwrap();
    assert_eq!(loaded.len(), 30_000);
    assert!(loaded.range(..).map(|r| r.unwrap().0.to_vec()).eq(keys.iter().map(|k| k.to_vec())));
}
