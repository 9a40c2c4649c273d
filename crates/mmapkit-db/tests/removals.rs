//! One-key removals (`remove`, `take`) on trees of several levels, many in one
//! transaction and mixed with inserts, checked against a `BTreeMap` and with
//! the file's `check` clean after every commit and after a reopen.

mod support;

use support::stream;

use std::collections::BTreeMap;
use std::ops::Bound;

use mmapkit_db::Database;

fn create(path: &std::path::Path) -> Database {
    // SAFETY: the test's temporary file is written by nothing else.
    unsafe { Database::create(path) }.expect("create")
}

fn assert_matches(db: &Database, model: &BTreeMap<Vec<u8>, Vec<u8>>, when: &str) {
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{when}: {report:?}");
    let read = db.begin_read().unwrap();
    let t = read.open_table("t").unwrap();
    assert_eq!(t.len(), model.len() as u64, "{when}: len");
    assert!(
        t.range(..).map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).eq(model.clone()),
        "{when}: the table differs from the model"
    );
}

/// Key `n`: keys with long shared prefixes make long separators and small
/// branches, so 40,000 entries make four levels.
fn key(n: u64) -> Vec<u8> {
    let mut k = vec![(n % 251) as u8; 120];
    k.extend_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    k
}

/// Value `n`: some go to overflow runs.
fn value(n: u64) -> Vec<u8> {
    if n.is_multiple_of(409) { vec![n as u8; 3000] } else { n.to_le_bytes().repeat(1 + (n % 5) as usize) }
}

/// Loads keys `0..40_000` into table `t` of `db`, a tree of four levels or more; returns the model.
fn load_deep_tree(db: &Database) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_table("t").unwrap();
        for n in 0..40_000 {
            t.insert(&key(n), &value(n)).unwrap();
            model.insert(key(n), value(n));
        }
    }
    w.commit().unwrap();
    assert!(db.stats().unwrap().tables[0].depth >= 4, "the tree is only {:?} deep", db.stats().unwrap().tables);
    assert_matches(db, &model, "after the load");
    model
}

/// `retain_in` over ranges of every kind on a deep tree: what it keeps, what
/// it hands to the closure (every entry in the range, in key order, with its
/// value), what it counts as removed.
#[test]
fn retain_in_ranges_on_a_deep_tree_matches_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("retain.db"));
    let mut model = load_deep_tree(&db);
    let mut next = stream(0x0123_4567_89ab_cdef);
    for round in 0..12 {
        let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
        let (a, b) = (&keys[next() as usize % keys.len()], &keys[next() as usize % keys.len()]);
        let (lo, hi) = if a <= b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
        let modulus = 2 + next() % 3;
        let keep = |k: &[u8]| !(k[k.len() - 1] as u64).is_multiple_of(modulus);
        let span: (Bound<Vec<u8>>, Bound<Vec<u8>>) = match round % 4 {
            0 => (Bound::Included(lo), Bound::Excluded(hi)),
            1 => (Bound::Excluded(lo), Bound::Included(hi)),
            2 => (Bound::Unbounded, Bound::Included(hi)),
            _ => (Bound::Unbounded, Bound::Unbounded),
        };
        let inside: Vec<(Vec<u8>, Vec<u8>)> = model.range(span.clone()).map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut w = db.begin_write().unwrap();
        {
            let mut t = w.open_table("t").unwrap();
            let mut seen = Vec::new();
            let removed = t
                .retain_in::<Vec<u8>>(span.clone(), |k, v| {
                    seen.push((k.to_vec(), v.to_vec()));
                    keep(k)
                })
                .unwrap();
            assert_eq!(seen, inside, "round {round}: what the closure saw");
            let gone: Vec<&Vec<u8>> = inside.iter().map(|(k, _)| k).filter(|k| !keep(k)).collect();
            assert_eq!(removed, gone.len() as u64, "round {round}");
            for k in gone {
                model.remove(k);
            }
            assert_eq!(t.len(), model.len() as u64, "round {round}");
        }
        w.commit().unwrap();
        assert_matches(&db, &model, &format!("retain round {round}"));
    }
    assert!(model.len() < 20_000, "the rounds left {} of 40,000 entries", model.len());
}

