//! Typed tables: every standard key type round-trips and sorts as its values
//! do (checked against the values' own order), tuple keys sort element by
//! element, `&str` and `&[u8]` values are read from the mapping without a
//! copy, a table's types are recorded and checked when it is opened, and the
//! typed operations match a `BTreeMap` through a table's whole life
//! (commits, aborts, savepoints, reopens, sequences, renames, deletes).

use std::collections::BTreeMap;
use std::fmt::Debug;

use mmapkit_db::{Database, Error, Key, TableDefinition, TupleElement, Value, WriteTransaction};
use proptest::prelude::*;

#[path = "support/lifecycle.rs"]
mod lifecycle;

fn create(path: &std::path::Path) -> Database {
    // SAFETY: the test's temporary file is written by nothing else.
    unsafe { Database::create(path) }.unwrap()
}

/// The encoding of `v`, through the trait.
fn bytes<T: Value>(v: &T::SelfType<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    T::encode(v, &mut out).unwrap();
    out
}

/// Checks that `T`'s encodings of `a` and `b` decode back and sort as the
/// values do.
fn sorts_like_values<T>(a: T, b: T) -> Result<(), TestCaseError>
where
    T: Key + for<'a> Value<SelfType<'a> = T> + Ord + Debug + Clone + 'static,
{
    let (ea, eb) = (bytes::<T>(&a), bytes::<T>(&b));
    prop_assert_eq!(T::decode(&ea).unwrap(), a.clone());
    prop_assert_eq!(ea.cmp(&eb), a.cmp(&b), "{:?} vs {:?}: {:?} vs {:?}", a, b, ea, eb);
    Ok(())
}

proptest! {
    #[test]
    fn integer_keys_sort_as_numbers(a: i64, b: i64, c: u32, d: u32, e: i8, f: i8, g: i128, h: i128) {
        sorts_like_values(a, b)?;
        sorts_like_values(c, d)?;
        sorts_like_values(e, f)?;
        sorts_like_values(g, h)?;
        sorts_like_values(a as u128, b as u128)?;
        sorts_like_values(e as i16, f as i16)?;
    }

    #[test]
    fn composite_keys_sort_element_by_element(
        a: (u16, Option<i32>), b: (u16, Option<i32>),
        s in "[a-c]{0,4}", t in "[a-c]{0,4}",
        v in proptest::collection::vec(0u8..3, 0..5), w in proptest::collection::vec(0u8..3, 0..5),
        x: bool, y: bool, n: [u8; 3], m: [u8; 3],
    ) {
        sorts_like_values(a, b)?;
        sorts_like_values((s.clone(), v.clone(), x), (t.clone(), w.clone(), y))?;
        sorts_like_values((v.clone(), s.clone()), (w.clone(), t.clone()))?;
        sorts_like_values((n, Some(v.clone()), a.0), (m, Some(w.clone()), b.0))?;
        sorts_like_values((x, (s.clone(), a.0), n), (y, (t.clone(), b.0), m))?;
        sorts_like_values(Some(s), Some(t))?;
    }
}

/// `v`'s encoding written in place is its encoding, as a value and as a
/// tuple element, and a buffer one byte short is refused.
fn inline_is_encoding<T: TupleElement>(v: &T::SelfType<'_>) -> Result<(), TestCaseError> {
    let mut buf = [0u8; 64];
    let len = T::encode_inline(v, &mut buf);
    prop_assert_eq!(len.map(|n| buf[..n].to_vec()), Some(bytes::<T>(v)));
    let n = len.unwrap_or(0);
    prop_assert_eq!(T::encode_inline(v, &mut buf[..n - 1]), None);
    let mut element = Vec::new();
    T::encode_element(v, &mut element).unwrap();
    let len = T::encode_element_inline(v, &mut buf);
    prop_assert_eq!(len.map(|n| buf[..n].to_vec()), Some(element));
    Ok(())
}

