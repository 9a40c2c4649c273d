//! The fault guard: a file that shrinks or fails under a map is an error for
//! the access that hit it, never a crash. Every case that could kill the test
//! runner runs in a child process (an `#[ignore]`d test of this binary that
//! its parent test starts and inspects).

mod common;

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{TestFile, assert_child_passed, child_env, describe, pattern, pattern_byte, run_child, truncate};
use mmapkit::{ErrorKind, FaultCause, Map, MapMut, MapOptions};

const PAGE: usize = 4096;

/// Sums every page's first byte through plain slice reads (which fault).
fn touch_every_page(bytes: &[u8]) -> u64 {
    bytes.iter().step_by(PAGE).map(|&b| u64::from(b)).sum()
}

// --- a 16 MiB map truncated to 40 KiB ---------------------------------------

#[test]
fn truncated_map_reads_zeros_and_reports_the_cut() {
    assert_child_passed(&run_child("child_truncated_map", &[]));
}

#[test]
#[ignore = "child process of truncated_map_reads_zeros_and_reports_the_cut"]
fn child_truncated_map() {
    let len = 16 << 20;
    let cut = 40 * 1024;
    let tf = TestFile::new(len);
    // SAFETY: the truncation below is what the fault guard is for; nothing else writes the file.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    assert!(map.fault().is_none());
    truncate(&tf.path, cut as u64);

    // Every page read: no crash; pages past the cut read as zeros.
    let sum = touch_every_page(&map);
    let expected: u64 = (0..cut).step_by(PAGE).map(|o| u64::from(pattern_byte(o as u64))).sum();
    assert_eq!(sum, expected);
    assert!(map[cut..].iter().all(|&b| b == 0));

    let fault = map.checked(|bytes| bytes.len()).unwrap_err();
    assert_eq!(fault.offset(), cut, "the fault is at the page where the file now ends");
    assert_eq!(fault.file_offset(), cut as u64);
    assert_eq!(fault.cause(), FaultCause::PastEnd);
    assert_eq!(map.fault(), Some(fault));
    // A map does not hold its file, so it cannot tell a truncation from a
    // failed read; given the file's length, the fault says which it was.
    let message = fault.to_string();
    assert!(message.contains(&format!("the page at file byte {cut} could not be read or allocated")), "{message}");
    assert_eq!(fault.file_len(), None);
    let measured = fault.with_file_len(tf.open().metadata().unwrap().len());
    let message = measured.to_string();
    assert!(message.starts_with(&format!("the file was truncated to {cut} bytes while mapped")), "{message}");

    // The bytes before the cut are intact and still readable without error.
    let mut before = vec![0u8; cut];
    map.read_at(0, &mut before).unwrap();
    assert_eq!(before, pattern(cut));
    let mut across = vec![0u8; 2];
    let err = map.read_at(cut - 1, &mut across).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Fault(f) if f.offset() == cut), "{err}");
    // The same, zero-copy.
    assert_eq!(map.get_checked(0..cut).unwrap(), &pattern(cut)[..]);
    let err = map.get_checked(cut - 1..cut + 1).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Fault(f) if f.offset() == cut), "{err}");
    assert!(matches!(map.get_checked(0..len + 1).unwrap_err().kind(), ErrorKind::OutsideMapping { .. }));

    // Mapping again gives the file as it is now.
    let mut map = map;
    // SAFETY: as above.
    unsafe { map.refresh(&tf.open()) }.unwrap();
    assert_eq!(map.len(), cut);
    assert!(map.fault().is_none());
    assert_eq!(map.checked(|b| b.to_vec()).unwrap(), pattern(cut));
}

// --- a growable read map: checked slices, and a fault that knows the file's length

#[test]
fn a_growable_read_map_checks_every_page_of_a_slice_and_tells_a_truncation() {
    assert_child_passed(&run_child("child_growable_read_truncated", &[]));
}

#[test]
#[ignore = "child process of a_growable_read_map_checks_every_page_of_a_slice_and_tells_a_truncation"]
fn child_growable_read_truncated() {
    let len = 32 * PAGE;
    let cut = 20 * PAGE;
    let tf = TestFile::new(len);
    // SAFETY: nothing writes the file; the truncation is what the guard is for.
    let map = unsafe { mmapkit::GrowableReadMap::new(tf.open(), 1 << 30) }.unwrap();
    // A slice whose first page is still there, and whose later pages are not.
    assert_eq!(map.get_checked(cut - PAGE..cut).unwrap(), &pattern(cut)[cut - PAGE..]);
    truncate(&tf.path, cut as u64);
    let err = map.get_checked(cut - 100..cut + 3 * PAGE).unwrap_err();
    let ErrorKind::Fault(fault) = err.kind() else { panic!("{err}") };
    assert_eq!(fault.file_offset(), cut as u64);
    assert_eq!(fault.file_len(), Some(cut as u64), "a map that owns its file measures it");
    let message = err.to_string();
    assert!(message.starts_with("cannot read "), "{message}");
    assert!(message.contains(&tf.path.display().to_string()), "{message}");
    assert!(message.contains(&format!("the file was truncated to {cut} bytes while mapped")), "{message}");
    assert_eq!(map.fault(), Some(*fault));
    // Pages before the cut stay good.
    assert_eq!(map.get_checked(0..cut).unwrap(), &pattern(cut)[..]);
}

