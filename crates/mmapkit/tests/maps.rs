//! File, copy-on-write and anonymous maps: contents, writes, conversions, advice.

mod common;

use std::io::Read;

use common::{TestFile, assert_child_passed, child_env, pattern, pattern_byte, run_child};
use mmapkit::{Advice, DestructiveAdvice, ErrorKind, Map, MapMut, MapOptions};

#[test]
fn whole_file_map_reads_the_file() {
    let tf = TestFile::new(3 * 4096 + 17);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    assert_eq!(&map[..], &pattern(3 * 4096 + 17)[..]);
}

#[test]
fn flushed_writes_are_seen_by_a_plain_read() {
    let tf = TestFile::new(10_000);
    // SAFETY: the test owns the file and nothing else writes it while mapped.
    let mut map = unsafe { MapMut::new(&tf.open_rw()) }.unwrap();
    map[0..4].copy_from_slice(b"ABCD");
    map[9_996..].copy_from_slice(b"WXYZ");
    map.flush().unwrap();
    let mut contents = Vec::new();
    tf.open().read_to_end(&mut contents).unwrap();
    assert_eq!(&contents[..4], b"ABCD");
    assert_eq!(&contents[9_996..], b"WXYZ");
    assert_eq!(&contents[4..9_996], &pattern(10_000)[4..9_996]);
}

#[test]
fn flush_range_and_async_flush_write_back() {
    let tf = TestFile::new(5 * 4096);
    // SAFETY: the test owns the file.
    let mut map = unsafe { MapMut::new(&tf.open_rw()) }.unwrap();
    map[4097] = 0xEE;
    map.flush_range(4097, 1).unwrap();
    map[3 * 4096] = 0xDD;
    map.flush_async_range(3 * 4096, 10).unwrap();
    map.flush_async().unwrap();
    let contents = std::fs::read(&tf.path).unwrap();
    assert_eq!(contents[4097], 0xEE);
    assert_eq!(contents[3 * 4096], 0xDD);
}

#[test]
fn flush_range_outside_the_map_is_an_error() {
    let tf = TestFile::new(8192);
    // SAFETY: the test owns the file.
    let map = unsafe { MapMut::new(&tf.open_rw()) }.unwrap();
    let err = map.flush_range(8000, 200).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::OutsideMapping { offset: 8000, len: 200, map_len: 8192 }), "{err}");
    assert!(err.to_string().contains("8000..8200"), "{err}");
    let err = map.flush_range(usize::MAX, 2).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::OutsideMapping { .. }), "{err}");
    map.flush_range(8192, 0).unwrap();
}

#[test]
fn copy_on_write_changes_never_reach_the_file() {
    let tf = TestFile::new(3 * 4096);
    let file = tf.open(); // read-only is enough for a private map
    // SAFETY: the test owns the file.
    let mut cow = unsafe { MapOptions::new().map_copy(&file) }.unwrap();
    cow.fill(0x55);
    cow.flush().unwrap();
    assert!(cow.iter().all(|&b| b == 0x55));
    assert_eq!(std::fs::read(&tf.path).unwrap(), pattern(3 * 4096));
    // SAFETY: as above. (A second, shared map of the file does not see the private writes either.)
    let shared = unsafe { Map::new(&file) }.unwrap();
    assert_eq!(&shared[..], &pattern(3 * 4096)[..]);
    // Dropping the private pages brings back the file's contents.
    cow.advise_destructive(DestructiveAdvice::DontNeed, None).unwrap();
    assert_eq!(&cow[..], &pattern(3 * 4096)[..]);
}

#[test]
fn unaligned_offsets_start_at_the_exact_byte() {
    let len = 5 * 4096 + 123;
    let tf = TestFile::new(len);
    let file = tf.open();
    for offset in [1u64, 7, 4095, 4096, 4097, 8191, 3 * 4096 + 5] {
        for map_len in [1usize, 10, 4096, 4097] {
            if offset as usize + map_len > len {
                continue;
            }
            // SAFETY: the test owns the file.
            let map = unsafe { MapOptions::new().offset(offset).len(map_len).map(&file) }.unwrap();
            assert_eq!(map.len(), map_len);
            let expected: Vec<u8> = (offset..offset + map_len as u64).map(pattern_byte).collect();
            assert_eq!(&map[..], &expected[..], "offset {offset} len {map_len}");
        }
        // SAFETY: as above. (Without a length: to the end of the file.)
        let rest = unsafe { MapOptions::new().offset(offset).map(&file) }.unwrap();
        assert_eq!(rest.len(), len - offset as usize);
        assert_eq!(rest[0], pattern_byte(offset));
    }
}

#[test]
fn writes_at_an_unaligned_offset_land_at_that_offset() {
    let tf = TestFile::new(3 * 4096);
    // SAFETY: the test owns the file.
    let mut map = unsafe { MapOptions::new().offset(5000).len(100).map_mut(&tf.open_rw()) }.unwrap();
    map[0] = 0xAB;
    map[99] = 0xCD;
    map.flush().unwrap();
    let contents = std::fs::read(&tf.path).unwrap();
    assert_eq!((contents[5000], contents[5099]), (0xAB, 0xCD));
    assert_eq!(contents[4999], pattern_byte(4999));
    assert_eq!(contents[5100], pattern_byte(5100));
}

