//! Read transactions held across many commits: the pages freed meanwhile wait
//! in per-commit segments of the free list, and must come back, exactly once,
//! when the reader ends, when the file is reopened, and after a power cut at
//! any I/O operation (`commit_cost.rs` checks that a commit's work does not
//! grow with their number).
//!
//! The power-cut storage here is a small version of the one in
//! `fault_injection.rs`: writes go to the real file and are recorded; a sync
//! makes them part of the *durable image*; from the chosen operation on every
//! write and sync fails. The files a cut could leave (the image with none,
//! all, or a random subset of the unsynced writes) must open, check clean and
//! hold the last durable state (or that of the durable commit that failed, if
//! its meta page and every write before it landed).

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use mmapkit_db::{Database, Durability, Error, PAGE_SIZE, ReadTransaction, Storage};
use support::{Rng, Tables};

const PAGE: u64 = PAGE_SIZE as u64;

fn create(path: &Path) -> Database {
    // SAFETY: a private temporary file; this process is its only user.
    unsafe { Database::create(path) }.expect("create the database")
}

fn open_with(path: &Path, storage: impl Storage + 'static) -> mmapkit_db::Result<Database> {
    // SAFETY: as for `create`.
    unsafe { Database::builder().storage(storage).open(path) }
}

/// Every table a read transaction sees.
fn dump_read(read: &ReadTransaction<'_>) -> Tables {
    let mut all = Tables::new();
    for name in read.list_tables().expect("list_tables") {
        let table = read.open_table(&name).expect("open_table");
        let entries = table.range(..).map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())));
        all.insert(name, entries.collect::<Result<BTreeMap<_, _>, _>>().expect("scan"));
    }
    all
}

#[track_caller]
fn assert_clean(db: &Database, ctx: &str) -> mmapkit_db::CheckReport {
    let report = db.check().unwrap_or_else(|e| panic!("{ctx}: check fails: {e}"));
    assert!(report.is_clean(), "{ctx}: check finds {:?}", report.problems);
    assert_eq!(report.pages_in_use + report.pages_free + 2, report.page_count, "{ctx}: pages unaccounted for");
    report
}

#[track_caller]
fn assert_holds(db: &Database, want: &Tables, ctx: &str) {
    let got = support::dump(db).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert!(got == *want, "{ctx}: the database differs from the model:\n{}", support::diff(&got, want));
}

/// One commit of the update workload: three puts (now and then a value of a
/// few pages), one removal, among 260 keys of table `t`; applied to `model`
/// (also when the commit fails).
fn try_update(db: &Database, rng: &mut Rng, model: &mut Tables, durability: Durability) -> mmapkit_db::Result<()> {
    let mut txn = db.begin_write()?;
    txn.set_durability(durability);
    let entries = model.entry("t".into()).or_default();
    {
        let mut t = txn.open_table("t").expect("open_table");
        for _ in 0..3 {
            let key = format!("key{:03}", rng.below(260)).into_bytes();
            let len = if rng.one_in(15) { 5_000 + rng.below(8_000) as usize } else { 20 + rng.below(200) as usize };
            let value = rng.bytes(len);
            t.insert(&key, &value).expect("insert");
            entries.insert(key, value);
        }
        let key = format!("key{:03}", rng.below(260)).into_bytes();
        assert_eq!(t.remove(&key).expect("remove"), entries.remove(&key).is_some());
    }
    txn.commit()
}

/// [`try_update`], which must succeed.
fn update(db: &Database, rng: &mut Rng, model: &mut Tables, durability: Durability) {
    try_update(db, rng, model, durability).expect("commit");
}