// --- refreshing keeps the range that was asked for -------------------------------

#[test]
fn a_whole_file_map_at_an_offset_refreshes_to_the_same_offset_after_the_file_grows_back() {
    let len = 16 * PAGE;
    let offset = 8 * PAGE as u64;
    let tf = TestFile::new(len);
    // SAFETY: this test changes the file only by cutting it and writing the same bytes back.
    let mut map = unsafe { MapOptions::new().offset(offset).map(&tf.open()) }.unwrap();
    assert_eq!(map.len(), len - 8 * PAGE);
    truncate(&tf.path, 2 * PAGE as u64);
    // SAFETY: as above.
    unsafe { map.refresh(&tf.open()) }.unwrap();
    assert_eq!(map.len(), 0, "the file now ends before the map's offset");
    std::fs::write(&tf.path, pattern(len)).unwrap();
    // SAFETY: as above.
    unsafe { map.refresh(&tf.open()) }.unwrap();
    assert_eq!(map.len(), len - 8 * PAGE);
    assert_eq!(
        map.checked(|b| b.to_vec()).unwrap(),
        pattern(len)[8 * PAGE..],
        "the map must start at the offset asked for"
    );
}

#[test]
fn a_map_of_an_explicit_range_refreshes_to_what_the_file_holds_of_it() {
    let tf = TestFile::new(16 * PAGE);
    let (offset, want) = (3 * PAGE as u64 + 100, 6 * PAGE);
    // SAFETY: as in the test above.
    let mut map = unsafe { MapOptions::new().offset(offset).len(want).map(&tf.open()) }.unwrap();
    let expected = |n: usize| pattern(16 * PAGE)[offset as usize..offset as usize + n].to_vec();
    for (file_len, held) in
        [(2 * PAGE, 0), (5 * PAGE, 5 * PAGE - offset as usize), (16 * PAGE, want), (0, 0), (12 * PAGE, want)]
    {
        truncate(&tf.path, 0);
        std::fs::write(&tf.path, &pattern(16 * PAGE)[..file_len]).unwrap();
        // SAFETY: as above.
        unsafe { map.refresh(&tf.open()) }.unwrap();
        assert_eq!(map.len(), held, "a {file_len}-byte file holds {held} bytes of the range");
        assert_eq!(map.checked(|b| b.to_vec()).unwrap(), expected(held));
    }
}

// --- writes into a page a truncation removed --------------------------------

#[test]
fn a_write_to_a_removed_page_is_reported_by_write_at_and_flush() {
    assert_child_passed(&run_child("child_write_to_removed_page", &[]));
}

#[test]
#[ignore = "child process of a_write_to_a_removed_page_is_reported_by_write_at_and_flush"]
fn child_write_to_removed_page() {
    let tf = TestFile::new(64 * PAGE);
    // SAFETY: the truncation below is what the fault guard is for.
    let mut map = unsafe { MapMut::new(&tf.open_rw()) }.unwrap();
    map.write_at(0, b"kept").unwrap();
    map.flush().unwrap();
    truncate(&tf.path, 8 * PAGE as u64);

    // The fault is recorded at the page the access hit.
    let err = map.write_at(20 * PAGE, b"lost").unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Fault(f) if f.offset() == 20 * PAGE), "{err}");
    // It names the file: the map finds its path from the mapped address.
    let expected = format!("cannot write {}: the page at file byte 81920 could not be read", tf.path.display());
    assert!(err.to_string().starts_with(&expected), "{err}");
    // A write before the cut still lands, but the flush reports the lost one.
    map.write_at(PAGE, b"ok").unwrap();
    let err = map.flush().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Fault(_)), "{err}");
    assert_eq!(err.operation(), mmapkit::Operation::Flush);
    let contents = std::fs::read(&tf.path).unwrap();
    assert_eq!(contents.len(), 8 * PAGE);
    assert_eq!(&contents[..4], b"kept");
    assert_eq!(&contents[PAGE..PAGE + 2], b"ok");
    // checked_mut reports it too.
    assert!(map.checked_mut(|b| b[0] = 1).is_err());
}

// --- another process truncating in a loop ------------------------------------