#[test]
fn empty_files_and_zero_lengths_give_empty_maps() {
    let tf = TestFile::new(0);
    // SAFETY: the test owns the file.
    unsafe {
        assert!(Map::new(&tf.open()).unwrap().is_empty());
        assert!(MapMut::new(&tf.open_rw()).unwrap().is_empty());
        assert!(MapOptions::new().map_copy(&tf.open()).unwrap().is_empty());
        let empty = MapMut::new(&tf.open_rw()).unwrap();
        empty.flush().unwrap();
        empty.advise(Advice::WillNeed).unwrap();
        assert_eq!(empty.residency().unwrap().total_pages(), 0);
        let frozen = empty.make_read_only().unwrap();
        assert_eq!(&frozen[..], b"");
    }
    let tf = TestFile::new(100);
    // SAFETY: as above.
    let map = unsafe { MapOptions::new().offset(100).map(&tf.open()) }.unwrap();
    assert!(map.is_empty());
    // SAFETY: as above.
    let map = unsafe { MapOptions::new().offset(40).len(0).map(&tf.open()) }.unwrap();
    assert!(map.is_empty());
    assert!(MapMut::anon(0).unwrap().is_empty());
}

#[test]
fn ranges_past_the_end_are_refused_at_map_time() {
    let tf = TestFile::new(100);
    let file = tf.open();
    // SAFETY: the test owns the file; nothing else changes it.
    let err = unsafe { MapOptions::new().len(8192).map(&file) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::PastEndOfFile { offset: 0, len: 8192, file_len: 100 }));
    let msg = err.to_string();
    assert!(msg.contains(tf.path.to_str().unwrap()), "message lacks the path: {msg}");
    assert!(msg.contains("0..8192") && msg.contains("100 bytes"), "{msg}");

    // SAFETY: the test owns the file; nothing else changes it.
    let err = unsafe { MapOptions::new().offset(101).map(&file) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::PastEndOfFile { offset: 101, .. }), "{err}");
    // SAFETY: the test owns the file; nothing else changes it.
    let err = unsafe { MapOptions::new().offset(50).len(51).map(&file) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::PastEndOfFile { .. }), "{err}");
    // SAFETY: the test owns the file; nothing else changes it.
    let err = unsafe { MapOptions::new().offset(u64::MAX).len(2).map(&file) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TooLarge { .. }), "{err}");
}

#[test]
fn make_read_only_and_back() {
    let mut map = MapMut::anon(10_000).unwrap();
    map[9_999] = 9;
    let frozen = map.make_read_only().unwrap();
    assert_eq!(frozen[9_999], 9);
    let mut thawed = frozen.make_mut().unwrap();
    thawed[0] = 1;
    assert_eq!((thawed[0], thawed[9_999]), (1, 9));
}

#[test]
fn make_mut_on_a_read_only_file_fails_and_returns_the_map() {
    let tf = TestFile::new(4096);
    // SAFETY: the test owns the file.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let unchanged = map.make_mut().unwrap_err();
    assert!(matches!(unchanged.error.kind(), ErrorKind::AccessMode { opened: "read-only", .. }), "{}", unchanged.error);
    let message = unchanged.error.to_string();
    assert!(message.contains(&tf.path.display().to_string()), "the error names the file: {message}");
    assert_eq!(unchanged.map[10], pattern_byte(10), "the map came back usable");
    // SAFETY: as above. (A private read-only map can be made writable; writes stay private.)
    let cow = unsafe { MapOptions::new().map_copy_read_only(&tf.open()) }.unwrap();
    let mut cow = cow.make_mut().unwrap();
    cow[0] = !pattern_byte(0);
    assert_eq!(std::fs::read(&tf.path).unwrap()[0], pattern_byte(0));
}

#[test]
fn anonymous_maps_are_zeroed_and_private() {
    let mut map = MapMut::anon(3 * 4096 + 1).unwrap();
    assert_eq!(map.len(), 3 * 4096 + 1);
    assert!(map.iter().all(|&b| b == 0));
    map.fill(0xA5);
    assert!(map.iter().all(|&b| b == 0xA5));
    map.advise_destructive(DestructiveAdvice::DontNeed, None).unwrap();
    // The three whole pages were dropped and read as zeros again; the last,
    // partial page was left alone.
    assert!(map[..3 * 4096].iter().all(|&b| b == 0));
    assert_eq!(map[3 * 4096], 0xA5);
    let err = MapOptions::new().offset(10).len(10).map_anon().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidArgument(_)), "{err}");
}

#[test]
fn options_populate_no_reserve_and_lock() {
    let tf = TestFile::new(64 * 4096);
    // SAFETY: the test owns the file.
    let map = unsafe { MapOptions::new().populate(true).no_reserve(true).lock(true).map(&tf.open()) }.unwrap();
    let residency = map.residency().unwrap();
    assert_eq!(residency.resident_pages(), residency.total_pages(), "populate + mlock leave every page resident");
    map.unlock().unwrap();
    map.lock().unwrap();
    let anon = MapOptions::new().len(1 << 20).populate(true).lock(true).map_anon().unwrap();
    assert_eq!(anon.residency().unwrap().resident_pages(), 256);
}

