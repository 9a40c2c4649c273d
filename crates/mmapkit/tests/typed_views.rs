//! Typed views (feature `zerocopy`): `&T` and `&[T]` at an offset of a map,
//! checked for bounds and alignment, with errors that say what did not fit.

mod common;

use common::TestFile;
use mmapkit::{ErrorKind, Map, MapMut, MapOptions, Operation, ViewProblem};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A file header, as a format on disk might lay it out.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, PartialEq, Eq, Clone, Copy)]
#[repr(C)]
struct Header {
    magic: u32,
    count: u32,
    first: u64,
}

/// A file of a header (magic 0xfeed, `count` entries at byte 64) followed by
/// the entries `i * 3`, as u32s in native byte order.
fn file_with_entries(count: u32) -> TestFile {
    let tf = TestFile::new(0);
    let header = Header { magic: 0xfeed, count, first: 64 };
    let mut bytes = header.as_bytes().to_vec();
    bytes.resize(64, 0);
    for i in 0..count {
        bytes.extend_from_slice(&(i * 3).to_ne_bytes());
    }
    std::fs::write(&tf.path, bytes).unwrap();
    tf
}

fn map_of(tf: &TestFile) -> Map {
    // SAFETY: the test owns the file and nothing else writes it.
    unsafe { Map::open(&tf.path) }.unwrap()
}

/// The parts of a `BadView` error, or a panic naming what the error was instead.
fn bad_view(error: &mmapkit::Error) -> (&'static str, usize, u128, usize, ViewProblem) {
    match error.kind() {
        &ErrorKind::BadView { type_name, offset, size, align, problem } => (type_name, offset, size, align, problem),
        other => panic!("expected a BadView error, got {other:?}"),
    }
}

#[test]
fn a_struct_and_a_slice_read_in_place() {
    let tf = file_with_entries(100);
    let map = map_of(&tf);
    let header: &Header = map.view(0).unwrap();
    assert_eq!(*header, Header { magic: 0xfeed, count: 100, first: 64 });
    assert_eq!((header as *const Header).cast::<u8>(), map.as_ptr(), "the view is the map's bytes, not a copy");
    let entries: &[u32] = map.view_slice(header.first as usize, header.count as usize).unwrap();
    assert_eq!(entries.len(), 100);
    assert!(entries.iter().enumerate().all(|(i, &e)| e == i as u32 * 3));
    // The last entry ends exactly at the end of the map.
    assert_eq!(*map.view::<u32>(map.len() - 4).unwrap(), 99 * 3);
}

#[test]
fn an_empty_slice_at_the_end_is_fine() {
    let tf = file_with_entries(4);
    let map = map_of(&tf);
    assert!(map.view_slice::<u32>(map.len(), 0).unwrap().is_empty());
}

