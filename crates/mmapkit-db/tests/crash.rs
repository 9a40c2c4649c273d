//! Crash safety with real processes: a child process (this test binary run
//! again in the child role) writes transactions in a loop and is killed with
//! SIGKILL at a random moment; the parent then opens the file, checks it, and
//! verifies that it holds exactly the state after one transaction, no earlier
//! than the last one the child reported as committed.
//!
//! Transaction `k` is a fixed function of `k` (see [`changes`]), so the parent
//! knows the state after any `k` without being told. The same file is used by
//! every round: each child continues from what the last one left.
//!
//! `MMAPKIT_DB_CRASH_SEED` replays a run; `MMAPKIT_DB_CRASH_ROUNDS` sets the
//! number of rounds (default 150).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mmapkit_db::{Database, Durability, Error, PAGE_SIZE, WriteTransaction};
use support::{Rng, Tables};

/// The database file, for the child.
const PATH_ENV: &str = "MMAPKIT_DB_CRASH_PATH";
/// Transaction `k` is durable when `k % N == 0`; the others use `Durability::None`.
const EVERY_ENV: &str = "MMAPKIT_DB_CRASH_DURABLE_EVERY";
/// The child test's name.
const CHILD: &str = "crash_child";
/// Prefix of the child's report lines (the test harness may print on the same line before it).
const MARK: &str = "crash-child: ";

const MAIN: &str = "main";
const AUX: &str = "aux";
/// Holds the id of the last transaction in the state, as decimal text.
const META_KEY: &[u8] = b"meta";

