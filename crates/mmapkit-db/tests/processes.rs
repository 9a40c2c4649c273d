//! Readers and writers in separate processes: a writer process moves money
//! between accounts (the total never changes) while reader processes check,
//! in every read transaction, that the total holds and that the
//! transaction's view never changes; readers and writers are killed with
//! `SIGKILL` at random moments. The children are this binary's own ignored
//! tests, run in processes the parent tests spawn.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mmapkit_db::{Database, Durability};
use support::Rng;

const ACCOUNTS: u64 = 200;
const START: u64 = 1_000;
const PATH: &str = "MMAPKIT_DB_PROCESSES_PATH";
const SECS: &str = "MMAPKIT_DB_PROCESSES_SECS";
const STREAM: &str = "MMAPKIT_DB_PROCESSES_STREAM";

fn env_path() -> PathBuf {
    PathBuf::from(std::env::var(PATH).expect("the parent sets the database path"))
}

fn env_secs() -> f64 {
    std::env::var(SECS).ok().and_then(|s| s.parse().ok()).unwrap_or(2.0)
}

fn account(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// A database of `ACCOUNTS` accounts holding `START` each, with some ballast
/// so that commits touch more than a page or two.
fn make(path: &Path) {
    // SAFETY: only this test's processes write the file, all through mmapkit-db.
    let db = unsafe { Database::create(path) }.unwrap();
    let mut w = db.begin_write().unwrap();
    let mut t = w.open_table("accounts").unwrap();
    for i in 0..ACCOUNTS {
        t.insert(&account(i), &START.to_le_bytes()).unwrap();
    }
    drop(t);
    let mut b = w.open_table("ballast").unwrap();
    for i in 0..2_000u64 {
        b.insert(&i.to_be_bytes(), &[i as u8; 200]).unwrap();
    }
    drop(b);
    w.commit().unwrap();
}

/// Spawns this binary's ignored test `name` on the database at `path`.
fn spawn(name: &str, path: &Path, secs: f64, stream: u64) -> Child {
    let exe = std::env::current_exe().expect("current test binary");
    let mut child = Command::new(exe)
        .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(PATH, path)
        .env(SECS, secs.to_string())
        .env(STREAM, stream.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a child test process");
    // Wait until it has the database open.
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("ready") {
            break;
        }
    }
    // Keep draining, so a child never blocks on a full pipe; the rest is kept for the report.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let _ = tx.send(rest);
    });
    OUTPUTS.with(|o| o.borrow_mut().push((child.id(), rx)));
    child
}

type Lines = std::sync::mpsc::Receiver<Vec<String>>;

