//! Things that cannot be mapped give a clear error naming the file and the problem.

mod common;

use std::fs::{File, OpenOptions};

use common::TestFile;
use mmapkit::{ErrorKind, GrowableMap, Map, MapMut, MapOptions, Operation};

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let handle = File::open(dir.path()).unwrap();
    // SAFETY: nothing is mapped; the call fails before mapping.
    let err = unsafe { Map::new(&handle) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotMappable("a directory")), "{err}");
    assert_eq!(err.path(), Some(dir.path()));
    let msg = err.to_string();
    assert!(msg.contains(dir.path().to_str().unwrap()) && msg.contains("is a directory"), "{msg}");
}

#[test]
fn a_character_device_needs_a_length_and_then_maps_as_its_driver_allows() {
    let zero = File::open("/dev/zero").unwrap();
    // SAFETY: the call fails before mapping.
    let err = unsafe { Map::new(&zero) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::LengthRequired("a character device")), "{err}");
    assert_eq!(
        err.to_string(),
        "cannot map /dev/zero: it is a character device, which has no length to map to: give one with MapOptions::len"
    );
    // SAFETY: /dev/zero's pages are private zeros; nothing can change them.
    let map = unsafe { MapOptions::new().len(3 * 4096 + 5).map(&zero) }.unwrap();
    assert_eq!(map.len(), 3 * 4096 + 5);
    assert!(map.iter().all(|&b| b == 0));
    // A driver that cannot be mapped says so through the kernel (ENODEV for /dev/null).
    let null = File::open("/dev/null").unwrap();
    // SAFETY: as above.
    let err = unsafe { MapOptions::new().len(4096).map(&null) }.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(19), "{err}");
    assert!(err.to_string().starts_with("cannot map /dev/null: "), "{err}");
}

#[test]
fn a_write_only_file_is_refused() {
    let tf = TestFile::new(4096);
    let write_only = OpenOptions::new().write(true).open(&tf.path).unwrap();
    // SAFETY: the call fails before mapping.
    let err = unsafe { MapMut::new(&write_only) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::AccessMode { opened: "write-only", .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(tf.path.to_str().unwrap()) && msg.contains("needs read access"), "{msg}");
}

#[test]
fn a_read_only_file_cannot_be_mapped_writable_and_shared() {
    let tf = TestFile::new(4096);
    // SAFETY: the call fails before mapping.
    let err = unsafe { MapMut::new(&tf.open()) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::AccessMode { opened: "read-only", .. }), "{err}");
    // SAFETY: as above.
    let err = unsafe { GrowableMap::new(tf.open(), 1 << 20) }.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::AccessMode { opened: "read-only", .. }), "{err}");
}

#[test]
fn a_missing_file_is_an_open_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file.bin");
    // SAFETY: the call fails before mapping.
    let err = unsafe { Map::open(&missing) }.unwrap_err();
    assert_eq!(err.operation(), Operation::Open);
    assert_eq!(err.path(), Some(missing.as_path()));
    assert_eq!(err.raw_os_error(), Some(2));
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("cannot open {}:", missing.display())), "{msg}");
    // SAFETY: as above.
    assert!(unsafe { MapMut::open(&missing) }.is_err());
}

#[test]
fn errors_convert_to_io_errors_with_a_fitting_kind() {
    let tf = TestFile::new(10);
    // SAFETY: the call fails before mapping.
    let err = unsafe { MapOptions::new().len(11).map(&tf.open()) }.unwrap_err();
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(io.to_string().contains("past the end of the file"), "{io}");
}

#[test]
fn write_back_takes_a_written_range_and_refuses_bad_ones_naming_the_file() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wb.bin");
    let mut file = File::create(&path).unwrap();
    file.write_all(&vec![7u8; 1 << 20]).unwrap();
    mmapkit::page_cache::start_writeback(&file, 0, 1 << 20).unwrap();
    // A range that overflows the file offset type is named as such.
    let err = mmapkit::page_cache::start_writeback(&file, u64::MAX - 10, 100).unwrap_err();
    assert_eq!(err.operation(), Operation::Writeback);
    assert!(matches!(err.kind(), ErrorKind::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    // A pipe has no pages to write back: the OS refuses (ESPIPE).
    let (reader, _writer) = std::io::pipe().unwrap();
    let pipe = File::from(std::os::fd::OwnedFd::from(reader));
    let err = mmapkit::page_cache::start_writeback(&pipe, 0, 4096).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(29), "{err}");
    assert!(err.to_string().starts_with("cannot start write-back of"), "{err}");
}
