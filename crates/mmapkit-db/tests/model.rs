//! Model-based property test: random inserts, removes, range reads, commits,
//! aborts and reopens, checked against a `BTreeMap` after every step, and the
//! file checked clean at every reopen.

use std::collections::BTreeMap;
use std::ops::Bound;

use mmapkit_db::{Database, Durability};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Range(Vec<u8>, Vec<u8>, bool),
    Commit(bool),
    Abort,
    Reopen,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    // A small alphabet so keys collide (replace, remove hits) and long keys appear.
    prop_oneof![
        8 => proptest::collection::vec(0u8..4, 1..6),
        1 => proptest::collection::vec(any::<u8>(), 300..1024),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => proptest::collection::vec(any::<u8>(), 1000..3000),
        1 => proptest::collection::vec(any::<u8>(), 5000..20000),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (key(), value()).prop_map(|(k, v)| Op::Insert(k, v)),
        12 => key().prop_map(Op::Remove),
        4 => (key(), key(), any::<bool>()).prop_map(|(a, b, rev)| Op::Range(a, b, rev)),
        4 => any::<bool>().prop_map(Op::Commit),
        1 => Just(Op::Abort),
        1 => Just(Op::Reopen),
    ]
}

fn open(path: &std::path::Path) -> Database {
    // SAFETY: the test's temporary file is written by nothing else.
    unsafe { Database::create(path) }.expect("open")
}

fn contents(db: &Database) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let read = db.begin_read().unwrap();
    let table = match read.open_table("t") {
        Ok(t) => t,
        Err(mmapkit_db::Error::TableNotFound(_)) => return BTreeMap::new(),
        Err(e) => panic!("{e}"),
    };
    let all: BTreeMap<_, _> = table.range(..).map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect();
    assert_eq!(table.len(), all.len() as u64);
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn matches_a_btreemap(ops in proptest::collection::vec(op(), 1..400)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.db");
        let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut model = committed.clone();
        let mut ops = ops.into_iter().peekable();
        // Each pass of this loop is one opening of the database; `Reopen` ends it.
        while ops.peek().is_some() {
            let db = open(&path);
            let report = db.check().unwrap();
            prop_assert!(report.is_clean(), "check after open: {:?}", report.problems);
            prop_assert_eq!(contents(&db), committed.clone());
            let mut txn = None;
            for op in ops.by_ref() {
                match op {
                    Op::Insert(k, v) => {
                        let t = txn.get_or_insert_with(|| db.begin_write().unwrap());
                        t.open_table("t").unwrap().insert(&k, &v).unwrap();
                        model.insert(k, v);
                    }
                    Op::Remove(k) => {
                        let t = txn.get_or_insert_with(|| db.begin_write().unwrap());
                        let had = t.open_table("t").unwrap().remove(&k).unwrap();
                        prop_assert_eq!(had, model.remove(&k).is_some());
                    }
                    Op::Range(a, b, rev) => {
                        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                        let w = txn.get_or_insert_with(|| db.begin_write().unwrap());
                        let t = w.open_table("t").unwrap();
                        let bounds = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
                        let iter = t.range(bounds);
                        let got: Vec<(Vec<u8>, Vec<u8>)> = if rev {
                            iter.rev().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect()
                        } else {
                            iter.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect()
                        };
                        let mut want: Vec<(Vec<u8>, Vec<u8>)> =
                            model.range::<[u8], _>(bounds).map(|(k, v)| (k.clone(), v.clone())).collect();
                        if rev {
                            want.reverse();
                        }
                        prop_assert_eq!(got, want);
                        prop_assert_eq!(t.len(), model.len() as u64);
                        let first = t.first().unwrap().map(|(k, _)| k.to_vec());
                        prop_assert_eq!(first, model.keys().next().cloned());
                        let last = t.last().unwrap().map(|(k, _)| k.to_vec());
                        prop_assert_eq!(last, model.keys().next_back().cloned());
                    }
                    Op::Commit(durable) => {
                        let mut t = txn.take().unwrap_or_else(|| db.begin_write().unwrap());
                        if !durable {
                            t.set_durability(Durability::None);
                        }
                        t.commit().unwrap();
                        committed = model.clone();
                        prop_assert_eq!(contents(&db), committed.clone());
                    }
                    Op::Abort => {
                        drop(txn.take());
                        model = committed.clone();
                        prop_assert_eq!(contents(&db), committed.clone());
                    }
                    Op::Reopen => {
                        drop(txn.take());
                        model = committed.clone();
                        break;
                    }
                }
            }
            if let Some(t) = txn.take() {
                t.commit().unwrap();
                committed = model.clone();
            }
            let report = db.check().unwrap();
            prop_assert!(report.is_clean(), "check before close: {:?}", report.problems);
        }
        let db = open(&path);
        prop_assert_eq!(contents(&db), committed);
    }
}