#[test]
fn removals_one_key_at_a_time_on_a_deep_tree_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("removals.db");
    let db = create(&path);
    let mut next = stream(0x2545_f491_4f6c_dd1d);
    let mut model = load_deep_tree(&db);

    // Rounds of removals: each removes most of what is left, one key per call
    // (`take` in every seventh), with misses and inserts between them.
    for round in 0..4 {
        let mut w = db.begin_write().unwrap();
        {
            let mut t = w.open_table("t").unwrap();
            let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
            for (i, k) in keys.iter().enumerate() {
                if next().is_multiple_of(5) {
                    continue;
                }
                if i % 7 == 0 {
                    assert_eq!(t.take(k).unwrap(), model.remove(k), "round {round}: take");
                } else {
                    assert_eq!(t.remove(k).unwrap(), model.remove(k).is_some(), "round {round}: remove");
                }
                // A key never inserted.
                assert!(!t.remove(&key(3_000_000 + next() % 1_000_000)).unwrap(), "round {round}: a miss");
                if next().is_multiple_of(16) {
                    let n = next() % 2_000_000;
                    t.insert(&key(n), &value(n)).unwrap();
                    model.insert(key(n), value(n));
                }
            }
            assert_eq!(t.len(), model.len() as u64, "round {round}");
            for k in model.keys().step_by(97) {
                assert_eq!(t.get(k).unwrap(), model.get(k).map(Vec::as_slice), "round {round}: get");
            }
        }
        w.commit().unwrap();
        assert_matches(&db, &model, &format!("round {round}"));
    }

    // The rest, to an empty tree.
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_table("t").unwrap();
        for k in std::mem::take(&mut model).keys() {
            assert!(t.remove(k).unwrap());
        }
        assert!(t.is_empty());
        assert_eq!(t.first().unwrap(), None);
    }
    w.commit().unwrap();
    assert_matches(&db, &model, "emptied");
    drop(db);
    let db = create(&path);
    assert_matches(&db, &model, "reopened");
}

/// Removes every other key of 30,000 inserted in a random order, one
/// `remove` per key (`one_by_one`) or with one `retain`, and returns what is
/// left: the fill of the pages in use, and the file's check.
fn fill_after_removing_half(one_by_one: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("fill.db"));
    let mut next = stream(0x9e37_79b9_7f4a_7c15);
    let keys: Vec<[u8; 16]> =
        (0..30_000).map(|_| (u128::from(next()) << 64 | u128::from(next())).to_be_bytes()).collect();
    let value = [7u8; 100];
    let mut model = BTreeMap::new();
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_table("t").unwrap();
        for k in &keys {
            t.insert(k, &value).unwrap();
            model.insert(k.to_vec(), value.to_vec());
        }
    }
    w.commit().unwrap();
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_table("t").unwrap();
        if one_by_one {
            for k in keys.iter().step_by(2) {
                assert!(t.remove(k).unwrap());
            }
        } else {
            let gone: std::collections::HashSet<&[u8]> = keys.iter().step_by(2).map(|k| &k[..]).collect();
            assert_eq!(t.retain(|k, _| !gone.contains(k)).unwrap(), gone.len() as u64);
        }
    }
    w.commit().unwrap();
    for k in keys.iter().step_by(2) {
        model.remove(&k[..]);
    }
    assert_matches(&db, &model, if one_by_one { "removed one by one" } else { "retained" });
    // Every entry takes its bytes and a slot (7 + 16 + 100 + 6); every page
    // in use (branches and the catalog too) counts against the fill.
    let report = db.check().unwrap();
    let room = (mmapkit_db::PAGE_SIZE - 32) as f64;
    (model.len() * 129) as f64 / (report.pages_in_use as f64 * room)
}

/// Removals spread over the whole tree merge a node below half a page with a
/// neighbour whenever the two fit in seven eighths of one: half the entries
/// gone at random, the pages in use are still more than half full (merging
/// only nodes under a quarter of a page left them less than half full).
#[test]
fn removing_half_the_keys_at_random_leaves_the_pages_more_than_half_full() {
    for one_by_one in [true, false] {
        let fill = fill_after_removing_half(one_by_one);
        assert!(fill > 0.5, "one by one: {one_by_one}: the pages in use are {:.0}% full", fill * 100.0);
    }
}

