//! What a user of a plain `mmap` wrapper counts on, checked on mmapkit's
//! types: file, descriptor, empty and anonymous maps, offsets past 4 GiB,
//! copy-on-write, flushes of ranges, protection round trips, executable
//! maps, raw maps, resizing, advice (and asking which advice the OS takes)
//! and locking. docs/memmap2-parity.md lists the API side by side.

mod common;

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;

use common::{TestFile, pattern};
use mmapkit::{Advice, DestructiveAdvice, ErrorKind, Map, MapMut, MapOptions, MapRaw, RemapOptions, page_size};

fn read_file(tf: &TestFile) -> Vec<u8> {
    std::fs::read(&tf.path).expect("read the test file back")
}

fn may_move() -> RemapOptions {
    *RemapOptions::new().may_move(true)
}

// --- mapping files and descriptors ------------------------------------------------------------

#[test]
fn a_file_maps_whole_and_reads_its_bytes() {
    let tf = TestFile::new(3 * 4096 + 1);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    assert_eq!(map.len(), 3 * 4096 + 1);
    assert_eq!(&map[..], &read_file(&tf)[..]);
    assert_eq!(map.as_ptr().addr() % page_size(), 0, "a whole-file map starts on a page");
}

#[test]
fn any_descriptor_type_maps() {
    let tf = TestFile::new(5000);
    let owned: OwnedFd = tf.open().into();
    // SAFETY: the test owns the file and nothing else writes it.
    let by_owned = unsafe { Map::new(&owned) }.unwrap();
    // SAFETY: `owned` stays open for the borrow's lifetime.
    let borrowed: BorrowedFd<'_> = unsafe { BorrowedFd::borrow_raw(owned.as_raw_fd()) };
    // SAFETY: as above.
    let by_borrowed = unsafe { MapOptions::new().offset(10).map(&borrowed) }.unwrap();
    // SAFETY: as above.
    let by_as_fd = unsafe { Map::new(&owned.as_fd()) }.unwrap();
    let expected = pattern(5000);
    assert_eq!(&by_owned[..], &expected[..]);
    assert_eq!(&by_borrowed[..], &expected[10..]);
    assert_eq!(&by_as_fd[..], &expected[..]);
}

#[test]
fn an_empty_file_maps_as_an_empty_page_aligned_slice_of_every_kind() {
    let tf = TestFile::new(0);
    let file = tf.open_rw();
    // SAFETY: the test owns the file and nothing else writes it.
    let maps = unsafe {
        [
            Map::new(&file).unwrap().as_ptr(),
            MapMut::new(&file).unwrap().as_ptr(),
            MapOptions::new().map_copy(&file).unwrap().as_ptr(),
            MapOptions::new().map_copy_read_only(&file).unwrap().as_ptr(),
            MapOptions::new().map_exec(&file).unwrap().as_ptr(),
            MapRaw::map(&file).unwrap().as_ptr(),
        ]
    };
    for ptr in maps {
        assert_eq!(ptr.addr() % page_size(), 0, "an empty map's address must suit any element type");
    }
    // SAFETY: as above.
    let map = unsafe { Map::new(&file) }.unwrap();
    assert!(map.is_empty());
    assert!(map.view_slice::<u64>(0, 0).unwrap().is_empty());
    // An offset at the end of an empty file is an empty map; past it, an error naming both.
    // SAFETY: as above.
    let err = unsafe { MapOptions::new().offset(1).map(&file) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::PastEndOfFile { offset: 1, file_len: 0, .. }), "{err}");
}

// --- anonymous maps ---------------------------------------------------------------------------

#[test]
fn anonymous_memory_is_zeroed_and_writable() {
    let mut map = MapMut::anon(3 * 4096 + 5).unwrap();
    assert_eq!(map.len(), 3 * 4096 + 5);
    assert!(map.iter().all(|&b| b == 0));
    map[3 * 4096 + 4] = 7;
    map[0] = 1;
    assert_eq!((map[0], map[3 * 4096 + 4]), (1, 7));
    let empty = MapMut::anon(0).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.as_ptr().addr() % page_size(), 0);
}

