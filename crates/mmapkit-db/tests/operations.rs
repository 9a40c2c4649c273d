//! The table operations against a `BTreeMap` model, on the raw API: replace
//! and take with their old values, pops from both ends, retain and extract
//! (over everything or a range), range deletion, clear, in-place reserved
//! values, prefix ranges and bulk loads, mixed with commits, aborts,
//! savepoints, reopens, sequence numbers, renames and deletes (see
//! `support/lifecycle.rs`): after every step `check` finds the file clean and
//! the committed table matches the model through every read. Bulk loads and renames have their
//! own tests below.

use std::collections::BTreeMap;
use std::ops::Bound;

use mmapkit_db::{Database, Error, WriteTransaction};
use proptest::prelude::*;

#[path = "support/lifecycle.rs"]
mod lifecycle;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Span = (Bound<Vec<u8>>, Bound<Vec<u8>>);

#[derive(Clone, Debug)]
enum Op {
    Replace(Vec<u8>, Vec<u8>),
    Take(Vec<u8>),
    PopFirst,
    PopLast,
    Retain(u8),
    RetainIn(Vec<u8>, Vec<u8>, u8),
    ExtractIf(u8),
    ExtractFromIf(Vec<u8>, Vec<u8>, u8),
    DeleteRange(Vec<u8>, Vec<u8>),
    Clear,
    Reserve(Vec<u8>, Vec<u8>),
    Prefix(Vec<u8>),
    BulkLoad(Vec<(Vec<u8>, Vec<u8>)>),
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xfe), Just(0xff)], 0..5),
        1 => proptest::collection::vec(any::<u8>(), 200..1024),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..100),
        1 => proptest::collection::vec(any::<u8>(), 3000..12000),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (key(), value()).prop_map(|(k, v)| Op::Replace(k, v)),
        8 => key().prop_map(Op::Take),
        3 => Just(Op::PopFirst),
        3 => Just(Op::PopLast),
        2 => any::<u8>().prop_map(Op::Retain),
        2 => (key(), key(), any::<u8>()).prop_map(|(a, b, p)| Op::RetainIn(a, b, p)),
        2 => any::<u8>().prop_map(Op::ExtractIf),
        2 => (key(), key(), any::<u8>()).prop_map(|(a, b, p)| Op::ExtractFromIf(a, b, p)),
        2 => (key(), key()).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        1 => Just(Op::Clear),
        6 => (key(), value()).prop_map(|(k, v)| Op::Reserve(k, v)),
        3 => key().prop_map(Op::Prefix),
        1 => proptest::collection::vec((key().prop_filter("short", |k| k.len() <= 1024), value()), 0..40)
            .prop_map(Op::BulkLoad),
    ]
}

/// The choice every predicate makes: a function of the entry and `p`.
fn chosen(k: &[u8], v: &[u8], p: u8) -> bool {
    (k.len() + v.len() + usize::from(p) + k.first().map_or(0, |&b| usize::from(b))).is_multiple_of(3)
}

/// `a..b` with the two in order.
fn span(a: &[u8], b: &[u8]) -> Span {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    (Bound::Included(lo.to_vec()), Bound::Excluded(hi.to_vec()))
}

fn in_span(k: &[u8], (lo, hi): &Span) -> bool {
    let (Bound::Included(lo), Bound::Excluded(hi)) = (lo, hi) else { unreachable!() };
    k >= lo.as_slice() && k < hi.as_slice()
}