/// A typed `retain` or `extract_if` whose entries do not all decode stops at
/// the error before removing anything, and the transaction goes on.
#[test]
fn a_typed_removal_that_cannot_decode_an_entry_removes_nothing() {
    const TYPED: mmapkit_db::TableDefinition<u64, u64> = mmapkit_db::TableDefinition::new("typed");
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("typed.db"));
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_typed(TYPED).unwrap();
        for i in 0..5_000u64 {
            t.insert(i, i * 2).unwrap();
        }
    }
    // A three-byte key, which no `u64` decodes from, among the others.
    w.open_table("typed").unwrap().insert(&[0, 0, 0], b"bad").unwrap();
    let everything = |w: &mut mmapkit_db::WriteTransaction<'_>| -> Vec<(Vec<u8>, Vec<u8>)> {
        let t = w.open_table("typed").unwrap();
        t.range(..).map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    };
    let before = everything(&mut w);
    {
        let mut t = w.open_typed(TYPED).unwrap();
        assert!(matches!(t.retain(|k, _| k % 2 == 0), Err(mmapkit_db::Error::Decode { .. })));
        assert!(matches!(t.extract_if(|k, _| k % 3 == 0), Err(mmapkit_db::Error::Decode { .. })));
        assert_eq!(t.len(), 5_001);
    }
    assert_eq!(everything(&mut w), before);
    // The transaction goes on: without the bad key, the retain removes what it should.
    assert!(w.open_table("typed").unwrap().remove(&[0, 0, 0]).unwrap());
    {
        let mut t = w.open_typed(TYPED).unwrap();
        assert_eq!(t.retain(|k, _| k % 2 == 0).unwrap(), 2_500);
        assert_eq!(t.len(), 2_500);
    }
    w.commit().unwrap();
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// `retain` builds each leaf that loses entries afresh and merges a leaf into
/// the one on its left in that page: several `retain`s in one transaction,
/// between inserts and one-key removals (which leave dead bytes in the leaves
/// they edit), on a deep tree with overflow values, match the model after
/// each, and the file is clean after the commit and a reopen.
#[test]
fn retains_between_inserts_and_removals_in_one_transaction_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("retains.db");
    let db = create(&path);
    let mut model = load_deep_tree(&db);
    let mut next = stream(0x51af_d7ed_558c_cd15);
    for round in 0..4u64 {
        let mut w = db.begin_write().unwrap();
        {
            let mut t = w.open_table("t").unwrap();
            for _ in 0..3_000 {
                let n = next() % 60_000;
                if next().is_multiple_of(3) {
                    let had = model.remove(&key(n)).is_some();
                    assert_eq!(t.remove(&key(n)).unwrap(), had, "round {round}: remove {n}");
                } else {
                    t.insert(&key(n), &value(n + round)).unwrap();
                    model.insert(key(n), value(n + round));
                }
            }
            let modulus = 2 + round;
            let mut seen = 0u64;
            let keep = |k: &[u8], v: &[u8]| {
                seen += 1;
                (u64::from(k[k.len() - 1]) + v.len() as u64).is_multiple_of(modulus)
            };
            let before = model.len() as u64;
            model.retain(|k, v| (u64::from(k[k.len() - 1]) + v.len() as u64).is_multiple_of(modulus));
            assert_eq!(t.retain(keep).unwrap(), before - model.len() as u64, "round {round}: removed");
            assert_eq!(seen, before, "round {round}: the closure sees every entry once");
            assert_eq!(t.len(), model.len() as u64, "round {round}: len");
            assert!(
                t.range(..).map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).eq(model.clone()),
                "round {round}: the table differs from the model before the commit"
            );
            for n in 0..2_000 {
                let n = n * 29 + round;
                t.insert(&key(n), &value(n)).unwrap();
                model.insert(key(n), value(n));
            }
        }
        w.commit().unwrap();
        assert_matches(&db, &model, &format!("retain round {round}"));
    }
    drop(db);
    // SAFETY: the test's temporary file is written by nothing else.
    let db = unsafe { Database::open(&path) }.unwrap();
    assert_matches(&db, &model, "reopened");
}