thread_local! {
    static OUTPUTS: std::cell::RefCell<Vec<(u32, Lines)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Waits for `child` and returns its status and the rest of its output.
fn finish(mut child: Child) -> (std::process::ExitStatus, String) {
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let rx = OUTPUTS.with(|o| {
        let mut o = o.borrow_mut();
        let at = o.iter().position(|(pid, _)| *pid == child.id()).unwrap();
        o.remove(at).1
    });
    let stdout = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default().join("\n");
    (status, format!("{stdout}\n--- stderr:\n{stderr}"))
}

/// `SIGKILL`s `child`.
fn kill(child: &mut Child) {
    child.kill().expect("kill the child");
}

/// What a reader child reported: read transactions, and distinct commits seen.
fn reader_report(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find_map(|l| l.split_once("reads ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no report in:\n{out}"));
    let mut words = line.split_whitespace().map(|w| w.parse::<u64>().unwrap());
    (words.next().unwrap(), words.next().unwrap())
}

/// Child: moves money between accounts, committing each transfer (some
/// batches with `Durability::None`), until its time is up or it is killed.
#[test]
#[ignore = "run by the parent tests"]
fn child_writer() {
    let path = env_path();
    // SAFETY: only this test's processes write the file, all through mmapkit-db.
    let db = unsafe { Database::open(&path) }.unwrap();
    let mut rng = Rng::new(std::env::var(STREAM).unwrap().parse().unwrap());
    println!("ready");
    let deadline = Instant::now() + Duration::from_secs_f64(env_secs());
    let mut commits = 0u64;
    while Instant::now() < deadline {
        let mut w = db.begin_write().unwrap();
        if rng.below(4) == 0 {
            w.set_durability(Durability::None);
        }
        let mut t = w.open_table("accounts").unwrap();
        for _ in 0..1 + rng.below(4) {
            let (from, to) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
            let balance = |t: &mmapkit_db::Table<'_, '_>, i| {
                u64::from_le_bytes(t.get(&account(i)).unwrap().unwrap().try_into().unwrap())
            };
            let amount = rng.below(balance(&t, from) + 1);
            let f = balance(&t, from) - amount;
            t.insert(&account(from), &f.to_le_bytes()).unwrap();
            let g = balance(&t, to) + amount;
            t.insert(&account(to), &g.to_le_bytes()).unwrap();
        }
        drop(t);
        // Rewrite some ballast, so that freed pages must wait for readers.
        let mut b = w.open_table("ballast").unwrap();
        let k = rng.below(2_000);
        b.insert(&k.to_be_bytes(), &[commits as u8; 200]).unwrap();
        drop(b);
        w.commit().unwrap();
        commits += 1;
    }
    println!("commits {commits}");
}

/// Child: read transactions one after another until its time is up, each
/// checking the total twice (the view must not change in between), some held
/// open for a while.
#[test]
#[ignore = "run by the parent tests"]
fn child_reader() {
    let path = env_path();
    // SAFETY: only this test's processes write the file, all through mmapkit-db.
    let db = unsafe { Database::builder().read_only(true).open(&path) }.unwrap();
    let mut rng = Rng::new(std::env::var(STREAM).unwrap().parse().unwrap());
    println!("ready");
    let deadline = Instant::now() + Duration::from_secs_f64(env_secs());
    let (mut reads, mut ids) = (0u64, std::collections::BTreeSet::new());
    while Instant::now() < deadline {
        let r = db.begin_read().unwrap();
        let t = r.open_table("accounts").unwrap();
        let view: Vec<&[u8]> = (0..ACCOUNTS).map(|i| t.get(&account(i)).unwrap().unwrap()).collect();
        let total: u64 = view.iter().map(|v| u64::from_le_bytes((*v).try_into().unwrap())).sum();
        assert_eq!(total, ACCOUNTS * START, "commit {}: the total changed", r.id());
        if rng.below(8) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(30)));
        }
        let again: Vec<&[u8]> = (0..ACCOUNTS).map(|i| t.get(&account(i)).unwrap().unwrap()).collect();
        assert_eq!(view, again, "commit {}: the view changed within one transaction", r.id());
        assert!(view.iter().zip(&again).all(|(a, b)| a == b), "the slices taken first changed");
        ids.insert(r.id());
        reads += 1;
    }
    assert!(db.check().unwrap().is_clean(), "check beside the writer");
    println!("reads {reads} {}", ids.len());
}

/// Child: holds read transactions, each for a while, until killed.
#[test]
#[ignore = "run by the parent tests"]
fn child_holding_reader() {
    let path = env_path();
    // SAFETY: only this test's processes write the file, all through mmapkit-db.
    let db = unsafe { Database::builder().read_only(true).open(&path) }.unwrap();
    let r = db.begin_read().unwrap();
    println!("ready");
    loop {
        let _held = db.begin_read().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let _ = &r;
    }
}

fn open(path: &Path) -> Database {
    // SAFETY: only this test's processes write the file, all through mmapkit-db.
    unsafe { Database::open(path) }.unwrap()
}

fn total(db: &Database) -> u64 {
    let r = db.begin_read().unwrap();
    let t = r.open_table("accounts").unwrap();
    (0..ACCOUNTS).map(|i| u64::from_le_bytes(t.get(&account(i)).unwrap().unwrap().try_into().unwrap())).sum()
}

#[test]
fn three_reader_processes_see_whole_unchanging_commits_while_a_writer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    make(&path);
    let writer = spawn("child_writer", &path, 3.0, 1);
    let readers: Vec<Child> = (0..3).map(|k| spawn("child_reader", &path, 2.5, 10 + k)).collect();
    for r in readers {
        let (status, out) = finish(r);
        assert!(status.success(), "a reader failed: {status:?}\n{out}");
        let (reads, commits) = reader_report(&out);
        println!("reader: {reads} read transactions over {commits} commits");
        assert!(commits > 1, "the reader saw the writer's commits: {out}");
    }
    let (status, out) = finish(writer);
    assert!(status.success(), "the writer failed: {status:?}\n{out}");
    let db = open(&path);
    assert_eq!(total(&db), ACCOUNTS * START);
    assert!(db.check().unwrap().is_clean());
}