#[test]
fn anonymous_memory_that_cannot_be_had_says_how_much_was_asked_for() {
    // More than any address space: the length cannot even be rounded to pages.
    let err = MapMut::anon(usize::MAX).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TooLarge { len, .. } if *len == usize::MAX as u64), "{err:?}");
    assert!(err.to_string().contains(&usize::MAX.to_string()), "{err}");
    // Page-sized, but far more than the machine can give (2^60 bytes).
    let absurd = 1usize << 60;
    let err = MapMut::anon(absurd).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::AnonymousMemory { len, .. } if *len == absurd), "{err:?}");
    assert!(err.to_string().contains(&format!("{absurd} bytes of anonymous memory")), "{err}");
    assert!(err.raw_os_error().is_some(), "the OS's refusal is kept: {err:?}");
}

#[test]
fn maps_are_send_and_sync_and_read_from_other_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let tf = TestFile::new(10_000);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let mut anon = MapMut::anon(4096).unwrap();
    anon[7] = 7;
    let raw = MapRaw::map(&tf.open_rw()).unwrap();
    send_sync(&map);
    send_sync(&anon);
    send_sync(&raw);
    let expected = pattern(10_000);
    let sum = std::thread::scope(|s| {
        s.spawn(|| map.iter().map(|&b| u64::from(b)).sum::<u64>()).join().unwrap()
            + s.spawn(move || u64::from(anon[7])).join().unwrap()
    });
    assert_eq!(sum, expected.iter().map(|&b| u64::from(b)).sum::<u64>() + 7);
}

// --- writes, flushes, copy-on-write ------------------------------------------------------------

#[test]
fn writes_reach_the_file_and_flush_ranges_write_them_back() {
    let tf = TestFile::new(8 * 4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let mut map = unsafe { MapMut::new(&tf.open_rw()) }.unwrap();
    map[4096 + 3..4096 + 8].copy_from_slice(b"hello");
    map.flush_range(4096 + 3, 5).unwrap();
    map[7 * 4096..7 * 4096 + 5].copy_from_slice(b"world");
    map.flush_async_range(7 * 4096, 5).unwrap();
    map.flush_async().unwrap();
    map.flush().unwrap();
    let contents = read_file(&tf);
    assert_eq!(&contents[4096 + 3..4096 + 8], b"hello");
    assert_eq!(&contents[7 * 4096..7 * 4096 + 5], b"world");
    // A range outside the map is refused, not flushed in part.
    let err = map.flush_range(8 * 4096 - 2, 3).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::OutsideMapping { offset, len: 3, map_len } if *offset == 8 * 4096 - 2
        && *map_len == 8 * 4096),
        "{err}"
    );
}

#[test]
fn copy_on_write_maps_never_write_the_file() {
    let tf = TestFile::new(2 * 4096);
    let file = tf.open(); // read-only is enough for a private map
    // SAFETY: the test owns the file and nothing else writes it.
    let mut copy = unsafe { MapOptions::new().map_copy(&file) }.unwrap();
    copy[..4].copy_from_slice(b"COPY");
    copy.flush().unwrap();
    // SAFETY: as above.
    let plain = unsafe { Map::new(&file) }.unwrap();
    assert_eq!(&copy[..4], b"COPY");
    assert_eq!(&plain[..4], &pattern(4)[..]);
    assert_eq!(read_file(&tf), pattern(2 * 4096));

    // Read-only copy-on-write, made writable later: still private.
    // SAFETY: as above.
    let frozen = unsafe { MapOptions::new().map_copy_read_only(&file) }.unwrap();
    let mut thawed = frozen.make_mut().unwrap();
    thawed[4096] ^= 0xff;
    assert_eq!(thawed[4096], pattern(4097)[4096] ^ 0xff);
    assert_eq!(read_file(&tf), pattern(2 * 4096));
}

#[test]
fn offsets_past_4_gib_map_the_bytes_there() {
    // A sparse file: 5 GiB of hole, then a marker, straddling a page boundary.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.bin");
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    let far = (5u64 << 30) + 4096 - 3;
    file.set_len(far + 4096).unwrap();
    file.write_all_at(b"far away", far).unwrap();
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { MapOptions::new().offset(far).len(8).map(&file) }.unwrap();
    assert_eq!(&map[..], b"far away");
    // SAFETY: as above.
    let before = unsafe { MapOptions::new().offset(far - 100).len(108).map(&file) }.unwrap();
    assert!(before[..100].iter().all(|&b| b == 0), "the hole reads as zeros");
    assert_eq!(&before[100..], b"far away");
    // And writable, at the same offset.
    // SAFETY: as above.
    let mut map = unsafe { MapOptions::new().offset(far + 4).len(4).map_mut(&file) }.unwrap();
    map.copy_from_slice(b"near");
    map.flush().unwrap();
    let mut back = [0u8; 8];
    file.read_exact_at(&mut back, far).unwrap();
    assert_eq!(&back, b"far near");
}

