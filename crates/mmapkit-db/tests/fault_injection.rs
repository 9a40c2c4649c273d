//! Power loss, simulated through the `Storage` hook.
//!
//! [`PowerCut`] passes every write through to the real file (the engine reads
//! it back through its mapping) and records it; it keeps a *durable image* of
//! the file, the bytes a power cut would leave, which a sync brings up to date.
//! At the k-th I/O operation (write or sync) the power goes: that operation and
//! every later one fail. [`power_cut_file`] then builds a file from the image
//! plus any subset of the writes no sync covered (each applied fully, not at
//! all, or for only some of its 4 KiB pages), and the test opens it with the
//! ordinary storage: it must open, check clean, and hold exactly the state of
//! the last commit that returned `Ok` with `Durability::Immediate`, or that of
//! the durable commit that failed when its meta page and the pages it wrote
//! reached the file (see [`allowed_states`] for the exact rule). The handle
//! that saw the failure must refuse further writes (`Error::Poisoned`) and
//! still show readers the last successful commit.
//!
//! Crashes during the initial create (two meta pages, then a sync) make
//! `create` fail; the file may then be empty or hold only one meta page. It
//! must open as an empty database when a complete meta page and both pages'
//! length are there, and give `Error::NotADatabase` otherwise.

mod support;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use mmapkit_db::{Database, Durability, Error, PAGE_SIZE, Storage};
use proptest::prelude::*;
use support::{Rng, Tables};

/// One write the engine issued that no sync has covered yet.
#[derive(Clone, Debug)]
struct Unsynced {
    /// Its I/O operation index.
    op: u64,
    offset: u64,
    data: Vec<u8>,
}

/// What the simulated disk holds.
#[derive(Clone, Debug, Default)]
struct Disk {
    /// I/O operations issued so far (writes and syncs).
    ops: u64,
    /// The operation at which the power goes.
    crash_at: u64,
    crashed: bool,
    /// The file as a power cut would leave it, writes after the last sync aside.
    image: Vec<u8>,
    /// Writes after the last sync, in issue order (with the one the power cut
    /// interrupted, if it was a write: it may have reached the disk, in part).
    unsynced: Vec<Unsynced>,
    /// The real file's length at the last write or sync: its size may have
    /// reached the disk without the data (the engine grows the file with
    /// `fallocate` before it writes).
    file_len: u64,
}

/// A `Storage` that simulates a power cut at one I/O operation.
#[derive(Clone)]
struct PowerCut(Arc<Mutex<Disk>>);

impl PowerCut {
    /// A disk holding `file` (durably), losing power at operation `crash_at`.
    fn new(file: &[u8], crash_at: u64) -> PowerCut {
        let disk = Disk { crash_at, image: file.to_vec(), file_len: file.len() as u64, ..Disk::default() };
        PowerCut(Arc::new(Mutex::new(disk)))
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an operation; `Err` if the power is gone by now.
    fn next_op(disk: &mut Disk) -> io::Result<u64> {
        let op = disk.ops;
        disk.ops += 1;
        if op >= disk.crash_at {
            disk.crashed = true;
            return Err(io::Error::other(format!("simulated power cut at I/O operation {}", disk.crash_at)));
        }
        Ok(op)
    }
}

impl Storage for PowerCut {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut disk = self.disk();
        let op = disk.ops;
        if let Err(e) = Self::next_op(&mut disk) {
            if op == disk.crash_at {
                disk.unsynced.push(Unsynced { op, offset, data: buf.to_vec() });
            }
            return Err(e);
        }
        file.write_all_at(buf, offset)?;
        disk.file_len = file.metadata()?.len();
        disk.unsynced.push(Unsynced { op, offset, data: buf.to_vec() });
        Ok(())
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        let mut disk = self.disk();
        Self::next_op(&mut disk)?;
        let len = file.metadata()?.len();
        disk.file_len = len;
        disk.image.resize(len as usize, 0);
        for w in std::mem::take(&mut disk.unsynced) {
            put(&mut disk.image, w.offset as usize, &w.data);
        }
        Ok(())
    }
}

