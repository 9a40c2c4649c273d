//! A database file cut short under an open handle, after its values were
//! read: at every page boundary, every read (`get`, `range` both ways,
//! `first`, `last`, opening tables) gives the stored bytes or
//! [`Error::Fault`], nothing else: never zeros as a value, never a
//! "corrupt page" for what is a lost one. Keys and values of one page and of
//! many pages (overflow runs) are both covered.
//!
//! A cut inside a page (the OS page can be larger than a database page, and
//! the kernel reads zeros for the rest of the OS page the cut falls in) gives
//! the stored bytes, a fault, or a corruption error that names the file's
//! new length; never `Ok(None)` or other bytes.
//!
//! The sweeps run in child processes (an `#[ignore]`d test of this binary),
//! so that a guard that fails kills the child, not the test runner.

mod support;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use mmapkit_db::{Database, Error, PAGE_SIZE};
use support::Rng;

type Model = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A database of two tables: small entries (many to a leaf), and values of
/// one to seventeen pages (overflow runs), with keys from 1 byte to 1 KiB.
fn build(path: &Path) -> Model {
    let mut rng = Rng::new(0x7c0f_fee5);
    let mut model = Model::new();
    // SAFETY: a private temporary file that nothing else touches.
    let db = unsafe { Database::create(path) }.unwrap();
    let mut txn = db.begin_write().unwrap();
    {
        let small = model.entry("small".into()).or_default();
        let mut table = txn.open_table("small").unwrap();
        for i in 0..600u32 {
            let key = format!("key-{i:05}-{}", "k".repeat((i % 40) as usize)).into_bytes();
            let value = rng.bytes(1 + (i as usize * 37) % 300);
            table.insert(&key, &value).unwrap();
            small.insert(key, value);
        }
    }
    {
        let large = model.entry("large".into()).or_default();
        let mut table = txn.open_table("large").unwrap();
        for i in 0..40usize {
            let key = rng.bytes(1 + (i * 131) % 1024);
            let len = [2_000, 4_000, 5_000, 16 << 10, 64 << 10][i % 5] + i;
            let value = rng.bytes(len);
            table.insert(&key, &value).unwrap();
            large.insert(key, value);
        }
    }
    txn.commit().unwrap();
    model
}

/// Reads every entry of `model` from `db`, checking each; panics on a
/// mismatch. Before a cut, everything must be there.
fn read_all(db: &Database, model: &Model) {
    let read = db.begin_read().unwrap();
    for (name, entries) in model {
        let table = read.open_table(name).unwrap();
        for (key, value) in entries {
            assert_eq!(table.get(key).unwrap(), Some(&value[..]), "{name}: {key:?} before the cut");
        }
    }
}

/// How the reads after the cuts ended.
#[derive(Default)]
struct Outcome {
    /// Reads that gave the stored bytes.
    good: u64,
    /// Reads that gave `Error::Fault`, or (for a cut inside a page) the
    /// corruption error naming the file's new length.
    faults: u64,
    /// Whether a cut may fall inside a page.
    inside_pages: bool,
    /// Reads that gave other bytes as `Ok`.
    wrong: u64,
    /// Reads that gave another error.
    other_errors: u64,
    /// The first few of those two kinds, described.
    examples: Vec<String>,
}

impl Outcome {
    /// Counts `result`: a value equal to `expected`, or a fault. Anything else
    /// (other bytes, another error) is a failure, counted and described.
    fn check<T: std::fmt::Debug + PartialEq>(&mut self, what: &str, result: mmapkit_db::Result<T>, expected: T) {
        let failure = match result {
            Ok(got) if got == expected => {
                self.good += 1;
                return;
            }
            Err(Error::Fault { .. }) => {
                self.faults += 1;
                return;
            }
            Err(Error::Corrupt { what, .. }) if self.inside_pages && what.contains("it was cut while open") => {
                self.faults += 1;
                return;
            }
            Ok(got) => {
                self.wrong += 1;
                format!("{what}: Ok({}) where the file held {}", short(&got), short(&expected))
            }
            Err(other) => {
                self.other_errors += 1;
                format!("{what}: {other} (expected the stored bytes or a fault)")
            }
        };
        if self.examples.len() < 5 {
            self.examples.push(failure);
        }
    }
}

/// `value`'s debug form, cut to a readable length.
fn short(value: &dyn std::fmt::Debug) -> String {
    let full = format!("{value:?}");
    match full.char_indices().nth(100) {
        Some((at, _)) => format!("{}... ({} chars)", &full[..at], full.len()),
        None => full,
    }
}

/// Cuts the open database's file to `len` bytes, then reads everything
/// through every read path.
fn reads_after_cut(db: &Database, path: &Path, len: u64, model: &Model, out: &mut Outcome) {
    let read = db.begin_read().unwrap();
    let tables: Vec<_> = model.keys().map(|name| (name, read.open_table(name).unwrap())).collect();
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
    for (name, table) in &tables {
        let entries = &model[*name];
        for (key, value) in entries {
            out.check(&format!("{name}: get {}", short(key)), table.get(key), Some(&value[..]));
        }
        let forward: Vec<(&[u8], &[u8])> = entries.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        for (what, items) in
            [("range", table.range(..).collect::<Vec<_>>()), ("reverse range", table.range(..).rev().collect())]
        {
            let mut expected: Box<dyn Iterator<Item = &(&[u8], &[u8])>> =
                if what == "range" { Box::new(forward.iter()) } else { Box::new(forward.iter().rev()) };
            for (i, item) in items.into_iter().enumerate() {
                // An entry past the stored ones compares against none, and fails.
                let want = expected.next().copied();
                out.check(&format!("{name}: {what} item {i}"), item.map(Some), want);
            }
        }
        out.check(&format!("{name}: first"), table.first(), forward.first().copied());
        out.check(&format!("{name}: last"), table.last(), forward.last().copied());
        let again = read.open_table(name).map(|t| t.len());
        out.check(&format!("{name}: open_table"), again, entries.len() as u64);
    }
    let names: Vec<String> = model.keys().cloned().collect();
    out.check("list_tables", read.list_tables(), names);
}

