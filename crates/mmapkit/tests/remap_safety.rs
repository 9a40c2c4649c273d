//! Resizing a map (`remap`) keeps it whole whatever fails: a guard that cannot
//! follow, a fault that patched its pages, a length past the address space;
//! and errors about a map name its file and the real reason.
// Two tests need Linux (MAP_FIXED_NOREPLACE, sealed memfds); elsewhere their
// helpers and imports go unused.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports, dead_code))]

mod common;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use common::{TestFile, assert_child_passed, block_sigbus, pattern, run_child, truncate};
use mmapkit::{ErrorKind, GuardProblem, Map, MapMut, RemapOptions};

const PAGE: usize = 4096;

fn may_move() -> RemapOptions {
    *RemapOptions::new().may_move(true)
}

// --- a guard that cannot follow the resize --------------------------------------

#[test]
fn a_resize_the_guard_cannot_follow_leaves_the_map_whole() {
    assert_child_passed(&run_child("child_resize_with_sigbus_blocked", &[]));
}

#[test]
#[ignore = "child process of a_resize_the_guard_cannot_follow_leaves_the_map_whole"]
fn child_resize_with_sigbus_blocked() {
    let tf = TestFile::new(3 * PAGE);
    // SAFETY: nothing changes the file.
    let mut map = unsafe { Map::new(&tf.open()) }.unwrap();
    block_sigbus();
    for (len, options) in [(PAGE, RemapOptions::new()), (PAGE + 1, may_move()), (5 * PAGE, may_move())] {
        // SAFETY: no pointer into the map is kept.
        let err = unsafe { map.remap(len, options) }.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::GuardUnavailable(GuardProblem::SignalBlocked)), "{err}");
        assert!(err.to_string().contains(&tf.path.display().to_string()), "the error names the file: {err}");
        assert_eq!(map.len(), 3 * PAGE, "a failed resize to {len} keeps the length");
        // Every byte still mapped and still the file's (an unmapped tail would be SIGSEGV here).
        assert!(map[..] == pattern(3 * PAGE)[..], "the bytes are intact after a failed resize to {len}");
        assert_eq!(map.checked(|bytes| bytes[2 * PAGE]), Ok(pattern(3 * PAGE)[2 * PAGE]), "still guarded");
    }
}

// --- address space given back during a resize -----------------------------------

/// What the program's own SIGBUS handler fills a page it repairs with.
const MARK: u8 = 0xab;

/// The program's own SIGBUS handler, installed before the guard's: maps a
/// page of `MARK` over the faulting page, so the access completes and shows
/// that this handler, not the guard, took the fault.
extern "C" fn marking_handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler; mmap and memset are async-signal-safe,
    // and MAP_FIXED replaces only the faulting page, of a mapping the test thread made for this.
    unsafe {
        let page = ((*info).si_addr() as usize) & !(PAGE - 1);
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED;
        let at = libc::mmap(page as *mut libc::c_void, PAGE, prot, flags, -1, 0);
        if at == libc::MAP_FAILED {
            libc::abort();
        }
        libc::memset(at, i32::from(MARK), PAGE);
    }
}

