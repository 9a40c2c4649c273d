//! A steady update workload keeps the file's size bounded: pages freed by
//! copy-on-write are reused once no reader and no durable commit needs them,
//! even with readers holding snapshots now and then.
//!
//! 1,000 keys, then 100,000 updates of those keys (a random key gets a new
//! random value of 100–300 bytes), 100 per commit, every commit durable. A
//! reader thread scans snapshots throughout, and every 100 commits the test
//! itself holds a snapshot across 5 commits and checks it did not change.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod support;

use mmapkit_db::Database;
use support::Rng;

const KEYS: u64 = 1_000;
const COMMITS: u64 = 1_000;
const UPDATES_PER_COMMIT: u64 = 100;
/// The end size may be at most this multiple of the size after the first round.
const MAX_RATIO: f64 = 3.0;

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// A value of 100–300 bytes that says which key and which commit wrote it.
fn value(rng: &mut Rng, i: u64, commit: u64) -> Vec<u8> {
    let len = 100 + rng.below(201) as usize;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&i.to_le_bytes());
    v.extend_from_slice(&commit.to_le_bytes());
    while v.len() < len {
        v.push(rng.next_u64() as u8);
    }
    v
}

fn open(path: &Path) -> Database {
    // SAFETY: a private temporary file; this process is its only user.
    unsafe { Database::create(path) }.expect("open the database")
}

/// Page count and file length.
fn sizes(db: &Database, path: &Path) -> (u64, u64) {
    (db.stats().unwrap().page_count, std::fs::metadata(path).unwrap().len())
}