// --- protection round trips --------------------------------------------------------------------

#[test]
fn a_shared_file_map_goes_read_only_and_back() {
    let tf = TestFile::new(4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::new(&tf.open_rw()) }.unwrap();
    let mut map = map.make_mut().unwrap();
    map[0] = b'A';
    let map = map.make_read_only().unwrap();
    assert_eq!(map[0], b'A');
    let mut map = map.make_mut().unwrap();
    map[1] = b'B';
    map.flush().unwrap();
    assert_eq!(&read_file(&tf)[..2], b"AB");
}

#[test]
fn make_mut_on_a_read_only_file_names_it_and_keeps_the_map() {
    let tf = TestFile::new(4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::open(&tf.path) }.unwrap();
    let unchanged = map.make_mut().unwrap_err();
    let message = unchanged.error.to_string();
    assert_eq!(unchanged.error.path(), Some(tf.path.as_path()));
    assert!(message.contains(&tf.path.display().to_string()) && message.contains("read-only"), "{message}");
    assert_eq!(&unchanged.map[..], &pattern(4096)[..], "the map comes back, still readable");
    // The same through a descriptor: the path is found from the mapping (where the OS can tell, as Linux can).
    // SAFETY: as above.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let err = map.make_mut().unwrap_err().error;
    assert!(err.to_string().contains("read-only"), "{err}");
    if cfg!(target_os = "linux") {
        let canonical = tf.path.canonicalize().unwrap();
        assert!(err.path().is_some_and(|p| p == canonical), "{err}");
    }
}

#[test]
fn copy_and_anonymous_maps_keep_their_bytes_across_protection_changes() {
    let tf = TestFile::new(4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let mut copy = unsafe { MapOptions::new().map_copy(&tf.open()) }.unwrap();
    copy[5] = 55;
    let copy = copy.make_read_only().unwrap().make_mut().unwrap();
    assert_eq!(copy[5], 55);
    assert_eq!(read_file(&tf), pattern(4096));

    let mut anon = MapMut::anon(2 * 4096).unwrap();
    anon[4096] = 9;
    let frozen = anon.make_read_only().unwrap();
    let anon = frozen.make_mut().unwrap();
    assert_eq!(anon[4096], 9);
}

// --- executable maps ---------------------------------------------------------------------------

/// Machine code for a function that returns 42 (`mov eax, 42; ret`).
#[cfg(target_arch = "x86_64")]
const RETURN_42: &[u8] = &[0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3];
/// Machine code for a function that returns 42 (`mov w0, #42; ret`).
#[cfg(target_arch = "aarch64")]
const RETURN_42: &[u8] = &[0x40, 0x05, 0x80, 0x52, 0xc0, 0x03, 0x5f, 0xd6];

/// Calls the code at the start of `map` as `extern "C" fn() -> i32`.
///
/// # Safety
/// The map must be executable and start with `RETURN_42`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe fn call(map: &Map) -> i32 {
    // SAFETY: the caller guarantees executable code of this signature at the address.
    let function: extern "C" fn() -> i32 = unsafe { std::mem::transmute(map.as_ptr()) };
    function()
}

#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn code_written_to_anonymous_memory_runs_once_made_executable() {
    let mut map = MapMut::anon(RETURN_42.len()).unwrap();
    map.copy_from_slice(RETURN_42);
    // SAFETY: the bytes are the function just written.
    let code = unsafe { map.make_exec() }.unwrap();
    // SAFETY: executable, and holds RETURN_42.
    assert_eq!(unsafe { call(&code) }, 42);
    // Back to plain data: readable, the same bytes.
    let data = code.make_read_only().unwrap();
    assert_eq!(&data[..], RETURN_42);
}

#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn code_in_a_file_runs_from_an_executable_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("code.bin");
    std::fs::write(&path, RETURN_42).unwrap();
    let file = File::open(&path).unwrap();
    // SAFETY: the test owns the file; its bytes are the function above.
    let code = unsafe { MapOptions::new().map_exec(&file) }.unwrap();
    // SAFETY: executable, and holds RETURN_42.
    assert_eq!(unsafe { call(&code) }, 42);
    // A plain read-only map made executable later runs too.
    // SAFETY: as above.
    let map = unsafe { Map::new(&file) }.unwrap();
    // SAFETY: as above.
    let code = unsafe { map.make_exec() }.unwrap();
    // SAFETY: executable, and holds RETURN_42.
    assert_eq!(unsafe { call(&code) }, 42);
}