/// Removes from `model` the entries in `span` (all if `None`) that `pick`
/// chooses; returns them in key order.
fn model_remove(
    model: &mut Model,
    span: Option<&Span>,
    pick: impl Fn(&[u8], &[u8]) -> bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let gone: Vec<(Vec<u8>, Vec<u8>)> = model
        .iter()
        .filter(|(k, v)| span.is_none_or(|s| in_span(k, s)) && pick(k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, _) in &gone {
        model.remove(k);
    }
    gone
}

/// Applies `op` to the table and the model, checking what the table returns.
fn apply(t: &mut mmapkit_db::Table<'_, '_>, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Replace(k, v) if k.len() <= mmapkit_db::MAX_KEY => {
            prop_assert_eq!(t.replace(k, v).unwrap(), model.insert(k.clone(), v.clone()));
        }
        Op::Replace(k, v) => prop_assert!(matches!(t.replace(k, v), Err(Error::KeyTooLarge { .. })), "long key"),
        Op::Take(k) => prop_assert_eq!(t.take(k).unwrap(), model.remove(k)),
        Op::PopFirst => prop_assert_eq!(t.pop_first().unwrap(), model.pop_first()),
        Op::PopLast => prop_assert_eq!(t.pop_last().unwrap(), model.pop_last()),
        Op::Retain(p) => {
            let gone = model_remove(model, None, |k, v| !chosen(k, v, *p));
            prop_assert_eq!(t.retain(|k, v| chosen(k, v, *p)).unwrap(), gone.len() as u64);
        }
        Op::RetainIn(a, b, p) => {
            let s = span(a, b);
            let gone = model_remove(model, Some(&s), |k, v| !chosen(k, v, *p));
            prop_assert_eq!(t.retain_in(s.clone(), |k, v| chosen(k, v, *p)).unwrap(), gone.len() as u64);
        }
        Op::ExtractIf(p) => {
            let gone = model_remove(model, None, |k, v| chosen(k, v, *p));
            prop_assert_eq!(t.extract_if(|k, v| chosen(k, v, *p)).unwrap(), gone);
        }
        Op::ExtractFromIf(a, b, p) => {
            let s = span(a, b);
            let gone = model_remove(model, Some(&s), |k, v| chosen(k, v, *p));
            prop_assert_eq!(t.extract_from_if(s.clone(), |k, v| chosen(k, v, *p)).unwrap(), gone);
        }
        Op::DeleteRange(a, b) => {
            let s = span(a, b);
            let gone = model_remove(model, Some(&s), |_, _| true);
            prop_assert_eq!(t.delete_range(s).unwrap(), gone.len() as u64);
        }
        Op::Clear => {
            prop_assert_eq!(t.clear().unwrap(), model.len() as u64);
            model.clear();
        }
        Op::Reserve(k, v) if k.len() <= mmapkit_db::MAX_KEY => {
            let bytes = t.insert_reserve(k, v.len()).unwrap();
            prop_assert!(bytes.iter().all(|&b| b == 0), "reserved bytes are not zeroed");
            bytes.copy_from_slice(v);
            model.insert(k.clone(), v.clone());
            prop_assert_eq!(t.get(k).unwrap(), Some(&v[..]));
        }
        Op::Reserve(k, v) => {
            prop_assert!(matches!(t.insert_reserve(k, v.len()), Err(Error::KeyTooLarge { .. })), "long key")
        }
        Op::BulkLoad(_) => unreachable!("the driver loads"),
        Op::Prefix(p) => {
            let got: Vec<(Vec<u8>, Vec<u8>)> =
                t.range_prefix(p).map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect();
            let want: Vec<(Vec<u8>, Vec<u8>)> =
                model.iter().filter(|(k, _)| k.starts_with(p)).map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(got, want);
        }
    }
    prop_assert_eq!(t.len(), model.len() as u64);
    Ok(())
}

/// The table's entries through a read transaction, in both directions.
fn contents(db: &Database, name: &str) -> Model {
    let read = db.begin_read().unwrap();
    let table = read.open_table(name).unwrap();
    let all: Model = table.range(..).map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect();
    let back: Vec<Vec<u8>> = table.range(..).rev().map(|r| r.unwrap().0.to_vec()).collect();
    assert!(back.iter().rev().eq(all.keys()), "reverse scan differs");
    assert_eq!(table.len(), all.len() as u64);
    assert_eq!(table.first().unwrap().map(|(k, _)| k.to_vec()), all.keys().next().cloned());
    assert_eq!(table.last().unwrap().map(|(k, _)| k.to_vec()), all.keys().next_back().cloned());
    all
}

fn create(path: &std::path::Path) -> Database {
    // SAFETY: the test's temporary file is written by nothing else.
    unsafe { Database::create(path) }.unwrap()
}

/// The raw table in the lifecycle driver.
struct Raw;

impl lifecycle::Subject for Raw {
    type Model = Model;
    type Op = Op;

