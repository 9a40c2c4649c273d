//! The fault guard under concurrency: several threads read one guarded map
//! while its file is truncated, restored, extended and refreshed. Whatever the
//! interleaving, a read that returns `Ok` returns the file's bytes; a read
//! that met a lost page returns an error. Every file here only ever holds a
//! prefix of one known pattern (it is cut, and grown back by writing the
//! pattern), so "the file's bytes at some moment" is the pattern itself.
//!
//! Each test runs in a child process, so a guard that fails kills the child,
//! not the test runner.

mod common;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, RwLock};
use std::time::{Duration, Instant};

use common::{TestFile, assert_child_passed, pattern, pattern_byte, run_child};
use mmapkit::{ErrorKind, MapOptions};

const PAGE: usize = 4096;

/// Cuts `file` to `cut` bytes, then grows it back to `len` by writing the
/// pattern, so that no moment shows bytes other than a prefix of the pattern.
fn cut_and_restore(file: &File, cut: usize, len: usize) {
    file.set_len(cut as u64).unwrap();
    file.write_all_at(&pattern(len)[cut..], cut as u64).unwrap();
}

/// Whether `bytes`, read at `offset`, are the pattern's bytes there.
fn is_pattern(offset: usize, bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| b == pattern_byte((offset + i) as u64))
}

/// Whether the page at `addr` is mapped from a file (it is not the guard's
/// anonymous patch), as `/proc/self/maps` says; `false` where that cannot be
/// told, so the caller counts the read against the guard.
fn served_by_file(addr: usize) -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return false };
    maps.lines().any(|line| {
        let mut fields = line.split_ascii_whitespace();
        let range = fields.next().and_then(|r| r.split_once('-'));
        let Some((start, end)) =
            range.and_then(|(a, b)| Some((usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?)))
        else {
            return false;
        };
        // address, perms, offset, device, inode: a file's pages have an inode.
        (start..end).contains(&addr) && fields.nth(3).is_some_and(|inode| inode != "0")
    })
}

// --- readers racing the handler on the pages it patches -----------------------

#[test]
fn readers_of_pages_another_thread_faulted_never_get_zeros_as_ok() {
    assert_child_passed(&run_child("child_readers_race_the_handler", &[]));
}