#[test]
fn a_view_past_the_end_is_an_error_naming_it() {
    let tf = file_with_entries(1); // 68 bytes
    let map = map_of(&tf);
    let err = map.view::<Header>(56).unwrap_err();
    let (type_name, offset, size, align, problem) = bad_view(&err);
    assert!(type_name.ends_with("Header"), "{type_name}");
    assert_eq!((offset, size, align), (56, 16, align_of::<Header>()));
    assert_eq!(problem, ViewProblem::PastEnd { map_len: 68 });
    assert_eq!(err.operation(), Operation::Read);
    assert_eq!(err.path(), Some(tf.path.as_path()));
    let message = err.to_string();
    for part in ["Header", "16 bytes", "at offset 56", "end at byte 72", "68 bytes long", "data.bin"] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn a_misaligned_view_is_an_error_naming_the_alignment() {
    let tf = file_with_entries(8);
    let map = map_of(&tf);
    let err = map.view::<u64>(4).unwrap_err();
    let (type_name, offset, size, align, problem) = bad_view(&err);
    assert_eq!((type_name, offset, size, align), ("u64", 4, 8, align_of::<u64>()));
    let address = map.as_ptr().addr() + 4;
    assert_eq!(problem, ViewProblem::Misaligned { address });
    let message = err.to_string();
    for part in ["u64", "8 bytes", &format!("alignment {}", align_of::<u64>()), "offset 4", &format!("{address:#x}")] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    let err = map.view_slice::<u32>(66, 0).unwrap_err();
    assert_eq!(bad_view(&err).4, ViewProblem::Misaligned { address: map.as_ptr().addr() + 66 });
    assert!(err.to_string().contains("[u32]"), "{err}");
}

#[test]
fn a_misaligned_file_offset_shows_in_the_view() {
    // A map that starts 2 bytes into a page: its offset 0 is not 4-aligned.
    let tf = file_with_entries(16);
    // SAFETY: the test owns the file and nothing else writes it.
    let map = unsafe { MapOptions::new().offset(2).map(&tf.open()) }.unwrap();
    assert!(matches!(bad_view(&map.view::<u32>(0).unwrap_err()).4, ViewProblem::Misaligned { .. }));
    // Two bytes on, the file's own alignment is back.
    assert_eq!(*map.view::<u32>(62).unwrap(), 0);
    assert_eq!(*map.view::<u32>(66).unwrap(), 3);
}

#[test]
fn counts_and_offsets_that_overflow_are_errors_not_panics() {
    let tf = file_with_entries(2);
    let map = map_of(&tf);
    let err = map.view_slice::<u64>(0, usize::MAX).unwrap_err();
    let (_, offset, size, _, problem) = bad_view(&err);
    assert_eq!((offset, size), (0, 8 * usize::MAX as u128));
    assert_eq!(problem, ViewProblem::PastEnd { map_len: 72 });
    let err = map.view::<u8>(usize::MAX).unwrap_err();
    assert_eq!(bad_view(&err).4, ViewProblem::PastEnd { map_len: 72 });
    assert!(err.to_string().contains(&format!("end at byte {}", usize::MAX as u128 + 1)), "{err}");
}

#[test]
fn an_empty_map_has_no_room_for_a_value() {
    let tf = TestFile::new(0);
    let map = map_of(&tf);
    assert_eq!(bad_view(&map.view::<u8>(0).unwrap_err()).4, ViewProblem::PastEnd { map_len: 0 });
    assert!(map.view_slice::<u64>(0, 0).unwrap().is_empty());
}

#[test]
fn mutable_views_write_the_file() {
    let tf = file_with_entries(10);
    // SAFETY: the test owns the file and nothing else writes it.
    let mut map = unsafe { MapMut::open(&tf.path) }.unwrap();
    map.view_mut::<Header>(0).unwrap().count = 3;
    for entry in map.view_slice_mut::<u32>(64, 10).unwrap() {
        *entry += 1;
    }
    map.flush().unwrap();
    drop(map);
    let map = map_of(&tf);
    assert_eq!(map.view::<Header>(0).unwrap().count, 3);
    assert_eq!(map.view_slice::<u32>(64, 3).unwrap(), &[1, 4, 7]);
}

#[test]
fn mutable_views_are_checked_the_same_way() {
    let mut map = MapMut::anon(4096).unwrap();
    let err = map.view_mut::<u32>(4094).unwrap_err();
    assert_eq!(err.operation(), Operation::Write);
    assert_eq!(bad_view(&err).4, ViewProblem::PastEnd { map_len: 4096 });
    let err = map.view_slice_mut::<u16>(1, 2).unwrap_err();
    let (type_name, offset, size, align, problem) = bad_view(&err);
    assert_eq!((type_name, offset, size, align), ("[u16]", 1, 4, 2));
    assert!(matches!(problem, ViewProblem::Misaligned { .. }));
    assert_eq!(err.path(), None, "an anonymous map has no file to name");
    // A read view of a writable map works as on a Map.
    map.view_slice_mut::<u16>(2, 2).unwrap().copy_from_slice(&[7, 8]);
    assert_eq!(map.view_slice::<u16>(2, 2).unwrap(), &[7, 8]);
}
