//! Damaged files: whatever happens to the bytes of a closed database (bit
//! flips, overwritten ranges, truncation, zeroed pages), opening it, checking
//! it, reading it and writing to it give results or errors, never a panic, a
//! crash or a hang. Where the damage is known to touch only bytes the format
//! does not use, or only a page the current commit uses, the outcome is
//! asserted exactly: an untouched state, or a check that names the page.
//!
//! A base database is built once per test process and copied for each case.
//! The property test and the truncation-under-a-reader test run in child
//! processes (`#[ignore]`d tests of this binary that their parent test starts),
//! so that a crash or a hang is reported as a failure of the parent with the
//! child's output, instead of killing the test runner.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;

use mmapkit_db::{Database, Error, PAGE_SIZE};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};
use support::Rng;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

const PAGE: u64 = PAGE_SIZE as u64;
/// Every case of the property test must finish within this.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);

// --- helpers -------------------------------------------------------------------

/// Table name → key → value.
type State = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// Opens an existing database file. Every file these tests open is a private
/// temporary copy, damaged only while it is closed, except in the
/// truncation-under-a-reader test, where the file shrinking under the open
/// handle is the behaviour under test (the crate documents truncation as
/// outside the contract: the fault guard turns it into errors).
fn open(path: &Path) -> mmapkit_db::Result<Database> {
    // SAFETY: no other process writes the file while it is open (see above for the one deliberate truncation).
    unsafe { Database::open(path) }
}

/// Creates (or opens) a database file.
fn create(path: &Path) -> Database {
    // SAFETY: a private temporary file that nothing else touches.
    unsafe { Database::create(path) }.expect("create the database")
}

fn describe(output: &Output) -> String {
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let skip = text.len().saturating_sub(20_000);
        let start = (skip..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        text[start..].to_string()
    };
    format!(
        "status {:?} (signal {:?})\n--- stdout (tail):\n{}\n--- stderr (tail):\n{}",
        output.status,
        output.status.signal(),
        tail(&output.stdout),
        tail(&output.stderr)
    )
}

/// Runs the `#[ignore]`d test `name` of this binary in a child process.
fn run_child(name: &str) -> Output {
    let exe = std::env::current_exe().expect("current test binary");
    Command::new(exe)
        .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("MMAPKIT_DB_TEST_CHILD", "1")
        .output()
        .expect("spawn the child test process")
}

fn assert_child_passed(name: &str, output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child test {name} failed (a signal means the engine crashed):\n{}",
        describe(output)
    );
}