// --- raw maps --------------------------------------------------------------------------------

#[test]
fn raw_maps_read_and_write_through_pointers() {
    let tf = TestFile::new(3 * 4096);
    let raw = MapRaw::map(&tf.open_rw()).unwrap();
    assert_eq!(raw.len(), 3 * 4096);
    // SAFETY: offset 4100 is inside the live map; no one else touches the file.
    unsafe { raw.as_mut_ptr().add(4100).write(0xab) };
    raw.flush_range(4100, 1).unwrap();
    assert_eq!(read_file(&tf)[4100], 0xab);
    let reader = MapOptions::new().offset(4000).map_raw_read_only(&tf.open()).unwrap();
    // SAFETY: offset 100 is inside the live map.
    assert_eq!(unsafe { reader.as_ptr().add(100).read() }, 0xab);

    // Maps of either kind become raw maps over the same memory.
    // SAFETY: as above.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let address = map.as_ptr();
    let raw = MapRaw::from(map);
    assert_eq!(raw.as_ptr(), address);
    let anon = MapMut::anon(4096).unwrap();
    let address = anon.as_ptr();
    assert_eq!(MapRaw::from(anon).as_ptr(), address);
    // A raw read-write map needs a file open for writing, and says so.
    let err = MapRaw::map(&tf.open()).unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
}

// --- resizing --------------------------------------------------------------------------------

#[test]
fn an_anonymous_map_grows_and_shrinks_keeping_its_bytes() {
    let mut map = MapMut::anon(4096).unwrap();
    map[..4].copy_from_slice(b"keep");
    // SAFETY: no reference or pointer into the map is kept across the resize.
    unsafe { map.remap(64 * 4096 + 10, may_move()) }.unwrap();
    assert_eq!(map.len(), 64 * 4096 + 10);
    assert_eq!(&map[..4], b"keep");
    assert!(map[4..].iter().all(|&b| b == 0), "new bytes are zeros");
    map[64 * 4096 + 9] = 1;
    // SAFETY: as above.
    unsafe { map.remap(100, RemapOptions::new()) }.unwrap();
    assert_eq!((map.len(), &map[..4]), (100, &b"keep"[..]));
    // To nothing and back again.
    // SAFETY: as above.
    unsafe { map.remap(0, RemapOptions::new()) }.unwrap();
    assert!(map.is_empty());
    // SAFETY: as above.
    unsafe { map.remap(4096, RemapOptions::new()) }.unwrap();
    assert_eq!(map.len(), 4096);
    assert!(map.iter().all(|&b| b == 0));
}

#[test]
fn a_resize_that_overflows_is_an_error() {
    let mut map = MapMut::anon(4096).unwrap();
    // SAFETY: no reference into the map is kept.
    let err = unsafe { map.remap(usize::MAX, may_move()) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TooLarge { .. }), "{err}");
    assert_eq!(map.len(), 4096, "a failed resize leaves the map as it was");
}