/// Three threads read 16-byte ranges from the last pages of one map (through
/// `read_at` and `checked`) while a fourth cuts the file below them and
/// restores it, over many rounds (a fresh map each round, since a fault is
/// for good). When one reader faults, the others meet the pages the handler
/// is patching: every one of their reads must be the pattern or an error.
///
/// One thing is outside the guard's reach and is counted apart: a read of a
/// page that is still mapped from the file and yet returned zeros, with no
/// signal raised (seen on Linux 6.18 with ext4 under CPU load, a few reads
/// in tens of millions, while the file was written back over the cut). The
/// kernel gives no signal there, so no handler can know; a zero read from the
/// guard's own patch without a fault to report is still a failure.
#[test]
#[ignore = "child process of readers_of_pages_another_thread_faulted_never_get_zeros_as_ok"]
fn child_readers_race_the_handler() {
    const LEN: usize = 16 * PAGE;
    const READERS: usize = 3;
    let rounds: usize = std::env::var("MMAPKIT_RACE_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let tf = TestFile::new(LEN);
    let file = tf.open_rw();
    let wrong = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let good = AtomicU64::new(0);
    let kernel = AtomicU64::new(0);
    let mut first_wrong = None::<String>;
    let started = Instant::now();
    for round in 0..rounds {
        // SAFETY: the truncations below are what the guard is for; the file only ever holds a prefix of the pattern.
        let map = unsafe { MapOptions::new().len(LEN).map(&file) }.unwrap();
        let done = AtomicBool::new(false);
        let barrier = Barrier::new(READERS + 1);
        let seen = std::thread::scope(|s| {
            let readers: Vec<_> = (0..READERS)
                .map(|r| {
                    let (map, done, barrier, wrong, errors, good, kernel) =
                        (&map, &done, &barrier, &wrong, &errors, &good, &kernel);
                    s.spawn(move || {
                        barrier.wait();
                        let mut step = r;
                        let mut first = None;
                        // Read until the restore is done, and a little after.
                        let mut after = 64;
                        while after > 0 {
                            if done.load(Ordering::Acquire) {
                                after -= 1;
                            }
                            step = step.wrapping_mul(2_654_435_761).wrapping_add(r + 1);
                            let offset = LEN - 2 * PAGE + step % (2 * PAGE - 16);
                            let mut buf = [0u8; 16];
                            let outcome = if step % 2 == 0 {
                                map.read_at(offset, &mut buf).map(|()| buf).map_err(|e| e.to_string())
                            } else {
                                map.checked(|b| <[u8; 16]>::try_from(&b[offset..offset + 16]).unwrap())
                                    .map_err(|f| f.to_string())
                            };
                            match outcome {
                                Ok(bytes) if is_pattern(offset, &bytes) => good.fetch_add(1, Ordering::Relaxed),
                                // The page is still the file's, not the guard's patch: the kernel read
                                // zeros out and raised no signal, so there was nothing to catch.
                                Ok(_) if served_by_file(map.as_ptr() as usize + offset) => {
                                    kernel.fetch_add(1, Ordering::Relaxed)
                                }
                                Ok(bytes) => {
                                    let fault = map.fault();
                                    first.get_or_insert_with(|| {
                                        format!("Ok({bytes:?}) at offset {offset}; the map's fault now: {fault:?}")
                                    });
                                    wrong.fetch_add(1, Ordering::Relaxed)
                                }
                                Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                            };
                        }
                        first
                    })
                })
                .collect();
            barrier.wait();
            // Cut inside the last two pages, at a page boundary (a cut inside
            // a page leaves its tail reading zeros with no fault at all: that
            // is how mmap works, and not a thing a guard can see).
            let cut = LEN - PAGE * (1 + round % 2);
            cut_and_restore(&file, cut, LEN);
            done.store(true, Ordering::Release);
            readers.into_iter().filter_map(|h| h.join().unwrap()).next()
        });
        if first_wrong.is_none() {
            first_wrong = seen;
        }
    }
    let (wrong, errors, good, kernel) =
        (wrong.into_inner(), errors.into_inner(), good.into_inner(), kernel.into_inner());
    println!(
        "rounds={rounds} good={good} errors={errors} wrong={wrong} kernel_zeros_without_a_signal={kernel} in {:?}",
        started.elapsed()
    );
    assert!(errors > 0, "no read met a lost page: the race did not happen");
    assert_eq!(wrong, 0, "reads returned bytes that were never the file's as Ok; the first: {first_wrong:?}");
}

// --- random interleavings of cuts, growth, refreshes and reads -------------------

#[test]
fn any_interleaving_of_cuts_growth_refreshes_and_reads_returns_only_file_bytes() {
    assert_child_passed(&run_child("child_interleavings", &[]));
}

/// What a reader thread does, one step at a time.
#[derive(Clone, Copy, Debug)]
enum ReadOp {
    /// `read_at` of `len` bytes at `offset` (clipped to the map).
    ReadAt { offset: usize, len: usize },
    /// `checked` over a slice of `len` bytes at `offset` (clipped to the map).
    Checked { offset: usize, len: usize },
    /// Refresh (after a fault, or not), under the map's write lock.
    Refresh,
}

/// What the file's owner does.
#[derive(Clone, Copy, Debug)]
enum FileOp {
    /// Cut to `pages` whole pages, if the file is longer.
    Cut { pages: usize },
    /// Grow to `pages` whole pages by writing the pattern.
    Grow { pages: usize },
    /// Let the readers run.
    Pause { micros: u64 },
}

fn read_op() -> impl proptest::strategy::Strategy<Value = ReadOp> {
    use proptest::prelude::*;
    let span = (0..MAX_PAGES * PAGE, 1..3 * PAGE);
    prop_oneof![
        4 => span.clone().prop_map(|(offset, len)| ReadOp::ReadAt { offset, len }),
        4 => span.prop_map(|(offset, len)| ReadOp::Checked { offset, len }),
        1 => Just(ReadOp::Refresh),
    ]
}

fn file_op() -> impl proptest::strategy::Strategy<Value = FileOp> {
    use proptest::prelude::*;
    prop_oneof![
        (0..=MAX_PAGES).prop_map(|pages| FileOp::Cut { pages }),
        (0..=MAX_PAGES).prop_map(|pages| FileOp::Grow { pages }),
        (0u64..300).prop_map(|micros| FileOp::Pause { micros }),
    ]
}

const MAX_PAGES: usize = 12;

/// One case: a file of `start_pages` pages, maps made with and without an
/// explicit length at an offset, reader threads running their scripts in a
/// loop while the owner runs its own; every `Ok` must hold the pattern.
fn run_interleaving(
    start_pages: usize,
    offset_pages: usize,
    explicit_len: bool,
    readers: &[Vec<ReadOp>],
    owner: &[FileOp],
) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    file.write_all_at(&pattern(start_pages * PAGE), 0).unwrap();
    let offset = (offset_pages * PAGE) as u64;
    let mut options = MapOptions::new();
    options.offset(offset);
    if explicit_len {
        options.len((MAX_PAGES - offset_pages) * PAGE);
    }
    let map = loop {
        // SAFETY: the owner's cuts are what the guard is for; the file only ever holds a prefix of the pattern.
        match unsafe { options.map(&file) } {
            Ok(map) => break RwLock::new(map),
            Err(e) if matches!(e.kind(), ErrorKind::PastEndOfFile { .. }) => {
                // Too short for this map: make it long enough first.
                cut_and_restore(&file, file.metadata().unwrap().len() as usize, MAX_PAGES * PAGE);
            }
            Err(e) => return Err(format!("map: {e}")),
        }
    };
    let stop = AtomicBool::new(false);
    let origin = offset as usize;
    let result = std::thread::scope(|s| {
        let handles: Vec<_> = readers
            .iter()
            .map(|script| {
                let (map, stop, file) = (&map, &stop, &file);
                s.spawn(move || -> Result<u64, String> {
                    let mut oks = 0;
                    while !stop.load(Ordering::Acquire) {
                        for &op in script {
                            oks += u64::from(step(op, map, file, origin)?);
                        }
                    }
                    Ok(oks)
                })
            })
            .collect();
        for op in owner {
            match *op {
                FileOp::Cut { pages } => {
                    // Only ever down: growing with `set_len` would add holes, bytes the pattern does not hold.
                    if ((pages * PAGE) as u64) < file.metadata().unwrap().len() {
                        file.set_len((pages * PAGE) as u64).unwrap();
                    }
                }
                FileOp::Grow { pages } => {
                    let now = file.metadata().unwrap().len() as usize;
                    if pages * PAGE > now {
                        cut_and_restore(&file, now, pages * PAGE);
                    }
                }
                FileOp::Pause { micros } => std::thread::sleep(Duration::from_micros(micros)),
            }
        }
        std::thread::sleep(Duration::from_millis(1));
        stop.store(true, Ordering::Release);
        handles.into_iter().map(|h| h.join().unwrap()).collect::<Result<Vec<u64>, String>>()
    });
    result.map(|_| ())
}