#[cfg(target_os = "linux")]
#[test]
fn address_space_a_shrink_gives_back_is_never_guarded() {
    assert_child_passed(&run_child("child_hole_after_shrink", &[]));
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "child process of address_space_a_shrink_gives_back_is_never_guarded"]
fn child_hole_after_shrink() {
    // SAFETY: zeroed is a valid sigaction; the handler has the SA_SIGINFO signature.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = marking_handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()), 0);
    }
    let tf = TestFile::new(3 * PAGE);
    // SAFETY: nothing changes the file.
    let mut map = unsafe { Map::new(&tf.open()) }.unwrap();
    // An empty file: any read of a map of it faults.
    let empty = tempfile::tempfile().unwrap();
    let hole = Arc::new(AtomicUsize::new(map.as_ptr() as usize + PAGE));
    let stop = Arc::new(AtomicBool::new(false));
    let (hits, zeros) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let other = {
        let (hole, stop, hits, zeros) = (hole.clone(), stop.clone(), hits.clone(), zeros.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let at = hole.load(Ordering::Relaxed) as *mut libc::c_void;
                let flags = libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE;
                // SAFETY: MAP_FIXED_NOREPLACE maps only where nothing is mapped, so it replaces nothing.
                let got = unsafe { libc::mmap(at, PAGE, libc::PROT_READ, flags, empty.as_raw_fd(), 0) };
                if got == libc::MAP_FAILED {
                    continue;
                }
                if got == at {
                    // SAFETY: our own fresh mapping of a page; the read faults and a handler repairs it.
                    let byte = unsafe { std::ptr::read_volatile(got.cast::<u8>()) };
                    hits.fetch_add(1, Ordering::Relaxed);
                    if byte != MARK {
                        zeros.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // SAFETY: the mapping made above, no longer used.
                unsafe { libc::munmap(got, PAGE) };
            }
        })
    };
    let mut rounds = 0u64;
    while hits.load(Ordering::Relaxed) < 5000 && rounds < 2_000_000 {
        // SAFETY: no pointer into the map is kept.
        unsafe { map.remap(PAGE, RemapOptions::new()) }.unwrap();
        hole.store(map.as_ptr() as usize + PAGE, Ordering::Relaxed);
        // SAFETY: as above. (It moves if the other thread holds the hole.)
        unsafe { map.remap(3 * PAGE, may_move()) }.unwrap();
        hole.store(map.as_ptr() as usize + PAGE, Ordering::Relaxed);
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    other.join().unwrap();
    assert!(map[..] == pattern(3 * PAGE)[..], "the map's bytes are the file's");
    let (hits, zeros) = (hits.load(Ordering::Relaxed), zeros.load(Ordering::Relaxed));
    println!("{rounds} rounds, {hits} reads in the hole");
    assert!(hits > 0, "the other thread never mapped the hole in {rounds} rounds");
    assert_eq!(zeros, 0, "of {hits} faults in the hole, {zeros} were repaired by the guard of a map no longer there");
}

// --- a map a fault has hit --------------------------------------------------------

/// A read-write map of a 4-page file cut to one page, with the page at
/// `fault_page` read (patched with zeros from there on).
fn faulted_map(tf: &TestFile, fault_pages: &[usize]) -> MapMut {
    // SAFETY: the truncation below is what the guard is for; nothing else writes the file.
    let map = unsafe { MapMut::new(&tf.open_rw()) }.unwrap();
    truncate(&tf.path, PAGE as u64);
    for &page in fault_pages {
        assert_eq!(map[page * PAGE], 0, "a lost page reads as zeros");
    }
    assert!(map.fault().is_some());
    map
}

#[test]
fn a_faulted_map_cannot_grow_and_says_to_refresh_it() {
    assert_child_passed(&run_child("child_faulted_grow", &[]));
}

#[test]
#[ignore = "child process of a_faulted_map_cannot_grow_and_says_to_refresh_it"]
fn child_faulted_grow() {
    let tf = TestFile::new(4 * PAGE);
    let mut map = faulted_map(&tf, &[2]);
    std::fs::OpenOptions::new().write(true).open(&tf.path).unwrap().set_len(8 * PAGE as u64).unwrap();
    // SAFETY: no pointer into the map is kept.
    let err = unsafe { map.remap(6 * PAGE, may_move()) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidArgument(_)), "a clear refusal, not the OS's EFAULT: {err}");
    assert!(err.to_string().contains("refresh it"), "{err}");
    assert!(err.to_string().contains(&tf.path.display().to_string()), "{err}");
    assert_eq!(map.len(), 4 * PAGE);
    assert_eq!(map[..PAGE], pattern(PAGE)[..], "the bytes kept are intact");
    // Refreshed, it maps the file again and can grow.
    // SAFETY: as above.
    unsafe { map.refresh(&tf.open_rw()) }.unwrap();
    assert!(map.fault().is_none());
    // SAFETY: as above.
    unsafe { map.remap(6 * PAGE, may_move()) }.unwrap();
    assert_eq!(map.len(), 6 * PAGE);
    map.flush().unwrap();
}

#[test]
fn a_shrink_past_every_patched_page_leaves_no_fault() {
    assert_child_passed(&run_child("child_faulted_shrink", &[]));
}

