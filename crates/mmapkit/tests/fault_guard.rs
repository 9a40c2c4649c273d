//! The fault guard: a file that shrinks or fails under a map is an error for
//! the access that hit it, never a crash. Every case that could kill the test
//! runner runs in a child process (an `#[ignore]`d test of this binary that
//! its parent test starts and inspects).

mod common;

use std::fs::{File, OpenOptions};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{TestFile, assert_child_passed, child_env, pattern, pattern_byte, run_child};
use mmapkit::{ErrorKind, FaultCause, Map, MapMut, MapOptions};

const PAGE: usize = 4096;

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

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
    let message = fault.to_string();
    assert!(message.contains(&format!("truncated to {cut} bytes or fewer")), "{message}");

    // The bytes before the cut are intact and still readable without error.
    let mut before = vec![0u8; cut];
    map.read_at(0, &mut before).unwrap();
    assert_eq!(before, pattern(cut));
    let mut across = vec![0u8; 2];
    let err = map.read_at(cut - 1, &mut across).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Fault(f) if f.offset() == cut), "{err}");

    // Mapping again gives the file as it is now.
    let mut map = map;
    // SAFETY: as above.
    unsafe { map.remap(&tf.open()) }.unwrap();
    assert_eq!(map.len(), cut);
    assert!(map.fault().is_none());
    assert_eq!(map.checked(|b| b.to_vec()).unwrap(), pattern(cut));
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
    assert!(err.to_string().starts_with("cannot write: the file was truncated"), "{err}");
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
        // SAFETY: the truncator's changes are what the fault guard is for; the file's bytes are only ever the pattern or zeros.
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
    println!("full disk reported at offset {failed_at}: {}", map.fault().unwrap());
}

// --- chaining to the handlers that were there before ---------------------------

/// Makes a guarded map, so that mmapkit's handler is installed.
fn install_guard(tf: &TestFile) -> Map {
    // SAFETY: nothing changes the file.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    assert!(map.fault().is_none());
    map
}

#[test]
fn a_null_page_read_still_dies_of_sigsegv() {
    let output = run_child("child_null_read", &[]);
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "{}", describe(&output));
}

#[test]
#[ignore = "child process of a_null_page_read_still_dies_of_sigsegv"]
fn child_null_read() {
    let tf = TestFile::new(PAGE);
    let _map = install_guard(&tf);
    // SAFETY: deliberately unsound: the parent test checks that this read, from the unmapped page at address 16, still kills the process.
    let value = unsafe { std::ptr::read_volatile(16 as *const u8) };
    println!("read {value} from the null page");
}

#[test]
fn a_stack_overflow_still_gets_rusts_message() {
    let output = run_child("child_stack_overflow", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has overflowed its stack"), "{}", describe(&output));
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{}", describe(&output));
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, buf: &mut [u8; 1024]) -> u64 {
    let mut local = [0u8; 1024];
    local[(depth % 1024) as usize] = buf[0].wrapping_add(1);
    std::hint::black_box(&mut local);
    recurse(depth + 1, &mut local) + u64::from(local[0])
}

#[test]
#[ignore = "child process of a_stack_overflow_still_gets_rusts_message"]
fn child_stack_overflow() {
    let tf = TestFile::new(PAGE);
    let _map = install_guard(&tf);
    // Run in a thread of known stack size so the overflow comes quickly.
    let handle = std::thread::Builder::new().stack_size(256 * 1024).spawn(|| recurse(0, &mut [0u8; 1024])).unwrap();
    println!("{:?}", handle.join());
}

/// Maps `tf` with a raw `mmap` (no mmapkit), truncates it, and touches the lost page.
fn raw_mapping_fault(tf: &TestFile) {
    let file = tf.open();
    use std::os::fd::AsRawFd;
    let (len, fd) = (4 * PAGE, file.as_raw_fd());
    // SAFETY: a plain read-only mapping of 4 pages of our own file.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, fd, 0) };
    assert_ne!(ptr, libc::MAP_FAILED);
    truncate(&tf.path, 0);
    // SAFETY: deliberately faults: the page's file data is gone, and the parent test checks what the process does about it.
    let value = unsafe { std::ptr::read_volatile(ptr.cast::<u8>().add(2 * PAGE)) };
    println!("read {value} past the end of a raw mapping");
}

static OWN_HANDLER_RAN: AtomicBool = AtomicBool::new(false);

extern "C" fn own_sigbus_handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    OWN_HANDLER_RAN.store(true, Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    // SAFETY: _exit is async-signal-safe; the exit status tells the parent this ran.
    unsafe { libc::_exit(if code == 2 { 42 } else { 43 }) };
}

#[test]
fn a_handler_installed_before_mmapkit_still_runs_for_other_faults() {
    let output = run_child("child_own_handler_first", &[]);
    assert_eq!(output.status.code(), Some(42), "{}", describe(&output));
}

#[test]
#[ignore = "child process of a_handler_installed_before_mmapkit_still_runs_for_other_faults"]
fn child_own_handler_first() {
    // SAFETY: installs a plain SA_SIGINFO handler for SIGBUS; zeroed is a valid sigaction.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction =
            own_sigbus_handler as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()), 0);
    }
    let guarded = TestFile::new(16 * PAGE);
    let map = install_guard(&guarded);
    // mmapkit still repairs its own mappings...
    truncate(&guarded.path, PAGE as u64);
    assert_eq!(touch_every_page(&map), u64::from(pattern_byte(0)));
    assert!(map.fault().is_some());
    assert!(!OWN_HANDLER_RAN.load(Ordering::SeqCst), "mmapkit's own faults must not reach the program's handler");
    // ...and hands every other fault to the handler that was there first.
    raw_mapping_fault(&TestFile::new(4 * PAGE));
}

#[test]
fn a_fault_outside_guarded_maps_still_dies_of_sigbus() {
    let output = run_child("child_raw_fault", &[]);
    assert_eq!(output.status.signal(), Some(libc::SIGBUS), "{}", describe(&output));
}

#[test]
#[ignore = "child process of a_fault_outside_guarded_maps_still_dies_of_sigbus"]
fn child_raw_fault() {
    let tf = TestFile::new(PAGE);
    let _map = install_guard(&tf);
    raw_mapping_fault(&TestFile::new(4 * PAGE));
}

#[test]
fn an_unguarded_map_dies_of_sigbus_as_documented() {
    let output = run_child("child_unguarded", &[]);
    assert_eq!(output.status.signal(), Some(libc::SIGBUS), "{}", describe(&output));
}

#[test]
#[ignore = "child process of an_unguarded_map_dies_of_sigbus_as_documented"]
fn child_unguarded() {
    let tf = TestFile::new(4 * PAGE);
    let _guarded = install_guard(&TestFile::new(PAGE));
    // SAFETY: deliberately broken: the parent checks that the truncation kills us.
    let map = unsafe { MapOptions::new().unguarded().map(&tf.open()) }.unwrap();
    truncate(&tf.path, 0);
    println!("{}", touch_every_page(&map));
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