#[test]
#[cfg(target_os = "linux")]
fn growing_into_a_taken_page_needs_leave_to_move() {
    // Shrink a two-page map to one page, then map something else into the page it gave up.
    let page = page_size();
    let mut map = MapMut::anon(2 * page).unwrap();
    map[0] = 42;
    let mut tries = 0;
    let blocker = loop {
        tries += 1;
        assert!(tries <= 100, "another thread kept taking the page after the map");
        // SAFETY: no reference into the map is kept.
        unsafe { map.remap(page, RemapOptions::new()) }.unwrap();
        let after = map.as_ptr().addr() + page;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping; the page is unmapped below.
        let got = unsafe {
            libc::mmap(
                after as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if got.addr() == after {
            break got;
        }
        if got != libc::MAP_FAILED {
            // A kernel that took the flag as a mere hint mapped it elsewhere.
            // SAFETY: the page was just mapped here and is used by nothing.
            unsafe { libc::munmap(got, page) };
        }
        // Another thread took the page first: grow back (wherever) and try again.
        // SAFETY: as above.
        unsafe { map.remap(2 * page, may_move()) }.unwrap();
    };
    let before = map.as_ptr();
    // SAFETY: as above.
    let err = unsafe { map.remap(2 * page, RemapOptions::new()) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NoRoomToGrow { .. }), "{err}");
    assert_eq!((map.as_ptr(), map.len()), (before, page), "refused in place: unchanged");
    // SAFETY: as above.
    unsafe { map.remap(2 * page, may_move()) }.unwrap();
    assert_ne!(map.as_ptr(), before, "it had to move");
    assert_eq!((map.len(), map[0]), (2 * page, 42));
    // SAFETY: the blocker page was mapped above and is used by nothing.
    assert_eq!(unsafe { libc::munmap(blocker, page) }, 0);
}

#[test]
#[cfg(target_os = "linux")]
fn a_file_map_with_an_offset_grows_over_the_file() {
    let tf = TestFile::new(10 * 4096);
    let file = tf.open();
    // SAFETY: the test owns the file and nothing else writes it.
    let mut map = unsafe { MapOptions::new().offset(4096 + 10).len(100).map(&file) }.unwrap();
    // SAFETY: no reference into the map is kept across resizes.
    unsafe { map.remap(5 * 4096, may_move()) }.unwrap();
    let expected = pattern(10 * 4096);
    assert_eq!(&map[..], &expected[4096 + 10..6 * 4096 + 10]);
    // SAFETY: as above.
    unsafe { map.remap(3, RemapOptions::new()) }.unwrap();
    assert_eq!(&map[..], &expected[4096 + 10..4096 + 13]);
    // A refresh keeps the new length.
    // SAFETY: as above.
    unsafe { map.refresh(&file) }.unwrap();
    assert_eq!(&map[..], &expected[4096 + 10..4096 + 13]);
}

#[test]
#[cfg(target_os = "linux")]
fn a_file_map_grown_past_its_file_faults_there_and_is_told() {
    let tf = TestFile::new(2 * 4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let mut map = unsafe { Map::new(&tf.open()) }.unwrap();
    // SAFETY: no reference into the map is kept across the resize.
    unsafe { map.remap(4 * 4096, may_move()) }.unwrap();
    assert_eq!(map.checked(|bytes| bytes[..2 * 4096].to_vec()).unwrap(), pattern(2 * 4096));
    let fault = map.checked(|bytes| bytes[3 * 4096]).unwrap_err();
    assert_eq!((fault.offset(), fault.file_offset()), (3 * 4096, 3 * 4096), "the page touched faulted");
    let mut head = [0u8; 8];
    map.read_at(4096, &mut head).unwrap();
    assert_eq!(&head[..], &pattern(4096 + 8)[4096..]);
    // The first page past the end faults too once touched, and the reads that reach it say so.
    let err = map.read_at(2 * 4096, &mut head).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Fault(f) if f.zeros_from() == 2 * 4096 && f.count() == 2), "{err}");
}

#[test]
fn a_raw_map_resizes_too() {
    let tf = TestFile::new(4 * 4096);
    let mut raw = MapRaw::map(&tf.open_rw()).unwrap();
    // SAFETY: no pointer into the map is used after the resize.
    unsafe { raw.remap(4096 + 1, RemapOptions::new()) }.unwrap();
    assert_eq!(raw.len(), 4096 + 1);
    // SAFETY: offset 4096 is inside the live map.
    assert_eq!(unsafe { raw.as_ptr().add(4096).read() }, pattern(4097)[4096]);
}

#[test]
fn a_file_map_shrinks_everywhere() {
    let tf = TestFile::new(6 * 4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let mut map = unsafe { MapOptions::new().offset(4097).map(&tf.open()) }.unwrap();
    // SAFETY: no reference into the map is kept.
    unsafe { map.remap(4096, RemapOptions::new()) }.unwrap();
    assert_eq!(&map[..], &pattern(6 * 4096)[4097..2 * 4096 + 1]);
}

// --- advice ------------------------------------------------------------------------------------

const EVERY_ADVICE: [Advice; 17] = [
    Advice::Normal,
    Advice::Random,
    Advice::Sequential,
    Advice::WillNeed,
    Advice::DontFork,
    Advice::DoFork,
    Advice::Mergeable,
    Advice::Unmergeable,
    Advice::HugePage,
    Advice::NoHugePage,
    Advice::DontDump,
    Advice::DoDump,
    Advice::KeepOnFork,
    Advice::Cold,
    Advice::PageOut,
    Advice::PopulateRead,
    Advice::PopulateWrite,
];

#[test]
fn advice_keeps_the_bytes_and_checks_its_range() {
    let tf = TestFile::new(4 * 4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    for advice in [Advice::Random, Advice::Sequential, Advice::WillNeed, Advice::Normal] {
        map.advise(advice).unwrap();
        map.advise_range(advice, 4096 + 1, 10).unwrap();
    }
    assert_eq!(&map[..], &pattern(4 * 4096)[..]);
    let err = map.advise_range(Advice::WillNeed, 4 * 4096, 1).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::OutsideMapping { .. }), "{err}");
}