/// A reader held across 300 commits (two in five with `Durability::None`)
/// sees its snapshot to the end; the pages freed meanwhile are pending, every
/// page is used or free exactly once throughout, and once the reader ends
/// they are all reused: 300 more commits do not grow the file, before or
/// after a reopen.
#[test]
fn pages_a_reader_held_are_all_reused_once_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.db");
    let db = create(&path);
    let mut rng = Rng::new(0x4E1D);
    let mut model = Tables::new();
    for _ in 0..20 {
        update(&db, &mut rng, &mut model, Durability::Immediate);
    }
    let reader = db.begin_read().unwrap();
    let snapshot = model.clone();
    let mut pending = 0;
    for c in 0..300 {
        // Runs of two commits with `Durability::None`.
        let durability = if c % 5 >= 3 { Durability::None } else { Durability::Immediate };
        update(&db, &mut rng, &mut model, durability);
        if c % 50 == 49 {
            assert_clean(&db, &format!("commit {c} under the reader"));
            let stats = db.stats().unwrap();
            assert!(stats.pending_pages > pending, "pending pages do not grow under a reader: {stats:?}");
            pending = stats.pending_pages;
        }
    }
    assert!(dump_read(&reader) == snapshot, "the held reader's snapshot changed");
    let peak = db.stats().unwrap().page_count;
    drop(reader);

    for c in 0..300 {
        let durability = if c % 7 == 3 { Durability::None } else { Durability::Immediate };
        update(&db, &mut rng, &mut model, durability);
        let stats = db.stats().unwrap();
        assert!(stats.page_count <= peak, "commit {c} after the reader grew the file past {peak}: {stats:?}");
    }
    let report = assert_clean(&db, "after the reader ended");
    let stats = db.stats().unwrap();
    assert!(stats.pending_pages < 200, "pages still pending with no reader: {stats:?}");
    assert!(report.pages_free * 2 > report.page_count, "the freed pages are not free: {report:?}");
    assert_holds(&db, &model, "after the reader ended");
    drop(db);

    // SAFETY: as for `create`.
    let db = unsafe { Database::open(&path) }.unwrap();
    let report = assert_clean(&db, "reopened");
    assert_eq!(db.stats().unwrap().pending_pages, 0, "after a reopen every free page is ready");
    assert_holds(&db, &model, "reopened");
    let reopened = report.page_count;
    for _ in 0..300 {
        update(&db, &mut rng, &mut model, Durability::Immediate);
    }
    let stats = db.stats().unwrap();
    assert!(stats.page_count <= reopened, "300 commits grew the reopened file: {reopened} to {}", stats.page_count);
    assert_clean(&db, "reopened, after 300 commits");
    assert_holds(&db, &model, "reopened, after 300 commits");
}

/// With a reader held, the file as it is after a durable commit (a crash
/// then loses nothing), or after commits with `Durability::None` on top,
/// opens at the last durable commit with every pending page free, and checks
/// clean; commits to it reuse those pages. Readers come and go meanwhile, so
/// the free list holds released segments behind the pending ones.
#[test]
fn a_copy_taken_under_a_reader_opens_with_every_pending_page_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    let db = create(&path);
    let mut rng = Rng::new(0xC0FF);
    let mut model = Tables::new();
    let mut durable = Tables::new();
    let mut first = Some(db.begin_read().unwrap());
    let mut second = None;
    for c in 0..240u64 {
        match c {
            60 => second = Some(db.begin_read().unwrap()),
            100 => first = None,
            170 => second = None,
            190 => second = Some(db.begin_read().unwrap()),
            _ => {}
        }
        let durability = if c % 4 == 1 { Durability::None } else { Durability::Immediate };
        update(&db, &mut rng, &mut model, durability);
        if durability == Durability::Immediate {
            durable = model.clone();
        }
        if c % 40 == 30 || c % 40 == 33 {
            // 30 is durable; 33 follows a commit with `Durability::None`.
            let copy = dir.path().join(format!("copy{c}.db"));
            std::fs::copy(&path, &copy).unwrap();
            let ctx = format!("copy after commit {c}");
            let copied = open_with(&copy, FastSync).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(copied.recovery(), None, "{ctx}");
            let report = assert_clean(&copied, &ctx);
            let stats = copied.stats().unwrap();
            assert_eq!(stats.pending_pages, 0, "{ctx}: after opening every free page is ready");
            assert_eq!(stats.free_pages, report.pages_free, "{ctx}");
            assert_holds(&copied, &durable, &ctx);
            let mut copy_model = durable.clone();
            let mut copy_rng = Rng::new(c);
            for _ in 0..40 {
                update(&copied, &mut copy_rng, &mut copy_model, Durability::Immediate);
            }
            let grown = copied.stats().unwrap().page_count;
            assert!(
                grown <= report.page_count,
                "{ctx}: 40 commits grew the file from {} to {grown}",
                report.page_count
            );
            assert_clean(&copied, &format!("{ctx}, 40 commits on"));
            assert_holds(&copied, &copy_model, &format!("{ctx}, 40 commits on"));
        }
    }
    drop((first, second));
    assert_clean(&db, "the original");
}

