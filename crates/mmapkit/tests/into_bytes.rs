//! `Map` into `bytes::Bytes` (feature `bytes`): no copy, and the map lives as
//! long as any clone or slice of the `Bytes` does.

mod common;

use bytes::Bytes;
use common::{TestFile, pattern};
use mmapkit::{Map, MapMut, MapOptions};

#[test]
fn the_bytes_are_the_map_not_a_copy() {
    let tf = TestFile::new(5 * 4096 + 123);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let address = map.as_ptr();
    let bytes = map.into_bytes();
    assert_eq!(bytes.as_ptr(), address);
    assert_eq!(bytes.len(), 5 * 4096 + 123);
    assert_eq!(&bytes[..], &pattern(5 * 4096 + 123)[..]);
    // Slices point into the same memory.
    let tail = bytes.slice(4096..);
    assert_eq!(tail.as_ptr(), address.wrapping_add(4096));
}

#[test]
fn from_map_is_into_bytes() {
    let tf = TestFile::new(4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { MapOptions::new().offset(100).len(50).map(&tf.open()) }.unwrap();
    let address = map.as_ptr();
    let bytes = Bytes::from(map);
    assert_eq!(bytes.as_ptr(), address);
    assert_eq!(&bytes[..], &pattern(4096)[100..150]);
}

#[test]
fn a_frozen_anonymous_map_converts_too() {
    let mut map = MapMut::anon(8192).unwrap();
    map[..5].copy_from_slice(b"hello");
    let map = map.make_read_only().unwrap();
    let address = map.as_ptr();
    let bytes = map.into_bytes();
    assert_eq!((bytes.as_ptr(), &bytes[..5]), (address, &b"hello"[..]));
}

#[test]
fn an_empty_map_gives_empty_bytes() {
    let tf = TestFile::new(0);
    // SAFETY: the test owns the file and nothing else writes it.
    let bytes = unsafe { Map::new(&tf.open()) }.unwrap().into_bytes();
    assert!(bytes.is_empty());
}

/// Whether this process has a mapping of the file at `path` (Linux: its maps list names the file).
#[cfg(target_os = "linux")]
fn is_mapped(path: &std::path::Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let path = path.canonicalize().unwrap();
    maps.lines().any(|line| line.ends_with(path.to_str().unwrap()))
}

#[test]
#[cfg(target_os = "linux")]
fn the_map_lives_while_any_clone_lives() {
    let tf = TestFile::new(3 * 4096);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let bytes = map.into_bytes();
    let clone = bytes.clone();
    let slice = bytes.slice(8000..8100);
    drop(bytes);
    assert!(is_mapped(&tf.path), "dropping one handle unmapped the file");
    drop(clone);
    assert!(is_mapped(&tf.path), "the last slice no longer keeps the map");
    assert_eq!(&slice[..], &pattern(3 * 4096)[8000..8100]);
    drop(slice);
    assert!(!is_mapped(&tf.path), "the map outlived every Bytes made from it");
}

#[test]
fn clones_read_the_file_after_the_original_is_gone() {
    let tf = TestFile::new(2 * 4096 + 7);
    // SAFETY: the test owns the file and nothing else writes it.
    let bytes = unsafe { Map::new(&tf.open()) }.unwrap().into_bytes();
    let clones: Vec<Bytes> = (0..8).map(|_| bytes.clone()).collect();
    drop(bytes);
    let expected = pattern(2 * 4096 + 7);
    // Another thread holds the last ones: the map moves with them.
    std::thread::spawn(move || {
        for clone in clones {
            assert_eq!(&clone[..], &expected[..]);
        }
    })
    .join()
    .unwrap();
}