#[test]
#[ignore = "child process of a_shrink_past_every_patched_page_leaves_no_fault"]
fn child_faulted_shrink() {
    let tf = TestFile::new(4 * PAGE);
    let mut map = faulted_map(&tf, &[3]);
    assert!(map.flush().is_err(), "a flush after a fault is an error");
    // SAFETY: no pointer into the map is kept.
    unsafe { map.remap(2 * PAGE, RemapOptions::new()) }.unwrap();
    assert_eq!(map.fault(), None, "the patched page is gone with the tail");
    assert_eq!(map.checked(|bytes| bytes[0]), Ok(pattern(1)[0]));
    map.flush().unwrap();
    assert_eq!(map.get_checked(0..PAGE).unwrap(), &pattern(PAGE)[..]);
    // With no patched page left, the map is the file's again and may grow.
    std::fs::OpenOptions::new().write(true).open(&tf.path).unwrap().set_len(4 * PAGE as u64).unwrap();
    // SAFETY: as above.
    unsafe { map.remap(4 * PAGE, may_move()) }.unwrap();
    assert_eq!(map.checked(|bytes| bytes[3 * PAGE]), Ok(0), "the file's hole");
    map.flush().unwrap();
}

#[test]
fn a_shrink_that_keeps_patched_pages_reports_a_fault_inside_the_map() {
    assert_child_passed(&run_child("child_faulted_partial_shrink", &[]));
}

#[test]
#[ignore = "child process of a_shrink_that_keeps_patched_pages_reports_a_fault_inside_the_map"]
fn child_faulted_partial_shrink() {
    let tf = TestFile::new(4 * PAGE);
    // The first fault at page 3, then one at page 2: zeros from page 2.
    let mut map = faulted_map(&tf, &[3, 2]);
    assert_eq!(map.fault().map(|f| (f.offset(), f.zeros_from())), Some((3 * PAGE, 2 * PAGE)));
    // SAFETY: no pointer into the map is kept.
    unsafe { map.remap(3 * PAGE, RemapOptions::new()) }.unwrap();
    let fault = map.fault().expect("page 2 is still patched");
    assert!(fault.offset() < map.len(), "the fault lies inside the map: {fault:?}");
    assert_eq!((fault.offset(), fault.zeros_from()), (2 * PAGE, 2 * PAGE));
    assert!(map.flush().is_err(), "a patched page is still in the map");
}

// --- lengths past the address space ----------------------------------------------

#[test]
fn every_length_past_isize_max_is_too_large() {
    let mut map = MapMut::anon(PAGE).unwrap();
    map[0] = 9;
    for len in [isize::MAX as usize + 1, usize::MAX - 2 * PAGE, usize::MAX - PAGE + 1, usize::MAX] {
        // SAFETY: an anonymous map; no pointer into it is kept.
        let err = unsafe { map.remap(len, may_move()) }.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::TooLarge { len: l, .. } if *l == len as u64), "{len}: {err}");
        assert_eq!((map.len(), map[0]), (PAGE, 9));
    }
}

// --- errors that name the file and the reason -----------------------------------

#[test]
fn a_read_outside_a_file_map_names_the_file() {
    let tf = TestFile::new(PAGE);
    // SAFETY: nothing changes the file.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let err = map.get_checked(PAGE - 1..PAGE + 1).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::OutsideMapping { offset, len: 2, map_len } if *offset == PAGE - 1
        && *map_len == PAGE),
        "{err}"
    );
    assert!(err.to_string().contains(&tf.path.display().to_string()), "{err}");
    let mut buf = [0; 8];
    let err = map.read_at(PAGE, &mut buf).unwrap_err();
    assert!(err.to_string().contains(&tf.path.display().to_string()), "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn make_mut_of_a_sealed_memfd_names_the_seal() {
    // SAFETY: memfd_create takes a NUL-terminated name and returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"sealed".as_ptr(), libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(&pattern(PAGE)).unwrap();
    // SAFETY: fcntl on our own descriptor.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK) }, 0);
    // SAFETY: the seals keep the bytes from changing.
    let map = unsafe { Map::new(&file) }.unwrap();
    let err = map.make_mut().unwrap_err().error;
    let message = err.to_string();
    assert!(message.contains("F_SEAL_WRITE"), "{message}");
    assert!(!message.contains("opened read-only"), "the memfd was opened read-write: {message}");
    assert!(matches!(err.kind(), ErrorKind::AccessMode { opened: "read-write", .. }), "{err}");

    // A file opened read-only is still told apart.
    let tf = TestFile::new(PAGE);
    // SAFETY: nothing changes the file.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let err = map.make_mut().unwrap_err().error;
    assert!(matches!(err.kind(), ErrorKind::AccessMode { opened: "read-only", .. }), "{err}");
}