/// Aborts the process with a message if it is not dropped within `limit`:
/// a hang in the engine must fail the test, not stall it.
struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn new(limit: Duration, what: String) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("WATCHDOG: no result after {limit:?}, the engine hangs on: {what}");
                std::process::abort();
            }
        });
        Watchdog { done: Some(tx), thread: Some(thread) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Asserts that `e` is an error a damaged file may give, with a message that
/// says what it concerns (the file, or the table).
#[track_caller]
fn assert_expected_error(e: &Error, path: &Path, context: &str) {
    let message = e.to_string();
    assert!(!message.is_empty(), "{context}: empty error message for {e:?}");
    match e {
        Error::Corrupt { .. } | Error::Fault { .. } | Error::NotADatabase { .. } | Error::Poisoned { .. } => {
            let shown = path.display().to_string();
            assert!(message.contains(&shown), "{context}: the message does not name the file {shown}: {message}");
        }
        Error::TableNotFound(name) => {
            assert!(message.contains(name.as_str()), "{context}: the message does not name the table: {message}")
        }
        other => panic!("{context}: unexpected kind of error for a damaged file: {other:?} ({message})"),
    }
}

// --- the base database -----------------------------------------------------------

/// One meta record as the format defines it (see `meta.rs`).
#[derive(Clone, Copy, Debug)]
struct MetaRec {
    txn: u64,
    freelist: u64,
    page_count: u64,
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Bytes of a meta record before its list of written pages.
const META_LEN: usize = 72;
/// Bytes per entry of that list: first page, checksum.
const LISTED: usize = 16;

/// Decodes the meta record in `slot`: the record, its length in bytes and the
/// pages (or first pages of runs) it lists as written by its commit.
fn meta_at(bytes: &[u8], slot: usize) -> Option<(MetaRec, usize, Vec<u64>)> {
    let b = &bytes[slot * PAGE_SIZE..(slot + 1) * PAGE_SIZE];
    let listed = u32::from_le_bytes(b[56..60].try_into().unwrap()) as usize;
    if &b[..8] != b"MMAPKVDB" || META_LEN + LISTED * listed > PAGE_SIZE {
        return None;
    }
    let record = &b[..META_LEN + LISTED * listed];
    (le64(b, 64) == meta_checksum(record)).then(|| {
        let meta = MetaRec { txn: le64(b, 16), freelist: le64(b, 32), page_count: le64(b, 40) };
        (meta, record.len(), (0..listed).map(|i| le64(b, META_LEN + LISTED * i)).collect())
    })
}

/// A meta record's checksum: bytes 0..64 and the list after the checksum field.
fn meta_checksum(record: &[u8]) -> u64 {
    let mut sum = Xxh3::new();
    sum.update(&record[..64]);
    sum.update(&record[META_LEN..]);
    sum.digest()
}

/// Makes the unit of pages at `unit` carry the checksum of its (edited)
/// contents again, in its header and, if the newest commit lists it, in the
/// meta record too: a well-formed file whose contents are wrong.
fn reseal(bytes: &mut [u8], layout: &Layout, unit: u64) {
    let pages = layout.unit_of.range(unit..).take_while(|&(_, &u)| u == unit).count() as u64;
    let run = &mut bytes[(unit * PAGE) as usize..((unit + pages) * PAGE) as usize];
    let sum = xxh3_64(&run[8..]);
    run[..8].copy_from_slice(&sum.to_le_bytes());
    if let Some(i) = layout.written.iter().position(|&p| p == unit) {
        let meta = layout.current_slot * PAGE_SIZE;
        let at = meta + META_LEN + LISTED * i + 8;
        bytes[at..at + 8].copy_from_slice(&sum.to_le_bytes());
        let record_sum = meta_checksum(&bytes[meta..meta + layout.current_len]);
        bytes[meta + 64..meta + 72].copy_from_slice(&record_sum.to_le_bytes());
    }
}

fn checksum_ok(bytes: &[u8]) -> bool {
    le64(bytes, 0) == xxh3_64(&bytes[8..])
}

/// Where things are in a clean file: which pages the current commit uses
/// (grouped into the units a checksum covers: a node, a free-list page, a
/// whole overflow run) and which are free.
#[derive(Debug)]
struct Layout {
    current_slot: usize,
    current: MetaRec,
    /// Bytes of the newest meta record.
    current_len: usize,
    /// First pages of the units the newest commit wrote (and opening
    /// verifies), in the order its meta record lists them.
    written: Vec<u64>,
    previous: MetaRec,
    /// Used pages: page → first page of the unit holding it.
    unit_of: BTreeMap<u64, u64>,
    /// Pages on the free list.
    free: BTreeSet<u64>,
}

impl Layout {
    fn parse(bytes: &[u8]) -> Layout {
        let (m0, m1) = (meta_at(bytes, 0).expect("meta 0"), meta_at(bytes, 1).expect("meta 1"));
        let (current_slot, (current, current_len, written), (previous, ..)) =
            if m0.0.txn > m1.0.txn { (0, m0, m1) } else { (1, m1, m0) };
        assert_eq!(bytes.len() as u64, current.page_count * PAGE, "a closed database ends at its page count");
        let page = |n: u64| &bytes[(n * PAGE) as usize..((n + 1) * PAGE) as usize];
        let mut free = BTreeSet::new();
        let mut next = current.freelist;
        while next != 0 {
            let p = page(next);
            assert!(checksum_ok(p) && p[8] == 4, "free-list page {next}");
            let count = u16::from_le_bytes([p[10], p[11]]) as usize;
            for i in 0..count {
                let (start, len) = (le64(p, 32 + 16 * i), le64(p, 40 + 16 * i));
                free.extend(start..start + len);
            }
            next = le64(p, 24);
        }
        let mut unit_of = BTreeMap::new();
        let mut n = 2;
        while n < current.page_count {
            if free.contains(&n) {
                n += 1;
                continue;
            }
            let p = page(n);
            let len = match p[8] {
                1 | 2 | 4 => 1,
                3 => le64(p, 24),
                kind => panic!("used page {n} has kind {kind}"),
            };
            let unit = &bytes[(n * PAGE) as usize..((n + len) * PAGE) as usize];
            assert!(checksum_ok(unit), "used unit at page {n} ({len} pages) fails its checksum");
            for q in n..n + len {
                assert!(!free.contains(&q), "page {q} of the run at {n} is also free");
                unit_of.insert(q, n);
            }
            n += len;
        }
        for p in &written {
            assert_eq!(unit_of.get(p), Some(p), "the newest commit lists page {p} as written");
        }
        Layout { current_slot, current, current_len, written, previous, unit_of, free }
    }

    /// Byte ranges no reader of the current commit looks at: the meta page
    /// after the newest record, the other meta page, and the free pages.
    fn unused_ranges(&self) -> Vec<(u64, u64)> {
        let (current, other) = (self.current_slot as u64, 1 - self.current_slot as u64);
        let record = self.current_len as u64;
        let mut ranges = vec![(current * PAGE + record, PAGE - record), (other * PAGE, PAGE)];
        ranges.extend(self.free.iter().map(|&p| (p * PAGE, PAGE)));
        ranges
    }
}

struct Fixture {
    bytes: Vec<u8>,
    layout: Layout,
    /// The state of the newest commit.
    state: State,
    /// The state of the durable commit before it (what the other meta page holds).
    previous_state: State,
}

const MARKER: &[u8] = b"zz-final-marker";

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

/// A few tables, a few thousand keys, overflow values of 5–100 KiB, long keys,
/// an empty table, removed keys and a deleted table (so there are free pages
/// and free extents of several pages), written in durable commits.
fn build_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("base.db");
    let mut rng = Rng::new(0x00C0_FFEE);
    let mut state = State::new();
    let db = create(&path);
    let mut commit = |f: &mut dyn FnMut(&mut mmapkit_db::WriteTransaction<'_>, &mut State, &mut Rng)| {
        let mut txn = db.begin_write().unwrap();
        f(&mut txn, &mut state, &mut rng);
        txn.commit().unwrap();
    };
    fn put(txn: &mut mmapkit_db::WriteTransaction<'_>, state: &mut State, table: &str, k: Vec<u8>, v: Vec<u8>) {
        txn.open_table(table).unwrap().insert(&k, &v).unwrap();
        state.entry(table.to_string()).or_default().insert(k, v);
    }
    fn del(txn: &mut mmapkit_db::WriteTransaction<'_>, state: &mut State, table: &str, k: &[u8]) {
        assert!(txn.open_table(table).unwrap().remove(k).unwrap());
        state.get_mut(table).unwrap().remove(k);
    }
    commit(&mut |txn, state, rng| {
        for i in 0..2000 {
            let len = 10 + rng.below(190) as usize;
            put(txn, state, "alpha", format!("a{i:05}").into_bytes(), rng.bytes(len));
        }
    });
    commit(&mut |txn, state, rng| {
        for i in 0..1000 {
            let len = rng.below(600) as usize;
            put(txn, state, "beta", format!("b{i:05}").into_bytes(), rng.bytes(len));
        }
        for i in 0..20 {
            let mut key = format!("long{i:02}-").into_bytes();
            let len = 500 + rng.below(500) as usize;
            key.extend(rng.bytes(len));
            put(txn, state, "beta", key, rng.bytes(40));
        }
        for i in 0..300 {
            put(txn, state, "delta", format!("d{i:05}").into_bytes(), rng.bytes(300));
        }
        txn.open_table("epsilon").unwrap();
        state.insert("epsilon".into(), BTreeMap::new());
    });
    commit(&mut |txn, state, rng| {
        for i in 0..40 {
            let len = 5 * 1024 + rng.below(95 * 1024) as usize;
            put(txn, state, "gamma", format!("g{i:03}").into_bytes(), rng.bytes(len));
        }
        for i in 0..200 {
            put(txn, state, "gamma", format!("s{i:03}").into_bytes(), rng.bytes(50));
        }
    });
    commit(&mut |txn, state, _| {
        for i in (0..2000).step_by(3) {
            del(txn, state, "alpha", format!("a{i:05}").as_bytes());
        }
        for i in (0..40).step_by(3) {
            del(txn, state, "gamma", format!("g{i:03}").as_bytes());
        }
    });
    commit(&mut |txn, state, _| {
        assert!(txn.delete_table("delta").unwrap());
        state.remove("delta");
    });
    commit(&mut |txn, state, rng| {
        for i in (1..2000).step_by(10) {
            let len = 10 + rng.below(190) as usize;
            put(txn, state, "alpha", format!("a{i:05}").into_bytes(), rng.bytes(len));
        }
        for i in [1, 4, 10, 22, 35] {
            let len = 5 * 1024 + rng.below(95 * 1024) as usize;
            put(txn, state, "gamma", format!("g{i:03}").into_bytes(), rng.bytes(len));
        }
    });
    let previous_state = state.clone();
    let mut txn = db.begin_write().unwrap();
    txn.open_table("alpha").unwrap().insert(MARKER, b"the newest commit").unwrap();
    txn.commit().unwrap();
    state.get_mut("alpha").unwrap().insert(MARKER.to_vec(), b"the newest commit".to_vec());
    drop(db);

    let bytes = std::fs::read(&path).unwrap();
    let layout = Layout::parse(&bytes);
    assert_eq!(layout.current.txn, layout.previous.txn + 1);
    assert!(layout.free.len() > 10, "the base database should have free pages: {:?}", layout.free.len());
    Fixture { bytes, layout, state, previous_state }
}

/// A private copy of the base file (damaged by the caller); keeps its directory alive.
struct Copy {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn copy_with(bytes: &[u8]) -> Copy {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    std::fs::write(&path, bytes).unwrap();
    Copy { _dir: dir, path }
}

// --- what a database must hold ---------------------------------------------------

/// Asserts the database holds exactly `state`, through every read path.
fn assert_state(db: &Database, state: &State) {
    let read = db.begin_read().unwrap();
    let names: Vec<String> = state.keys().cloned().collect();
    assert_eq!(read.list_tables().unwrap(), names);
    for (name, entries) in state {
        let table = read.open_table(name).unwrap();
        assert_eq!(table.len(), entries.len() as u64, "table {name}");
        let forward: Vec<(&[u8], &[u8])> = table.range(..).collect::<Result<_, _>>().unwrap();
        assert!(forward.iter().copied().eq(entries.iter().map(|(k, v)| (&k[..], &v[..]))), "{name}");
        let backward: Vec<(&[u8], &[u8])> = table.range(..).rev().collect::<Result<_, _>>().unwrap();
        assert!(backward.iter().rev().eq(forward.iter()), "table {name} backwards");
        for (k, v) in entries {
            assert_eq!(table.get(k).unwrap(), Some(&v[..]), "table {name}");
        }
        let first = entries.iter().next().map(|(k, v)| (&k[..], &v[..]));
        let last = entries.iter().next_back().map(|(k, v)| (&k[..], &v[..]));
        assert_eq!(table.first().unwrap(), first);
        assert_eq!(table.last().unwrap(), last);
    }
}

/// What happened in one case, for the summary.
#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    open_failed: u64,
    clean: u64,
    unclean: u64,
    check_failed: u64,
    commits_ok: u64,
    commits_failed: u64,
}

/// Reads and writes a (possibly damaged) database every way there is,
/// accepting any result and any expected error, and returns whether the
/// write transaction committed.
/// Reads everything, writes a little and commits; returns whether the commit
/// succeeded. With `exact`, `state` is known to be the commit opened, and a
/// read that succeeds must return exactly its data: damage is an error, never
/// wrong bytes.
fn exercise(db: &Database, path: &Path, state: &State, exact: bool) -> bool {
    let err = |e: &Error, what: &str| assert_expected_error(e, path, what);
    let read = db.begin_read().unwrap();
    let mut names: BTreeSet<String> = state.keys().cloned().collect();
    match read.list_tables() {
        Ok(listed) => names.extend(listed),
        Err(e) => err(&e, "list_tables"),
    }
    for name in &names {
        let table = match read.open_table(name) {
            Ok(t) => t,
            Err(e) => {
                err(&e, "open_table");
                continue;
            }
        };
        let _ = table.len();
        for (key, value) in state.get(name).into_iter().flatten() {
            match table.get(key) {
                Err(e) => err(&e, "get"),
                Ok(got) if exact => assert!(got == Some(&value[..]), "get of {key:?} in {name} returned wrong data"),
                Ok(_) => {}
            }
        }
        for result in [table.first(), table.last()] {
            if let Err(e) = result {
                err(&e, "first/last");
            }
        }
        for item in table.range(..) {
            match item {
                Err(e) => err(&e, "range forwards"),
                Ok((k, v)) if exact => {
                    let want = state.get(name).and_then(|t| t.get(k));
                    assert!(want.is_some_and(|w| w == v), "range in {name} returned wrong data at {k:?}");
                }
                Ok(_) => {}
            }
        }
        for item in table.range(..).rev() {
            if let Err(e) = item {
                err(&e, "range backwards");
            }
        }
        let mut both = table.range(&b"a"[..]..&b"s1"[..]);
        while let Some(item) = both.next() {
            if let Err(e) = item {
                err(&e, "range from both ends");
            }
            if let Some(Err(e)) = both.next_back() {
                err(&e, "range from both ends");
            }
        }
    }
    drop(read);

    // A write transaction: inserts (one with an overflow value), removes,
    // replacements, a deleted table, then a commit.
    let mut committed = false;
    match db.begin_write() {
        Err(e) => err(&e, "begin_write"),
        Ok(mut txn) => {
            let mut step = || -> mmapkit_db::Result<()> {
                let mut t = txn.open_table("alpha")?;
                for i in 0..20u32 {
                    t.insert(format!("new{i:03}").as_bytes(), &[i as u8; 60])?;
                }
                t.insert(b"new-overflow", &[7u8; 10_000])?;
                for i in (2..60).step_by(6) {
                    t.remove(format!("a{i:05}").as_bytes())?;
                }
                t.insert(b"a00001", b"replaced")?;
                let _ = t.get(b"new005")?;
                drop(t);
                let mut g = txn.open_table("gamma")?;
                g.insert(b"g001", &[1u8; 3000])?;
                g.remove(b"g002")?;
                drop(g);
                txn.delete_table("beta")?;
                txn.list_tables()?;
                Ok(())
            };
            if let Err(e) = step() {
                err(&e, "write transaction");
            }
            match txn.commit() {
                Ok(()) => committed = true,
                Err(e) => err(&e, "commit"),
            }
        }
    }
    match db.check() {
        Ok(_) => {}
        Err(e) => err(&e, "check after the write transaction"),
    }
    committed
}

// --- the damage ------------------------------------------------------------------

/// Damage to a closed file. Positions are raw numbers reduced modulo the file
/// (or the chosen region) when applied, so that they shrink well.
#[derive(Clone, Debug)]
enum Damage {
    /// 1–20 bit flips anywhere.
    BitFlips(Vec<(u64, u8)>),
    /// A range of bytes overwritten with random ones.
    Overwrite { start: u64, len: u64, seed: u64 },
    /// The file cut to a length.
    Truncate(u64),
    /// One whole page zeroed.
    ZeroPage(u64),
    /// Bit flips inside one page the current commit uses.
    UsedPage { page: u64, flips: Vec<(u16, u8)> },
    /// Bytes of one used page set to chosen values, and its checksum made to
    /// match again: a well-formed file with wrong contents, which only the
    /// structural checks of reads, writes and `check` can catch.
    Resealed { page: u64, edits: Vec<(u16, u8)> },
    /// Bit flips only where no reader of the current commit looks.
    Unused(Vec<(u64, u8)>),
    /// A bit flip in the newest meta record.
    NewestMeta(u16, u8),
}

fn damage(len: u64) -> impl Strategy<Value = Damage> {
    let pages = len / PAGE;
    let flip = (0..len, 0u8..8);
    prop_oneof![
        4 => proptest::collection::vec(flip.clone(), 1..=20).prop_map(Damage::BitFlips),
        3 => (0..len, 1u64..3 * PAGE, any::<u64>()).prop_map(|(start, len, seed)| Damage::Overwrite { start, len, seed }),
        1 => (0..len).prop_map(Damage::Truncate),
        1 => (0..2 * PAGE).prop_map(Damage::Truncate),
        1 => ((2..pages), -3i64..=3).prop_map(|(p, d)| Damage::Truncate((p * PAGE).saturating_add_signed(d))),
        2 => (0..pages).prop_map(Damage::ZeroPage),
        4 => (any::<u64>(), proptest::collection::vec((0u16..PAGE as u16, 0u8..8), 1..=8))
            .prop_map(|(page, flips)| Damage::UsedPage { page, flips }),
        4 => (any::<u64>(), proptest::collection::vec((prop_oneof![8u16..96, 8u16..PAGE as u16], any::<u8>()), 1..=6))
            .prop_map(|(page, edits)| Damage::Resealed { page, edits }),
        2 => proptest::collection::vec((any::<u64>(), 0u8..8), 1..=20).prop_map(Damage::Unused),
        1 => (any::<u16>(), 0u8..8).prop_map(|(at, bit)| Damage::NewestMeta(at, bit)),
    ]
}

/// What the damage must lead to, where that is known.
#[derive(Debug)]
enum Expect {
    /// Anything but a panic, a crash or a hang; and a clean check means the
    /// data is exactly that of the commit checked (checksums cover it all).
    Anything,
    /// Anything but a panic, a crash or a hang: the checksums were made to
    /// match, so a clean check proves nothing about the values.
    Resealed,
    /// The untouched newest commit.
    Intact,
    /// The previous durable commit (the newest meta record is unreadable).
    Previous,
    /// Opening fails, or the check reports a problem with the unit at this page.
    Named(u64),
    /// A page the newest commit wrote is damaged: opening verifies those and
    /// falls back to the previous commit (as after a crash before the sync).
    FallBack,
}

fn apply(bytes: &mut Vec<u8>, damage: &Damage, layout: &Layout) -> Expect {
    let len = bytes.len() as u64;
    let flip = |bytes: &mut Vec<u8>, at: u64, bit: u8| bytes[at as usize] ^= 1 << bit;
    match damage {
        Damage::BitFlips(flips) => {
            for &(at, bit) in flips {
                flip(bytes, at % len, bit);
            }
            Expect::Anything
        }
        &Damage::Overwrite { start, len: n, seed } => {
            let end = (start + n).min(len);
            let mut rng = Rng::new(seed);
            for b in &mut bytes[start as usize..end as usize] {
                *b = rng.next_u64() as u8;
            }
            Expect::Anything
        }
        &Damage::Truncate(to) => {
            bytes.truncate(to.min(len) as usize);
            Expect::Anything
        }
        &Damage::ZeroPage(p) => {
            bytes[(p * PAGE) as usize..((p + 1) * PAGE) as usize].fill(0);
            Expect::Anything
        }
        Damage::UsedPage { page, flips } => {
            let used: Vec<u64> = layout.unit_of.keys().copied().collect();
            let p = used[(*page % used.len() as u64) as usize];
            let mut flipped = BTreeSet::new();
            for &(at, bit) in flips {
                // Flipping the same bit twice would undo it.
                if flipped.insert((at, bit)) {
                    flip(bytes, p * PAGE + u64::from(at), bit);
                }
            }
            let unit = layout.unit_of[&p];
            if layout.written.contains(&unit) { Expect::FallBack } else { Expect::Named(unit) }
        }
        Damage::Resealed { page, edits } => {
            let used: Vec<u64> = layout.unit_of.keys().copied().collect();
            let p = used[(*page % used.len() as u64) as usize];
            for &(at, value) in edits {
                bytes[(p * PAGE) as usize + at as usize] = value;
            }
            reseal(bytes, layout, layout.unit_of[&p]);
            Expect::Resealed
        }
        Damage::Unused(flips) => {
            let ranges = layout.unused_ranges();
            let total: u64 = ranges.iter().map(|r| r.1).sum();
            for &(at, bit) in flips {
                let mut at = at % total;
                for &(start, n) in &ranges {
                    if at < n {
                        flip(bytes, start + at, bit);
                        break;
                    }
                    at -= n;
                }
            }
            Expect::Intact
        }
        &Damage::NewestMeta(at, bit) => {
            let at = u64::from(at) % layout.current_len as u64;
            flip(bytes, layout.current_slot as u64 * PAGE + at, bit);
            Expect::Previous
        }
    }
}

/// Runs one case: damages a copy of the base file, then opens, checks, reads and writes it.
fn run_case(damage: &Damage, tally: &mut Tally) {
    let fx = fixture();
    let mut bytes = fx.bytes.clone();
    let expect = apply(&mut bytes, damage, &fx.layout);
    let copy = copy_with(&bytes);
    let path = &copy.path;
    let _watchdog = Watchdog::new(CASE_TIMEOUT, format!("{damage:?}"));
    tally.cases += 1;

    let db = match open(path) {
        Ok(db) => db,
        Err(e) => {
            tally.open_failed += 1;
            assert_expected_error(&e, path, "open");
            assert!(matches!(e, Error::NotADatabase { .. } | Error::Corrupt { .. }), "open of a damaged file: {e:?}");
            match expect {
                Expect::Anything | Expect::Resealed => {}
                Expect::Intact => panic!("damage to unused bytes made the file unopenable: {e}"),
                // The previous commit may need more pages than the closed file kept.
                Expect::Previous | Expect::FallBack => assert!(
                    fx.layout.previous.page_count * PAGE > bytes.len() as u64 && e.to_string().contains("truncated?"),
                    "with the newest meta record damaged, the previous commit should open: {e}"
                ),
                // Only a free-list page is read by open.
                Expect::Named(unit) => assert!(
                    matches!(&e, Error::Corrupt { page, .. } if *page == unit),
                    "open failed, but not naming the damaged page {unit}: {e}"
                ),
            }
            return;
        }
    };
    let report = match db.check() {
        Ok(report) => Some(report),
        Err(e) => {
            tally.check_failed += 1;
            assert_expected_error(&e, path, "check");
            None
        }
    };
    if let Some(report) = &report {
        if report.is_clean() {
            tally.clean += 1;
        } else {
            tally.unclean += 1;
        }
        for problem in &report.problems {
            assert!(!problem.what.is_empty(), "a problem without a description: {problem:?}");
        }
    }
    match expect {
        Expect::Anything | Expect::Resealed => {}
        Expect::Intact => {
            let report = report.as_ref().expect("check of a file with unused bytes damaged");
            assert!(report.is_clean(), "damage to unused bytes was reported: {:?}", report.problems);
            assert_eq!(report.txn, fx.layout.current.txn);
            assert_eq!(db.recovery(), None, "nothing to recover from");
        }
        Expect::Previous | Expect::FallBack => {
            let report = report.as_ref().expect("check of the previous commit");
            assert_eq!(report.txn, fx.layout.previous.txn, "the previous durable commit is the one opened");
            assert!(report.is_clean(), "the previous durable commit is damaged: {:?}", report.problems);
            // A damaged page of the newest commit is reported as what opening recovered from.
            if matches!(expect, Expect::FallBack) {
                let recovery = db.recovery().expect("opening passed over the newest commit: it says so");
                assert!(recovery.contains(&fx.layout.current.txn.to_string()), "{recovery}");
                assert_eq!(report.recovery.as_deref(), Some(recovery));
            }
        }
        Expect::Named(unit) => {
            let report = report.as_ref().expect("check of a file with one used page damaged");
            assert!(
                report.problems.iter().any(|p| p.page == Some(unit)),
                "bits flipped in the page unit at {unit}, but the check does not name it: {:?}",
                report.problems
            );
        }
    }
    // A clean check means the data is exactly that of the commit it checked.
    if let Some(report) = report.as_ref().filter(|r| r.is_clean() && !matches!(expect, Expect::Resealed)) {
        if report.txn == fx.layout.current.txn {
            assert_state(&db, &fx.state);
        } else if report.txn == fx.layout.previous.txn {
            assert_state(&db, &fx.previous_state);
        } else {
            panic!("a clean check of commit {}, which the file never had", report.txn);
        }
    }
    let state =
        if report.as_ref().is_some_and(|r| r.txn == fx.layout.previous.txn) { &fx.previous_state } else { &fx.state };
    let exact = matches!(expect, Expect::Named(_) | Expect::Intact | Expect::Previous | Expect::FallBack);
    let committed = exercise(&db, path, state, exact);
    if committed {
        tally.commits_ok += 1;
    } else {
        tally.commits_failed += 1;
    }
    if matches!(expect, Expect::Intact | Expect::Previous | Expect::FallBack) {
        assert!(committed, "a write to an intact commit failed");
        let report = db.check().unwrap();
        assert!(report.is_clean(), "after a write to an intact commit: {:?}", report.problems);
    }
    drop(db);
    // Whatever the writes did to the damaged file, it opens (or not) and checks without a panic.
    match open(path) {
        Ok(db) => {
            if let Err(e) = db.check() {
                assert_expected_error(&e, path, "check after reopening");
            }
            let _ = exercise(&db, path, state, false);
        }
        Err(e) => assert_expected_error(&e, path, "reopen after writing"),
    }
}

#[test]
fn damaged_files_give_errors_never_panics_crashes_or_hangs() {
    let output = run_child("child_damage_property");
    assert_child_passed("child_damage_property", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.lines().find(|l| l.starts_with("damage summary:")).unwrap_or("(no summary)");
    println!("{summary}");
}

#[test]
#[ignore = "child process of damaged_files_give_errors_never_panics_crashes_or_hangs"]
fn child_damage_property() {
    let cases: u32 = std::env::var("MMAPKIT_DB_DAMAGE_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let seed: u64 = std::env::var("MMAPKIT_DB_DAMAGE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_0001);
    let started = Instant::now();
    let fx = fixture();
    println!(
        "base database: {} bytes, {} pages, {} used, {} free, commit {} (previous {}); built in {:?}",
        fx.bytes.len(),
        fx.layout.current.page_count,
        fx.layout.unit_of.len(),
        fx.layout.free.len(),
        fx.layout.current.txn,
        fx.layout.previous.txn,
        started.elapsed()
    );
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let tally = std::cell::RefCell::new(Tally::default());
    let result = runner.run(&damage(fx.bytes.len() as u64), |damage| {
        eprintln!("case: {damage:?}");
        run_case(&damage, &mut tally.borrow_mut());
        Ok(())
    });
    let tally = tally.into_inner();
    println!("damage summary: seed {seed:#x}, {:?}, {:?}", tally, started.elapsed());
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, damage)) => panic!("seed {seed:#x}: minimal failing damage {damage:?}: {reason}"),
        Err(e) => panic!("seed {seed:#x}: {e}"),
    }
    assert!(tally.cases >= u64::from(cases), "ran {} of {cases} cases", tally.cases);
    // The mix of damage must reach every outcome, or the test tests less than it says.
    assert!(tally.open_failed > 0 && tally.clean > 0 && tally.unclean > 0, "{tally:?}");
}

