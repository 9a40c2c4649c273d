//! Regions: creation rules, header validation, waiting for readiness, memfd
//! passing, and bytes a hostile peer wrote.

mod common;

use common::unique;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mmapkit_shm::{Event, Layout, Op, Region, RegionOptions, Shared, ShmError};
use proptest::prelude::*;
use zerocopy::{FromBytes, KnownLayout};

#[derive(FromBytes, KnownLayout)]
#[repr(C)]
struct State {
    value: AtomicU64,
    ready: Event,
}

fn child(test: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "{:?}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn named_regions_are_owner_only_exclusive_and_removed_on_drop() {
    let name = unique("modes");
    let opts = RegionOptions::new();
    let region =
        // SAFETY: the tests touch State only through its atomics and event.
        unsafe { Shared::<State>::create_named(&name, "State v1", &opts, |s| s.value.store(7, Ordering::SeqCst)) }
            .unwrap();
    let path = format!("/dev/shm/{name}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // SAFETY: the tests touch State only through its atomics and event.
    let err = unsafe { Shared::<State>::create_named(&name, "State v1", &opts, |_| {}) }.unwrap_err();
    assert!(matches!(err, ShmError::Exists { .. }), "{err}");
    assert!(err.to_string().contains(&name), "{err}");

    // SAFETY: the tests touch State only through its atomics and event.
    let other = unsafe { Shared::<State>::open_named(&name, "State v1", &opts) }.unwrap();
    assert_eq!(other.value.load(Ordering::SeqCst), 7);
    assert_eq!(other.region().creator_pid(), std::process::id());
    drop(other);
    drop(region);
    assert!(!std::path::Path::new(&path).exists(), "the creator removes the name on drop");

    let mut kept =
        // SAFETY: the tests touch State only through its atomics and event.
        unsafe { Shared::<State>::create_named(&name, "State v1", RegionOptions::new().mode(0o640).keep(true), |_| {}) }
            .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    kept.region_mut().keep(true);
    drop(kept);
    assert!(std::path::Path::new(&path).exists(), "a kept region stays");
    mmapkit_sys::shm::unlink(&format!("/{name}")).unwrap();
}

#[test]
fn the_wrong_type_or_a_missing_region_is_a_clear_error() {
    let name = unique("layout");
    let opts = RegionOptions::new();
    // SAFETY: the tests touch State only through its atomics and event.
    let _region = unsafe { Shared::<State>::create_named(&name, "State v1", &opts, |_| {}) }.unwrap();

    // SAFETY: the tests touch State only through its atomics and event.
    let err = unsafe { Shared::<State>::open_named(&name, "State v2", &opts) }.unwrap_err();
    assert!(matches!(err, ShmError::WrongLayout { .. }), "{err}");
    // SAFETY: the tests touch State only through its atomics and event.
    let err = unsafe { Shared::<AtomicU64>::open_named(&name, "State v1", &opts) }.unwrap_err();
    match &err {
        ShmError::WrongLayout { expected, found, .. } => {
            assert_eq!(expected.size, 8);
            assert_eq!(found.size, size_of::<State>() as u64);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("holds a type of 16 bytes"), "{err}");

    // SAFETY: the tests touch State only through its atomics and event.
    let err = unsafe { Shared::<State>::open_named(&unique("missing"), "State v1", &opts) }.unwrap_err();
    assert!(matches!(err, ShmError::Os { op: Op::Open, .. }), "{err}");
    // SAFETY: the tests touch State only through its atomics and event.
    let err = unsafe { Shared::<State>::open_named("a/b", "State v1", &opts) }.unwrap_err();
    assert!(matches!(err, ShmError::BadName { .. }), "{err}");
    assert!(err.to_string().contains("no '/'"), "{err}");
}

/// Writes `bytes` at `offset` of a file-backed region, as a hostile peer would.
fn scribble(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new().write(true).open(path).unwrap().write_all_at(bytes, offset).unwrap();
}

#[test]
fn a_bad_magic_version_or_length_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RegionOptions::new();
    let path = dir.path().join("region");
    // SAFETY: the tests touch State only through its atomics and event.
    let mut region = unsafe { Shared::<State>::create_file(&path, "State v1", &opts, |_| {}) }.unwrap();
    region.region_mut().keep(true);

    scribble(&path, 8, &99u32.to_ne_bytes()); // version
    // SAFETY: the tests touch State only through its atomics and event.
    let err = unsafe { Shared::<State>::open_file(&path, "State v1", &opts) }.unwrap_err();
    assert!(matches!(err, ShmError::BadVersion { found: 99, expected: 1, .. }), "{err}");

    scribble(&path, 0, b"NOTSHMEM");
    // SAFETY: the tests touch State only through its atomics and event.
    let err = unsafe { Shared::<State>::open_file(&path, "State v1", &opts) }.unwrap_err();
    assert!(matches!(err, ShmError::BadMagic { found, .. } if &found == b"NOTSHMEM"), "{err}");
    assert!(err.to_string().contains("not an mmapkit-shm region"), "{err}");

    scribble(&path, 0, b"MMAPKSHM");
    scribble(&path, 8, &1u32.to_ne_bytes());
    scribble(&path, 40, &(1u64 << 40).to_ne_bytes()); // payload_len far past the file
    // SAFETY: the tests touch State only through its atomics and event.
    let err = unsafe { Shared::<State>::open_file(&path, "State v1", &opts) }.unwrap_err();
    assert!(matches!(err, ShmError::TooSmall { .. }), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_header_bytes_give_errors_never_panics(
        offset in 0u64..128,
        bytes in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("region");
        let opts = RegionOptions::new();
        // SAFETY: the tests touch State only through its atomics and event.
        let mut region = unsafe { Shared::<State>::create_file(&path, "State v1", &opts, |_| {}) }.unwrap();
        region.region_mut().keep(true);
        scribble(&path, offset, &bytes);
        let mut quick = RegionOptions::new();
        quick.timeout(Duration::from_millis(50));
        // Either the garbage left the header valid, or the open says what is wrong.
        // SAFETY: the tests touch State only through its atomics and event.
        if let Err(err) = unsafe { Shared::<State>::open_file(&path, "State v1", &quick) } {
            prop_assert!(!err.to_string().is_empty());
        }
    }
}

#[test]
fn an_opener_waits_for_a_slow_creator() {
    let name = unique("slow");
    let output = std::thread::scope(|s| {
        let opener = s.spawn(|| child("child_open_and_read", &[("MMAPKIT_SHM_NAME", &name)]));
        std::thread::sleep(Duration::from_millis(100));
        let opts = RegionOptions::new();
        // SAFETY: the tests touch State only through its atomics and event.
        let _region = unsafe {
            Shared::<State>::create_named(&name, "State v1", &opts, |s| {
                std::thread::sleep(Duration::from_millis(300)); // a slow initialisation
                s.value.store(42, Ordering::SeqCst);
            })
        }
        .unwrap();
        opener.join().unwrap()
    });
    assert!(output.status.success(), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("value=42"), "{}", describe(&output));
}

#[test]
#[ignore = "child process of an_opener_waits_for_a_slow_creator"]
fn child_open_and_read() {
    let name = std::env::var("MMAPKIT_SHM_NAME").unwrap();
    let start = Instant::now();
    // The region may not exist yet: retry the open until it does.
    let shared = loop {
        // SAFETY: the tests touch State only through its atomics and event.
        match unsafe { Shared::<State>::open_named(&name, "State v1", &RegionOptions::new()) } {
            Ok(shared) => break shared,
            Err(ShmError::Os { op: Op::Open, .. }) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    };
    println!("value={}", shared.value.load(Ordering::SeqCst));
}

#[test]
fn a_creator_that_dies_while_initialising_is_reported() {
    let name = unique("dead");
    let output = child("child_die_during_init", &[("MMAPKIT_SHM_NAME", &name)]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let mut opts = RegionOptions::new();
    opts.timeout(Duration::from_millis(200));
    // SAFETY: the tests touch State only through its atomics and event.
    let err = unsafe { Shared::<State>::open_named(&name, "State v1", &opts) }.unwrap_err();
    assert!(matches!(err, ShmError::NotReady { .. }), "{err}");
    assert!(err.to_string().contains("may have died"), "{err}");
    mmapkit_sys::shm::unlink(&format!("/{name}")).unwrap();
}

#[test]
#[ignore = "child process of a_creator_that_dies_while_initialising_is_reported"]
fn child_die_during_init() {
    let name = std::env::var("MMAPKIT_SHM_NAME").unwrap();
    let _ =
        // SAFETY: the tests touch State only through its atomics and event.
        unsafe { Shared::<State>::create_named(&name, "State v1", &RegionOptions::new(), |_| std::process::exit(3)) };
}

#[test]
fn two_processes_racing_to_create_get_one_region() {
    let name = unique("race");
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..2).map(|_| s.spawn(|| child("child_create_or_open", &[("MMAPKIT_SHM_NAME", &name)]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let said: Vec<String> = outputs.iter().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).collect();
    for o in &outputs {
        assert!(o.status.success(), "{}", describe(o));
    }
    assert_eq!(said.iter().filter(|s| s.contains("role=created")).count(), 1, "{said:?}");
    assert_eq!(said.iter().filter(|s| s.contains("role=opened")).count(), 1, "{said:?}");
    let _ = mmapkit_sys::shm::unlink(&format!("/{name}"));
}

#[test]
#[ignore = "child process of two_processes_racing_to_create_get_one_region"]
fn child_create_or_open() {
    let name = std::env::var("MMAPKIT_SHM_NAME").unwrap();
    let mut opts = RegionOptions::new();
    opts.keep(true);
    // SAFETY: the tests touch State only through its atomics and event.
    match unsafe { Shared::<State>::create_named(&name, "State v1", &opts, |s| s.value.store(9, Ordering::SeqCst)) } {
        Ok(shared) => {
            // Stay until the other process has seen the value.
            let seen =
                shared.ready.wait_until(|| shared.value.load(Ordering::SeqCst) == 10, Some(Duration::from_secs(10)));
            assert!(seen, "the other process never opened the region");
            println!("role=created");
        }
        Err(ShmError::Exists { .. }) => {
            // SAFETY: the tests touch State only through its atomics and event.
            let shared = unsafe { Shared::<State>::open_named(&name, "State v1", &opts) }.unwrap();
            assert_eq!(shared.value.load(Ordering::SeqCst), 9);
            shared.value.store(10, Ordering::SeqCst);
            shared.ready.notify_all();
            println!("role=opened");
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_sealed_memfd_passes_over_a_socket_and_an_unsealed_one_is_refused() {
    let (a, b) = UnixStream::pair().unwrap();
    let opts = RegionOptions::new();
    // SAFETY: the tests touch State only through its atomics and event.
    let mine = unsafe { Shared::<State>::create_memfd("State v1", |s| s.value.store(5, Ordering::SeqCst)) }.unwrap();
    mine.region().send(&a).unwrap();
    // SAFETY: the tests touch State only through its atomics and event.
    let theirs = unsafe { Shared::<State>::receive(&b, "State v1", &opts) }.unwrap();
    assert_eq!(theirs.value.load(Ordering::SeqCst), 5);
    theirs.value.store(6, Ordering::SeqCst);
    assert_eq!(mine.value.load(Ordering::SeqCst), 6, "both ends map the same memory");

    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::File::create(dir.path().join("plain")).unwrap();
    plain.set_len(4096).unwrap();
    mmapkit_sys::fd_passing::send_fd(&a, std::os::fd::AsFd::as_fd(&plain)).unwrap();
    let err = Region::receive(&b, Layout::of::<State>("State v1"), &opts).unwrap_err();
    assert!(matches!(err, ShmError::NotSealed { .. }), "{err}");
}
