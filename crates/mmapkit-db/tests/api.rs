//! The public API end to end: tables, limits, large values, durability,
//! handles taking turns to write, and files that are not databases.

mod support;

use mmapkit_db::{Database, Durability, Error, MAX_KEY};
use support::bytes;

fn create(path: &std::path::Path) -> mmapkit_db::Result<Database> {
    // SAFETY: the tests' temporary files are written by nothing else.
    unsafe { Database::create(path) }
}

fn open(path: &std::path::Path) -> mmapkit_db::Result<Database> {
    // SAFETY: as above.
    unsafe { Database::open(path) }
}

#[test]
fn tables_are_created_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("t.db")).unwrap();
    let mut w = db.begin_write().unwrap();
    w.open_table("b").unwrap().insert(b"x", b"1").unwrap();
    w.open_table("a").unwrap().insert(b"y", b"2").unwrap();
    w.open_table("empty").unwrap();
    assert_eq!(w.list_tables().unwrap(), ["a", "b", "empty"]);
    w.commit().unwrap();

    let r = db.begin_read().unwrap();
    assert_eq!(r.list_tables().unwrap(), ["a", "b", "empty"]);
    assert!(r.open_table("empty").unwrap().is_empty());
    assert!(matches!(r.open_table("nope"), Err(Error::TableNotFound(name)) if name == "nope"));
    drop(r);

    let mut w = db.begin_write().unwrap();
    assert!(w.delete_table("b").unwrap());
    assert!(!w.delete_table("b").unwrap());
    w.commit().unwrap();
    assert_eq!(db.begin_read().unwrap().list_tables().unwrap(), ["a", "empty"]);
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);

    let mut w = db.begin_write().unwrap();
    let long = "n".repeat(256);
    assert!(matches!(w.open_table(""), Err(Error::InvalidTableName { .. })));
    assert!(matches!(w.open_table(&long), Err(Error::InvalidTableName { .. })));
}

#[test]
fn keys_and_values_at_and_over_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("limits.db")).unwrap();
    let big = bytes(1, 64 << 20);
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_table("t").unwrap();
        for i in 0..50u64 {
            // Keys of up to MAX_KEY bytes, values from empty to several pages.
            let key = [&i.to_be_bytes()[..], &bytes(i, MAX_KEY - 8)].concat();
            t.insert(&key, &bytes(i + 100, (i as usize * 997) % 20_000)).unwrap();
        }
        t.insert(b"big", &big).unwrap();
        let err = t.insert(&vec![7u8; MAX_KEY + 1], b"v").unwrap_err();
        assert!(err.to_string().contains(&format!("{} bytes", MAX_KEY + 1)), "{err}");
        // A rejected insert leaves the transaction usable.
        t.insert(b"after", b"ok").unwrap();
    }
    w.commit().unwrap();
    drop(db);

    let db = open(&dir.path().join("limits.db")).unwrap();
    let r = db.begin_read().unwrap();
    let t = r.open_table("t").unwrap();
    let got = t.get(b"big").unwrap().unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == &big[..], "the 64 MiB value reads back intact");
    for i in 0..50u64 {
        let key = [&i.to_be_bytes()[..], &bytes(i, MAX_KEY - 8)].concat();
        assert_eq!(t.get(&key).unwrap().unwrap(), &bytes(i + 100, (i as usize * 997) % 20_000)[..]);
    }
    assert_eq!(t.len(), 52);
    drop(r);
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);

    // Compaction carries long keys and overflow values over intact.
    let copy = dir.path().join("limits-copy.db");
    db.compact_to(&copy).unwrap();
    let copy = open(&copy).unwrap();
    assert!(copy.check().unwrap().is_clean());
    let r = copy.begin_read().unwrap();
    let t = r.open_table("t").unwrap();
    assert!(t.get(b"big").unwrap() == Some(&big[..]));
    for i in 0..50u64 {
        let key = [&i.to_be_bytes()[..], &bytes(i, MAX_KEY - 8)].concat();
        assert_eq!(t.get(&key).unwrap().unwrap(), &bytes(i + 100, (i as usize * 997) % 20_000)[..]);
    }
    assert_eq!(t.len(), 52);
}

