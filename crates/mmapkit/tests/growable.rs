//! The growable map keeps its address while it and its file grow.

mod common;

use std::fs::OpenOptions;

use mmapkit::{ErrorKind, GrowableMap};

fn open_rw(path: &std::path::Path) -> std::fs::File {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).unwrap()
}

#[test]
fn base_address_holds_across_100_grows_and_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.bin");
    let step = 10_007u64; // not a page multiple, so partial pages are crossed
    {
        // SAFETY: only this test touches the file.
        let map = unsafe { GrowableMap::new(open_rw(&path), 64 << 20) }.unwrap();
        assert!(map.is_empty());
        let base = map.as_ptr();
        let mut map = map;
        for round in 1..=100u64 {
            let old = map.len();
            map.grow_to(round * step).unwrap();
            assert_eq!(map.as_ptr(), base, "the base moved at round {round}");
            assert_eq!(map.len() as u64, round * step);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), round * step);
            // Earlier data is still there; fill the new part.
            if old > 0 {
                assert_eq!(map[old - 1], (round - 1) as u8);
            }
            map[old..].fill(round as u8);
        }
        map.flush().unwrap();
    }
    // SAFETY: as above.
    let map = unsafe { GrowableMap::new(open_rw(&path), 64 << 20) }.unwrap();
    assert_eq!(map.len() as u64, 100 * step);
    for round in 1..=100u64 {
        let range = ((round - 1) * step) as usize..(round * step) as usize;
        assert!(map[range].iter().all(|&b| b == round as u8), "round {round}'s bytes changed");
    }
}

#[test]
fn slices_taken_before_a_grow_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: only this test touches the file.
    let map = unsafe { GrowableMap::new(open_rw(&dir.path().join("g.bin")), 1 << 30) }.unwrap();
    map.grow_to(4096).unwrap();
    let before: &[u8] = &map;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 2..50u64 {
                map.grow_to(i * 65_536).unwrap();
            }
        });
        // Reading the old slice while another thread grows the map.
        for _ in 0..1000 {
            assert!(before.iter().all(|&b| b == 0));
        }
    });
    assert_eq!(map.len(), 49 * 65_536);
    assert_eq!(before.as_ptr(), map.as_ptr());
}

#[test]
fn growing_past_the_reservation_or_shrinking_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.bin");
    // SAFETY: only this test touches the file.
    let map = unsafe { GrowableMap::new(open_rw(&path), 1 << 20) }.unwrap();
    assert_eq!(map.capacity(), 1 << 20);
    map.grow_to(1 << 20).unwrap();
    let err = map.grow_to((1 << 20) + 1).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::ReservationExceeded { requested, reserved }
            if *requested == (1 << 20) + 1 && *reserved == 1 << 20
    ));
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    let err = map.grow_to(10).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::WouldShrink { requested: 10, .. }), "{err}");
    assert_eq!(map.len(), 1 << 20, "a failed grow changes nothing");
    drop(map);
    // SAFETY: as above. (A file already larger than the reservation is refused.)
    let err = unsafe { GrowableMap::new(open_rw(&path), 4096) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::ReservationExceeded { .. }), "{err}");
}

#[test]
fn growth_allocates_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alloc.bin");
    // SAFETY: only this test touches the file.
    let map = unsafe { GrowableMap::new(open_rw(&path), 1 << 30) }.unwrap();
    map.grow_to(8 << 20).unwrap();
    // fallocate reserved the blocks: the file is not sparse.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.blocks() * 512 >= 8 << 20, "only {} bytes allocated", meta.blocks() * 512);
}

/// The `VmFlags` that /proc/self/smaps gives each mapping overlapping
/// `start..end`, in address order.
#[cfg(target_os = "linux")]
fn vm_flags(start: usize, end: usize) -> Vec<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    let mut flags = Vec::new();
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ')
            && let Some((a, b)) = range.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            inside = a < end && b > start;
        } else if inside && let Some(rest) = line.strip_prefix("VmFlags:") {
            flags.push(rest.trim().to_owned());
        }
    }
    flags
}

#[cfg(target_os = "linux")]
#[test]
fn advice_holds_for_the_tails_growth_maps_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("advised.bin");
    let file = open_rw(&path);
    file.set_len(8192).unwrap();
    // SAFETY: nothing else in this test touches the file.
    let map = unsafe { GrowableMap::new(file, 1 << 24) }.unwrap();
    let base = map.as_ptr() as usize;
    map.advise(mmapkit::Advice::Random).unwrap();
    for len in [3 * 4096, 64 * 4096, 1 << 20] {
        map.grow_to(len as u64).unwrap();
        let flags = vm_flags(base, base + len);
        assert!(!flags.is_empty(), "no mapping found at {base:#x}");
        assert!(flags.iter().all(|f| f.split(' ').any(|flag| flag == "rr")), "at {len} bytes: {flags:?}");
    }
    // Back to the default: no part, old or new, keeps the hint.
    map.advise(mmapkit::Advice::Normal).unwrap();
    map.grow_to(2 << 20).unwrap();
    let flags = vm_flags(base, base + (2 << 20));
    assert!(flags.iter().all(|f| !f.split(' ').any(|flag| flag == "rr")), "{flags:?}");
}

#[test]
fn a_read_map_follows_a_file_grown_through_another_handle() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("followed.bin");
    let writer = open_rw(&path);
    writer.write_all_at(&[1u8; 5000], 0).unwrap();
    // SAFETY: the test writes only bytes past every slice it takes.
    let map = unsafe { mmapkit::GrowableReadMap::new(open_rw(&path), 1 << 20) }.unwrap();
    let base = map.as_ptr();
    assert_eq!(map.len(), 5000);
    writer.write_all_at(&[2u8; 10_000], 5000).unwrap();
    assert_eq!(map.len(), 5000, "the map does not grow by itself");
    assert_eq!(map.follow_file().unwrap(), 15_000);
    assert_eq!((map.len(), map.as_ptr()), (15_000, base), "grown in place");
    assert!(map[..5000].iter().all(|&b| b == 1) && map[5000..].iter().all(|&b| b == 2));
    writer.set_len(4096).unwrap();
    assert_eq!(map.follow_file().unwrap(), 15_000, "a shorter file is not followed");
    writer.set_len(2 << 20).unwrap();
    let err = map.follow_file().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::ReservationExceeded { requested, .. } if *requested == 2 << 20), "{err}");
    assert!(err.to_string().contains("followed.bin"), "{err}");
}

#[test]
fn a_checked_read_past_the_end_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checked.bin");
    // SAFETY: only this test touches the file.
    let mut map = unsafe { GrowableMap::new(open_rw(&path), 1 << 20) }.unwrap();
    map.grow_to(5000).unwrap();
    map[..5000].fill(3);
    assert_eq!(map.get_checked(4000..5000).unwrap(), &[3u8; 1000][..]);
    let err = map.get_checked(4000..5001).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::OutsideMapping { offset: 4000, len: 1001, map_len: 5000 }), "{err}");
    let named = err.path().map(|p| p.canonicalize().unwrap());
    assert_eq!(named, Some(path.canonicalize().unwrap()), "{err}");
    assert!(err.to_string().contains("checked.bin"), "{err}");
}