/// Runs the truncator child against `path` while the reader (or writer) child
/// maps it; returns the reader's output.
fn race_with_truncator(reader: &str, path: &Path) -> Output {
    let exe = std::env::current_exe().unwrap();
    let truncator = std::process::Command::new(exe)
        .args(["child_truncator", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("MMAPKIT_TEST_FILE", path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = run_child(reader, &[("MMAPKIT_TEST_FILE", path)]);
    // The reader is done: tell the truncator to stop, then collect it.
    std::fs::write(path.with_extension("stop"), b"").unwrap();
    let truncator = truncator.wait_with_output().unwrap();
    assert_child_passed(&truncator);
    output
}

const RACE_LEN: usize = 256 * PAGE;
const RACE_ROUNDS: usize = 200;

#[test]
#[ignore = "child process of the truncation race tests"]
fn child_truncator() {
    let path = child_env("MMAPKIT_TEST_FILE");
    let stop = path.with_extension("stop");
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    std::fs::write(path.with_extension("started"), b"").unwrap();
    let mut state = 0x1234_5678u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.exists() && Instant::now() < deadline {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let cut = (state >> 33) as usize % RACE_LEN;
        file.set_len(cut as u64).unwrap();
        std::thread::sleep(Duration::from_micros(200));
        file.set_len(RACE_LEN as u64).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn reading_while_another_process_truncates_in_a_loop() {
    let tf = TestFile::new(RACE_LEN);
    let output = race_with_truncator("child_race_reader", &tf.path);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("rounds=200"), "{stdout}");
}

/// Waits until the truncator process is running, so the race really happens.
fn wait_for_truncator(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.with_extension("started").exists() {
        assert!(Instant::now() < deadline, "the truncator never started");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Reads the map `RACE_ROUNDS` times; prints how many rounds saw a fault.
#[test]
#[ignore = "child process of reading_while_another_process_truncates_in_a_loop"]
fn child_race_reader() {
    let path = child_env("MMAPKIT_TEST_FILE");
    let file = File::open(&path).unwrap();
    wait_for_truncator(&path);
    let mut faulted = 0;
    let mut rounds = 0;
    // A map is refused while the file is cut short; keep trying until 200 maps ran.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rounds < RACE_ROUNDS && Instant::now() < deadline {
        // SAFETY: the truncator's changes are what the fault guard is for; the file's bytes are only ever the pattern
        // or zeros.
        let map = match unsafe { MapOptions::new().len(RACE_LEN).map(&file) } {
            Ok(map) => map,
            Err(e) if matches!(e.kind(), ErrorKind::PastEndOfFile { .. }) => {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
            Err(e) => panic!("{e}"),
        };
        rounds += 1;
        for _ in 0..4 {
            match map.checked(touch_every_page) {
                Ok(_) => {}
                Err(fault) => {
                    assert!(fault.offset() < RACE_LEN && fault.offset() % PAGE == 0, "{fault}");
                    assert_eq!(fault.cause(), FaultCause::PastEnd);
                    faulted += 1;
                    break;
                }
            }
            std::thread::sleep(Duration::from_micros(300));
        }
    }
    println!("rounds={rounds} faulted={faulted}");
    assert!(faulted > 0, "200 rounds against a truncating process saw no fault: the race did not happen");
}

#[test]
fn writing_while_another_process_truncates_in_a_loop() {
    let tf = TestFile::new(RACE_LEN);
    let output = race_with_truncator("child_race_writer", &tf.path);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("rounds=200"), "{stdout}");
}

#[test]
#[ignore = "child process of writing_while_another_process_truncates_in_a_loop"]
fn child_race_writer() {
    let path = child_env("MMAPKIT_TEST_FILE");
    let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
    wait_for_truncator(&path);
    let mut rounds = 0;
    let mut lost = 0;
    // A map is refused while the file is cut short; keep trying until 200 maps ran.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rounds < RACE_ROUNDS && Instant::now() < deadline {
        // SAFETY: the truncator's changes are what the fault guard is for.
        let Ok(mut map) = (unsafe { MapOptions::new().len(RACE_LEN).map_mut(&file) }) else {
            std::thread::sleep(Duration::from_micros(50));
            continue;
        };
        rounds += 1;
        'passes: for _ in 0..4 {
            for page in 0..RACE_LEN / PAGE {
                if let Err(e) = map.write_at(page * PAGE, b"written") {
                    assert!(matches!(e.kind(), ErrorKind::Fault(_)), "{e}");
                    lost += 1;
                    break 'passes;
                }
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        if map.fault().is_some() {
            assert!(map.flush().is_err(), "a flush after a fault must report it");
        }
    }
    println!("rounds={rounds} lost={lost}");
    assert!(lost > 0, "no write met a truncation: the race did not happen");
}

// --- a full disk ---------------------------------------------------------------

#[test]
fn writing_past_a_full_disk_is_an_error() {
    let output = run_child("child_full_disk", &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stdout.contains("SKIPPED:") {
        eprintln!("{}", stdout.lines().find(|l| l.contains("SKIPPED:")).unwrap_or_default());
    } else {
        assert!(stdout.contains("full disk reported"), "{stdout}");
    }
}

#[test]
#[ignore = "child process of writing_past_a_full_disk_is_an_error"]
fn child_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mount = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "mmapkit-test", dir.path().to_str().unwrap()])
        .output();
    match mount {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!("SKIPPED: cannot mount a small tmpfs: {}", String::from_utf8_lossy(&out.stderr).trim());
            return;
        }
        Err(e) => {
            println!("SKIPPED: cannot run mount: {e}");
            return;
        }
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(dir.path());

    let path = dir.path().join("sparse.bin");
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    file.set_len(4 << 20).unwrap(); // 4 MiB of holes on a 256 KiB filesystem
    // SAFETY: only this process uses the file.
    let mut map = unsafe { MapMut::new(&file) }.unwrap();
    let mut failed_at = None;
    for page in 0..map.len() / PAGE {
        if let Err(e) = map.write_at(page * PAGE, &[0xAB; 64]) {
            assert!(matches!(e.kind(), ErrorKind::Fault(_)), "{e}");
            failed_at = Some(page * PAGE);
            break;
        }
    }
    let failed_at = failed_at.expect("4 MiB of writes fit on a 256 KiB tmpfs");
    assert!(failed_at <= 256 * 1024, "writes failed only at {failed_at}");
    assert!(map.flush().is_err(), "flush must report the writes that found no space");
    // The file is as long as ever, so the fault was not a truncation, and,
    // given the length, it says so.
    let fault = map.fault().unwrap().with_file_len(file.metadata().unwrap().len());
    let message = fault.to_string();
    assert!(
        message.contains(&format!("could not be read or allocated, although the file is {} bytes long", 4 << 20)),
        "{message}"
    );
    println!("full disk reported at offset {failed_at}: {message}");
}

// --- stress ------------------------------------------------------------------------

#[test]
fn stress_threads_map_fault_and_drop_while_files_are_truncated() {
    let output = run_child("child_stress", &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("stress done"), "{stdout}");
}

#[test]
#[ignore = "child process of stress_threads_map_fault_and_drop_while_files_are_truncated"]
fn child_stress() {
    const THREADS: usize = 8;
    const LEN: usize = 64 * PAGE;
    let seconds: u64 = std::env::var("MMAPKIT_STRESS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let files: Vec<TestFile> = (0..THREADS).map(|_| TestFile::new(LEN)).collect();
    let stop = AtomicBool::new(false);
    let faults: Vec<AtomicU64> = (0..THREADS).map(|_| AtomicU64::new(0)).collect();
    let maps_made = AtomicU64::new(0);
    std::thread::scope(|s| {
        // Only the even threads' files are ever truncated.
        s.spawn(|| {
            let handles: Vec<File> =
                files.iter().step_by(2).map(|f| OpenOptions::new().write(true).open(&f.path).unwrap()).collect();
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                for (i, h) in handles.iter().enumerate() {
                    h.set_len(((round as usize + i * 7) % 64 * PAGE) as u64).unwrap();
                }
                std::thread::sleep(Duration::from_micros(500));
                for h in &handles {
                    h.set_len(LEN as u64).unwrap();
                }
                std::thread::sleep(Duration::from_micros(500));
            }
        });
        for (t, tf) in files.iter().enumerate() {
            let (stop, faults, maps_made) = (&stop, &faults[t], &maps_made);
            s.spawn(move || {
                let file = tf.open();
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: truncation is what the guard is for; nothing else writes.
                    let Ok(map) = (unsafe { MapOptions::new().len(LEN).map(&file) }) else { continue };
                    maps_made.fetch_add(1, Ordering::Relaxed);
                    if let Err(fault) = map.checked(touch_every_page) {
                        assert!(t % 2 == 0, "thread {t}'s file is never truncated, yet its map faulted: {fault}");
                        assert!(fault.offset() < LEN, "{fault}");
                        faults.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let per_thread: Vec<u64> = faults.iter().map(|f| f.load(Ordering::Relaxed)).collect();
    println!("maps made: {}, faults per thread: {per_thread:?}", maps_made.load(Ordering::Relaxed));
    assert!(per_thread.iter().step_by(2).sum::<u64>() > 0, "the truncated files' maps never faulted");
    assert!(per_thread.iter().skip(1).step_by(2).all(|&f| f == 0));
    println!("stress done");
}