#[test]
fn many_keys_survive_removal_of_half_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.db");
    let db = create(&path).unwrap();
    // Values big enough that the compacted copy (about 13 MiB) is written
    // ahead of its commit in more than one batch.
    const VALUE: usize = 400;
    let key = |i: u64| bytes(i, 24);
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_table("t").unwrap();
        for i in 0..60_000 {
            t.insert(&key(i), &bytes(i, VALUE)).unwrap();
        }
    }
    w.commit().unwrap();
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_table("t").unwrap();
        for i in (0..60_000).step_by(2) {
            assert!(t.remove(&key(i)).unwrap());
        }
        assert_eq!(t.len(), 30_000);
    }
    w.commit().unwrap();
    let before = db.stats().unwrap();
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.entries, 30_000);
    assert!(report.pages_free > 0, "removing half the keys frees pages");
    drop(db);

    let db = open(&path).unwrap();
    assert_eq!(db.stats().unwrap().page_count, before.page_count);
    let r = db.begin_read().unwrap();
    let t = r.open_table("t").unwrap();
    for i in 0..60_000 {
        let want = if i % 2 == 0 { None } else { Some(bytes(i, VALUE)) };
        assert_eq!(t.get(&key(i)).unwrap().map(<[u8]>::to_vec), want, "key {i}");
    }
    let keys: Vec<Vec<u8>> = t.range(..).map(|e| e.unwrap().0.to_vec()).collect();
    assert_eq!(keys.len(), 30_000);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    let back: Vec<Vec<u8>> = t.range(..).rev().map(|e| e.unwrap().0.to_vec()).collect();
    assert!(back.iter().rev().eq(keys.iter()));

    // The compacted copy holds the same entries in fewer pages.
    drop(r);
    let copy = dir.path().join("copy.db");
    db.compact_to(&copy).unwrap();
    assert!(matches!(db.compact_to(&copy), Err(Error::Io { .. })), "an existing destination is refused");
    drop(db);
    let copy = open(&copy).unwrap();
    let stats = copy.stats().unwrap();
    assert_eq!(stats.tables[0].entries, 30_000);
    let r = copy.begin_read().unwrap();
    let t = r.open_table("t").unwrap();
    let copied: Vec<Vec<u8>> = t.range(..).map(|e| e.unwrap().0.to_vec()).collect();
    assert_eq!(copied, keys, "the copy holds the same keys in order");
    for i in (1..60_000).step_by(2) {
        assert_eq!(t.get(&key(i)).unwrap(), Some(&bytes(i, VALUE)[..]), "key {i} in the copy");
    }
    drop(r);
    assert!(stats.page_count < before.page_count, "{} pages compacted vs {}", stats.page_count, before.page_count);
    assert!(copy.check().unwrap().is_clean());
}

#[test]
fn non_durable_commits_are_visible_at_once_and_durable_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nd.db");
    let db = create(&path).unwrap();
    for i in 0..20u32 {
        let mut w = db.begin_write().unwrap();
        w.set_durability(Durability::None);
        w.open_table("t").unwrap().insert(&i.to_be_bytes(), b"v").unwrap();
        w.commit().unwrap();
        assert_eq!(db.begin_read().unwrap().open_table("t").unwrap().len(), u64::from(i) + 1);
    }
    drop(db);
    let db = open(&path).unwrap();
    assert_eq!(db.begin_read().unwrap().open_table("t").unwrap().len(), 20);
    assert!(db.check().unwrap().is_clean());
}

#[test]
fn aborted_transactions_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("abort.db")).unwrap();
    let mut w = db.begin_write().unwrap();
    w.open_table("t").unwrap().insert(b"kept", b"1").unwrap();
    w.commit().unwrap();
    let pages = db.stats().unwrap().page_count;
    for _ in 0..5 {
        let mut w = db.begin_write().unwrap();
        let mut t = w.open_table("t").unwrap();
        for i in 0..2000u32 {
            t.insert(&i.to_be_bytes(), &[1u8; 100]).unwrap();
        }
        drop(t);
        w.abort();
    }
    let r = db.begin_read().unwrap();
    assert_eq!(r.open_table("t").unwrap().len(), 1);
    assert_eq!(db.stats().unwrap().page_count, pages, "aborted pages are not kept");
    drop(r);
    assert!(db.check().unwrap().is_clean());
}