/// Reads `HugePages_Free` from /proc/meminfo.
fn free_huge_pages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn huge_page_anonymous_maps_work_or_say_why() {
    let result = MapOptions::new().len(100).huge_pages(None).map_anon();
    if free_huge_pages() > 0 {
        let mut map = result.unwrap();
        map[99] = 1;
        assert_eq!(map.len(), 100);
    } else {
        // No huge pages are reserved on this machine: the kernel refuses with ENOMEM.
        let err = result.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(12), "{err}");
        assert!(err.to_string().starts_with("cannot map"), "{err}");
    }
    // File maps take MADV_HUGEPAGE instead, which needs no reservation.
    let tf = TestFile::new(1 << 21);
    // SAFETY: the test owns the file.
    let map = unsafe { MapOptions::new().huge_pages(None).map(&tf.open()) }.unwrap();
    assert_eq!(map[12345], pattern_byte(12345));
}

#[test]
fn advice_ranges_are_checked() {
    let tf = TestFile::new(4 * 4096);
    // SAFETY: the test owns the file.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    for advice in [Advice::Sequential, Advice::Random, Advice::WillNeed, Advice::Normal, Advice::DontDump] {
        map.advise(advice).unwrap();
        map.advise_range(advice, 100, 5000).unwrap();
    }
    let err = map.advise_range(Advice::WillNeed, 4 * 4096, 1).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::OutsideMapping { .. }), "{err}");
}

/// Evicts the file and reports how many of the map's pages are resident.
fn resident_after_evict(tf: &TestFile, map: &Map) -> usize {
    mmapkit::page_cache::evict(&tf.open()).unwrap();
    map.residency().unwrap().resident_pages()
}

#[test]
fn residency_rises_after_touching_and_after_willneed() {
    let pages = 256;
    let tf = TestFile::new(pages * 4096);
    // SAFETY: the test owns the file.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    map.advise(Advice::Random).unwrap(); // no read-ahead: touching reads only what it touches
    let before = resident_after_evict(&tf, &map);
    assert!(before < pages / 8, "eviction left {before} of {pages} pages resident");
    let touched: u64 = (0..pages / 2).map(|p| u64::from(map[p * 4096])).sum();
    std::hint::black_box(touched);
    let after_touch = map.residency().unwrap();
    assert!(after_touch.resident_pages() >= pages / 2, "{} resident", after_touch.resident_pages());
    assert!((0..pages / 2).all(|p| after_touch.is_resident(p)));
    // Pages this process has mapped stay in the cache; a fresh map starts clean.
    drop(map);
    // SAFETY: as above.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();

    let before = resident_after_evict(&tf, &map);
    assert!(before < pages / 8, "eviction left {before} of {pages} pages resident");
    map.advise(Advice::WillNeed).unwrap();
    // WillNeed starts read-ahead, which the kernel may trim under load; wait
    // for it to bring in at least half the file without a single access.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut resident = 0;
    while std::time::Instant::now() < deadline {
        resident = map.residency().unwrap().resident_pages();
        if resident == pages {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        resident >= pages / 2 && resident > before,
        "WillNeed brought in {resident} of {pages} pages (from {before})"
    );
}

#[test]
fn page_cache_residency_of_a_file() {
    let tf = TestFile::new(32 * 4096);
    mmapkit::page_cache::evict(&tf.open()).unwrap();
    let cold = mmapkit::page_cache::residency(&tf.open()).unwrap();
    assert_eq!(cold.total_pages(), 32);
    let _ = std::fs::read(&tf.path).unwrap();
    let warm = mmapkit::page_cache::residency(&tf.open()).unwrap();
    assert!(warm.resident_pages() > cold.resident_pages(), "{} vs {}", warm.resident_pages(), cold.resident_pages());
    assert_eq!(warm.resident_pages(), 32);
}

#[test]
fn shared_writes_cross_processes() {
    let tf = TestFile::new(2 * 4096);
    // SAFETY: only this test and the child it starts use the file, and they take turns: the child runs while this
    // process does not touch the map.
    let mut map = unsafe { MapMut::new(&tf.open_rw()) }.unwrap();
    map[..6].copy_from_slice(b"parent"); // not flushed: visible through the page cache
    let output = run_child("child_sees_parent_write_and_answers", &[("MMAPKIT_TEST_FILE", &tf.path)]);
    assert_child_passed(&output);
    assert_eq!(&map[4096..4101], b"child", "the child's write is visible in this live map");
}

#[test]
#[ignore = "run by shared_writes_cross_processes in a child process"]
fn child_sees_parent_write_and_answers() {
    let path = child_env("MMAPKIT_TEST_FILE");
    // SAFETY: the parent does not touch the map while this child runs.
    let mut map = unsafe { MapMut::open(&path) }.unwrap();
    assert_eq!(&map[..6], b"parent");
    map[4096..4101].copy_from_slice(b"child");
}