proptest! {
    #[test]
    fn fixed_width_keys_encode_in_place_as_they_encode(
        a: u64, b: i32, c: bool, d: [u8; 3], e: (u16, Option<i32>), f: (bool, [u8; 2], i8), g: Option<u128>,
        h: (u8, (i16, u32), i64),
    ) {
        inline_is_encoding::<u64>(&a)?;
        inline_is_encoding::<i32>(&b)?;
        inline_is_encoding::<bool>(&c)?;
        inline_is_encoding::<[u8; 3]>(&d)?;
        inline_is_encoding::<(u16, Option<i32>)>(&e)?;
        inline_is_encoding::<(bool, [u8; 2], i8)>(&f)?;
        inline_is_encoding::<Option<u128>>(&g)?;
        inline_is_encoding::<(u8, (i16, u32), i64)>(&h)?;
        // Strings and byte strings have no width known up front.
        let mut buf = [0u8; 64];
        prop_assert_eq!(<&str>::encode_inline(&"ab", &mut buf), None);
        prop_assert_eq!(<(u8, &str)>::encode_inline(&(a as u8, "ab"), &mut buf), None);
        prop_assert_eq!(<Vec<u8>>::encode_element_inline(&vec![1], &mut buf), None);
    }
}

#[test]
fn borrowed_strings_and_bytes_in_tuples_sort_and_decode() {
    let pairs = [("", 1u32), ("a", 0), ("a", 7), ("ab", 0), ("b", 0)];
    let encoded: Vec<Vec<u8>> = pairs.iter().map(bytes::<(&str, u32)>).collect();
    assert!(encoded.windows(2).all(|w| w[0] < w[1]), "{encoded:?}");
    for (pair, e) in pairs.iter().zip(&encoded) {
        assert_eq!(<(&str, u32)>::decode(e).unwrap(), *pair);
    }
    let mut out = Vec::new();
    let why = <(&str, u32)>::encode(&("a\0b", 1), &mut out).unwrap_err();
    assert!(why.contains("zero byte"), "{why}");
    assert_eq!(<(u8, &[u8])>::decode(&[3, 0, 1, 2]).unwrap(), (3, &[0u8, 1, 2][..]));
    assert_eq!(<(u8, &[u8])>::type_name(), "(u8, bytes)");
    assert!(u64::decode(&[1, 2, 3]).unwrap_err().contains("3 bytes"));
    assert!(bool::decode(&[2]).is_err());
}

const FRUIT: TableDefinition<&str, &str> = TableDefinition::new("fruit");
const SCORES: TableDefinition<(&str, u32), i64> = TableDefinition::new("scores");