/// Writes `data` at `offset` of `file`, growing it (with zeros) as needed.
fn put(file: &mut Vec<u8>, offset: usize, data: &[u8]) {
    if file.len() < offset + data.len() {
        file.resize(offset + data.len(), 0);
    }
    file[offset..offset + data.len()].copy_from_slice(data);
}

/// Plain `pwrite`, no sync: for opening the files a power cut left (their own
/// durability is not under test, and fsyncing hundreds of copies is slow).
struct NoSync;

impl Storage for NoSync {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }

    fn sync(&self, _file: &File) -> io::Result<()> {
        Ok(())
    }
}

/// Which of the unsynced writes reach the file.
#[derive(Clone, Debug)]
enum Subset {
    Nothing,
    Everything,
    /// Each write fully, not at all, or (past 4 KiB) page by page, from this seed;
    /// and the file's length may be the grown one.
    Random(u64),
    /// The writes issued at these I/O operations, fully; no other.
    Ops(Vec<u64>),
}

/// A file a power cut could leave.
struct CutFile {
    bytes: Vec<u8>,
    /// For each of `Disk::unsynced`: which of its 4 KiB pages were applied.
    applied: Vec<Vec<bool>>,
}

/// Builds the file a power cut at `disk`'s crash point could leave: the
/// durable image, plus the unsynced writes `subset` picks, applied in issue order.
fn power_cut_file(disk: &Disk, subset: Subset) -> CutFile {
    let mut rng = Rng::new(match subset {
        Subset::Random(seed) => seed,
        _ => 0,
    });
    let random = matches!(subset, Subset::Random(_));
    let mut bytes = disk.image.clone();
    let mut applied = Vec::with_capacity(disk.unsynced.len());
    for w in &disk.unsynced {
        let pages = w.data.len().div_ceil(PAGE_SIZE);
        let mask: Vec<bool> = match &subset {
            Subset::Nothing => vec![false; pages],
            Subset::Everything => vec![true; pages],
            Subset::Random(_) => match rng.below(3) {
                0 => vec![false; pages],
                1 => vec![true; pages],
                // Torn: some of its pages only.
                _ if pages > 1 => (0..pages).map(|_| rng.one_in(2)).collect(),
                _ => vec![rng.one_in(2); pages],
            },
            Subset::Ops(ops) => vec![ops.contains(&w.op); pages],
        };
        for (i, _) in mask.iter().enumerate().filter(|(_, on)| **on) {
            let chunk = &w.data[i * PAGE_SIZE..((i + 1) * PAGE_SIZE).min(w.data.len())];
            put(&mut bytes, w.offset as usize + i * PAGE_SIZE, chunk);
        }
        applied.push(mask);
    }
    if random && rng.one_in(2) && (bytes.len() as u64) < disk.file_len {
        bytes.resize(disk.file_len as usize, 0);
    }
    CutFile { bytes, applied }
}

const TABLES: [&str; 3] = ["main", "aux", "empty"];

/// One step of a workload.
#[derive(Clone)]
enum Step {
    Put(usize, Vec<u8>, Vec<u8>),
    Del(usize, Vec<u8>),
    /// `open_table` alone: creates the table, empty.
    Create(usize),
    Drop(usize),
    /// Commit, durably (`true`) or with `Durability::None`.
    Commit(bool),
}

impl std::fmt::Debug for Step {
    // Short: keys as text, values by length and first byte (minimal failing inputs stay readable).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        match self {
            Step::Put(t, k, v) => {
                write!(f, "Put({}, {:?}, {} bytes from {:?})", TABLES[*t], key(k), v.len(), v.first())
            }
            Step::Del(t, k) => write!(f, "Del({}, {:?})", TABLES[*t], key(k)),
            Step::Create(t) => write!(f, "Create({})", TABLES[*t]),
            Step::Drop(t) => write!(f, "Drop({})", TABLES[*t]),
            Step::Commit(durable) => write!(f, "Commit({})", if *durable { "durable" } else { "Durability::None" }),
        }
    }
}