    fn apply(
        w: &mut WriteTransaction<'_>,
        name: &'static str,
        model: &mut Model,
        op: &Op,
    ) -> Result<(), TestCaseError> {
        if let Op::BulkLoad(entries) = op {
            // Into the table emptied: a bulk load needs an empty one.
            let mut t = w.open_table(name).unwrap();
            prop_assert_eq!(t.clear().unwrap(), model.len() as u64);
            drop(t);
            let sorted: Model = entries.iter().cloned().collect();
            let loaded = w.bulk_load(name, sorted.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap();
            prop_assert_eq!(loaded, sorted.len() as u64);
            *model = sorted;
            return Ok(());
        }
        apply(&mut w.open_table(name).unwrap(), model, op)
    }

    fn needs_commit(op: &Op) -> bool {
        matches!(op, Op::BulkLoad(_))
    }

    fn read(db: &Database, name: &'static str) -> Model {
        contents(db, name)
    }

    fn sequence(w: &mut WriteTransaction<'_>, name: &'static str) -> u64 {
        w.open_table(name).unwrap().sequence().unwrap()
    }

    fn next_sequence(w: &mut WriteTransaction<'_>, name: &'static str) -> mmapkit_db::Result<u64> {
        w.open_table(name).unwrap().next_sequence()
    }

    fn set_sequence(w: &mut WriteTransaction<'_>, name: &'static str, value: u64) {
        w.open_table(name).unwrap().set_sequence(value).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn operations_match_a_btreemap(steps in proptest::collection::vec(lifecycle::steps(op()), 1..80)) {
        lifecycle::run::<Raw>(steps)?;
    }
}

#[test]
fn prefix_ranges_cover_keys_ending_in_ff_and_the_empty_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("prefix.db"));
    let keys: [&[u8]; 7] = [b"", b"\x01", b"\x01\xff", b"\x01\xff\xff", b"\x02", b"\xff", b"\xff\xff\x00"];
    let mut w = db.begin_write().unwrap();
    let mut t = w.open_table("t").unwrap();
    for k in keys {
        t.insert(k, k).unwrap();
    }
    let with = |p: &[u8]| -> Vec<Vec<u8>> { t.range_prefix(p).map(|r| r.unwrap().0.to_vec()).collect() };
    for p in [&b""[..], b"\x01", b"\x01\xff", b"\xff", b"\xff\xff", b"\x03"] {
        let want: Vec<Vec<u8>> = keys.iter().filter(|k| k.starts_with(p)).map(|k| k.to_vec()).collect();
        assert_eq!(with(p), want, "prefix {p:?}");
    }
    // Ranges of slices, as callers write them.
    assert_eq!(t.delete_range(&b"\x01"[..]..&b"\x02"[..]).unwrap(), 3);
    assert_eq!(t.retain_in(&b"\xff"[..].., |k, _| k.len() == 1).unwrap(), 1);
    assert_eq!(t.len(), 3);
}

#[test]
fn a_bulk_load_takes_sorted_input_and_refuses_the_rest_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("bulk.db"));
    let keys: Vec<Vec<u8>> = (0..20_000u32).map(|i| i.to_be_bytes().to_vec()).collect();
    let big = vec![7u8; 9000];
    let mut w = db.begin_write().unwrap();
    let entries = keys.iter().enumerate().map(|(i, k)| (&k[..], if i % 1000 == 0 { &big[..] } else { &k[..] }));
    assert_eq!(w.bulk_load("loaded", entries).unwrap(), keys.len() as u64);
    w.commit().unwrap();
    assert!(db.check().unwrap().is_clean());
    {
        let read = db.begin_read().unwrap();
        let t = read.open_table("loaded").unwrap();
        assert_eq!(t.len(), keys.len() as u64);
        assert_eq!(t.get(&keys[1000]).unwrap(), Some(&big[..]));
        assert_eq!(t.get(&keys[1001]).unwrap(), Some(&keys[1001][..]));
        assert!(t.range(..).map(|r| r.unwrap().0.to_vec()).eq(keys.iter().cloned()));
    }

    let long = vec![1u8; mmapkit_db::MAX_KEY + 1];
    let cases: [(Vec<&[u8]>, u64, &str); 4] = [
        (vec![b"a", b"c", b"b"], 2, "sorts before"),
        (vec![b"a", b"b", b"b"], 2, "repeats"),
        (vec![b"a", &long], 1, "over the limit"),
        (vec![b"b", b"a"], 1, "sorts before"),
    ];
    for (input, at, why_part) in cases {
        let mut w = db.begin_write().unwrap();
        w.open_table("other").unwrap().insert(b"kept out", b"x").unwrap();
        match w.bulk_load("bad", input.iter().map(|k| (*k, &b"v"[..]))) {
            Err(Error::BulkLoad { table, index, why }) => {
                assert_eq!((table.as_str(), index), ("bad", at), "{why}");
                assert!(why.contains(why_part), "{why}");
            }
            other => panic!("{input:?}: {other:?}"),
        }
        assert!(matches!(w.open_table("other"), Err(Error::Poisoned { .. })));
        w.abort();
        assert_eq!(db.begin_read().unwrap().list_tables().unwrap(), ["loaded"]);
        assert!(db.check().unwrap().is_clean());
    }
    let mut w = db.begin_write().unwrap();
    let refused = w.bulk_load("loaded", [(&b"z"[..], &b"z"[..])]);
    assert!(matches!(refused, Err(Error::InvalidTableName { .. })), "{refused:?}");
}