#[test]
fn typed_tables_store_read_and_order_their_types() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("typed.db"));
    let mut w = db.begin_write().unwrap();
    {
        let mut fruit = w.open_typed(FRUIT).unwrap();
        assert_eq!(fruit.insert("apple", "red").unwrap(), None);
        assert_eq!(fruit.insert("apple", "green").unwrap(), Some("red".to_string()));
        fruit.insert("banana", "yellow").unwrap();
        assert_eq!(fruit.get("apple").unwrap(), Some("green"));
    }
    {
        let mut scores = w.open_typed(SCORES).unwrap();
        for (name, round, score) in [("bo", 2, -5), ("al", 10, 3), ("al", 9, 40), ("bo", 1, i64::MIN)] {
            scores.insert((name, round), score).unwrap();
        }
        let firsts: Vec<((&str, u32), i64)> = scores.range(("al", 0)..("bo", 0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(firsts, [(("al", 9), 40), (("al", 10), 3)]);
        assert_eq!(scores.last().unwrap(), Some((("bo", 2), -5)));
        assert_eq!(scores.pop_first().unwrap(), Some((("al".to_string(), 9), 40)));
        assert_eq!(scores.remove(("bo", 1)).unwrap(), Some(i64::MIN));
        assert_eq!(scores.len(), 2);
    }
    w.commit().unwrap();
    assert!(db.check().unwrap().is_clean());

    let read = db.begin_read().unwrap();
    let fruit = read.open_typed(FRUIT).unwrap();
    let raw = read.open_table("fruit").unwrap();
    let value = fruit.get("banana").unwrap().unwrap();
    assert_eq!(value, "yellow");
    // The same bytes of the mapping as the raw read: no copy.
    assert_eq!(value.as_ptr(), raw.get(b"banana").unwrap().unwrap().as_ptr());
    let all: Vec<(&str, &str)> = fruit.iter().map(Result::unwrap).collect();
    assert_eq!(all, [("apple", "green"), ("banana", "yellow")]);
    let back: Vec<(&str, &str)> = fruit.iter().rev().map(Result::unwrap).collect();
    assert_eq!(back, [("banana", "yellow"), ("apple", "green")]);
    let scores = read.open_typed(SCORES).unwrap();
    assert_eq!(scores.first().unwrap(), Some((("al", 10), 3)));
    // Keys by a prefix of their bytes: strings by their start, tuples by their first element.
    let a: Vec<(&str, &str)> = fruit.range_prefix_bytes(b"a").map(Result::unwrap).collect();
    assert_eq!(a, [("apple", "green")]);
    let mut al = Vec::new();
    <&str as TupleElement>::encode_element(&"al", &mut al).unwrap();
    let al: Vec<((&str, u32), i64)> = scores.range_prefix_bytes(&al).map(Result::unwrap).collect();
    assert_eq!(al, [(("al", 10), 3)]);
    assert_eq!(read.list_tables().unwrap(), ["fruit", "scores"], "the type record is not listed");
}

#[test]
fn opening_a_table_with_other_types_is_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("types.db"));
    let mut w = db.begin_write().unwrap();
    w.open_typed(SCORES).unwrap().insert(("x", 1), 2).unwrap();
    w.open_table("raw").unwrap().insert(b"k", b"v").unwrap();
    w.open_table("empty").unwrap();
    let wrong: TableDefinition<(&str, u32), u64> = TableDefinition::new("scores");
    match w.open_typed(wrong) {
        Err(Error::TableTypeMismatch { table, stored, requested }) => {
            assert_eq!(
                (table.as_str(), stored.as_str(), requested.as_str()),
                ("scores", "((str, u32), i64)", "((str, u32), u64)")
            );
        }
        other => panic!("{:?}", other.err()),
    }
    // A raw table holds bytes; an empty one takes any types.
    let as_u64: TableDefinition<u64, u64> = TableDefinition::new("raw");
    assert!(matches!(w.open_typed(as_u64), Err(Error::TableTypeMismatch { stored, .. }) if stored == "(bytes, bytes)"));
    let as_bytes: TableDefinition<&[u8], Vec<u8>> = TableDefinition::new("raw");
    assert_eq!(w.open_typed(as_bytes).unwrap().get(&b"k"[..]).unwrap(), Some(b"v".to_vec()));
    let empty: TableDefinition<u8, bool> = TableDefinition::new("empty");
    w.open_typed(empty).unwrap().insert(1, true).unwrap();
    w.commit().unwrap();

    let read = db.begin_read().unwrap();
    assert!(matches!(read.open_typed(wrong), Err(Error::TableTypeMismatch { .. })));
    let empty_as_other: TableDefinition<u8, u8> = TableDefinition::new("empty");
    assert!(matches!(read.open_typed(empty_as_other), Err(Error::TableTypeMismatch { .. })));
    assert_eq!(read.open_typed(empty).unwrap().get(1).unwrap(), Some(true));
    drop(read);

    // Types follow a rename and go with a delete.
    let mut w = db.begin_write().unwrap();
    w.rename_table("scores", "renamed").unwrap();
    let renamed_wrong: TableDefinition<(&str, u32), u64> = TableDefinition::new("renamed");
    assert!(matches!(w.open_typed(renamed_wrong), Err(Error::TableTypeMismatch { .. })));
    assert!(w.delete_table("empty").unwrap());
    let recreated: TableDefinition<u8, u8> = TableDefinition::new("empty");
    w.open_typed(recreated).unwrap().insert(1, 2).unwrap();
    w.commit().unwrap();
    assert!(db.check().unwrap().is_clean());
    // A compacted copy keeps the type records.
    let copy = dir.path().join("copy.db");
    db.compact_to(&copy).unwrap();
    drop(db);
    // SAFETY: as above.
    let db = unsafe { Database::open(&copy) }.unwrap();
    let read = db.begin_read().unwrap();
    assert!(matches!(read.open_typed(renamed_wrong), Err(Error::TableTypeMismatch { .. })));
    assert_eq!(read.open_typed(recreated).unwrap().get(1).unwrap(), Some(2));
}