/// What a workload run with a power cut at one operation produced.
struct Run {
    /// `create` itself failed.
    create_failed: bool,
    /// The state of the last commit that returned `Ok` with `Durability::Immediate`.
    durable: Tables,
    /// A durable commit that returned `Err`: the state it would have made
    /// durable, and the index of the first I/O operation it issued.
    failed: Option<(Tables, u64)>,
    disk: Disk,
}

/// A database file to start a run from, and the state it holds.
struct Start {
    file: Vec<u8>,
    state: Tables,
}

/// Runs `steps` on a new database in `dir` (or on a copy of `start`) with the
/// power going at I/O operation `crash_at`, asserting what the live handle
/// does on the way.
fn run(dir: &Path, start: Option<&Start>, steps: &[Step], crash_at: u64) -> Run {
    let path = dir.join("live.db");
    if path.exists() {
        std::fs::remove_file(&path).expect("remove the previous run's file");
    }
    let initial = start.map_or(Tables::new(), |s| s.state.clone());
    let storage = PowerCut::new(start.map_or(&[][..], |s| &s.file), crash_at);
    let ctx = format!("power cut at I/O operation {crash_at}");
    if let Some(start) = start {
        std::fs::write(&path, &start.file).expect("write the starting file");
    }
    let mut builder = Database::builder();
    builder.storage(storage.clone());
    // SAFETY: the file is in this test's own temporary directory; nothing else opens it.
    let opened = unsafe { if start.is_some() { builder.open(&path) } else { builder.create(&path) } };
    let db = match opened {
        Ok(db) => db,
        Err(e) => {
            // Creating writes the first meta pages through the storage (as
            // would opening, were it to repair anything).
            assert!(storage.disk().crashed, "{ctx}: create/open failed with no I/O failure: {e}");
            assert!(matches!(e, Error::Io { .. }), "{ctx}: create/open failed with {e:?}, expected Error::Io");
            let disk = storage.disk().clone();
            return Run { create_failed: start.is_none(), durable: initial, failed: None, disk };
        }
    };
    assert!(!storage.disk().crashed, "{ctx}: create/open returned Ok although an I/O operation failed");
    let mut model = initial.clone();
    let mut published = initial.clone();
    let mut durable = initial;
    let mut failed = None;
    let mut txn = None;
    for (i, step) in steps.iter().enumerate() {
        let ctx = format!("{ctx}, step {i} ({step:?})");
        let t = txn.get_or_insert_with(|| db.begin_write().unwrap_or_else(|e| panic!("{ctx}: begin_write: {e}")));
        match step {
            Step::Put(n, k, v) => {
                t.open_table(TABLES[*n]).and_then(|mut t| t.insert(k, v)).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                model.entry(TABLES[*n].to_string()).or_default().insert(k.clone(), v.clone());
            }
            Step::Del(n, k) => {
                let had =
                    t.open_table(TABLES[*n]).and_then(|mut t| t.remove(k)).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let want = model.entry(TABLES[*n].to_string()).or_default().remove(k).is_some();
                assert_eq!(had, want, "{ctx}: remove says the key was there: {had}, the model: {want}");
            }
            Step::Create(n) => {
                t.open_table(TABLES[*n]).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                model.entry(TABLES[*n].to_string()).or_default();
            }
            Step::Drop(n) => {
                let had = t.delete_table(TABLES[*n]).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let want = model.remove(TABLES[*n]).is_some();
                assert_eq!(had, want, "{ctx}: delete_table says the table was there: {had}, the model: {want}");
            }
            Step::Commit(is_durable) => {
                let mut t = txn.take().expect("a transaction was just begun");
                if !is_durable {
                    t.set_durability(Durability::None);
                }
                let first_op = storage.disk().ops;
                match t.commit() {
                    Ok(()) => {
                        assert!(!storage.disk().crashed, "{ctx}: commit returned Ok although an I/O operation failed");
                        published = model.clone();
                        if *is_durable {
                            durable = model.clone();
                        }
                    }
                    Err(e) => {
                        assert!(storage.disk().crashed, "{ctx}: commit failed with no I/O failure: {e}");
                        assert!(matches!(e, Error::Io { .. }), "{ctx}: commit failed with {e:?}, expected Error::Io");
                        if *is_durable {
                            failed = Some((model.clone(), first_op));
                        }
                        // The handle is poisoned: what reached the disk is unknown.
                        match db.begin_write() {
                            Err(Error::Poisoned { .. }) => {}
                            Err(e) => panic!("{ctx}: begin_write after a failed commit gives {e:?}, expected Poisoned"),
                            Ok(_) => panic!("{ctx}: begin_write after a failed commit succeeds, expected Poisoned"),
                        }
                        // Nothing of the failed transaction is visible.
                        let seen = support::dump(&db).unwrap_or_else(|e| panic!("{ctx}: read after failure: {e}"));
                        assert!(seen == published, "{ctx}: readers after the failed commit see:\n{}", {
                            support::diff(&seen, &published)
                        });
                        break;
                    }
                }
            }
        }
    }
    assert!(txn.is_none(), "{ctx}: workloads end with a commit");
    drop(txn);
    drop(db);
    let disk = storage.disk().clone();
    Run { create_failed: false, durable, failed, disk }
}

