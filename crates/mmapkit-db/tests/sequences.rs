//! Sequence numbers: a per-table counter that only a commit moves, kept
//! across reopens, renames and compaction, dropped with its table.

use mmapkit_db::{Database, Error, MultimapTableDefinition, TableDefinition};

const USERS: TableDefinition<u64, &str> = TableDefinition::new("users");
const TAGS: MultimapTableDefinition<&str, u32> = MultimapTableDefinition::new("tags");

fn create(path: &std::path::Path) -> Database {
    // SAFETY: the file is this test's own, in its own directory.
    unsafe { Database::create(path) }.unwrap()
}

fn open(path: &std::path::Path) -> Database {
    // SAFETY: the file is this test's own, in its own directory.
    unsafe { Database::open(path) }.unwrap()
}

fn read_sequence(db: &Database, name: &str) -> u64 {
    db.begin_read().unwrap().open_table(name).unwrap().sequence().unwrap()
}

#[test]
fn next_sequence_counts_up_from_one_and_survives_commits_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seq.db");
    let db = create(&path);
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_table("t").unwrap();
        assert_eq!(t.sequence().unwrap(), 0);
        let got: Vec<u64> = (0..5).map(|_| t.next_sequence().unwrap()).collect();
        assert_eq!(got, [1, 2, 3, 4, 5]);
        assert_eq!(t.sequence().unwrap(), 5);
        // Another table's counter is its own.
        let mut other = w.open_table("u").unwrap();
        assert_eq!(other.next_sequence().unwrap(), 1);
    }
    w.commit().unwrap();
    assert_eq!(read_sequence(&db, "t"), 5);
    assert_eq!(read_sequence(&db, "u"), 1);
    // Not a table of its own, and not an entry of the table.
    assert_eq!(db.begin_read().unwrap().list_tables().unwrap(), ["t", "u"]);
    assert_eq!(db.begin_read().unwrap().open_table("t").unwrap().len(), 0);
    drop(db);

    let db = open(&path);
    assert_eq!(read_sequence(&db, "t"), 5);
    let mut w = db.begin_write().unwrap();
    assert_eq!(w.open_table("t").unwrap().next_sequence().unwrap(), 6);
    w.commit().unwrap();
    assert_eq!(read_sequence(&db, "t"), 6);
    assert!(db.check().unwrap().is_clean());
}

#[test]
fn an_abort_leaves_the_sequence_and_a_reader_sees_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("abort.db"));
    let mut w = db.begin_write().unwrap();
    w.open_table("t").unwrap().set_sequence(10).unwrap();
    w.commit().unwrap();

    let mut w = db.begin_write().unwrap();
    assert_eq!(w.open_table("t").unwrap().next_sequence().unwrap(), 11);
    w.abort();
    assert_eq!(read_sequence(&db, "t"), 10);

    let before = db.begin_read().unwrap();
    let mut w = db.begin_write().unwrap();
    assert_eq!(w.open_table("t").unwrap().next_sequence().unwrap(), 11);
    w.commit().unwrap();
    assert_eq!(before.open_table("t").unwrap().sequence().unwrap(), 10);
    assert_eq!(read_sequence(&db, "t"), 11);
}

#[test]
fn set_sequence_goes_down_too_and_stops_at_the_top() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("set.db"));
    let mut w = db.begin_write().unwrap();
    {
        let mut t = w.open_table("t").unwrap();
        t.set_sequence(100).unwrap();
        t.set_sequence(7).unwrap();
        assert_eq!(t.next_sequence().unwrap(), 8);
        t.set_sequence(0).unwrap();
        assert_eq!(t.sequence().unwrap(), 0);
        t.set_sequence(u64::MAX - 1).unwrap();
        assert_eq!(t.next_sequence().unwrap(), u64::MAX);
        match t.next_sequence() {
            Err(Error::SequenceOverflow { table }) => assert_eq!(table, "t"),
            other => panic!("expected SequenceOverflow, got {other:?}"),
        }
        // The failed call changed nothing, and the transaction goes on.
        assert_eq!(t.sequence().unwrap(), u64::MAX);
        t.insert(b"k", b"v").unwrap();
    }
    w.commit().unwrap();
    assert_eq!(read_sequence(&db, "t"), u64::MAX);
    assert!(db.check().unwrap().is_clean());
}