/// Plain `pwrite`, syncs skipped: for files whose durability is not under test.
struct FastSync;

impl Storage for FastSync {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }

    fn sync(&self, _file: &File) -> io::Result<()> {
        Ok(())
    }
}

// --- power cuts -------------------------------------------------------------------

/// One write no sync has covered yet.
#[derive(Clone, Debug)]
struct Unsynced {
    op: u64,
    offset: u64,
    data: Vec<u8>,
}

/// The simulated disk.
#[derive(Clone, Debug, Default)]
struct Disk {
    ops: u64,
    crash_at: u64,
    crashed: bool,
    /// What a power cut leaves, writes since the last sync aside.
    image: Vec<u8>,
    /// Writes since the last sync, with the one the cut interrupted.
    unsynced: Vec<Unsynced>,
}

/// Loses power at I/O operation `crash_at` (every write and sync counts).
#[derive(Clone)]
struct PowerCut(Arc<Mutex<Disk>>);

impl PowerCut {
    fn new(crash_at: u64) -> PowerCut {
        PowerCut(Arc::new(Mutex::new(Disk { crash_at, ..Disk::default() })))
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Storage for PowerCut {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut disk = self.disk();
        let op = disk.ops;
        disk.ops += 1;
        disk.unsynced.push(Unsynced { op, offset, data: buf.to_vec() });
        if op >= disk.crash_at {
            disk.crashed = true;
            if op > disk.crash_at {
                disk.unsynced.pop();
            }
            return Err(io::Error::other(format!("simulated power cut at I/O operation {}", disk.crash_at)));
        }
        file.write_all_at(buf, offset)
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        let mut disk = self.disk();
        let op = disk.ops;
        disk.ops += 1;
        if op >= disk.crash_at {
            disk.crashed = true;
            return Err(io::Error::other(format!("simulated power cut at I/O operation {}", disk.crash_at)));
        }
        let len = file.metadata()?.len() as usize;
        disk.image.resize(len, 0);
        for w in std::mem::take(&mut disk.unsynced) {
            put(&mut disk.image, w.offset as usize, &w.data);
        }
        Ok(())
    }
}

fn put(file: &mut Vec<u8>, offset: usize, data: &[u8]) {
    if file.len() < offset + data.len() {
        file.resize(offset + data.len(), 0);
    }
    file[offset..offset + data.len()].copy_from_slice(data);
}

/// What a run up to the power cut left.
struct Cut {
    disk: Disk,
    /// The state of the last durable commit that returned `Ok`.
    durable: Tables,
    /// The durable commit that failed: its state and its first I/O operation.
    failed: Option<(Tables, u64)>,
}

/// The workload: 36 commits of [`update`] (every fourth with
/// `Durability::None`, the last durable), with one reader held from commit 3
/// to 21 and another from 9 to the end, so that segments pile up, are
/// released while others still wait, and their pages are reused.
fn run_with_cut(path: &Path, crash_at: u64) -> Option<Cut> {
    let storage = PowerCut::new(crash_at);
    // SAFETY: as for `create`.
    let db = match unsafe { Database::builder().storage(storage.clone()).create(path) } {
        Ok(db) => db,
        Err(_) => return None,
    };
    let mut rng = Rng::new(0xCA7);
    let (mut model, mut durable, mut failed) = (Tables::new(), Tables::new(), None);
    let (mut first, mut second) = (None, None);
    for c in 0..36u64 {
        match c {
            3 => first = Some(db.begin_read().unwrap()),
            9 => second = Some(db.begin_read().unwrap()),
            21 => first = None,
            _ => {}
        }
        let durability = if c % 4 == 2 { Durability::None } else { Durability::Immediate };
        let mut next = model.clone();
        let first_op = storage.disk().ops;
        match try_update(&db, &mut rng, &mut next, durability) {
            Ok(()) => {
                model = next;
                if durability == Durability::Immediate {
                    durable = model.clone();
                }
            }
            Err(e) => {
                assert!(storage.disk().crashed, "commit {c} failed with no power cut: {e}");
                assert!(matches!(e, Error::Io { .. }), "commit {c} failed with {e:?}, expected Error::Io");
                match db.begin_write() {
                    Err(Error::Poisoned { .. }) => {}
                    other => panic!("after a failed commit begin_write gives {:?}", other.map(|_| ())),
                }
                if durability == Durability::Immediate {
                    failed = Some((next, first_op));
                }
                break;
            }
        }
    }
    drop((first, second));
    drop(db);
    let disk = storage.disk().clone();
    Some(Cut { disk, durable, failed })
}

/// The file a cut leaves with the unsynced writes `keep` picks (each whole or
/// not at all); whether each was kept.
fn cut_file(disk: &Disk, keep: &mut dyn FnMut(&Unsynced) -> bool) -> (Vec<u8>, Vec<bool>) {
    let mut bytes = disk.image.clone();
    let kept: Vec<bool> = disk.unsynced.iter().map(&mut *keep).collect();
    for (w, _) in disk.unsynced.iter().zip(&kept).filter(|(_, k)| **k) {
        put(&mut bytes, w.offset as usize, &w.data);
    }
    (bytes, kept)
}

/// Every I/O operation of the workload in turn is where the power goes; for
/// each, four files the cut could leave (none of the unsynced writes, all,
/// two random subsets) open, check clean, hold an allowed state, and take a
/// commit that checks clean too.
#[test]
fn power_cut_at_every_io_operation_with_readers_held() {
    let dir = tempfile::tempdir().unwrap();
    let clean = run_with_cut(&dir.path().join("clean.db"), u64::MAX).expect("the workload runs");
    assert!(!clean.disk.crashed && clean.failed.is_none());
    let total = clean.disk.ops;
    let (mut landed_durable, mut landed_failed) = (0, 0);
    for k in 0..total {
        let path = dir.path().join("live.db");
        let _ = std::fs::remove_file(&path);
        let Some(cut) = run_with_cut(&path, k) else { continue };
        assert!(cut.disk.crashed, "power cut at {k}: nothing failed");
        let mut rng = Rng::new(k);
        for n in 0..4 {
            let (bytes, kept) = cut_file(&cut.disk, &mut |_| match n {
                0 => false,
                1 => true,
                _ => rng.one_in(2),
            });
            let ctx = format!("power cut at I/O operation {k} of {total}, file {n}, writes kept {kept:?}");
            let file = dir.path().join("cut.db");
            std::fs::write(&file, &bytes).unwrap();
            let db = open_with(&file, FastSync).unwrap_or_else(|e| panic!("{ctx}: does not open: {e}"));
            assert_clean(&db, &ctx);
            let got = support::dump(&db).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            // The failed durable commit may have reached the disk whole: its
            // meta page and every write before it kept.
            let failed_whole = cut.failed.as_ref().is_some_and(|(_, first_op)| {
                let own: Vec<(&Unsynced, bool)> =
                    cut.disk.unsynced.iter().zip(kept.iter().copied()).filter(|(w, _)| w.op >= *first_op).collect();
                own.iter().position(|(w, _)| w.offset < 2 * PAGE).is_some_and(|m| own[..=m].iter().all(|(_, k)| *k))
            });
            if got == cut.durable {
                landed_durable += 1;
            } else if failed_whole && cut.failed.as_ref().is_some_and(|(state, _)| *state == got) {
                landed_failed += 1;
            } else {
                panic!("{ctx}: holds neither allowed state:\n{}", support::diff(&got, &cut.durable));
            }
            // The recovered free list hands out only pages nothing uses.
            let mut after = got;
            let mut rng = Rng::new(k * 4 + n);
            for _ in 0..3 {
                update(&db, &mut rng, &mut after, Durability::Immediate);
            }
            assert_clean(&db, &format!("{ctx}, then three commits"));
            assert_holds(&db, &after, &format!("{ctx}, then three commits"));
        }
    }
    println!(
        "{total} crash points: {landed_durable} files at the last durable commit, {landed_failed} at the failed one"
    );
    assert!(landed_durable > 0 && landed_failed > 0, "{landed_durable} / {landed_failed}");
}