/// Which state a recovered file landed on.
#[derive(Debug, Default)]
struct Landings {
    /// The last durable commit that returned `Ok`.
    durable: u64,
    /// The durable commit that failed, its meta page having reached the disk.
    failed_commit: u64,
    /// A create that failed, leaving an empty database.
    failed_create_opened: u64,
    /// A create that failed, leaving a file that is not a database.
    failed_create_not_a_db: u64,
}

/// Writes `cut` to `path`, opens it as a database, and asserts it holds what
/// `run` allows; then commits to it once more and checks it again. Returns the
/// state it found (before that commit), `None` for a failed create's leftovers.
fn verify(ctx: &str, run: &Run, cut: &CutFile, path: &Path, landings: &mut Landings) -> Option<Tables> {
    let ctx = &format!("{ctx} [{}]", describe_cut(run, cut));
    std::fs::write(path, &cut.bytes).unwrap_or_else(|e| panic!("{ctx}: write {}: {e}", path.display()));
    // SAFETY: the file is in this test's own temporary directory; nothing else opens it.
    let opened = unsafe { Database::builder().storage(NoSync).open(path) };
    let (db, want) = if run.create_failed {
        // The create wrote both meta pages in one write, the first unsynced one.
        let meta_pages = cut.applied.first().map_or(&[][..], |m| &m[..]);
        let some_meta = meta_pages.iter().any(|&on| on);
        let long_enough = cut.bytes.len() >= 2 * PAGE_SIZE;
        match opened {
            Err(Error::NotADatabase { .. }) if !(some_meta && long_enough) => {
                landings.failed_create_not_a_db += 1;
                return None;
            }
            Err(e) => panic!(
                "{ctx}: failed create, {} bytes, meta pages written {meta_pages:?}: open gives {e:?}",
                cut.bytes.len()
            ),
            Ok(_) if !(some_meta && long_enough) => panic!(
                "{ctx}: failed create, {} bytes, meta pages written {meta_pages:?}: opens, expected NotADatabase",
                cut.bytes.len()
            ),
            Ok(db) => {
                landings.failed_create_opened += 1;
                let problems = support::problems(&db);
                assert!(problems.is_empty(), "{ctx}: failed create, check finds:\n{}", problems.join("\n"));
                let got = support::dump(&db).unwrap_or_else(|e| panic!("{ctx}: reading the recovered file: {e}"));
                assert!(
                    got.is_empty(),
                    "{ctx}: a failed create opens with tables:\n{}",
                    support::diff(&got, &Tables::new())
                );
                (db, Tables::new())
            }
        }
    } else {
        let db = opened.unwrap_or_else(|e| panic!("{ctx}: the file a power cut left does not open: {e}"));
        let problems = support::problems(&db);
        assert!(problems.is_empty(), "{ctx}: check finds {} problems:\n{}", problems.len(), problems.join("\n"));
        let got = support::dump(&db).unwrap_or_else(|e| panic!("{ctx}: reading the recovered file: {e}"));
        let allowed = allowed_states(run, cut);
        let Some((which, want)) = allowed.iter().find(|(_, state)| *state == got) else {
            let diffs: Vec<String> =
                allowed.iter().map(|(which, want)| format!("from {which}:\n{}", support::diff(&got, want))).collect();
            panic!("{ctx}: the recovered file holds none of the allowed states; it differs {}", diffs.join("and "));
        };
        match *which {
            DURABLE => landings.durable += 1,
            _ => landings.failed_commit += 1,
        }
        (db, want.clone())
    };
    support::point_lookups(&db, &want).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let found = want.clone();

    // The recovered free list must hand out only pages nothing uses.
    let mut txn = db.begin_write().unwrap_or_else(|e| panic!("{ctx}: begin_write on the recovered file: {e}"));
    txn.open_table("after")
        .and_then(|mut t| t.insert(b"after", &vec![7u8; 3 * PAGE_SIZE]))
        .and_then(|()| txn.open_table(TABLES[0]).and_then(|mut t| t.insert(b"after", b"v")))
        .unwrap_or_else(|e| panic!("{ctx}: writing to the recovered file: {e}"));
    txn.commit().unwrap_or_else(|e| panic!("{ctx}: commit to the recovered file: {e}"));
    let problems = support::problems(&db);
    assert!(problems.is_empty(), "{ctx}: after a commit to the recovered file, check finds:\n{}", problems.join("\n"));
    let mut want = want;
    want.entry("after".into()).or_default().insert(b"after".to_vec(), vec![7u8; 3 * PAGE_SIZE]);
    want.entry(TABLES[0].into()).or_default().insert(b"after".to_vec(), b"v".to_vec());
    let got = support::dump(&db).unwrap_or_else(|e| panic!("{ctx}: reading the recovered file: {e}"));
    assert!(got == want, "{ctx}: after a commit to the recovered file:\n{}", support::diff(&got, &want));
    Some(found)
}