// --- fixed cases -----------------------------------------------------------------------

#[test]
fn the_undamaged_base_checks_clean_and_holds_its_data() {
    let fx = fixture();
    let copy = copy_with(&fx.bytes);
    let db = open(&copy.path).unwrap();
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.txn, fx.layout.current.txn);
    assert_eq!(report.pages_free, fx.layout.free.len() as u64);
    assert_eq!(report.pages_in_use, fx.layout.unit_of.len() as u64);
    assert_state(&db, &fx.state);
}

#[test]
fn not_a_database_empty_and_short_files_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(42);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("random.bin", rng.bytes(100 * 1024), "magic"),
        ("empty.bin", Vec::new(), "empty"),
        ("short.bin", rng.bytes(100), "100 bytes"),
        ("zeros.bin", vec![0u8; 64 * 1024], "magic"),
    ];
    for (name, bytes, reason_has) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let e = open(&path).expect_err(name);
        let message = e.to_string();
        match &e {
            Error::NotADatabase { path: p, reason } => {
                assert_eq!(p, &path);
                assert!(reason.contains(reason_has), "{name}: {reason}");
            }
            other => panic!("{name}: expected NotADatabase, got {other:?}"),
        }
        assert!(message.contains(&path.display().to_string()), "{message}");
        // Refusing must not change the file.
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}");
    }
}

