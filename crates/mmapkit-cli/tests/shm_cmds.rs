//! `mmapkit shm list` and `mmapkit shm clean`: a region whose creator let it
//! go with nobody attached is listed as not alive and removed; one a live
//! handle holds is listed as alive and kept.

use assert_cmd::Command;
use mmapkit_shm::{Layout, Region, RegionOptions};

fn layout() -> Layout {
    Layout::of::<u64>("cli shm test v1")
}

fn name(tag: &str) -> String {
    format!("mmapkit-cli-test-{tag}-{}", std::process::id())
}

/// `shm clean` removes what every test here leaves stale: they take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn mmapkit(args: &[&str]) -> String {
    let output = Command::cargo_bin("mmapkit").unwrap().args(args).output().unwrap();
    assert!(output.status.success(), "mmapkit {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The table row of region `name`, split into its columns.
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    let name = format!("/{name}");
    table.lines().map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>()).find(|cols| cols[0] == name)
}

#[test]
fn list_shows_who_holds_each_region_and_clean_removes_only_those_nobody_holds() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let (stale, live) = (name("stale"), name("live"));
    let mut keep = RegionOptions::new();
    keep.keep(true);
    // A creator that let its region go, name kept, nobody attached.
    drop(Region::create_named(&stale, layout(), 64, &keep, |_| {}).unwrap());
    let held = Region::create_named(&live, layout(), 4096, &RegionOptions::new(), |_| {}).unwrap();

    let table = mmapkit(&["shm", "list"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "KIND", "OWNER", "ALIVE", "BYTES", "HANDLES", "ENDS"]);
    let pid = std::process::id().to_string();
    let stale_row = row(&table, &stale).expect("the stale region is listed");
    assert_eq!(stale_row[1..], ["region", &*pid, "no", &*(128 + 64).to_string(), "0", "0"]);
    let live_row = row(&table, &live).expect("the live region is listed");
    assert_eq!(live_row[1..], ["region", &*pid, "yes", &*(128 + 4096).to_string(), "1", "0"]);

    let dry = mmapkit(&["shm", "clean", "--dry-run"]);
    assert!(dry.contains(&format!("would remove /{stale} (region, creator pid {pid})")), "{dry}");
    assert!(!dry.contains(&live), "{dry}");
    assert!(row(&mmapkit(&["shm", "list"]), &stale).is_some(), "a dry run removes nothing");

    let cleaned = mmapkit(&["shm", "clean"]);
    assert!(cleaned.contains(&format!("removed /{stale} (region, creator pid {pid})")), "{cleaned}");
    assert!(!cleaned.contains(&live), "{cleaned}");
    let table = mmapkit(&["shm", "list"]);
    assert!(row(&table, &stale).is_none(), "{table}");
    assert!(row(&table, &live).is_some(), "{table}");
    drop(held);
    assert!(row(&mmapkit(&["shm", "list"]), &live).is_none(), "the creator removed its own on drop");
}

#[test]
fn clean_removes_the_readiness_bells_of_processes_that_are_gone_and_keeps_live_ones() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    use mmapkit_sys::bell_fifo::{BellFifo, bell_path};
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    // A bell left by a killed process: a FIFO with its pid in the number.
    let stale = bell_path((u64::from(gone) << 32) | 0x5eed);
    let status = std::process::Command::new("mkfifo").arg(&stale).status().unwrap();
    assert!(status.success());
    let live = BellFifo::create((u64::from(std::process::id()) << 32) | 0x0c1e_a001).unwrap();
    let shown = format!("the bell {}", stale.display());

    let dry = mmapkit(&["shm", "clean", "--dry-run"]);
    assert!(dry.contains(&format!("would remove {shown}")), "{dry}");
    assert!(!dry.contains(&live.path().display().to_string()), "{dry}");
    assert!(stale.exists(), "a dry run removes nothing");

    let cleaned = mmapkit(&["shm", "clean"]);
    assert!(cleaned.contains(&format!("removed {shown}")), "{cleaned}");
    assert!(!stale.exists());
    assert!(live.path().exists(), "a live process's bell is kept");
}