/// Runs the `#[ignore]`d test `child` of this binary in a child process and
/// checks that it reported success.
fn run_child(child: &str) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([child, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    assert!(stdout.contains("every cut held"), "{stdout}");
}

#[test]
fn a_file_cut_at_any_page_gives_the_stored_bytes_or_a_fault() {
    run_child("child_cut_at_every_page");
}

#[test]
fn a_file_cut_inside_a_page_gives_the_stored_bytes_or_an_error() {
    run_child("child_cut_inside_pages");
}

#[test]
#[ignore = "child process of a_file_cut_at_any_page_gives_the_stored_bytes_or_a_fault"]
fn child_cut_at_every_page() {
    sweep(|_| [0].into_iter().collect(), false);
}

#[test]
#[ignore = "child process of a_file_cut_inside_a_page_gives_the_stored_bytes_or_an_error"]
fn child_cut_inside_pages() {
    // Within each page: just past its start, past its header, in its middle,
    // near and at its last byte, and one place that moves from page to page.
    sweep(|page| [1, 40, 2048, PAGE_SIZE as u64 - 8, PAGE_SIZE as u64 - 1, 1 + page * 97 % 4000].into(), true);
}

/// Cuts a fresh copy of the database at `page * PAGE_SIZE + offset` for every
/// page and every offset `offsets(page)` gives, and reads everything after each cut.
fn sweep(offsets: impl Fn(u64) -> Vec<u64>, inside_pages: bool) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.db");
    let model = build(&base);
    let image = std::fs::read(&base).unwrap();
    let pages = image.len() as u64 / PAGE_SIZE as u64;
    let path = dir.path().join("cut.db");
    let mut out = Outcome { inside_pages, ..Outcome::default() };
    let mut cuts_wrong = 0;
    let cuts: Vec<u64> =
        (0..pages).flat_map(|page| offsets(page).into_iter().map(move |off| page * PAGE_SIZE as u64 + off)).collect();
    for &cut in &cuts {
        std::fs::remove_file(&path).ok();
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        file.write_all_at(&image, 0).unwrap();
        drop(file);
        // SAFETY: this test's own copy; the cut below is the breach under test.
        let db = unsafe { Database::open(&path) }.unwrap();
        read_all(&db, &model);
        let before = out.wrong + out.other_errors;
        reads_after_cut(&db, &path, cut, &model, &mut out);
        if out.wrong + out.other_errors > before {
            cuts_wrong += 1;
        }
    }
    println!(
        "{} cut points: {} reads gave the stored bytes, {} a fault, {} other bytes as Ok, {} another error; {cuts_wrong} cut points went wrong",
        cuts.len(),
        out.good,
        out.faults,
        out.wrong,
        out.other_errors
    );
    assert_eq!(cuts_wrong, 0, "the first failures:\n{}", out.examples.join("\n"));
    assert!(out.faults > 0 && out.good > 0, "the sweep must see both outcomes");
    println!("every cut held");
}

#[test]
fn a_damaged_page_before_a_cut_is_reported_as_corrupt_not_as_the_fault() {
    run_child("child_damage_before_a_cut");
}

#[test]
#[ignore = "child process of a_damaged_page_before_a_cut_is_reported_as_corrupt_not_as_the_fault"]
fn child_damage_before_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    let marker = b"early-table-key";
    {
        // SAFETY: a private temporary file that nothing else touches.
        let db = unsafe { Database::create(&path) }.unwrap();
        let mut txn = db.begin_write().unwrap();
        txn.open_table("early").unwrap().insert(marker, b"early value").unwrap();
        txn.commit().unwrap();
        let mut txn = db.begin_write().unwrap();
        {
            let mut late = txn.open_table("late").unwrap();
            for i in 0..64u32 {
                late.insert(&i.to_be_bytes(), &vec![i as u8; 3 * PAGE_SIZE]).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let image = std::fs::read(&path).unwrap();
    let pages = image.len() / PAGE_SIZE;
    let leaf = (2..pages)
        .find(|&p| {
            let page = &image[p * PAGE_SIZE..(p + 1) * PAGE_SIZE];
            page[8] == 1 && page.windows(marker.len()).any(|w| w == marker)
        })
        .expect("the early table's leaf");
    assert!(leaf < pages / 2, "the early table's leaf is page {leaf} of {pages}");
    // SAFETY: this test's own file; the damage and the cut below are the breaches under test.
    let db = unsafe { Database::open(&path) }.unwrap();
    let read = db.begin_read().unwrap();
    let (early, late) = (read.open_table("early").unwrap(), read.open_table("late").unwrap());
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(b"damage", (leaf * PAGE_SIZE + PAGE_SIZE - 64) as u64).unwrap();
    let cut = (pages - 8) * PAGE_SIZE;
    file.set_len(cut as u64).unwrap();
    let faults = (0..64u32).filter(|i| matches!(late.get(&i.to_be_bytes()), Err(Error::Fault { .. }))).count();
    assert!(faults > 0, "no read of the late table faulted after the cut at byte {cut}");
    match early.get(marker) {
        Err(Error::Corrupt { page, .. }) => assert_eq!(page, leaf as u64),
        other => panic!("page {leaf}, damaged before the cut at byte {cut}, read as {other:?}"),
    }
    println!("every cut held");
}