#[test]
fn both_meta_pages_damaged_is_not_a_database_and_says_why_for_each() {
    let fx = fixture();
    let mut bytes = fx.bytes.clone();
    bytes[20] ^= 0x10; // meta 0: checksum
    bytes[PAGE_SIZE..PAGE_SIZE + 8].copy_from_slice(b"NOTMAGIC"); // meta 1: magic
    let copy = copy_with(&bytes);
    let e = open(&copy.path).unwrap_err();
    let Error::NotADatabase { reason, .. } = &e else { panic!("expected NotADatabase, got {e:?}") };
    assert!(reason.contains("meta page 0") && reason.contains("meta page 1"), "{reason}");
    assert!(reason.contains("checksum") && reason.contains("magic"), "{reason}");
}

#[test]
fn a_truncated_file_falls_back_or_is_refused_with_the_sizes() {
    let fx = fixture();
    let copy = copy_with(&fx.bytes[..fx.bytes.len() - PAGE_SIZE]);
    match open(&copy.path) {
        // The previous commit fits in what is left: it is what opens, intact.
        Ok(db) => {
            assert!(fx.layout.previous.page_count * PAGE < fx.bytes.len() as u64);
            let report = db.check().unwrap();
            assert_eq!(report.txn, fx.layout.previous.txn);
            assert!(report.is_clean(), "{:?}", report.problems);
            assert_state(&db, &fx.previous_state);
        }
        Err(e) => {
            let Error::NotADatabase { reason, .. } = &e else { panic!("{e:?}") };
            assert!(reason.contains("truncated?") && reason.contains("meta page 0"), "{reason}");
        }
    }
}