const DURABLE: &str = "the last durable commit";
const FAILED: &str = "the failed durable commit";

/// The states a file cut this way may recover to (the failed create aside).
///
/// The last durable commit (the last one whose `commit` returned `Ok` with
/// `Durability::Immediate`) is always allowed: nothing after it was promised.
/// The durable commit that failed is allowed too when its meta write and every
/// page write it issued before it reached the file in full: it may then be
/// whole on disk. (A durable commit writes its pages, then its meta page,
/// listing those pages when there are at most 503, then syncs once; a larger
/// one syncs between pages and meta.) Its state is never allowed otherwise:
/// without its meta page nothing names it, and without one of its page writes
/// whatever that page holds is not what the commit wrote. Either way the file
/// must check clean and hold exactly one allowed state, so a commit that
/// refers to pages of an earlier `Durability::None` commit that did not reach
/// the disk must not be taken either.
fn allowed_states(run: &Run, cut: &CutFile) -> Vec<(&'static str, Tables)> {
    let durable = (DURABLE, run.durable.clone());
    let Some((new, first_op)) = &run.failed else { return vec![durable] };
    // A write landed if the cut kept all of it, or if the file already held
    // the same bytes there (a commit retried after an earlier cut can write
    // exactly what the earlier attempt left on disk).
    let landed = |w: &Unsynced, mask: &Vec<bool>| {
        mask.iter().all(|&on| on)
            || cut.bytes.get(w.offset as usize..w.offset as usize + w.data.len()) == Some(&w.data[..])
    };
    let own: Vec<(&Unsynced, &Vec<bool>)> =
        run.disk.unsynced.iter().zip(&cut.applied).filter(|(w, _)| w.op >= *first_op).collect();
    let meta = own.iter().find(|(w, _)| w.offset < 2 * PAGE_SIZE as u64);
    let Some((meta, _)) = meta.filter(|(w, mask)| landed(w, mask)) else { return vec![durable] };
    if own.iter().filter(|(w, _)| w.op < meta.op).all(|(w, mask)| landed(w, mask)) {
        vec![durable, (FAILED, new.clone())]
    } else {
        vec![durable]
    }
}

