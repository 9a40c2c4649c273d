//! One-key removals (`remove`, `take`) on trees of several levels, many in one
//! transaction and mixed with inserts, checked against a `BTreeMap` and with
//! the file's `check` clean after every commit and after a reopen.

use std::collections::BTreeMap;

use mmapkit_db::Database;

fn create(path: &std::path::Path) -> Database {
    // SAFETY: the test's temporary file is written by nothing else.
    unsafe { Database::create(path) }.expect("create")
}

/// A xorshift stream from `start`.
fn stream(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
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

#[test]
fn removals_one_key_at_a_time_on_a_deep_tree_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("removals.db");
    let db = create(&path);
    let mut next = stream(0x2545_f491_4f6c_dd1d);
    // Keys with long shared prefixes make long separators and small branches,
    // so 40,000 entries make four levels; some values go to overflow runs.
    let key = |n: u64| {
        let mut k = vec![(n % 251) as u8; 120];
        k.extend_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        k
    };
    let value =
        |n: u64| if n.is_multiple_of(409) { vec![n as u8; 3000] } else { n.to_le_bytes().repeat(1 + (n % 5) as usize) };
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
    assert_matches(&db, &model, "after the load");

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