#[test]
fn what_is_supported_is_given_and_what_is_not_is_refused() {
    let mut map = MapMut::anon(4 * 4096).unwrap();
    map.fill(1);
    for advice in EVERY_ADVICE {
        let result = map.advise(advice);
        if advice.is_supported() {
            // The OS knows it; only the kernel's build may still refuse (THP, KSM), never as "unsupported".
            if let Err(err) = &result {
                assert!(!matches!(err.kind(), ErrorKind::Unsupported(_)), "{advice:?}: {err}");
            }
        } else {
            let err = result.expect_err("advice the OS does not take must be refused");
            assert!(matches!(err.kind(), ErrorKind::Unsupported(_)), "{advice:?}: {err}");
        }
    }
    assert!(map.iter().all(|&b| b == 1), "no advice changed the bytes");
    for advice in [DestructiveAdvice::DontNeed, DestructiveAdvice::Free, DestructiveAdvice::Remove] {
        if !advice.is_supported() {
            let err = map.advise_destructive(advice, None).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Unsupported(_)), "{advice:?}: {err}");
        }
    }
    for advice in [Advice::Normal, Advice::Random, Advice::Sequential, Advice::WillNeed] {
        assert!(advice.is_supported(), "{advice:?} is taken by every supported OS");
    }
}

/// The kernel's own answer to whether it takes `code` (`madvise` of no bytes).
#[cfg(target_os = "linux")]
fn kernel_takes(code: libc::c_int) -> bool {
    // SAFETY: a zero-length madvise touches no memory; it only checks the advice.
    unsafe { libc::madvise(std::ptr::null_mut(), 0, code) == 0 }
}

#[test]
#[cfg(target_os = "linux")]
fn advice_the_running_kernel_takes_is_given_without_error() {
    let codes = [
        (Advice::DontFork, libc::MADV_DONTFORK),
        (Advice::DoFork, libc::MADV_DOFORK),
        (Advice::Mergeable, libc::MADV_MERGEABLE),
        (Advice::Unmergeable, libc::MADV_UNMERGEABLE),
        (Advice::HugePage, libc::MADV_HUGEPAGE),
        (Advice::NoHugePage, libc::MADV_NOHUGEPAGE),
        (Advice::DontDump, libc::MADV_DONTDUMP),
        (Advice::DoDump, libc::MADV_DODUMP),
        (Advice::KeepOnFork, libc::MADV_KEEPONFORK),
        (Advice::Cold, libc::MADV_COLD),
        (Advice::PageOut, libc::MADV_PAGEOUT),
        (Advice::PopulateRead, libc::MADV_POPULATE_READ),
        (Advice::PopulateWrite, libc::MADV_POPULATE_WRITE),
    ];
    let map = MapMut::anon(4 * 4096).unwrap();
    for (advice, code) in codes {
        let result = map.advise(advice);
        if kernel_takes(code) {
            assert!(result.is_ok(), "{advice:?}: the kernel takes it, yet {result:?}");
        } else {
            assert!(result.is_err(), "{advice:?}: the kernel refuses it, yet it was given");
        }
    }
}

