//! Readers alongside a writer that grows the file by tens of MiB: every
//! snapshot a reader takes is one whole commit (never a mix of two), commits
//! appear in order, and a value slice taken early stays valid and unchanged
//! while the file grows and remaps underneath it.
//!
//! The writer commits generations 1..=300. Generation `g` sets every key of
//! table `small` to a value carrying `g`, inserts an overflow value `b{g}`
//! (20–180 KiB) into table `big`, now and then rewrites or removes an older
//! one, and records `gen = g` and the number of `big` entries in table
//! `meta`. What each generation holds is a function of `g` (see [`Model`]),
//! so a reader can check a whole snapshot against the generation it shows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mmapkit_db::{Database, ReadTransaction};

const GENERATIONS: u64 = 300;
const READERS: usize = 4;
const SMALL_KEYS: u64 = 200;
/// A pinned slice must have seen the file grow by at least this much.
const PIN_GROWTH: u64 = 12 << 20;

/// Key `b{j}` of table `big`, and what its value is when generation `w` wrote it.
fn big_key(j: u64) -> Vec<u8> {
    format!("b{j:04}").into_bytes()
}

fn big_len(j: u64, w: u64) -> usize {
    (20 + ((j * 7919 + w * 104_729) % 160) as usize) * 1024
}

/// The word the value repeats: which key, and which generation wrote it.
fn big_word(j: u64, w: u64) -> [u8; 8] {
    ((w << 32) | j).to_le_bytes()
}

fn big_value(j: u64, w: u64) -> Vec<u8> {
    big_word(j, w).repeat(big_len(j, w) / 8)
}

fn small_key(i: u64) -> Vec<u8> {
    format!("s{i:03}").into_bytes()
}

fn small_value(g: u64, i: u64) -> Vec<u8> {
    let mut v = g.to_le_bytes().to_vec();
    v.extend_from_slice(&i.to_le_bytes());
    v.extend(std::iter::repeat_n((g as u8) ^ (i as u8), 40));
    v
}

/// What generation `g` changes in table `big`: insert `g`, remove `g - 10`
/// when that is a multiple of 4, rewrite `g / 2` when `g` is a multiple of 5.
struct Step {
    insert: u64,
    remove: Option<u64>,
    rewrite: Option<u64>,
}

fn step(g: u64) -> Step {
    Step {
        insert: g,
        remove: g.checked_sub(10).filter(|&j| j > 0 && j.is_multiple_of(4)),
        rewrite: g.is_multiple_of(5).then_some(g / 2),
    }
}

/// For each generation, the `big` entries: key number → generation that wrote its value.
struct Model(Vec<BTreeMap<u64, u64>>);

impl Model {
    fn new() -> Model {
        let mut states = vec![BTreeMap::new()];
        for g in 1..=GENERATIONS {
            let mut s: BTreeMap<u64, u64> = states.last().unwrap().clone();
            let st = step(g);
            s.insert(st.insert, g);
            if let Some(j) = st.remove {
                s.remove(&j);
            }
            if let Some(j) = st.rewrite.filter(|j| s.contains_key(j)) {
                s.insert(j, g);
            }
            states.push(s);
        }
        Model(states)
    }
}

fn open(path: &Path) -> Database {
    // SAFETY: a private temporary file; this process is its only user.
    unsafe { Database::create(path) }.expect("open the database")
}

fn commit_generation(db: &Database, g: u64, model: &Model) {
    let mut txn = db.begin_write().unwrap();
    {
        let mut small = txn.open_table("small").unwrap();
        for i in 0..SMALL_KEYS {
            small.insert(&small_key(i), &small_value(g, i)).unwrap();
        }
    }
    {
        let mut big = txn.open_table("big").unwrap();
        let st = step(g);
        big.insert(&big_key(st.insert), &big_value(st.insert, g)).unwrap();
        if let Some(j) = st.remove {
            assert!(big.remove(&big_key(j)).unwrap(), "generation {g} removes b{j}");
        }
        if let Some(j) = st.rewrite
            && big.get(&big_key(j)).unwrap().is_some()
        {
            big.insert(&big_key(j), &big_value(j, g)).unwrap();
        }
        assert_eq!(big.len(), model.0[g as usize].len() as u64);
    }
    {
        let mut meta = txn.open_table("meta").unwrap();
        meta.insert(b"gen", &g.to_le_bytes()).unwrap();
        meta.insert(b"count", &(model.0[g as usize].len() as u64).to_le_bytes()).unwrap();
    }
    txn.commit().unwrap();
}