fn impatient(path: &std::path::Path, timeout: std::time::Duration) -> Database {
    // SAFETY: as above.
    unsafe { Database::builder().write_lock_timeout(Some(timeout)).open(path) }.unwrap()
}

fn put(db: &Database, key: &[u8], value: &[u8], durability: Durability) {
    let mut w = db.begin_write().unwrap();
    w.set_durability(durability);
    w.open_table("t").unwrap().insert(key, value).unwrap();
    w.commit().unwrap();
}

fn get(db: &Database, key: &[u8]) -> Option<Vec<u8>> {
    db.begin_read().unwrap().open_table("t").unwrap().get(key).unwrap().map(<[u8]>::to_vec)
}

#[test]
fn handles_take_turns_to_write_and_a_waiter_is_told_whose_turn_it_is() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turns.db");
    let a = create(&path).unwrap();
    put(&a, b"k", b"a1", Durability::Immediate);
    let b = impatient(&path, Duration::ZERO);
    assert_eq!(get(&b, b"k").as_deref(), Some(&b"a1"[..]), "a second handle opens and reads");

    let w = a.begin_write().unwrap();
    for timeout in [Duration::ZERO, Duration::from_millis(30)] {
        let c = impatient(&path, timeout);
        let err = c.begin_write().err().expect("a's write transaction holds the turn");
        assert!(matches!(&err, Error::Locked { pid: Some(pid), .. } if *pid == std::process::id()), "{err}");
        assert!(err.to_string().contains(&std::process::id().to_string()), "{err}");
    }
    drop(w);
    put(&b, b"k", b"b1", Durability::Immediate);
    assert_eq!(get(&a, b"k").as_deref(), Some(&b"b1"[..]), "a sees b's commit");

    // A commit that is not durable keeps the turn until one is.
    put(&a, b"k", b"a2", Durability::None);
    assert!(matches!(b.begin_write(), Err(Error::Locked { .. })), "a's commit is not durable yet");
    assert_eq!(get(&b, b"k").as_deref(), Some(&b"b1"[..]), "b sees only durable commits of a's");
    assert_eq!(get(&a, b"k").as_deref(), Some(&b"a2"[..]), "a sees its own");
    put(&a, b"j", b"a3", Durability::Immediate);
    assert_eq!((get(&b, b"k").as_deref(), get(&b, b"j").as_deref()), (Some(&b"a2"[..]), Some(&b"a3"[..])));

    // Each writes in turn from the other's state: nothing is lost, no page is used twice.
    for i in 0..50u32 {
        let (db, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        put(db, &i.to_be_bytes(), &[i as u8; 700], Durability::Immediate);
        assert_eq!(get(other, &i.to_be_bytes()), Some(vec![i as u8; 700]));
    }
    assert!(a.check().unwrap().is_clean() && b.check().unwrap().is_clean());
    assert_eq!(b.begin_read().unwrap().open_table("t").unwrap().len(), 52);
    drop((a, b));
    assert!(open(&path).unwrap().check().unwrap().is_clean());
}

