//! Multimap tables against a `BTreeMap` of `BTreeSet`s: inserts, removals of
//! one value and of a key's every value, lookups, `contains` and the whole
//! table in both directions; the file checked clean after every commit.
//! Keys that are prefixes of other keys keep their own values apart.

use std::collections::{BTreeMap, BTreeSet};

use mmapkit_db::{Database, Error, MultimapTableDefinition, TableDefinition};
use proptest::prelude::*;

const SETS: MultimapTableDefinition<&str, i32> = MultimapTableDefinition::new("sets");

type Model = BTreeMap<String, BTreeSet<i32>>;

#[derive(Clone, Debug)]
enum Op {
    Insert(String, i32),
    Remove(String, i32),
    RemoveAll(String),
}

fn op() -> impl Strategy<Value = Op> {
    // Keys from a tiny alphabet: "a" is a prefix of "ab", and so on.
    let key = "[ab]{0,3}";
    let value = -4i32..4;
    prop_oneof![
        6 => (key, value.clone()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (key, value).prop_map(|(k, v)| Op::Remove(k, v)),
        1 => key.prop_map(Op::RemoveAll),
    ]
}

fn create(path: &std::path::Path) -> Database {
    // SAFETY: the test's temporary file is written by nothing else.
    unsafe { Database::create(path) }.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn multimaps_match_a_model(
        batches in proptest::collection::vec(proptest::collection::vec(op(), 1..12), 1..10),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = create(&dir.path().join("multi.db"));
        let mut model = Model::new();
        for batch in &batches {
            let mut w = db.begin_write().unwrap();
            {
                let mut t = w.open_multimap(SETS).unwrap();
                for op in batch {
                    match op {
                        Op::Insert(k, v) => {
                            let new = model.entry(k.clone()).or_default().insert(*v);
                            prop_assert_eq!(t.insert(k.as_str(), v).unwrap(), new);
                        }
                        Op::Remove(k, v) => {
                            let had = model.get_mut(k).is_some_and(|set| set.remove(v));
                            prop_assert_eq!(t.remove(k.as_str(), v).unwrap(), had);
                        }
                        Op::RemoveAll(k) => {
                            let had = model.remove(k).map_or(0, |set| set.len() as u64);
                            prop_assert_eq!(t.remove_all(k.as_str()).unwrap(), had);
                        }
                    }
                    model.retain(|_, set| !set.is_empty());
                    let pairs: u64 = model.values().map(|set| set.len() as u64).sum();
                    prop_assert_eq!(t.len(), pairs);
                }
            }
            w.commit().unwrap();
            let report = db.check().unwrap();
            prop_assert!(report.is_clean(), "{:?}", report.problems);
            let read = db.begin_read().unwrap();
            let t = read.open_multimap(SETS).unwrap();
            for key in ["", "a", "aa", "ab", "b", "ba", "bbb"] {
                let got: Vec<i32> = t.get(key).unwrap().map(Result::unwrap).collect();
                let want: Vec<i32> = model.get(key).map_or(Vec::new(), |set| set.iter().copied().collect());
                prop_assert_eq!(&got, &want, "values of {:?}", key);
                let back: Vec<i32> = t.get(key).unwrap().rev().map(Result::unwrap).collect();
                prop_assert!(back.iter().rev().eq(want.iter()));
                for v in -4..4 {
                    prop_assert_eq!(t.contains(key, v).unwrap(), want.contains(&v));
                }
            }
            let all: Vec<(String, i32)> = t.iter().map(|r| r.map(|(k, v)| (k.to_string(), v)).unwrap()).collect();
            let want: Vec<(String, i32)> =
                model.iter().flat_map(|(k, set)| set.iter().map(move |v| (k.clone(), *v))).collect();
            prop_assert_eq!(all, want);
        }
    }
}

#[test]
fn a_multimap_is_its_own_kind_of_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("kinds.db"));
    let mut w = db.begin_write().unwrap();
    w.open_multimap(SETS).unwrap().insert("k", 1).unwrap();
    let as_table: TableDefinition<&str, i32> = TableDefinition::new("sets");
    match w.open_typed(as_table) {
        Err(Error::TableTypeMismatch { stored, requested, .. }) => {
            assert_eq!((stored.as_str(), requested.as_str()), ("(str, set of i32)", "(str, i32)"));
        }
        other => panic!("{:?}", other.err()),
    }
    let other_values: MultimapTableDefinition<&str, u8> = MultimapTableDefinition::new("sets");
    assert!(matches!(w.open_multimap(other_values), Err(Error::TableTypeMismatch { .. })));
    let mut t = w.open_multimap(SETS).unwrap();
    let why = t.insert("nul\0inside", 1).unwrap_err();
    assert!(matches!(&why, Error::Encode { table, what } if table == "sets" && what.contains("zero byte")), "{why}");
}