/// Runs one reader step on `map`, whose file starts at `origin` bytes into the
/// file: `Ok(true)` for a read that returned bytes (they were the file's),
/// `Ok(false)` for one that reported a fault or a refresh, an error for bytes
/// that were not the file's.
fn step(op: ReadOp, map: &RwLock<mmapkit::Map>, file: &File, origin: usize) -> Result<bool, String> {
    match op {
        ReadOp::Refresh => {
            let mut map = map.write().unwrap();
            // SAFETY: the owner's cuts are what the guard is for; the file only ever holds a prefix of the pattern.
            unsafe { map.refresh(file) }.map_err(|e| format!("refresh: {e}"))?;
            if map.len() > MAX_PAGES * PAGE - origin {
                return Err(format!("refreshed to {} bytes, past the range asked for", map.len()));
            }
            Ok(false)
        }
        ReadOp::ReadAt { offset, len } | ReadOp::Checked { offset, len } => {
            let map = map.read().unwrap();
            let (offset, len) = clip(offset, len, map.len());
            let read = if matches!(op, ReadOp::ReadAt { .. }) {
                let mut buf = vec![0u8; len];
                map.read_at(offset, &mut buf).map(|()| buf).ok()
            } else {
                map.checked(|b| b[offset..offset + len].to_vec()).ok()
            };
            match read {
                Some(bytes) if !is_pattern(origin + offset, &bytes) => Err(format!(
                    "{op:?}: Ok with bytes that are not the file's at map offset {offset} (file offset {})",
                    origin + offset
                )),
                Some(_) => Ok(true),
                None => Ok(false),
            }
        }
    }
}

/// `offset..offset+len` moved and shortened to fit a map of `map_len` bytes.
fn clip(offset: usize, len: usize, map_len: usize) -> (usize, usize) {
    let offset = offset.min(map_len);
    (offset, len.min(map_len - offset))
}

#[test]
#[ignore = "child process of any_interleaving_of_cuts_growth_refreshes_and_reads_returns_only_file_bytes"]
fn child_interleavings() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let cases: u32 = std::env::var("MMAPKIT_INTERLEAVINGS").ok().and_then(|s| s.parse().ok()).unwrap_or(512);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = (
        1..=MAX_PAGES,
        0..MAX_PAGES / 2,
        any::<bool>(),
        proptest::collection::vec(proptest::collection::vec(read_op(), 1..12), 2..4),
        proptest::collection::vec(file_op(), 1..24),
    );
    runner
        .run(&strategy, |(start, offset, explicit, readers, owner)| {
            run_interleaving(start, offset, explicit, &readers, &owner).map_err(TestCaseError::fail)
        })
        .unwrap();
    println!("{cases} interleavings held");
}