#[test]
fn read_only_handles_read_while_a_writer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    let db = create(&path).unwrap();
    put(&db, b"k", b"v", Durability::Immediate);
    // SAFETY: the test's file is written only by this test's handles.
    let (a, b) = unsafe {
        (
            Database::builder().read_only(true).open(&path).unwrap(),
            Database::builder().read_only(true).open(&path).unwrap(),
        )
    };
    assert_eq!(get(&a, b"k").as_deref(), Some(&b"v"[..]));
    let held = b.begin_read().unwrap();
    let old = held.open_table("t").unwrap();
    for i in 0..300u32 {
        put(&db, b"k", format!("v{i}").as_bytes(), Durability::Immediate);
        put(&db, &i.to_be_bytes(), &[7u8; 3000], Durability::Immediate);
    }
    assert_eq!(old.get(b"k").unwrap(), Some(&b"v"[..]), "a read-only handle's snapshot stays as it was");
    assert_eq!(old.len(), 1);
    assert_eq!(get(&a, b"k").as_deref(), Some(&b"v299"[..]), "and new ones see the writer's commits");
    assert!(a.check().unwrap().is_clean(), "check works beside the writer");
    assert_eq!(a.stats().unwrap().txn, db.stats().unwrap().txn);
    assert!(matches!(a.begin_write(), Err(Error::ReadOnly { .. })));
    drop(old);
    drop(held);
    drop((a, b));
    // SAFETY: as above.
    let err = unsafe { Database::builder().read_only(true).create(dir.path().join("new.db")) }.unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err}");
}

#[test]
fn files_that_are_not_databases_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("empty", Vec::new(), "empty"),
        ("short", vec![1u8; 100], "shorter than"),
        ("random", bytes(3, 100_000), "wrong magic"),
    ];
    for (name, contents, reason) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &contents).unwrap();
        let err = open(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::NotADatabase { .. }), "{name}: {msg}");
        assert!(msg.contains(reason) && msg.contains(name), "{name}: {msg}");
    }
    let err = open(&dir.path().join("missing.db")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("missing.db"), "{err}");
}

#[test]
fn readers_keep_their_snapshot_while_the_writer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("snap.db")).unwrap();
    let mut w = db.begin_write().unwrap();
    w.open_table("t").unwrap().insert(b"k", b"old").unwrap();
    w.commit().unwrap();
    let r = db.begin_read().unwrap();
    let t = r.open_table("t").unwrap();
    let old = t.get(b"k").unwrap().unwrap();
    for i in 0..200u32 {
        let mut w = db.begin_write().unwrap();
        let mut t = w.open_table("t").unwrap();
        t.insert(b"k", format!("new {i}").as_bytes()).unwrap();
        t.insert(&i.to_be_bytes(), &[9u8; 3000]).unwrap();
        drop(t);
        w.commit().unwrap();
    }
    assert_eq!(old, b"old", "the slice still shows the snapshot's value");
    assert_eq!(t.len(), 1);
    assert_eq!(db.begin_read().unwrap().open_table("t").unwrap().get(b"k").unwrap(), Some(&b"new 199"[..]));
    drop(r);
    assert!(db.check().unwrap().is_clean());
}

/// A range owns copies of its bounds: the caller's buffers can change or go
/// away while it runs, in both directions and in a write transaction too.
#[test]
fn a_range_keeps_its_own_copies_of_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("bounds.db")).unwrap();
    let mut w = db.begin_write().unwrap();
    let keys: Vec<Vec<u8>> = (0..2_000u32).map(|i| format!("k{i:05}").into_bytes()).collect();
    {
        let mut t = w.open_table("t").unwrap();
        for k in &keys {
            t.insert(k, k).unwrap();
        }
        let (mut start, mut end) = (b"k00100".to_vec(), b"k01500".to_vec());
        let mut range = t.range(&start[..]..&end[..]);
        let first = range.next().unwrap().unwrap().0.to_vec();
        start.clear();
        start.extend_from_slice(b"k01900");
        end.fill(b'0');
        drop(end);
        let rest: Vec<Vec<u8>> = range.map(|item| item.unwrap().0.to_vec()).collect();
        assert_eq!([vec![first], rest].concat(), keys[100..1500]);
        drop(start);
    }
    w.commit().unwrap();
    let r = db.begin_read().unwrap();
    let t = r.open_table("t").unwrap();
    let mut start = b"k00010".to_vec();
    let mut end = b"k00020".to_vec();
    let range = t.range(&start[..]..=&end[..]);
    start.truncate(0);
    end.truncate(0);
    let got: Vec<Vec<u8>> = range.rev().map(|item| item.unwrap().0.to_vec()).collect();
    let want: Vec<Vec<u8>> = keys[10..=20].iter().rev().cloned().collect();
    assert_eq!(got, want);
}