#[test]
fn steady_updates_keep_the_file_size_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bounded.db");
    let db = open(&path);
    let mut rng = Rng::new(7);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let started = Instant::now();

    let mut txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table("t").unwrap();
        for i in 0..KEYS {
            let v = value(&mut rng, i, 0);
            t.insert(&key(i), &v).unwrap();
            model.insert(key(i), v);
        }
    }
    txn.commit().unwrap();
    let after_load = sizes(&db, &path);

    let done = AtomicBool::new(false);
    let reader_scans = AtomicU64::new(0);
    let mut after_first_round = (0, 0);
    let mut held_snapshots = 0;
    std::thread::scope(|s| {
        // A reader scanning snapshots throughout, pausing inside one now and then.
        s.spawn(|| {
            let mut n = 0u64;
            while !done.load(Ordering::SeqCst) {
                let read = db.begin_read().unwrap();
                let t = read.open_table("t").unwrap();
                assert_eq!(t.len(), KEYS);
                let mut count = 0;
                for item in t.range(..) {
                    let (k, v) = item.unwrap();
                    assert_eq!(k, key(u64::from_le_bytes(v[..8].try_into().unwrap())), "a value under another key");
                    assert!(u64::from_le_bytes(v[8..16].try_into().unwrap()) < read.id(), "a value from the future");
                    count += 1;
                }
                assert_eq!(count, KEYS);
                n += 1;
                if n.is_multiple_of(10) {
                    std::thread::sleep(Duration::from_millis(2));
                }
                drop(read);
                reader_scans.fetch_add(1, Ordering::Relaxed);
            }
        });

        let mut held = None;
        for c in 1..=COMMITS {
            // Every 100 commits, hold a snapshot across the next 5 and check it is unchanged.
            if c % 100 == 50 {
                held = Some((c + 5, db.begin_read().unwrap(), model.clone()));
            }
            if let Some((_, snapshot, expected)) = held.take_if(|(until, ..)| *until == c) {
                let t = snapshot.open_table("t").unwrap();
                let all: BTreeMap<Vec<u8>, Vec<u8>> =
                    t.range(..).map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect();
                assert!(all == expected, "a snapshot held across 5 commits changed");
                held_snapshots += 1;
            }
            let mut txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table("t").unwrap();
                for _ in 0..UPDATES_PER_COMMIT {
                    let i = rng.below(KEYS);
                    let v = value(&mut rng, i, c);
                    t.insert(&key(i), &v).unwrap();
                    model.insert(key(i), v);
                }
            }
            txn.commit().unwrap();
            if c * UPDATES_PER_COMMIT == KEYS {
                after_first_round = sizes(&db, &path);
            }
        }
        done.store(true, Ordering::SeqCst);
    });
    let at_end = sizes(&db, &path);
    let stats = db.stats().unwrap();
    let elapsed = started.elapsed();

    let ratio = at_end.0 as f64 / after_first_round.0 as f64;
    println!(
        "{COMMITS} durable commits of {UPDATES_PER_COMMIT} updates in {elapsed:?}; reader scans: {}; snapshots held: {held_snapshots}",
        reader_scans.load(Ordering::Relaxed)
    );
    println!("pages / file bytes after loading {KEYS} keys: {} / {}", after_load.0, after_load.1);
    println!("pages / file bytes after the first {KEYS} updates: {} / {}", after_first_round.0, after_first_round.1);
    println!("pages / file bytes after {} updates: {} / {}", COMMITS * UPDATES_PER_COMMIT, at_end.0, at_end.1);
    println!(
        "end / first round: {ratio:.2} (pages), {:.2} (bytes); end / load: {:.2} (pages); free {} + pending {} pages",
        at_end.1 as f64 / after_first_round.1 as f64,
        at_end.0 as f64 / after_load.0 as f64,
        stats.free_pages,
        stats.pending_pages
    );
    assert_eq!(held_snapshots, COMMITS / 100);
    assert!(reader_scans.load(Ordering::Relaxed) > 0);
    assert!(
        ratio <= MAX_RATIO,
        "the file grew from {} pages after the first round to {} pages after {} updates (ratio {ratio:.2})",
        after_first_round.0,
        at_end.0,
        COMMITS * UPDATES_PER_COMMIT
    );

    // The contents are the model's, the file checks clean, and closing gives back the free tail.
    let report = db.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    let read = db.begin_read().unwrap();
    let t = read.open_table("t").unwrap();
    for (k, v) in &model {
        assert_eq!(t.get(k).unwrap(), Some(&v[..]));
    }
    drop(read);
    drop(db);
    let closed = std::fs::metadata(&path).unwrap().len();
    assert!(closed <= at_end.0 * 4096 && closed.is_multiple_of(4096), "closed file of {closed} bytes");
    println!("closed file: {closed} bytes");
}

/// The file grows to the next whole MiB past its pages, never further: after
/// commits of every size, its length (as the file system reports it) holds
/// every page and at most a MiB more.
#[test]
fn the_file_is_at_most_a_mib_longer_than_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grown.db");
    // SAFETY: the file is this test's own, in its own directory.
    let db = unsafe { Database::create(&path) }.unwrap();
    let mut rng = Rng::new(11);
    let mut grown = 0;
    let mut last_len = 0;
    let batches = [1u64, 5, 300, 2_000, 40_000, 1, 7, 20_000, 3];
    for (commit, inserts) in batches.into_iter().cycle().take(30).enumerate() {
        let mut w = db.begin_write().unwrap();
        {
            let mut t = w.open_table("t").unwrap();
            for _ in 0..inserts {
                t.insert(&rng.next_u64().to_be_bytes(), &value(&mut rng, 0, commit as u64)).unwrap();
            }
        }
        w.commit().unwrap();
        let stats = db.stats().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let pages = stats.page_count * mmapkit_db::PAGE_SIZE as u64;
        assert_eq!(len, stats.file_bytes, "commit {commit}");
        assert!(len > pages && len <= pages + (1 << 20), "commit {commit}: {len} bytes for {pages} bytes of pages");
        assert_eq!(len % (1 << 20), 0, "commit {commit}: {len} bytes is not whole MiB");
        grown += u64::from(len > last_len);
        last_len = len;
    }
    assert!(grown > 5, "the file grew only {grown} times");
}