/// The write transaction's table length comes from the catalog entry, which
/// reads trust. A catalog entry saying "0 entries" for a table that has some
/// (with the page's checksum made to match, so only `check` can tell) must
/// not make a removal panic.
#[test]
fn a_catalog_count_damaged_to_zero_then_a_removal_is_not_a_panic() {
    let fx = fixture();
    let mut bytes = fx.bytes.clone();
    // Find the catalog leaf entry for "alpha" and zero its entry count.
    let name = b"alpha";
    let at = (2..fx.layout.current.page_count)
        .filter(|p| fx.layout.unit_of.get(p) == Some(p))
        .find_map(|p| {
            let page = &bytes[(p * PAGE) as usize..((p + 1) * PAGE) as usize];
            if page[8] != 1 {
                return None;
            }
            // Leaf entry: key_len u16, flags u8, value_len u32, key, value (16 bytes: root, len).
            let mut entry = vec![name.len() as u8, 0, 0, 16, 0, 0, 0];
            entry.extend_from_slice(name);
            page.windows(entry.len()).position(|w| w == entry).map(|i| p * PAGE + (i + entry.len() + 8) as u64)
        })
        .expect("the catalog entry of table alpha");
    bytes[at as usize..at as usize + 8].fill(0);
    // Reseal the page: a well-formed file that lies, as a bug in a writer would leave it.
    reseal(&mut bytes, &fx.layout, at / PAGE);
    let copy = copy_with(&bytes);
    let db = open(&copy.path).unwrap();
    assert_eq!(db.recovery(), None, "the resealed file opens at its newest commit");
    assert_eq!(db.begin_read().unwrap().open_table("alpha").unwrap().len(), 0, "the damaged count is what reads see");
    let report = db.check().unwrap();
    assert!(
        report.problems.iter().any(|p| p.what.contains("alpha") && p.what.contains("entries")),
        "check must report the count that disagrees with the tree: {:?}",
        report.problems
    );
    let _watchdog = Watchdog::new(CASE_TIMEOUT, "removal from a table whose count says 0".into());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut txn = db.begin_write().unwrap();
        let mut t = txn.open_table("alpha").unwrap();
        t.remove(b"a00001")
    }));
    match outcome {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => assert_expected_error(&e, &copy.path, "removal"),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("removing a key from a table whose damaged catalog count is 0 panicked: {message}");
        }
    }
}

