//! Life cycle of named regions: a name left behind by a creator killed with
//! `SIGKILL` is reclaimed by the next creator when nobody is attached, and
//! kept while someone is; `open_or_create_named` on every kind of end; group
//! access refused by default.

mod common;

use std::io::Write;
use std::sync::{Arc, Barrier};

use common::{name_from_env, spawn_until, unique};
use mmapkit_shm::{
    ChannelOptions, Client, Layout, PubSubOptions, Publisher, Receiver, Region, RegionOptions, Sender, Server,
    ServiceOptions, Shared, ShmError, Subscriber,
};

const LAYOUT_NAME: &str = "lifecycle test v1";

/// Held by every parent test for its whole run: a child forked by one test
/// holds copies of every descriptor (and so every lock) open in the test
/// process until it execs, which would make another test's counts of holders
/// wrong for that moment.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn layout() -> Layout {
    Layout::of::<u64>(LAYOUT_NAME)
}

fn ready() {
    println!("ready");
    std::io::stdout().flush().unwrap();
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Child: creates a region holding the value 7, then waits to be killed.
#[test]
#[ignore = "run by the parent tests"]
fn child_creates_region() {
    let _region = Region::create_named(&name_from_env(), layout(), 8, &RegionOptions::new(), |p| {
        // SAFETY: the payload is 8 zeroed, writable bytes, aligned to 128.
        unsafe { p.cast::<u64>().write(7) }
    })
    .unwrap();
    ready();
    sleep_forever();
}

/// Child: creates a channel's receiving end, then waits to be killed.
#[test]
#[ignore = "run by the parent tests"]
fn child_creates_receiver() {
    // SAFETY: every process in these tests follows the channel protocol.
    let _rx = unsafe { Receiver::create_named(&name_from_env(), &ChannelOptions::new()) }.unwrap();
    ready();
    sleep_forever();
}

/// Child: creates a board as its publisher, then waits to be killed.
#[test]
#[ignore = "run by the parent tests"]
fn child_creates_publisher() {
    // SAFETY: every process in these tests follows the publish-subscribe protocol.
    let _p = unsafe { Publisher::create_named(&name_from_env(), &PubSubOptions::new()) }.unwrap();
    ready();
    sleep_forever();
}

/// Child: creates a service as its server, then waits to be killed.
#[test]
#[ignore = "run by the parent tests"]
fn child_creates_server() {
    // SAFETY: every process in these tests follows the request-response protocol.
    let _s = unsafe { Server::create_named(&name_from_env(), &ServiceOptions::new()) }.unwrap();
    ready();
    sleep_forever();
}

/// Starts `test` on `name`, waits for it to be ready, kills it with SIGKILL
/// and reaps it.
fn create_then_kill(test: &str, name: &str) {
    let mut started = spawn_until(test, name, "ready");
    started.child.kill().unwrap();
    let status = started.child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
}

fn read_value(region: &Region) -> u64 {
    // SAFETY: the payload is at least 8 bytes, aligned; no one writes it concurrently here.
    unsafe { region.payload_ptr().cast::<u64>().read_volatile() }
}

#[test]
fn a_name_left_by_a_killed_creator_is_reclaimed_by_the_next_creator() {
    let _serial = serial();
    let name = unique("reclaim");
    let mut started = spawn_until("child_creates_region", &name, "ready");
    let err = Region::create_named(&name, layout(), 8, &RegionOptions::new(), |_| {}).unwrap_err();
    assert!(matches!(err, ShmError::Exists { .. }), "a live creator's region is not reclaimed: {err}");
    let seen = Region::open_named(&name, layout(), &RegionOptions::new()).unwrap();
    let holders = seen.holders().unwrap();
    assert!(holders.owner_alive, "the creator is alive: {holders:?}");
    assert_eq!(holders.handles, Some(2), "the creator's handle and ours");
    drop(seen);
    started.child.kill().unwrap();
    started.child.wait().unwrap();

    let region = Region::create_named(&name, layout(), 8, &RegionOptions::new(), |p| {
        // SAFETY: the payload is 8 zeroed, writable bytes.
        unsafe { p.cast::<u64>().write(9) }
    })
    .unwrap();
    assert!(region.created());
    assert_eq!(region.creator_pid(), std::process::id(), "a new header, written by us");
    assert_eq!(read_value(&region), 9, "a new region, not the dead creator's");
    let holders = region.holders().unwrap();
    assert!(holders.owner_alive && holders.handles == Some(1), "{holders:?}");
}

#[test]
fn a_region_someone_is_attached_to_is_kept_after_its_creator_is_killed() {
    let _serial = serial();
    let name = unique("attached");
    let started = spawn_until("child_creates_region", &name, "ready");
    let opened = Region::open_named(&name, layout(), &RegionOptions::new()).unwrap();
    let mut child = started.child;
    child.kill().unwrap();
    child.wait().unwrap();
    let holders = opened.holders().unwrap();
    assert!(!holders.owner_alive, "the creator is dead: {holders:?}");
    assert_eq!(holders.handles, Some(1), "only our handle");
    let err = Region::create_named(&name, layout(), 8, &RegionOptions::new(), |_| {}).unwrap_err();
    assert!(matches!(err, ShmError::Exists { .. }), "we are attached, so it is kept: {err}");
    let again = Region::open_or_create_named(&name, layout(), 8, &RegionOptions::new(), |_| {}).unwrap();
    assert!(!again.created(), "opened, not made anew");
    assert_eq!(read_value(&again), 7, "the dead creator's value");
    drop((opened, again));
    let fresh = Region::open_or_create_named(&name, layout(), 8, &RegionOptions::new(), |_| {}).unwrap();
    assert!(fresh.created(), "nobody attached any more: reclaimed");
    assert_eq!(read_value(&fresh), 0);
}

#[test]
fn a_kept_region_whose_creator_dropped_it_is_reclaimed_when_nobody_is_attached() {
    let _serial = serial();
    let name = unique("kept");
    let mut options = RegionOptions::new();
    options.keep(true);
    let first = Region::create_named(&name, layout(), 8, &options, |_| {}).unwrap();
    drop(first);
    let opened = Region::open_named(&name, layout(), &RegionOptions::new()).unwrap();
    assert!(!opened.holders().unwrap().owner_alive);
    drop(opened);
    let second = Region::create_named(&name, layout(), 8, &RegionOptions::new(), |_| {}).unwrap();
    assert!(second.created());
}

#[test]
fn open_or_create_works_for_channels_boards_and_services_after_a_kill() {
    let _serial = serial();
    let name = unique("chan");
    create_then_kill("child_creates_receiver", &name);
    // SAFETY: every process in these tests follows the channel protocol.
    let mut tx = unsafe { Sender::open_or_create_named(&name, &ChannelOptions::new()) }.unwrap();
    assert!(tx.region().created(), "the dead receiver's channel was reclaimed");
    // SAFETY: as above.
    let mut rx = unsafe { Receiver::open_or_create_named(&name, &ChannelOptions::new()) }.unwrap();
    assert!(!rx.region().created(), "the sender's channel was opened");
    tx.try_send(b"after").unwrap();
    assert_eq!(&*rx.try_recv().unwrap(), b"after");
    assert_eq!(rx.region().holders().unwrap().ends, Some(2), "one sender, one receiver");

    let name = unique("board");
    create_then_kill("child_creates_publisher", &name);
    // SAFETY: every process in these tests follows the publish-subscribe protocol.
    let subscriber = unsafe { Subscriber::open_or_create_named(&name, &PubSubOptions::new()) }.unwrap();
    assert!(subscriber.region().created());
    // SAFETY: as above.
    let publisher = unsafe { Publisher::open_or_create_named(&name, &PubSubOptions::new()) }.unwrap();
    assert!(!publisher.region().created());
    assert_eq!(publisher.subscribers(), 1);

    let name = unique("service");
    create_then_kill("child_creates_server", &name);
    // SAFETY: every process in these tests follows the request-response protocol.
    let server = unsafe { Server::open_or_create_named(&name, &ServiceOptions::new()) }.unwrap();
    assert!(server.region().created());
    // SAFETY: as above.
    let client = unsafe { Client::open_or_create_named(&name, &ServiceOptions::new()) }.unwrap();
    assert!(!client.region().created());
}

#[test]
fn racing_open_or_create_makes_one_region() {
    let _serial = serial();
    // Creators that find the name taken look at the new object (and lock it for a moment) while its creator
    // takes its locks: many rounds of several threads meet that window.
    const THREADS: usize = 8;
    for round in 0..4000 {
        let name = unique("race");
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (name, barrier) = (name.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    // SAFETY: the value is touched only through its atomic.
                    let shared = unsafe {
                        Shared::<std::sync::atomic::AtomicU64>::open_or_create_named(
                            &name,
                            LAYOUT_NAME,
                            &RegionOptions::new(),
                            |v| v.store(1, std::sync::atomic::Ordering::SeqCst),
                        )
                    }
                    .unwrap();
                    let prior = shared.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    (shared.region().created(), prior, shared)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let created = results.iter().filter(|(c, _, _)| *c).count();
        assert_eq!(created, 1, "round {round}: exactly one creator");
        let mut priors: Vec<u64> = results.iter().map(|(_, p, _)| *p).collect();
        priors.sort();
        assert_eq!(
            priors,
            (1..=THREADS as u64).collect::<Vec<_>>(),
            "round {round}: every thread shares the value the creator set up"
        );
    }
}

/// Child: opens the region of `MMAPKIT_SHM_NAME` once without and once with
/// group access, printing what each gave.
#[test]
#[ignore = "run by the parent tests"]
fn child_opens_as_group_member() {
    let name = name_from_env();
    match Region::open_named(&name, layout(), &RegionOptions::new()) {
        Err(ShmError::WrongOwner { .. }) => println!("default: refused"),
        other => println!("default: {other:?}"),
    }
    let mut options = RegionOptions::new();
    options.group(true);
    match Region::open_named(&name, layout(), &options) {
        Ok(region) => println!("group: opened {}", read_value(&region)),
        Err(e) => println!("group: {e}"),
    }
}

#[test]
fn group_access_is_refused_by_default_and_allowed_when_asked() {
    let _serial = serial();
    if mmapkit_sys::process::effective_uid() != 0 {
        eprintln!("skipped: needs root, to run a child under another uid");
        return;
    }
    use std::os::unix::process::CommandExt;
    const GID: u32 = 47_113;
    const UID: u32 = 47_114;
    let name = unique("group");
    let mut options = RegionOptions::new();
    options.group(true);
    let region = Region::create_named(&name, layout(), 8, &options, |p| {
        // SAFETY: the payload is 8 zeroed, writable bytes.
        unsafe { p.cast::<u64>().write(5) }
    })
    .unwrap();
    let path = format!("/dev/shm/{name}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660, "group read and write");
    std::os::unix::fs::chown(&path, None, Some(GID)).unwrap();
    let output = common::child_command("child_opens_as_group_member", &name).uid(UID).gid(GID).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("default: refused"), "{stdout}");
    assert!(stdout.contains("group: opened 5"), "{stdout}");

    // The same child in no group of the region's: the OS refuses it either way.
    let output = common::child_command("child_opens_as_group_member", &name).uid(UID).gid(GID + 1).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("default: Err(Os"), "{stdout}");
    assert!(stdout.contains("group: cannot open") && stdout.contains("Permission denied"), "{stdout}");
    assert!(!stdout.contains("group: opened"), "{stdout}");
    drop(region);
}

#[test]
fn the_listing_tells_a_killed_creators_region_from_a_live_one_and_removes_only_the_first() {
    let _serial = serial();
    let dead = unique("list-dead");
    create_then_kill("child_creates_server", &dead);
    let live = unique("list-live");
    let mut started = spawn_until("child_creates_receiver", &live, "ready");
    let listed = mmapkit_shm::list_named().unwrap();
    let find = |name: &str| listed.iter().find(|r| r.name == format!("/{name}")).cloned();
    let dead_entry = find(&dead).expect("the dead server's service is listed");
    assert_eq!(dead_entry.kind, mmapkit_shm::RegionKind::Service);
    assert!(dead_entry.holders.stale(), "{dead_entry:?}");
    assert_eq!((dead_entry.holders.handles, dead_entry.holders.ends), (Some(0), Some(0)));
    let live_entry = find(&live).expect("the live receiver's channel is listed");
    assert_eq!(live_entry.kind, mmapkit_shm::RegionKind::Channel);
    assert_eq!(live_entry.creator_pid, started.child.id());
    assert!(live_entry.holders.owner_alive && !live_entry.holders.stale(), "{live_entry:?}");
    assert_eq!((live_entry.holders.handles, live_entry.holders.ends), (Some(1), Some(1)));

    assert!(!mmapkit_shm::remove_if_stale(&live).unwrap(), "a live region stays");
    assert!(mmapkit_shm::remove_if_stale(&dead).unwrap(), "a stale one goes");
    assert!(!mmapkit_shm::remove_if_stale(&dead).unwrap(), "and is gone");
    let listed = mmapkit_shm::list_named().unwrap();
    assert!(listed.iter().all(|r| r.name != format!("/{dead}")));
    assert!(listed.iter().any(|r| r.name == format!("/{live}")));
    started.child.kill().unwrap();
    started.child.wait().unwrap();
    assert!(mmapkit_shm::remove_if_stale(&live).unwrap(), "stale once its creator is killed");
}
