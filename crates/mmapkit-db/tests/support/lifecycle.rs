//! A table's life against a model, for the property tests of each kind of
//! table: its own operations mixed with commits (durable or not), aborts,
//! savepoints and restores, closing and reopening the database, sequence
//! numbers, renames and deletes. After every step the committed table
//! (entries, sequence number, name) is the committed model, and the file is
//! checked clean after every step that leaves no write transaction open (a
//! check waits for the writer): every commit, abort and reopen. Inside a
//! transaction, every operation's result is checked against the model by
//! the kind's own `apply`.

use std::fmt::Debug;

use mmapkit_db::{Database, Durability, Error, Savepoint, WriteTransaction};
use proptest::prelude::*;

/// The two names the table goes by: a rename moves it to the other.
pub const NAMES: [&str; 2] = ["t", "u"];

/// One kind of table (raw, typed, multimap) under test.
pub trait Subject {
    /// What the table holds.
    type Model: Clone + PartialEq + Debug + Default;
    /// One of the kind's own operations.
    type Op: Clone + Debug;

    /// Applies `op` to table `name` in `w` and to `model`, checking what the table returns.
    fn apply(
        w: &mut WriteTransaction<'_>,
        name: &'static str,
        model: &mut Self::Model,
        op: &Self::Op,
    ) -> Result<(), TestCaseError>;
    /// Whether `op` leaves the table unreadable until a commit (a bulk load).
    fn needs_commit(_op: &Self::Op) -> bool {
        false
    }
    /// What an existing table `name` holds, as a read transaction sees it.
    fn read(db: &Database, name: &'static str) -> Self::Model;
    /// The table's sequence number in `w` (the table is opened, so created).
    fn sequence(w: &mut WriteTransaction<'_>, name: &'static str) -> u64;
    /// `next_sequence` on the table in `w`.
    fn next_sequence(w: &mut WriteTransaction<'_>, name: &'static str) -> mmapkit_db::Result<u64>;
    /// `set_sequence` on the table in `w`.
    fn set_sequence(w: &mut WriteTransaction<'_>, name: &'static str, value: u64);
}

/// One step of a table's life.
#[derive(Clone, Debug)]
pub enum Step<O> {
    /// One of the kind's own operations.
    Op(O),
    /// Commit, durable or not.
    Commit(bool),
    /// Drop the transaction.
    Abort,
    /// Take a savepoint.
    Save,
    /// Restore the savepoint of this index (modulo those live), if any.
    Restore(usize),
    /// Close the database (aborting any transaction) and open it again.
    Reopen,
    /// `next_sequence`.
    NextSequence,
    /// `set_sequence`.
    SetSequence(u64),
    /// Rename the table to its other name.
    Rename,
    /// Delete the table.
    Delete,
}

/// Steps, mostly the kind's own operations.
pub fn steps<O: Clone + Debug + 'static>(op: impl Strategy<Value = O> + 'static) -> impl Strategy<Value = Step<O>> {
    prop_oneof![
        24 => op.prop_map(Step::Op),
        3 => any::<bool>().prop_map(Step::Commit),
        1 => Just(Step::Abort),
        2 => Just(Step::Save),
        2 => (0usize..4).prop_map(Step::Restore),
        1 => Just(Step::Reopen),
        3 => Just(Step::NextSequence),
        1 => prop_oneof![Just(0u64), 1u64..100, Just(u64::MAX - 1)].prop_map(Step::SetSequence),
        1 => Just(Step::Rename),
        1 => Just(Step::Delete),
    ]
}

/// The table as far as the model goes: entries, sequence number, which name.
#[derive(Clone, Debug, Default, PartialEq)]
struct State<M> {
    model: M,
    sequence: u64,
    name: usize,
}

fn open(path: &std::path::Path, first: bool) -> Database {
    // SAFETY: the test's temporary file is written by nothing else.
    unsafe { if first { Database::create(path) } else { Database::open(path) } }.unwrap()
}

/// Checks the committed table against `want`, and the file clean if `check`
/// (a check waits for the write transaction, so it runs when none is open).
fn committed_is<S: Subject>(
    db: &Database,
    want: &State<S::Model>,
    after: &str,
    check: bool,
) -> Result<(), TestCaseError> {
    if check {
        let report = db.check().unwrap();
        prop_assert!(report.is_clean(), "check after {}: {:?}", after, report.problems);
    }
    let read = db.begin_read().unwrap();
    let tables = read.list_tables().unwrap();
    let name = NAMES[want.name];
    if tables.is_empty() {
        prop_assert_eq!(&want.model, &S::Model::default(), "no table after {}", after);
        prop_assert_eq!(want.sequence, 0, "no table after {}", after);
        return Ok(());
    }
    prop_assert_eq!(tables, [name], "tables after {}", after);
    prop_assert_eq!(read.open_table(name).unwrap().sequence().unwrap(), want.sequence, "sequence after {}", after);
    drop(read);
    prop_assert_eq!(&S::read(db, name), &want.model, "entries after {}", after);
    Ok(())
}