/// The unsynced writes and what the cut kept of them, for failure messages.
fn describe_cut(run: &Run, cut: &CutFile) -> String {
    let writes: Vec<String> = (run.disk.unsynced.iter().zip(&cut.applied))
        .map(|(w, mask)| {
            let kept: String = mask.iter().map(|&on| if on { '#' } else { '.' }).collect();
            format!("op {} page {} +{} bytes kept {kept}", w.op, w.offset / PAGE_SIZE as u64, w.data.len())
        })
        .collect();
    let failed = run.failed.as_ref().map(|(_, op)| format!("durable commit from op {op} failed; "));
    format!(
        "{}image {} bytes, file {} bytes, unsynced writes: {}",
        failed.unwrap_or_default(),
        run.disk.image.len(),
        cut.bytes.len(),
        if writes.is_empty() { "none".to_string() } else { writes.join(", ") }
    )
}

/// The fixed workload: 36 commits (30 durable, 6 with `Durability::None`) of
/// inserts, updates (keys drawn from a small set) and removes, values from a
/// few bytes to overflow runs of 3-6 KiB and 40-100 KiB, a table created and
/// later deleted, and an empty table.
fn fixed_workload() -> Vec<Step> {
    let mut rng = Rng::new(0x5EED_FA17);
    let mut steps = Vec::new();
    for c in 0..36u64 {
        for j in 0..4 {
            let key = format!("key{:03}", rng.below(60)).into_bytes();
            let len = match (c % 5, c % 9, j) {
                (_, 4, 0) => 40_000 + rng.below(60_000) as usize,
                (0, _, 0) | (_, _, 3) if c % 2 == 0 => 3000 + rng.below(3000) as usize,
                _ => rng.below(120) as usize,
            };
            steps.push(Step::Put(0, key, support::bytes(c * 16 + j, len)));
        }
        for _ in 0..2 {
            steps.push(Step::Del(0, format!("key{:03}", rng.below(60)).into_bytes()));
        }
        if (5..20).contains(&c) {
            steps.push(Step::Put(1, format!("aux{}", c % 4).into_bytes(), support::bytes(c, 200 * c as usize)));
        }
        match c {
            12 => steps.push(Step::Create(2)),
            20 => steps.push(Step::Drop(1)),
            _ => {}
        }
        steps.push(Step::Commit(c % 6 != 2));
    }
    steps
}

/// Every I/O operation of the fixed workload, in turn, is the one where the
/// power goes; for each, eight files the cut could leave are checked: none of
/// the unsynced writes, all of them, and six random subsets (with torn writes).
#[test]
fn power_cut_at_every_io_operation() {
    let began = Instant::now();
    let steps = fixed_workload();
    let dir = tempfile::tempdir().expect("temp dir");
    let clean = run(dir.path(), None, &steps, u64::MAX);
    assert!(!clean.disk.crashed && clean.failed.is_none(), "the workload fails with no power cut");
    let total = clean.disk.ops;
    let mut landings = Landings::default();
    for k in 0..=total {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = run(dir.path(), None, &steps, k);
        assert_eq!(
            run.disk.crashed,
            k < total,
            "power cut at {k} of {total} operations: crashed is {}",
            run.disk.crashed
        );
        if k == total {
            assert!(run.durable == clean.durable, "without a power cut, a second run ends elsewhere");
        }
        let random = (0..6).map(|i| Subset::Random(k * 8 + i));
        let subsets = [Subset::Nothing, Subset::Everything].into_iter().chain(random);
        for (n, subset) in subsets.enumerate() {
            let ctx = format!("power cut at I/O operation {k} of {total}, {subset:?}");
            let cut = power_cut_file(&run.disk, subset.clone());
            verify(&ctx, &run, &cut, &dir.path().join(format!("cut{n}.db")), &mut landings);
        }
    }
    println!("{} crash points x 8 files in {:?}: {landings:?}", total + 1, began.elapsed());
    // Every outcome the rules allow was reached: the test covers each branch.
    assert!(landings.durable > 0, "no file recovered to the last durable commit: {landings:?}");
    assert!(landings.failed_commit > 0, "no file recovered to a failed commit whose meta page landed: {landings:?}");
    assert!(landings.failed_create_opened > 0, "no failed create left an openable file: {landings:?}");
    assert!(landings.failed_create_not_a_db > 0, "no failed create left a non-database: {landings:?}");
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    // A small alphabet: keys collide, so inserts update and removes hit.
    proptest::collection::vec(b'a'..b'e', 1..4)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => proptest::collection::vec(any::<u8>(), 0..100),
        3 => (2100usize..6000, any::<u64>()).prop_map(|(len, seed)| support::bytes(seed, len)),
        1 => (20_000usize..110_000, any::<u64>()).prop_map(|(len, seed)| support::bytes(seed, len)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..TABLES.len(), key(), value()).prop_map(|(t, k, v)| Step::Put(t, k, v)),
        5 => (0..TABLES.len(), key()).prop_map(|(t, k)| Step::Del(t, k)),
        1 => (0..TABLES.len()).prop_map(Step::Create),
        1 => (0..TABLES.len()).prop_map(Step::Drop),
        3 => Just(Step::Commit(true)),
        1 => Just(Step::Commit(false)),
    ]
}