/// A user type as a key: a version number ordered by its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version {
    major: u16,
    minor: u16,
}

impl Value for Version {
    type SelfType<'a> = Version;
    type Owned = Version;

    fn encode(value: &Version, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(&value.major.to_be_bytes());
        out.extend_from_slice(&value.minor.to_be_bytes());
        Ok(())
    }

    fn decode<'a>(bytes: &'a [u8]) -> Result<Version, String>
    where
        Self: 'a,
    {
        let b: [u8; 4] = bytes.try_into().map_err(|_| format!("{} bytes, a version takes 4", bytes.len()))?;
        Ok(Version { major: u16::from_be_bytes([b[0], b[1]]), minor: u16::from_be_bytes([b[2], b[3]]) })
    }

    fn to_owned(value: &Version) -> Version {
        *value
    }

    fn type_name() -> String {
        "Version".to_string()
    }
}

impl Key for Version {}

#[test]
fn a_user_type_is_a_key_and_bad_stored_bytes_are_a_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("user.db"));
    let releases: TableDefinition<Version, &str> = TableDefinition::new("releases");
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_typed(releases).unwrap();
        for (major, minor, name) in [(1, 10, "c"), (1, 2, "b"), (0, 9, "a"), (2, 0, "d")] {
            t.insert(Version { major, minor }, name).unwrap();
        }
        let names: Vec<&str> = t.iter().map(|r| r.unwrap().1).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        let reserved = t.insert_reserve(Version { major: 3, minor: 0 }, 2).unwrap();
        reserved.copy_from_slice(b"ok");
        assert_eq!(t.get(Version { major: 3, minor: 0 }).unwrap(), Some("ok"));
    }
    // Bytes put in through the raw API that are no Version.
    w.open_table("releases").unwrap().insert(b"xyz", b"v").unwrap();
    let t = w.open_typed(releases).unwrap();
    assert_eq!(t.first().unwrap(), Some((Version { major: 0, minor: 9 }, "a")));
    let err = t.last().unwrap_err();
    assert!(matches!(&err, Error::Decode { table, what } if table == "releases" && what.contains("3 bytes")), "{err}");
}

#[derive(Clone, Debug)]
enum Op {
    Insert(i16, String),
    Remove(i16),
    PopFirst,
    PopLast,
    Retain(i16),
    ExtractFromIf(i16, i16),
    DeleteRange(i16, i16),
    Clear,
    Range(i16, i16),
}

fn op() -> impl Strategy<Value = Op> {
    let k = -40i16..40;
    prop_oneof![
        20 => (k.clone(), "[a-z]{0,12}").prop_map(|(k, v)| Op::Insert(k, v)),
        6 => k.clone().prop_map(Op::Remove),
        2 => Just(Op::PopFirst),
        2 => Just(Op::PopLast),
        2 => k.clone().prop_map(Op::Retain),
        2 => (k.clone(), k.clone()).prop_map(|(a, b)| Op::ExtractFromIf(a.min(b), a.max(b))),
        2 => (k.clone(), k.clone()).prop_map(|(a, b)| Op::DeleteRange(a.min(b), a.max(b))),
        1 => Just(Op::Clear),
        3 => (k.clone(), k).prop_map(|(a, b)| Op::Range(a.min(b), a.max(b))),
    ]
}

type Modelled = TableDefinition<i16, &'static str>;

/// The typed table in the lifecycle driver.
struct Typed;

