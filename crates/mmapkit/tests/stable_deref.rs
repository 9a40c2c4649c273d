//! `StableDeref` (feature `stable_deref_trait`): a map's bytes stay where they
//! are when the map value moves, as wrappers bound on the trait rely on.

mod common;

use common::{TestFile, pattern};
use mmapkit::{Map, MapMut, MapOptions};
use stable_deref_trait::StableDeref;

/// Moves `owner` through a box and a vector, as a self-referential wrapper
/// might, and returns it with the address its bytes had before and after.
fn move_around<T: StableDeref<Target = [u8]>>(owner: T) -> (T, usize, usize) {
    let before = owner.as_ptr().addr();
    let boxed = Box::new(owner);
    let mut shelf = vec![*boxed];
    shelf.reserve(64); // the vector's buffer moves; the bytes must not
    let owner = shelf.pop().expect("the owner just pushed");
    let after = owner.as_ptr().addr();
    (owner, before, after)
}

#[test]
fn a_file_map_keeps_its_address_when_moved() {
    let tf = TestFile::new(3 * 4096 + 5);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let (map, before, after) = move_around(map);
    assert_eq!(before, after);
    assert_eq!(&map[..], &pattern(3 * 4096 + 5)[..]);
}

#[test]
fn a_writable_map_keeps_its_address_when_moved_and_written() {
    let mut map = MapMut::anon(2 * 4096).unwrap();
    map[4096] = 9;
    let (mut map, before, after) = move_around(map);
    assert_eq!(before, after);
    // Writing through the moved map writes the same memory.
    map[4097] = 10;
    assert_eq!(map.as_mut_ptr().addr(), before);
    assert_eq!(&map[4096..4098], &[9, 10]);
}

#[test]
fn an_offset_map_keeps_its_address_inside_its_first_page() {
    let tf = TestFile::new(10_000);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { MapOptions::new().offset(4099).len(100).map(&tf.open()) }.unwrap();
    let (map, before, after) = move_around(map);
    assert_eq!(before, after);
    assert_eq!(&map[..], &pattern(10_000)[4099..4199]);
}

#[test]
fn an_empty_map_keeps_its_address() {
    let tf = TestFile::new(0);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { Map::new(&tf.open()) }.unwrap();
    let (map, before, after) = move_around(map);
    assert_eq!(before, after);
    assert!(map.is_empty());
}