/// Up to `max` random steps, then a durable commit.
fn workload(max: usize) -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 1..max).prop_map(|mut steps| {
        steps.push(Step::Commit(true));
        steps
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random workloads, the power going at a random I/O operation (or never).
    #[test]
    fn power_cut_in_random_workloads(steps in workload(80), at in any::<prop::sample::Index>(), seed in any::<u64>()) {
        let dir = tempfile::tempdir().expect("temp dir");
        let total = run(dir.path(), None, &steps, u64::MAX).disk.ops;
        let k = at.index(total as usize + 1) as u64;
        let run = run(dir.path(), None, &steps, k);
        prop_assert_eq!(run.disk.crashed, k < total, "power cut at {} of {} operations", k, total);
        let mut landings = Landings::default();
        for (n, subset) in [Subset::Nothing, Subset::Everything, Subset::Random(seed)].into_iter().enumerate() {
            let ctx = format!("power cut at I/O operation {k} of {total}, {subset:?}");
            let cut = power_cut_file(&run.disk, subset.clone());
            verify(&ctx, &run, &cut, &dir.path().join(format!("cut{n}.db")), &mut landings);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Two power cuts in a row: the file the first one left (with whatever
    /// pages of a lost commit reached the disk) is opened and written to again
    /// until the second one.
    #[test]
    fn power_cuts_in_a_row(
        first in workload(60),
        at1 in any::<prop::sample::Index>(),
        seed1 in any::<u64>(),
        second in workload(20),
        at2 in any::<prop::sample::Index>(),
        seed2 in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut landings = Landings::default();
        let total = run(dir.path(), None, &first, u64::MAX).disk.ops;
        let k1 = at1.index(total as usize + 1) as u64;
        let run1 = run(dir.path(), None, &first, k1);
        let cut = power_cut_file(&run1.disk, Subset::Random(seed1));
        let ctx = format!("first power cut at I/O operation {k1} of {total}, Random({seed1})");
        let Some(state) = verify(&ctx, &run1, &cut, &dir.path().join("first.db"), &mut landings) else {
            return Ok(()); // A failed create left no database to go on with.
        };
        let start = Start { file: cut.bytes, state };
        let total = run(dir.path(), Some(&start), &second, u64::MAX).disk.ops;
        let k2 = at2.index(total as usize + 1) as u64;
        let run2 = run(dir.path(), Some(&start), &second, k2);
        prop_assert_eq!(run2.disk.crashed, k2 < total, "second power cut at {} of {} operations", k2, total);
        for (n, subset) in [Subset::Nothing, Subset::Everything, Subset::Random(seed2)].into_iter().enumerate() {
            let ctx = format!("{ctx}; then a second at I/O operation {k2} of {total}, {subset:?}");
            let cut = power_cut_file(&run2.disk, subset.clone());
            verify(&ctx, &run2, &cut, &dir.path().join(format!("second{n}.db")), &mut landings);
        }
    }
}

/// The page writes and the meta write of the durable commit that failed in `run`.
fn failed_commit_writes(run: &Run) -> (Vec<u64>, u64) {
    let (_, first_op) = run.failed.as_ref().expect("a durable commit failed");
    let own: Vec<&Unsynced> = run.disk.unsynced.iter().filter(|w| w.op >= *first_op).collect();
    let meta = own.iter().find(|w| w.offset < 2 * PAGE_SIZE as u64).expect("the failed commit wrote its meta page");
    let pages = own.iter().filter(|w| w.op < meta.op).map(|w| w.op).collect();
    (pages, meta.op)
}

/// A commit lost to a power cut leaves its pages on disk, stamped with its
/// transaction id; after recovery the next commit gets the same id and, from
/// the same free list, the same pages. If that commit's meta page reaches the
/// disk but its page writes do not, the stale pages must not pass for its own:
/// the file must recover to the commit before both.
#[test]
fn a_lost_commits_pages_do_not_pass_for_the_next_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut landings = Landings::default();
    let mut base: Vec<Step> =
        (0..40).map(|i| Step::Put(0, format!("key{i:02}").into_bytes(), vec![b'd'; 50])).collect();
    base.push(Step::Commit(true));

    // First power cut: during commit X (key07 = "xxx..."), after its page writes
    // reached the disk and before its meta page did.
    let mut x = base.clone();
    x.extend([Step::Put(0, b"key07".to_vec(), vec![b'x'; 50]), Step::Commit(true)]);
    let total = run(dir.path(), None, &x, u64::MAX).disk.ops;
    let first = run(dir.path(), None, &x, total - 1);
    let (pages, meta) = failed_commit_writes(&first);
    let ctx = format!(
        "first cut at I/O operation {} of {total}: pages of X written (ops {pages:?}), not its meta (op {meta})",
        total - 1
    );
    let cut = power_cut_file(&first.disk, Subset::Ops(pages));
    // Recovers to the commit before X (X's meta page is not there).
    let state = verify(&ctx, &first, &cut, &dir.path().join("first.db"), &mut landings).expect("a database");

    // Second power cut: during commit Y (key07 = "yyy..."), same id and pages as X:
    // its meta page reaches the disk, its page writes do not.
    let start = Start { file: cut.bytes, state };
    let y = [Step::Put(0, b"key07".to_vec(), vec![b'y'; 50]), Step::Commit(true)];
    let total = run(dir.path(), Some(&start), &y, u64::MAX).disk.ops;
    let second = run(dir.path(), Some(&start), &y, total - 1);
    let (pages, meta) = failed_commit_writes(&second);
    let ctx = format!(
        "second cut at I/O operation {} of {total}: meta of Y written (op {meta}), not its pages (ops {pages:?})",
        total - 1
    );
    let cut = power_cut_file(&second.disk, Subset::Ops(vec![meta]));
    verify(&ctx, &second, &cut, &dir.path().join("second.db"), &mut landings);
}

/// A `Durability::None` commit writes its pages without a sync; the next
/// durable commit makes them durable. If the power goes when that commit's own
/// pages and meta page have reached the disk but the earlier commit's pages
/// have not, the file must not open on a state that refers to them.
#[test]
fn a_durable_commit_does_not_vouch_for_earlier_unsynced_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut landings = Landings::default();
    let mut steps: Vec<Step> =
        (0..40).map(|i| Step::Put(0, format!("key{i:02}").into_bytes(), vec![b'd'; 50])).collect();
    steps.push(Step::Commit(true));
    // N: a value in an overflow run, committed with `Durability::None`.
    steps.extend([Step::Put(0, b"big".to_vec(), vec![b'n'; 3000]), Step::Commit(false)]);
    // Y: a durable commit on top of it.
    steps.extend([Step::Put(0, b"key07".to_vec(), vec![b'y'; 50]), Step::Commit(true)]);
    let total = run(dir.path(), None, &steps, u64::MAX).disk.ops;
    let cut_at = total - 1; // Y's final sync.
    let run = run(dir.path(), None, &steps, cut_at);
    let (mut own, meta) = failed_commit_writes(&run);
    let ctx = format!(
        "power cut at I/O operation {cut_at} of {total}: Y's page writes (ops {own:?}) and meta (op {meta}) \
         reached the disk, N's page writes did not"
    );
    own.push(meta);
    let cut = power_cut_file(&run.disk, Subset::Ops(own));
    verify(&ctx, &run, &cut, &dir.path().join("cut.db"), &mut landings);
}