impl lifecycle::Subject for Typed {
    type Model = BTreeMap<i16, String>;
    type Op = Op;

    fn apply(
        w: &mut WriteTransaction<'_>,
        name: &'static str,
        model: &mut Self::Model,
        op: &Op,
    ) -> Result<(), TestCaseError> {
        let mut t = w.open_typed(Modelled::new(name)).unwrap();
        match op {
            Op::Insert(k, v) => {
                prop_assert_eq!(t.insert(k, v.as_str()).unwrap(), model.insert(*k, v.clone()));
                prop_assert_eq!(t.get(k).unwrap(), Some(v.as_str()));
            }
            Op::Remove(k) => prop_assert_eq!(t.remove(k).unwrap(), model.remove(k)),
            Op::PopFirst => prop_assert_eq!(t.pop_first().unwrap(), model.pop_first()),
            Op::PopLast => prop_assert_eq!(t.pop_last().unwrap(), model.pop_last()),
            Op::Retain(m) => {
                let before = model.len();
                let modulus = i32::from(*m).abs() + 2;
                let keep = |k: i16, len: usize| (i32::from(k) + len as i32).rem_euclid(modulus) != 0;
                model.retain(|k, v| keep(*k, v.len()));
                let removed = t.retain(|k, v| keep(*k, v.len())).unwrap();
                prop_assert_eq!(removed, (before - model.len()) as u64);
            }
            Op::ExtractFromIf(a, b) => {
                let want: Vec<(i16, String)> =
                    model.range(a..=b).filter(|(k, _)| *k % 2 == 0).map(|(k, v)| (*k, v.clone())).collect();
                for (k, _) in &want {
                    model.remove(k);
                }
                prop_assert_eq!(t.extract_from_if(a..=b, |k, _| k % 2 == 0).unwrap(), want);
            }
            Op::DeleteRange(a, b) => {
                let gone: Vec<i16> = model.range(a..b).map(|(k, _)| *k).collect();
                for k in &gone {
                    model.remove(k);
                }
                prop_assert_eq!(t.delete_range(a..b).unwrap(), gone.len() as u64);
            }
            Op::Clear => {
                prop_assert_eq!(t.clear().unwrap(), model.len() as u64);
                model.clear();
            }
            Op::Range(a, b) => {
                let got: Vec<(i16, String)> =
                    t.range(a..b).unwrap().map(|r| r.map(|(k, v)| (k, v.to_string())).unwrap()).collect();
                let want: Vec<(i16, String)> = model.range(a..b).map(|(k, v)| (*k, v.clone())).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(t.contains_key(a).unwrap(), model.contains_key(a));
            }
        }
        prop_assert_eq!(t.len(), model.len() as u64);
        Ok(())
    }

    fn read(db: &Database, name: &'static str) -> Self::Model {
        let read = db.begin_read().unwrap();
        let t = read.open_typed(Modelled::new(name)).unwrap();
        let got: Self::Model = t.iter().map(|r| r.map(|(k, v)| (k, v.to_string())).unwrap()).collect();
        for (k, v) in &got {
            assert_eq!(t.get(k).unwrap(), Some(v.as_str()));
        }
        assert_eq!(t.len(), got.len() as u64);
        got
    }

    fn sequence(w: &mut WriteTransaction<'_>, name: &'static str) -> u64 {
        w.open_typed(Modelled::new(name)).unwrap().sequence().unwrap()
    }

    fn next_sequence(w: &mut WriteTransaction<'_>, name: &'static str) -> mmapkit_db::Result<u64> {
        w.open_typed(Modelled::new(name)).unwrap().next_sequence()
    }

    fn set_sequence(w: &mut WriteTransaction<'_>, name: &'static str, value: u64) {
        w.open_typed(Modelled::new(name)).unwrap().set_sequence(value).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn typed_operations_match_a_btreemap(steps in proptest::collection::vec(lifecycle::steps(op()), 1..80)) {
        lifecycle::run::<Typed>(steps)?;
    }
}