/// Runs `steps` on a new database, checking after each.
pub fn run<S: Subject>(steps: Vec<Step<S::Op>>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("life.db");
    let mut committed = State::<S::Model>::default();
    let mut steps = steps.into_iter().peekable();
    let mut first = true;
    // Each pass is one opening of the database; `Reopen` ends it.
    while steps.peek().is_some() {
        let db = open(&path, first);
        first = false;
        committed_is::<S>(&db, &committed, "open", true)?;
        let mut now = committed.clone();
        let mut txn: Option<WriteTransaction<'_>> = None;
        let mut saved: Vec<(Savepoint, State<S::Model>)> = Vec::new();
        let mut reopen = false;
        for step in steps.by_ref() {
            let label = format!("{step:?}");
            let name = NAMES[now.name];
            match step {
                Step::Op(op) => {
                    let w = txn.get_or_insert_with(|| db.begin_write().unwrap());
                    S::apply(w, name, &mut now.model, &op)?;
                    if S::needs_commit(&op) {
                        txn.take().unwrap().commit().unwrap();
                        committed = now.clone();
                        saved.clear();
                    }
                }
                Step::Commit(durable) => {
                    let mut w = txn.take().unwrap_or_else(|| db.begin_write().unwrap());
                    if !durable {
                        w.set_durability(Durability::None);
                    }
                    w.commit().unwrap();
                    committed = now.clone();
                    saved.clear();
                }
                Step::Abort => {
                    drop(txn.take());
                    now = committed.clone();
                    saved.clear();
                }
                Step::Save => {
                    let w = txn.get_or_insert_with(|| db.begin_write().unwrap());
                    saved.push((w.savepoint().unwrap(), now.clone()));
                }
                Step::Restore(i) => {
                    if let Some(w) = txn.as_mut().filter(|_| !saved.is_empty()) {
                        let i = i % saved.len();
                        w.restore_savepoint(&saved[i].0).unwrap();
                        now = saved[i].1.clone();
                        // Those taken after it are gone; it can be restored again.
                        for (dropped, _) in saved.drain(i + 1..) {
                            let again = w.restore_savepoint(&dropped);
                            prop_assert!(matches!(again, Err(Error::Savepoint { .. })), "{:?}", again);
                        }
                        prop_assert_eq!(S::sequence(w, NAMES[now.name]), now.sequence, "sequence after a restore");
                    }
                }
                Step::Reopen => {
                    drop(txn.take());
                    reopen = true;
                    break;
                }
                Step::NextSequence => {
                    let w = txn.get_or_insert_with(|| db.begin_write().unwrap());
                    if now.sequence == u64::MAX {
                        let got = S::next_sequence(w, name);
                        prop_assert!(matches!(got, Err(Error::SequenceOverflow { .. })), "{:?}", got);
                        prop_assert_eq!(S::sequence(w, name), u64::MAX);
                    } else {
                        now.sequence += 1;
                        prop_assert_eq!(S::next_sequence(w, name).unwrap(), now.sequence);
                    }
                }
                Step::SetSequence(value) => {
                    let w = txn.get_or_insert_with(|| db.begin_write().unwrap());
                    S::set_sequence(w, name, value);
                    now.sequence = value;
                    prop_assert_eq!(S::sequence(w, name), value);
                }
                Step::Rename => {
                    let w = txn.get_or_insert_with(|| db.begin_write().unwrap());
                    // Opening it creates it, if a delete took it away.
                    prop_assert_eq!(S::sequence(w, name), now.sequence);
                    let to = NAMES[1 - now.name];
                    w.rename_table(name, to).unwrap();
                    prop_assert!(matches!(w.rename_table(name, to), Err(Error::TableNotFound(_))));
                    now.name = 1 - now.name;
                    prop_assert_eq!(S::sequence(w, to), now.sequence, "sequence after a rename");
                }
                Step::Delete => {
                    let w = txn.get_or_insert_with(|| db.begin_write().unwrap());
                    w.delete_table(name).unwrap();
                    now.model = S::Model::default();
                    now.sequence = 0;
                }
            }
            committed_is::<S>(&db, &committed, &label, txn.is_none())?;
        }
        if let Some(w) = txn.take().filter(|_| !reopen) {
            w.commit().unwrap();
            committed = now;
            committed_is::<S>(&db, &committed, "the last commit", true)?;
        }
    }
    Ok(())
}