fn read_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("an 8-byte value"))
}

/// Checks that the snapshot is exactly generation `gen` of the model and
/// returns `gen`; `backwards` also scans table `big` from its end.
fn verify_snapshot(txn: &ReadTransaction<'_>, model: &Model, backwards: bool) -> u64 {
    let meta = txn.open_table("meta").unwrap();
    let g = read_u64(meta.get(b"gen").unwrap().expect("gen"));
    assert_eq!(txn.id(), g, "generation g is the database's commit g");
    let expected = &model.0[g as usize];
    assert_eq!(read_u64(meta.get(b"count").unwrap().expect("count")), expected.len() as u64, "count at gen {g}");

    let small = txn.open_table("small").unwrap();
    assert_eq!(small.len(), SMALL_KEYS);
    let mut i = 0;
    for item in small.range(..) {
        let (k, v) = item.unwrap();
        assert_eq!(k, small_key(i), "gen {g}");
        assert_eq!(v, small_value(g, i), "small key {i} at gen {g} (a value from another commit?)");
        i += 1;
    }
    assert_eq!(i, SMALL_KEYS, "entries of small at gen {g}");

    let big = txn.open_table("big").unwrap();
    assert_eq!(big.len(), expected.len() as u64, "len of big at gen {g}");
    let check = |k: &[u8], v: &[u8], j: u64, w: u64| {
        assert_eq!(k, big_key(j), "gen {g}");
        assert_eq!(v.len(), big_len(j, w), "length of b{j} at gen {g} (written by gen {w})");
        let word = big_word(j, w);
        assert!(v.chunks_exact(8).all(|c| c == word), "contents of b{j} at gen {g} (written by gen {w})");
    };
    let mut seen = 0;
    for (item, (&j, &w)) in big.range(..).zip(expected) {
        let (k, v) = item.unwrap();
        check(k, v, j, w);
        seen += 1;
    }
    assert_eq!(seen, expected.len(), "entries of big at gen {g}");
    assert_eq!(big.range(..).count(), expected.len(), "entries of big at gen {g}");
    if backwards {
        for (item, (&j, &w)) in big.range(..).rev().zip(expected.iter().rev()) {
            let (k, v) = item.unwrap();
            check(k, v, j, w);
        }
        let (&j, &w) = expected.iter().next_back().unwrap();
        let (k, v) = big.last().unwrap().unwrap();
        check(k, v, j, w);
    }
    g
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// What one reader saw.
#[derive(Debug)]
struct ReaderReport {
    scans: u64,
    generations: BTreeSet<u64>,
    pinned_at: u64,
    grown_while_pinned: u64,
}

fn reader(db: &Database, path: &Path, model: &Model, writer_done: &AtomicBool, id: usize) -> ReaderReport {
    let mut last = 0;
    let mut generations = BTreeSet::new();
    let mut scans = 0u64;
    let mut scan = |done_before: bool| {
        let txn = db.begin_read().unwrap();
        let g = verify_snapshot(&txn, model, scans % 2 == 1);
        assert!(g >= last, "reader {id}: generation {g} after {last}");
        if done_before {
            assert_eq!(g, GENERATIONS, "a snapshot begun after the last commit shows it");
        }
        last = g;
        generations.insert(g);
        scans += 1;
    };

    // A snapshot held while the writer grows the file: its slices must not move or change.
    let (pinned_at, grown_while_pinned) = {
        let pin = db.begin_read().unwrap();
        let pinned_at = verify_snapshot(&pin, model, false);
        let big = pin.open_table("big").unwrap();
        let small = pin.open_table("small").unwrap();
        let (big_slice, small_slice) = (big.first().unwrap().unwrap().1, small.get(b"s007").unwrap().unwrap());
        let (big_copy, small_copy) = (big_slice.to_vec(), small_slice.to_vec());
        let (&j, &w) = model.0[pinned_at as usize].iter().next().unwrap();
        assert_eq!(big_copy, big_value(j, w));
        let len_at_pin = file_len(path);
        while file_len(path) < len_at_pin + PIN_GROWTH && !writer_done.load(Ordering::SeqCst) {
            scan(false);
        }
        let grown = file_len(path) - len_at_pin;
        assert!(big_slice == big_copy, "reader {id}: a value slice changed while the file grew by {grown} bytes");
        assert!(small_slice == small_copy, "reader {id}: an inline value slice changed while the file grew");
        // The snapshot as a whole is still the one it was.
        assert_eq!(verify_snapshot(&pin, model, true), pinned_at);
        (pinned_at, grown)
    };
    loop {
        let done = writer_done.load(Ordering::SeqCst);
        scan(done);
        if done {
            break;
        }
    }
    ReaderReport { scans, generations, pinned_at, grown_while_pinned }
}

/// Sets the flag when dropped, so readers stop even if the writer panics.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn readers_see_whole_commits_in_order_while_the_writer_grows_the_file() {
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(600)) {
            eprintln!("WATCHDOG: the concurrency test did not finish in 600 s (deadlock?)");
            std::process::abort();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("concurrent.db");
    let model = Model::new();
    let db = open(&path);
    commit_generation(&db, 1, &model);
    let len_at_start = file_len(&path);
    let started = Instant::now();
    let writer_done = AtomicBool::new(false);

    let (writer_time, reports) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let _done = SetOnDrop(&writer_done);
            let t = Instant::now();
            for g in 2..=GENERATIONS {
                commit_generation(&db, g, &model);
            }
            t.elapsed()
        });
        let readers: Vec<_> = (0..READERS)
            .map(|id| {
                let (db, path, model, writer_done) = (&db, &path, &model, &writer_done);
                s.spawn(move || reader(db, path, model, writer_done, id))
            })
            .collect();
        let reports: Vec<ReaderReport> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        (writer.join().unwrap(), reports)
    });

    let len_at_end = file_len(&path);
    println!(
        "writer: {} commits in {writer_time:?}; file {} -> {} MiB; total {:?}",
        GENERATIONS - 1,
        len_at_start >> 20,
        len_at_end >> 20,
        started.elapsed()
    );
    let mut all = BTreeSet::new();
    for (id, r) in reports.iter().enumerate() {
        println!(
            "reader {id}: {} scans, {} distinct generations, pinned at gen {} while the file grew {} MiB",
            r.scans,
            r.generations.len(),
            r.pinned_at,
            r.grown_while_pinned >> 20
        );
        assert!(
            r.grown_while_pinned >= PIN_GROWTH,
            "reader {id}: the file grew only {} bytes while its slice was held",
            r.grown_while_pinned
        );
        assert!(r.generations.len() >= 5, "reader {id} saw only generations {:?}", r.generations);
        assert!(r.pinned_at < GENERATIONS, "reader {id} pinned its snapshot only after the writer finished");
        all.extend(r.generations.iter().copied());
    }
    assert!(all.len() >= 20, "the readers saw only {} distinct generations: little overlap", all.len());
    assert!(len_at_end >= len_at_start + (16 << 20), "the file grew only from {len_at_start} to {len_at_end} bytes");

    let report = db.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    drop(db);
    let db = open(&path);
    assert!(db.check().unwrap().is_clean());
    assert_eq!(verify_snapshot(&db.begin_read().unwrap(), &model, true), GENERATIONS);
    drop(db);
    drop(tx);
    watchdog.join().unwrap();
}