#[test]
#[cfg(target_os = "linux")]
fn dont_need_gives_zeros_or_the_files_bytes_back() {
    let mut anon = MapMut::anon(4 * 4096).unwrap();
    anon.fill(3);
    anon.advise_destructive(DestructiveAdvice::DontNeed, Some((4096, 2 * 4096))).unwrap();
    assert!(anon[..4096].iter().all(|&b| b == 3), "pages outside the range keep their bytes");
    assert!(anon[4096..3 * 4096].iter().all(|&b| b == 0), "anonymous pages dropped read as zeros");
    assert!(anon[3 * 4096..].iter().all(|&b| b == 3));

    // A private file map drops its changes and reads the file again.
    let tf = TestFile::new(2 * 4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let mut copy = unsafe { MapOptions::new().map_copy(&tf.open()) }.unwrap();
    copy.fill(0xee);
    copy.advise_destructive(DestructiveAdvice::DontNeed, None).unwrap();
    assert_eq!(&copy[..], &pattern(2 * 4096)[..]);

    // On a shared read-only map the advice is `unsafe`, and changes nothing a file writer did not.
    // SAFETY: as above.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    // SAFETY: no slice of the map is alive, and its bytes are the file's either way.
    unsafe { map.advise_destructive(DestructiveAdvice::DontNeed, None) }.unwrap();
    assert_eq!(&map[..], &pattern(2 * 4096)[..]);
    // Destructive advice covers whole pages inside its range only: a partial page is left alone.
    anon.fill(4);
    anon.advise_destructive(DestructiveAdvice::DontNeed, Some((10, 4096))).unwrap();
    assert!(anon.iter().all(|&b| b == 4), "no whole page lies inside 10..4106");
}

// --- locking ---------------------------------------------------------------------------------

/// The `Locked:` size, in KiB, that /proc/self/smaps gives the mapping that holds `address`.
#[cfg(target_os = "linux")]
fn locked_kib(address: usize) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut in_ours = false;
    for line in smaps.lines() {
        // A mapping's first line starts with its range, `from-to` in hex.
        let range = line.split_once(' ').and_then(|(range, _)| range.split_once('-'));
        if let Some((from, to)) = range
            && let (Ok(from), Ok(to)) = (usize::from_str_radix(from, 16), usize::from_str_radix(to, 16))
        {
            in_ours = (from..to).contains(&address);
            continue;
        }
        if in_ours && let Some(rest) = line.strip_prefix("Locked:") {
            return rest.trim().trim_end_matches("kB").trim().parse().unwrap();
        }
    }
    panic!("no mapping holds {address:#x} in /proc/self/smaps");
}

#[test]
#[cfg(target_os = "linux")]
fn lock_and_unlock_change_what_the_kernel_has_locked() {
    let tf = TestFile::new(4 * 4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let start = map.as_ptr().addr();
    assert_eq!(locked_kib(start), 0);
    map.lock().unwrap();
    assert_eq!(locked_kib(start), 16);
    assert_eq!(map.residency().unwrap().resident_pages(), 4, "locked pages are in memory");
    map.unlock().unwrap();
    assert_eq!(locked_kib(start), 0);
    // Locked at map time, by option.
    let anon = MapOptions::new().len(2 * 4096).lock(true).map_anon().unwrap();
    assert_eq!(locked_kib(anon.as_ptr().addr()), 8);
}

// --- safe maps, stacks ------------------------------------------------------------------------

#[test]
fn a_file_that_may_change_is_not_mapped_safely_and_the_error_says_why() {
    let tf = TestFile::new(4096);
    let err = MapOptions::new().map_if_safe(&tf.open()).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::MayChange { .. }), "{err}");
    if cfg!(target_os = "linux") {
        let canonical = tf.path.canonicalize().unwrap();
        assert!(err.path().is_some_and(|p| p == canonical), "{err}");
    }
}

#[test]
#[cfg(target_os = "linux")]
fn a_sealed_memfd_maps_safely() {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create takes a NUL-terminated name and returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"sealed".as_ptr(), libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just created and is owned by nothing else.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(b"sealed bytes").unwrap();
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS takes an int of seal flags.
    assert_eq!(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) }, 0);
    let map = MapOptions::new().map_if_safe(&file).unwrap();
    assert_eq!(&map[..], b"sealed bytes");
    // Unsealed, the same kind of file is refused.
    // SAFETY: as above.
    let fd = unsafe { libc::memfd_create(c"open".as_ptr(), libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0);
    // SAFETY: as above.
    let mut open = unsafe { File::from_raw_fd(fd) };
    open.write_all(b"x").unwrap();
    let err = MapOptions::new().map_if_safe(&open).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::MayChange { .. }), "{err}");
}

#[test]
fn a_stack_map_is_made_where_the_os_has_them() {
    let result = MapOptions::new().len(16 * 4096).stack(true).map_anon();
    if cfg!(any(target_os = "linux", target_os = "freebsd")) {
        let mut stack = result.unwrap();
        let top = stack.len() - 1;
        stack[top] = 1;
        assert_eq!(stack[top], 1);
    } else {
        let err = result.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Unsupported(_)), "{err}");
    }
}
