//! `mmapkit-compare db --memory-limit` on quick settings: every engine built
//! in (and LMDB with MDB_NORDAHEAD) is read on one and on two threads, each run by a child in a memory
//! cgroup of its own that is gone afterwards; and its options are refused
//! without it.

use std::collections::BTreeSet;

use assert_cmd::Command;
use mmapkit_cli::memory_cgroup::{Hierarchy, MemoryCgroup};
use serde_json::Value;

const LIMIT: u64 = 16 << 20;

fn compare() -> Command {
    Command::cargo_bin("mmapkit-compare").expect("the mmapkit-compare binary is built")
}

fn usable() -> Option<Hierarchy> {
    let hierarchy = Hierarchy::find().ok()?;
    MemoryCgroup::create(&hierarchy, "mmapkit-test-probe", LIMIT).and_then(MemoryCgroup::remove).ok()?;
    Some(hierarchy)
}

#[test]
fn every_engine_is_read_in_a_cgroup_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("limited.json");
    let output = compare()
        .args(["db", "--memory-limit", "16M", "--items", "60000", "--duration", "1", "--threads", "2", "--json"])
        .arg(&json)
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    let Some(hierarchy) = usable() else {
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("--memory-limit cannot be used here"), "{stderr}");
        return;
    };
    assert!(output.status.success(), "{stderr}\n{stdout}");
    assert!(stdout.contains("| engine"), "{stdout}");
    let runs: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mut engines = vec!["redb", "lmdb"];
    if cfg!(feature = "mmapkit-db") {
        engines.push("mmapkit-db");
        assert!(stdout.contains("mmapkit-db"), "{stdout}");
    }
    // Each engine on 1 and 2 threads, and LMDB again with MDB_NORDAHEAD.
    assert_eq!(runs.len(), (engines.len() + 1) * 2, "{runs:?}");
    let nordahead = runs.iter().filter(|r| r["lmdb_no_read_ahead"] == true).count();
    assert_eq!(nordahead, 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["lmdb_no_read_ahead"] == false || r["engine"] == "lmdb"), "{runs:?}");
    let mut cgroups = BTreeSet::new();
    for run in &runs {
        let engine = run["engine"].as_str().unwrap();
        assert!(engines.contains(&engine), "{engine}");
        assert!(run["totals"]["ops"].as_u64().unwrap() > 0, "{engine}: no gets");
        assert!(!run["ticks"].as_array().unwrap().is_empty(), "{engine}: no seconds");
        let in_force = run["limit_in_force"].as_u64().unwrap();
        assert!((LIMIT..LIMIT + 4096).contains(&in_force), "{engine}: {in_force}");
        let name = run["totals"]["cgroup"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
        assert!(name.starts_with("mmapkit-compare-"), "{engine}: {name}");
        assert!(!hierarchy.parent.join(&name).exists(), "{engine}: {name} left behind");
        assert!(cgroups.insert(name), "{engine}: a cgroup used twice");
        let cache = run["cache_bytes"].as_u64();
        assert_eq!(cache, (engine == "redb").then_some(LIMIT / 4), "{engine}: the cache given");
    }
    // The databases are gone with the run.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.path() != json).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn limited_options_need_the_limit_and_sane_values() {
    let output = compare().args(["db", "--quick", "--items", "10"]).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("apply only with --memory-limit"), "{err}");

    let output = compare().args(["db", "--memory-limit", "12parsecs"]).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("12parsecs") && err.contains("unknown unit"), "{err}");

    let output = compare().args(["db", "--memory-limit", "16M", "--duration", "-1"]).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("--duration") || err.contains("-1"), "{err}");
}