/// One change of a transaction.
enum Change {
    Put(&'static str, Vec<u8>, Vec<u8>),
    Del(&'static str, Vec<u8>),
    CreateTable(&'static str),
    DropTable(&'static str),
}

fn own_key(k: u64) -> Vec<u8> {
    format!("k{k:08}").into_bytes()
}

/// A value that names the transaction that wrote it, `len` bytes in all.
fn value(k: u64, slot: u64, len: usize) -> Vec<u8> {
    let mut v = format!("k={k} slot={slot};").into_bytes();
    let rest = len.saturating_sub(v.len());
    v.extend(support::bytes(k * 64 + slot, rest));
    v
}

/// Transaction `k`: its own key (every 7th value over 2 KiB, every 50th about
/// 100 KiB: overflow runs), five shared keys all rewritten with `k` (one now
/// and then large), removals of older transactions' keys, a second table
/// created and deleted every 20 transactions, and the `meta` key set to `k`.
fn changes(k: u64) -> Vec<Change> {
    use Change::*;
    let mut c = Vec::new();
    let len = if k.is_multiple_of(50) {
        100 * 1024 + (k % 13) as usize * 97
    } else if k.is_multiple_of(7) {
        2100 + (k % 5) as usize * 1000
    } else {
        8 + (k % 40) as usize * 5
    };
    c.push(Put(MAIN, own_key(k), value(k, 0, len)));
    for i in 0..5u64 {
        let len = if (k + i).is_multiple_of(11) { 3000 + i as usize * 500 } else { 16 + ((k * 7 + i) % 200) as usize };
        c.push(Put(MAIN, format!("shared{i}").into_bytes(), value(k, i + 1, len)));
    }
    if k > 20 {
        c.push(Del(MAIN, own_key(k - 20)));
    }
    if k.is_multiple_of(3) && k > 7 {
        c.push(Del(MAIN, own_key(k - 7)));
    }
    match k % 20 {
        5 => c.push(CreateTable(AUX)),
        15 => c.push(DropTable(AUX)),
        _ => {}
    }
    if (5..15).contains(&(k % 20)) {
        c.push(Put(AUX, format!("a{}", k % 4).into_bytes(), value(k, 9, 40)));
    }
    if k % 20 == 10 {
        c.push(Del(AUX, b"a1".to_vec()));
    }
    c.push(Put(MAIN, META_KEY.to_vec(), k.to_string().into_bytes()));
    c
}

/// Applies transaction `k` to the model.
fn apply_to_model(model: &mut Tables, k: u64) {
    for change in changes(k) {
        match change {
            Change::Put(t, key, v) => {
                model.entry(t.to_string()).or_default().insert(key, v);
            }
            Change::Del(t, key) => {
                model.entry(t.to_string()).or_default().remove(&key);
            }
            Change::CreateTable(t) => {
                model.entry(t.to_string()).or_default();
            }
            Change::DropTable(t) => {
                assert!(model.remove(t).is_some(), "transaction {k} deletes table {t:?}, which the model lacks");
            }
        }
    }
}

/// Applies transaction `k` to the database.
fn apply_to_db(txn: &mut WriteTransaction<'_>, k: u64) -> mmapkit_db::Result<()> {
    for change in changes(k) {
        match change {
            Change::Put(t, key, v) => txn.open_table(t)?.insert(&key, &v)?,
            Change::Del(t, key) => {
                txn.open_table(t)?.remove(&key)?;
            }
            Change::CreateTable(t) => {
                txn.open_table(t)?;
            }
            Change::DropTable(t) => assert!(txn.delete_table(t)?, "transaction {k}: table {t:?} was not there"),
        }
    }
    Ok(())
}

/// The id of the last transaction in the newest commit (0 for a new database).
fn last_k(db: &Database) -> Result<u64, String> {
    let read = db.begin_read().map_err(|e| e.to_string())?;
    let table = match read.open_table(MAIN) {
        Ok(t) => t,
        Err(Error::TableNotFound(_)) => return Ok(0),
        Err(e) => return Err(e.to_string()),
    };
    match table.get(META_KEY).map_err(|e| e.to_string())? {
        None => Err("table main has no meta key".into()),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("meta key holds {}", support::show(v))),
    }
}

/// The first durable transaction after `k`.
fn next_durable(k: u64, every: u64) -> u64 {
    (k / every + 1) * every
}

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}{line}").expect("child: write to stdout");
    out.flush().expect("child: flush stdout");
}

/// The child role: continues the transaction sequence from the file's last
/// one, reporting each durable commit once `commit` has returned, until killed.
#[test]
#[ignore = "child role of killed_writers_leave_a_committed_state; runs only through it"]
fn crash_child() {
    let path =
        std::env::var_os(PATH_ENV).map(PathBuf::from).expect("run through killed_writers_leave_a_committed_state");
    let every: u64 = std::env::var(EVERY_ENV).expect("durable-every").parse().expect("durable-every is a number");
    // SAFETY: the parent runs one child at a time and opens the file only after this one is reaped.
    let db = unsafe { Database::create(&path) }.unwrap_or_else(|e| panic!("child: open {}: {e}", path.display()));
    let start = last_k(&db).unwrap_or_else(|e| panic!("child: read the last transaction: {e}"));
    report(&format!("start {start}"));
    // A bound in case the parent died without killing this process.
    let deadline = Instant::now() + Duration::from_secs(30);
    for k in start + 1.. {
        assert!(Instant::now() < deadline, "child: not killed after 30 s");
        let mut txn = db.begin_write().unwrap_or_else(|e| panic!("child: begin transaction {k}: {e}"));
        let durable = k.is_multiple_of(every);
        if !durable {
            txn.set_durability(Durability::None);
        }
        apply_to_db(&mut txn, k).unwrap_or_else(|e| panic!("child: transaction {k}: {e}"));
        txn.commit().unwrap_or_else(|e| panic!("child: commit {k}: {e}"));
        if durable {
            report(&format!("committed {k}"));
        }
    }
}

/// Kills (SIGKILL) and reaps the child when dropped, so a failing parent leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one child printed: the transaction it started after, and the commits it reported.
#[derive(Debug, Default)]
struct Reports {
    start: Option<u64>,
    committed: Vec<u64>,
}

/// Parses the complete lines of the child's output (a line cut by the kill is ignored).
fn parse_reports(out: &str) -> Result<Reports, String> {
    let mut r = Reports::default();
    for line in out.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let Some(at) = line.find(MARK) else { continue };
        let rest = line[at + MARK.len()..].trim_end();
        let number = |s: &str| s.parse::<u64>().map_err(|_| format!("bad report line {line:?}"));
        if let Some(n) = rest.strip_prefix("start ") {
            r.start = Some(number(n)?);
        } else if let Some(n) = rest.strip_prefix("committed ") {
            r.committed.push(number(n)?);
        } else {
            return Err(format!("unknown report line {line:?}"));
        }
    }
    Ok(r)
}