#[test]
fn a_savepoint_restores_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("save.db"));
    let mut w = db.begin_write().unwrap();
    w.open_table("t").unwrap().set_sequence(3).unwrap();
    let save = w.savepoint().unwrap();
    assert_eq!(w.open_table("t").unwrap().next_sequence().unwrap(), 4);
    // A table created after the savepoint, with a sequence of its own.
    w.open_table("new").unwrap().next_sequence().unwrap();
    w.restore_savepoint(&save).unwrap();
    assert_eq!(w.open_table("t").unwrap().sequence().unwrap(), 3);
    assert_eq!(w.open_table("t").unwrap().next_sequence().unwrap(), 4);
    w.commit().unwrap();
    assert_eq!(read_sequence(&db, "t"), 4);
    assert!(matches!(db.begin_read().unwrap().open_table("new"), Err(Error::TableNotFound(_))));
    assert!(db.check().unwrap().is_clean());
}

#[test]
fn a_rename_keeps_the_sequence_and_a_delete_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("rename.db"));
    let mut w = db.begin_write().unwrap();
    w.open_table("a").unwrap().set_sequence(41).unwrap();
    w.open_table("b").unwrap().set_sequence(9).unwrap();
    w.commit().unwrap();

    let mut w = db.begin_write().unwrap();
    w.rename_table("a", "c").unwrap();
    assert_eq!(w.open_table("c").unwrap().next_sequence().unwrap(), 42);
    assert!(w.delete_table("b").unwrap());
    // A new table of a deleted one's name starts again at 0; so does one
    // of a renamed one's old name.
    assert_eq!(w.open_table("b").unwrap().sequence().unwrap(), 0);
    assert_eq!(w.open_table("a").unwrap().sequence().unwrap(), 0);
    w.commit().unwrap();
    assert_eq!(read_sequence(&db, "c"), 42);
    assert_eq!(read_sequence(&db, "a"), 0);
    assert_eq!(read_sequence(&db, "b"), 0);
    assert!(db.check().unwrap().is_clean());
}

#[test]
fn a_compacted_copy_keeps_the_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("src.db"));
    let mut w = db.begin_write().unwrap();
    for (i, name) in ["x", "y", "z"].iter().enumerate() {
        let mut t = w.open_table(name).unwrap();
        t.insert(b"k", b"v").unwrap();
        t.set_sequence(1000 * (i as u64 + 1)).unwrap();
    }
    w.commit().unwrap();
    let copy_path = dir.path().join("copy.db");
    db.compact_to(&copy_path).unwrap();
    let copy = open(&copy_path);
    for (i, name) in ["x", "y", "z"].iter().enumerate() {
        assert_eq!(read_sequence(&copy, name), 1000 * (i as u64 + 1));
    }
    assert!(copy.check().unwrap().is_clean());
}

#[test]
fn typed_and_multimap_tables_have_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir.path().join("typed.db"));
    let mut w = db.begin_write().unwrap();
    {
        let mut users = w.open_typed(USERS).unwrap();
        for name in ["ada", "brian", "grace"] {
            let id = users.next_sequence().unwrap();
            users.insert(id, name).unwrap();
        }
        assert_eq!(users.sequence().unwrap(), 3);
        let mut tags = w.open_multimap(TAGS).unwrap();
        tags.set_sequence(5).unwrap();
        assert_eq!(tags.next_sequence().unwrap(), 6);
    }
    w.commit().unwrap();
    let r = db.begin_read().unwrap();
    let users = r.open_typed(USERS).unwrap();
    assert_eq!(users.sequence().unwrap(), 3);
    assert_eq!(users.iter().map(|e| e.unwrap()).collect::<Vec<_>>(), [(1, "ada"), (2, "brian"), (3, "grace")]);
    assert_eq!(r.open_multimap(TAGS).unwrap().sequence().unwrap(), 6);
    // The raw view of the same table shares the number.
    assert_eq!(r.open_table("users").unwrap().sequence().unwrap(), 3);
}