#[test]
fn a_dead_readers_slot_is_reported_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.db");
    make(&path);
    let db = open(&path);
    let mut reader = spawn("child_holding_reader", &path, 60.0, 2);
    let pid = reader.id();
    let live = db.readers().unwrap();
    let slot = live.iter().find(|s| s.pid == pid).unwrap_or_else(|| panic!("no slot of {pid}: {live:?}"));
    assert!(slot.alive && slot.txn.is_some() && slot.readers >= 1, "{slot:?}");
    kill(&mut reader);
    let (status, _) = finish(reader);
    assert_eq!(status.signal(), Some(9));
    let after = db.readers().unwrap();
    let dead = after.iter().find(|s| s.pid == pid).unwrap_or_else(|| panic!("the slot went with the process"));
    assert!(!dead.alive, "{dead:?}");
    let cleared = db.clear_stale_readers().unwrap();
    assert_eq!(cleared.iter().map(|s| s.pid).collect::<Vec<_>>(), [pid]);
    assert!(db.readers().unwrap().iter().all(|s| s.pid != pid), "cleared");
}

#[test]
fn readers_killed_at_random_moments_do_not_keep_the_file_growing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kills.db");
    make(&path);
    let writer = spawn("child_writer", &path, 8.0, 3);
    let mut rng = Rng::new(4);
    for k in 0..12 {
        let mut reader = spawn("child_holding_reader", &path, 60.0, 20 + k);
        std::thread::sleep(Duration::from_millis(20 + rng.below(150)));
        kill(&mut reader);
        let (status, _) = finish(reader);
        assert_eq!(status.signal(), Some(9));
    }
    // The writer finds the dead slots and clears them; give it a moment.
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: only this test's processes write the file, all through mmapkit-db.
    let db = unsafe { Database::builder().read_only(true).open(&path) }.unwrap();
    // The pages in use (the file itself grows ahead in large steps).
    let len = || db.stats().unwrap().page_count;
    let (settled, t0) = (len(), Instant::now());
    let first = db.begin_read().unwrap().id();
    std::thread::sleep(Duration::from_millis(2500));
    let commits = db.begin_read().unwrap().id() - first;
    let grown = len();
    println!("{settled} pages in use, then {grown} pages {:?} and {commits} commits later", t0.elapsed());
    assert!(commits > 50, "the writer kept committing: {commits}");
    assert!(db.readers().unwrap().iter().all(|s| s.alive), "dead slots cleared: {:?}", db.readers().unwrap());
    assert!(grown <= settled + settled / 4, "the file kept growing: {settled} -> {grown} pages over {commits} commits");
    drop(db);
    let (status, out) = finish(writer);
    assert!(status.success(), "the writer failed: {status:?}\n{out}");
}

#[test]
fn a_writer_killed_at_random_moments_leaves_the_last_durable_commit_to_readers_and_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed-writer.db");
    make(&path);
    let readers: Vec<Child> = (0..3).map(|k| spawn("child_reader", &path, 4.0, 30 + k)).collect();
    let mut rng = Rng::new(5);
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed() < Duration::from_millis(3200) {
        let mut writer = spawn("child_writer", &path, 60.0, 40 + rounds);
        std::thread::sleep(Duration::from_millis(30 + rng.below(250)));
        kill(&mut writer);
        let (status, out) = finish(writer);
        assert_eq!(status.signal(), Some(9), "the writer was killed, not failed:\n{out}");
        rounds += 1;
    }
    for r in readers {
        let (status, out) = finish(r);
        assert!(status.success(), "a reader failed: {status:?}\n{out}");
    }
    let db = open(&path);
    assert_eq!(total(&db), ACCOUNTS * START);
    assert!(db.check().unwrap().is_clean(), "{rounds} writers killed");
    let mut w = db.begin_write().unwrap();
    w.open_table("accounts").unwrap().insert(&account(0), &START.to_le_bytes()).unwrap();
    w.commit().expect("the next writer commits");
    println!("{rounds} writers killed");
}