fn child_command(path: &Path, every: u64) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current test binary"));
    cmd.args([CHILD, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(PATH_ENV, path)
        .env(EVERY_ENV, every.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[derive(Debug, Default)]
struct Totals {
    reported: u64,
    /// Rounds where the file held a commit the child had not reported (killed between commit and report).
    unreported_landed: u64,
    /// Rounds killed before the child had opened the database.
    before_start: u64,
    /// Rounds killed inside the very first create, leaving a file that is not a database.
    create_cut: u64,
}

#[test]
fn killed_writers_leave_a_committed_state() {
    let seed = support::seed("MMAPKIT_DB_CRASH_SEED");
    let rounds: u64 = std::env::var("MMAPKIT_DB_CRASH_ROUNDS").map_or(150, |s| s.parse().expect("rounds"));
    println!("crash test: seed {seed} (MMAPKIT_DB_CRASH_SEED={seed} replays it), {rounds} rounds");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.db");
    let began = Instant::now();

    // The state the parent has verified: after transaction `known`.
    let mut known = 0u64;
    let mut model = Tables::new();
    let mut totals = Totals::default();
    for round in 0..rounds {
        // Most rounds commit every transaction durably; some make only every
        // `every`-th durable (the others `Durability::None`).
        let every = if rng.one_in(4) { [2, 3, 5, 8][rng.below(4) as usize] } else { 1 };
        // Usually the delay (0-60 ms) runs from the child's "start" line (it
        // has the database open and is writing); sometimes it runs from the
        // spawn and is shorter (0-15 ms, about the child's start-up time), so
        // that the kill can land while the child opens (or creates) the file.
        let from_spawn = rng.one_in(8);
        let delay = Duration::from_micros(rng.below(if from_spawn { 15_001 } else { 60_001 }));
        let origin = if from_spawn { "spawn" } else { "start" };
        let ctx = format!("round {round} (seed {seed}, durable every {every}, kill {delay:?} after {origin})");

        let mut child = Killed(child_command(&path, every).spawn().expect("spawn the child"));
        let mut stdout = BufReader::new(child.0.stdout.take().expect("child stdout"));
        let mut stderr = child.0.stderr.take().expect("child stderr");
        let mut out = String::new();
        if !from_spawn {
            while !out.contains(&format!("{MARK}start ")) {
                if stdout.read_line(&mut out).expect("read the child's stdout") == 0 {
                    break; // It exited: the status check below says why.
                }
            }
        }
        std::thread::sleep(delay);
        child.0.kill().expect("kill the child");
        let status = child.0.wait().expect("reap the child");
        stdout.read_to_string(&mut out).expect("read the child's stdout");
        let mut err = String::new();
        stderr.read_to_string(&mut err).expect("read the child's stderr");
        assert_eq!(
            status.signal(),
            Some(9),
            "{ctx}: the child ended by itself ({status}) instead of being killed\nstdout:\n{out}\nstderr:\n{err}"
        );

        let reports = parse_reports(&out).unwrap_or_else(|e| panic!("{ctx}: {e}\nstdout:\n{out}"));
        if let Some(start) = reports.start {
            assert_eq!(
                start, known,
                "{ctx}: the child found transaction {start} in the file, the parent verified {known}"
            );
        } else {
            totals.before_start += 1;
        }
        // The durable transactions after `known`, in order, are what the child may report.
        let mut expected = Vec::new();
        let mut k = known;
        for _ in 0..reports.committed.len() {
            k = next_durable(k, every);
            expected.push(k);
        }
        assert_eq!(reports.committed, expected, "{ctx}: reported commits are not the durable ones after {known}");
        totals.reported += reports.committed.len() as u64;
        let last_reported = reports.committed.last().copied().unwrap_or(known);
        // The commit after the last report may have become durable before the
        // kill, with its report not yet written; nothing later can be there.
        let allowed = [last_reported, next_durable(last_reported, every)];

        // SAFETY: the child is dead and reaped; nothing else opens the file.
        let db = match unsafe { Database::open(&path) } {
            Ok(db) => db,
            // Killed inside the very first `create`: it never returned, so a
            // file with no complete meta page is acceptable, and only then.
            Err(e @ (Error::NotADatabase { .. } | Error::Io { .. }))
                if known == 0
                    && reports.start.is_none()
                    && std::fs::metadata(&path).map_or(0, |m| m.len()) < 2 * PAGE_SIZE as u64 =>
            {
                assert!(reports.committed.is_empty(), "{ctx}: commits reported but the file is not a database: {e}");
                if path.exists() {
                    std::fs::remove_file(&path).expect("remove the cut-short file");
                    totals.create_cut += 1;
                }
                continue;
            }
            Err(e) => panic!("{ctx}: the database does not open after the kill: {e}\nchild stdout:\n{out}"),
        };
        let problems = support::problems(&db);
        assert!(problems.is_empty(), "{ctx}: check finds {} problems:\n{}", problems.len(), problems.join("\n"));
        // A killed process loses nothing it wrote: its meta page follows the
        // pages it lists, so the newest meta page is whole, never passed over.
        assert_eq!(db.recovery(), None, "{ctx}: opening passed over a newer commit");
        let found = last_k(&db).unwrap_or_else(|e| panic!("{ctx}: cannot read the last transaction: {e}"));
        assert!(
            allowed.contains(&found),
            "{ctx}: the file holds transaction {found}; the last reported commit is {last_reported}, so only {allowed:?} may be there"
        );
        if found > last_reported {
            totals.unreported_landed += 1;
        }
        for k in known + 1..=found {
            apply_to_model(&mut model, k);
        }
        let got = support::dump(&db).unwrap_or_else(|e| panic!("{ctx}: reading the database: {e}"));
        assert!(got == model, "{ctx}: the file differs from the state after transaction {found}:\n{}", {
            support::diff(&got, &model)
        });
        support::point_lookups(&db, &model).unwrap_or_else(|e| panic!("{ctx}: after transaction {found}: {e}"));
        known = found;
    }
    let len = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "crash test: {rounds} rounds in {:?}, {} commits reported, reached transaction {known}, file {len} bytes, {totals:?}",
        began.elapsed(),
        totals.reported
    );
    assert!(
        totals.reported > 0,
        "seed {seed}: no child committed anything in {rounds} rounds: the test exercised nothing"
    );
}
