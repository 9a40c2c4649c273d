//! Multimap tables against a `BTreeMap` of `BTreeSet`s: inserts, removals of
//! one value and of a key's every value, lookups, `contains` and the whole
//! table in both directions, through a table's whole life (commits, aborts,
//! savepoints, reopens, sequences, renames, deletes; see `support/lifecycle.rs`).
//! Keys that are prefixes of other keys keep their own values apart.

use std::collections::{BTreeMap, BTreeSet};

use mmapkit_db::{Database, Error, MultimapTableDefinition, TableDefinition, WriteTransaction};
use proptest::prelude::*;

#[path = "support/lifecycle.rs"]
mod lifecycle;

const SETS: MultimapTableDefinition<&str, i32> = MultimapTableDefinition::new("sets");
type Sets = MultimapTableDefinition<&'static str, i32>;

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

/// The multimap table in the lifecycle driver.
struct Multi;

impl lifecycle::Subject for Multi {
    type Model = Model;
    type Op = Op;

    fn apply(
        w: &mut WriteTransaction<'_>,
        name: &'static str,
        model: &mut Model,
        op: &Op,
    ) -> Result<(), TestCaseError> {
        let mut t = w.open_multimap(Sets::new(name)).unwrap();
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
        Ok(())
    }

    fn read(db: &Database, name: &'static str) -> Model {
        let read = db.begin_read().unwrap();
        let t = read.open_multimap(Sets::new(name)).unwrap();
        let mut got = Model::new();
        for item in t.iter() {
            let (k, v) = item.unwrap();
            got.entry(k.to_string()).or_default().insert(v);
        }
        for key in ["", "a", "aa", "ab", "b", "ba", "bbb"] {
            let values: Vec<i32> = t.get(key).unwrap().map(Result::unwrap).collect();
            let want: Vec<i32> = got.get(key).map_or(Vec::new(), |set| set.iter().copied().collect());
            assert_eq!(values, want, "values of {key:?}");
            let back: Vec<i32> = t.get(key).unwrap().rev().map(Result::unwrap).collect();
            assert!(back.iter().rev().eq(want.iter()));
            for v in -4..4 {
                assert_eq!(t.contains(key, v).unwrap(), want.contains(&v));
            }
        }
        got
    }

    fn sequence(w: &mut WriteTransaction<'_>, name: &'static str) -> u64 {
        w.open_multimap(Sets::new(name)).unwrap().sequence().unwrap()
    }

    fn next_sequence(w: &mut WriteTransaction<'_>, name: &'static str) -> mmapkit_db::Result<u64> {
        w.open_multimap(Sets::new(name)).unwrap().next_sequence()
    }

    fn set_sequence(w: &mut WriteTransaction<'_>, name: &'static str, value: u64) {
        w.open_multimap(Sets::new(name)).unwrap().set_sequence(value).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn multimaps_match_a_model(steps in proptest::collection::vec(lifecycle::steps(op()), 1..80)) {
        lifecycle::run::<Multi>(steps)?;
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