#[test]
fn tables_are_renamed_with_their_entries() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("rename.db"));
    let mut w = db.begin_write().unwrap();
    for i in 0..500u32 {
        w.open_table("old").unwrap().insert(&i.to_be_bytes(), &[1; 100]).unwrap();
    }
    w.open_table("taken").unwrap();
    w.commit().unwrap();
    let mut w = db.begin_write().unwrap();
    assert!(matches!(w.rename_table("old", "taken"), Err(Error::TableExists(name)) if name == "taken"));
    assert!(matches!(w.rename_table("missing", "x"), Err(Error::TableNotFound(name)) if name == "missing"));
    w.rename_table("old", "new").unwrap();
    // A table created in this transaction renames too.
    w.open_table("fresh").unwrap().insert(b"k", b"v").unwrap();
    w.rename_table("fresh", "fresher").unwrap();
    assert_eq!(w.list_tables().unwrap(), ["fresher", "new", "taken"]);
    w.commit().unwrap();
    let read = db.begin_read().unwrap();
    assert_eq!(read.list_tables().unwrap(), ["fresher", "new", "taken"]);
    assert_eq!(read.open_table("new").unwrap().len(), 500);
    assert_eq!(read.open_table("fresher").unwrap().get(b"k").unwrap(), Some(&b"v"[..]));
    drop(read);
    assert!(db.check().unwrap().is_clean());
}

#[test]
fn bulk_removals_on_a_tree_of_many_levels_match_the_model_and_leave_it_clean() {
    // 60,000 entries with some overflow values: three levels of branches and leaves, so
    // removals span many leaves, take whole subtrees' worth of keys, and merge children.
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("many.db"));
    let big = vec![9u8; 5000];
    let mut model = Model::new();
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_table("t").unwrap();
        for i in 0..60_000u32 {
            let key = (i.wrapping_mul(2_654_435_761)).to_be_bytes().to_vec();
            let value = if i % 997 == 0 { big.clone() } else { [key.as_slice(); 20].concat() };
            t.insert(&key, &value).unwrap();
            model.insert(key, value);
        }
    }
    w.commit().unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..24 {
        let a = (next() as u32).to_be_bytes().to_vec();
        let b = (next() as u32).to_be_bytes().to_vec();
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let parity = (next() % 2) as u8;
        let mut w = db.begin_write().unwrap();
        {
            let mut t = w.open_table("t").unwrap();
            let span = || (Bound::Included(lo.clone()), Bound::Excluded(hi.clone()));
            let gone: Vec<Vec<u8>> = match round % 3 {
                0 => model.range(span()).map(|(k, _)| k.clone()).collect(),
                1 => model.range(span()).filter(|(k, _)| k[3] % 2 == parity).map(|(k, _)| k.clone()).collect(),
                _ => model.keys().filter(|k| k[2] % 4 == parity).cloned().collect(),
            };
            let removed = match round % 3 {
                0 => t.delete_range(&lo[..]..&hi[..]).unwrap(),
                1 => t.retain_in(&lo[..]..&hi[..], |k, _| k[3] % 2 != parity).unwrap(),
                _ => t.extract_if(|k, _| k[2] % 4 == parity).unwrap().len() as u64,
            };
            assert_eq!(removed, gone.len() as u64, "round {round}");
            for key in &gone {
                model.remove(key);
            }
            assert_eq!(t.len(), model.len() as u64, "round {round}");
        }
        w.commit().unwrap();
        let report = db.check().unwrap();
        assert!(report.is_clean(), "round {round}: {report:?}");
        let read = db.begin_read().unwrap();
        let t = read.open_table("t").unwrap();
        assert!(
            t.range(..).map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).eq(model.clone()),
            "round {round}: the table differs from the model"
        );
    }
    assert!(model.len() < 30_000, "the rounds removed only {} of 60,000 entries", 60_000 - model.len());
}