// --- truncation under a running reader -------------------------------------------------

#[test]
fn truncating_the_file_under_a_reader_gives_errors_not_sigbus() {
    let output = run_child("child_truncate_under_reader");
    assert_child_passed("child_truncate_under_reader", &output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("truncation handled"), "{}", describe(&output));
}

#[test]
#[ignore = "child process of truncating_the_file_under_a_reader_gives_errors_not_sigbus"]
fn child_truncate_under_reader() {
    let fx = fixture();
    let copy = copy_with(&fx.bytes);
    let path = &copy.path;
    let _watchdog = Watchdog::new(Duration::from_secs(60), "the truncation-under-a-reader test".into());
    let db = open(path).unwrap();
    let read = db.begin_read().unwrap();
    let gamma = read.open_table("gamma").unwrap();
    // The value stored nearest the end of the file.
    let (key, held) = fx.state["gamma"]
        .keys()
        .map(|k| (k.clone(), gamma.get(k).unwrap().unwrap()))
        .max_by_key(|(_, v)| v.as_ptr() as usize)
        .unwrap();
    assert_eq!(held, &fx.state["gamma"][&key][..]);
    // And the overflow value (a slice over several pages) stored nearest the end.
    let held_big = fx.state["gamma"]
        .iter()
        .filter(|(_, v)| v.len() > PAGE_SIZE)
        .map(|(k, _)| gamma.get(k).unwrap().unwrap())
        .max_by_key(|v| v.as_ptr() as usize)
        .unwrap();
    println!(
        "holding the value of {:?} ({} bytes), the one nearest the end",
        String::from_utf8_lossy(&key),
        held.len()
    );
    // Every table opened before the cut, to read through after it.
    let tables: Vec<_> = fx.state.keys().map(|name| (name, read.open_table(name).unwrap())).collect();

    // The deliberate breach of the contract under test: the file shrinks under the reader.
    OpenOptions::new().write(true).open(path).unwrap().set_len(2 * PAGE).unwrap();

    // The held slice's pages are gone: the fault guard makes them read as zeros, no SIGBUS.
    let zeros = held.iter().filter(|&&b| b == 0).count();
    println!("held slice after truncation: {zeros} of {} bytes zero", held.len());
    assert_eq!(zeros, held.len(), "a page cut from the file reads as zeros");
    assert!(held_big.iter().all(|&b| b == 0), "the pages of a {}-byte value cut from the file read as zeros", {
        held_big.len()
    });
    // A read that meets a lost page reports the fault, not a damaged page.
    let err = |e: Error, what: &str| {
        assert!(matches!(e, Error::Fault { .. }), "{what}: {e:?}");
        assert_expected_error(&e, path, what);
    };
    for (name, table) in &tables {
        for k in fx.state[*name].keys() {
            match table.get(k) {
                Err(e) => err(e, "get after truncation"),
                Ok(v) => panic!("get of {k:?} in {name} after its page was cut off returned {v:?}"),
            }
        }
        if !fx.state[*name].is_empty() {
            match table.range(..).next() {
                Some(Err(e)) => err(e, "range after truncation"),
                other => panic!("range over {name} after truncation: {other:?}"),
            }
            match table.range(..).next_back() {
                Some(Err(e)) => err(e, "reverse range after truncation"),
                other => panic!("reverse range over {name} after truncation: {other:?}"),
            }
            assert!(table.first().is_err() && table.last().is_err(), "first/last of {name} after truncation");
        }
    }
    for name in fx.state.keys() {
        match read.open_table(name) {
            Err(e) => err(e, "open_table after truncation"),
            Ok(_) => panic!("the catalog's page is gone, yet table {name} opened"),
        }
    }
    match gamma.get(&key) {
        Err(e) => err(e, "get of the held value after truncation"),
        Ok(v) => panic!("the held value's pages are gone, yet get returned {v:?}"),
    }
    // New transactions, the check and a write: errors or results, no crash.
    let again = db.begin_read().unwrap();
    match again.list_tables() {
        Err(e) => err(e, "list_tables in a new transaction"),
        Ok(names) => panic!("the catalog's page is gone, yet list_tables gave {names:?}"),
    }
    drop(again);
    match db.check() {
        Err(e) => err(e, "check after truncation"),
        Ok(report) => assert!(!report.is_clean(), "check after truncation found nothing"),
    }
    drop(tables);
    drop(read);
    if let Ok(mut txn) = db.begin_write() {
        let result = txn.open_table("alpha").and_then(|mut t| t.insert(b"after", b"truncation"));
        if let Err(e) = result {
            err(e, "insert after truncation");
        }
        if let Err(e) = txn.commit() {
            assert_expected_error(&e, path, "commit after truncation");
        }
    }
    drop(db);
    println!("truncation handled");
}
