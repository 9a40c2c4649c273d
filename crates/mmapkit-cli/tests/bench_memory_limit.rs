//! `mmapkit bench --memory-limit` end to end on quick settings: every method
//! on one and on two threads, each in a cgroup of its own that is gone
//! afterwards, with a per-second series, the JSON, the plot and the verdict;
//! and its bad inputs.

use std::collections::BTreeSet;

use assert_cmd::Command;
use mmapkit_cli::memory_cgroup::{Hierarchy, MemoryCgroup};
use serde_json::Value;

const LIMIT: u64 = 16 << 20;

fn mmapkit() -> Command {
    Command::cargo_bin("mmapkit").expect("the mmapkit binary is built")
}

/// Whether cgroups can be made here (root with a memory controller).
fn usable() -> Option<Hierarchy> {
    let hierarchy = Hierarchy::find().ok()?;
    MemoryCgroup::create(&hierarchy, "mmapkit-test-probe", LIMIT).and_then(MemoryCgroup::remove).ok()?;
    Some(hierarchy)
}

#[test]
fn every_method_runs_in_a_cgroup_of_its_own_and_reports_its_seconds() {
    let Some(hierarchy) = usable() else {
        let output = mmapkit().args(["bench", "--memory-limit", "16M", "--quick", "-q"]).output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(err.contains("--memory-limit cannot be used here"), "{err}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (json, svg) = (dir.path().join("limited.json"), dir.path().join("limited.svg"));
    let output = mmapkit()
        .args(["bench", "--memory-limit", "16M", "--quick", "-q", "--duration", "1.5s", "--threads", "2", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("data larger than memory"), "{stdout}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["size_bytes"].as_u64(), Some(4 * LIMIT), "the file is 4x the limit by default");
    assert!(!std::path::Path::new(report["file"].as_str().unwrap()).exists(), "the generated file was removed");
    let runs = report["runs"].as_array().unwrap();
    let methods: BTreeSet<&str> = runs.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods, BTreeSet::from(["mmap", "mmap_advice", "pread", "pread_direct"]));
    assert_eq!(runs.iter().filter(|r| r["threads"] == 1).count(), 4, "{runs:?}");
    assert_eq!(runs.iter().filter(|r| r["threads"] == 2).count(), 4, "{runs:?}");
    let mut cgroups = BTreeSet::new();
    for run in runs {
        let method = run["method"].as_str().unwrap();
        // Made with the limit, used by the child, and removed.
        let line = run["totals"]["cgroup"].as_str().unwrap();
        let name = line.rsplit('/').next().unwrap();
        assert!(name.starts_with("mmapkit-bench-"), "{method}: {line}");
        assert!(!hierarchy.parent.join(name).exists(), "{method}: {name} is left behind");
        assert!(cgroups.insert(name.to_owned()), "{method}: {name} was used twice");
        let in_force = run["limit_in_force"].as_u64().unwrap();
        assert!((LIMIT..LIMIT + 4096).contains(&in_force), "{method}: {in_force}");
        if let Some(peak) = run["peak_bytes"].as_u64() {
            assert!(peak <= in_force, "{method}: peak {peak} above the limit {in_force}");
        }
        // A series of seconds that adds up to the total.
        let ticks = run["ticks"].as_array().unwrap();
        assert!(!ticks.is_empty(), "{method}: no seconds reported");
        let summed: u64 = ticks.iter().map(|t| t["ops"].as_u64().unwrap()).sum();
        let total = run["totals"]["ops"].as_u64().unwrap();
        assert!(summed <= total && total > 0, "{method}: ticks {summed}, total {total}");
        assert!(run["steady_ops_per_sec"].as_f64().unwrap() > 0.0, "{method}");
        assert!(run["cold_verified"].as_bool().unwrap(), "{method}: the file was not evicted before it");
        // pread never faults on the file; a map's reads beyond memory do.
        let major = run["totals"]["major_faults"].as_u64().unwrap();
        if method.starts_with("mmap") {
            assert!(major > 0, "{method}: no major faults reading a file 4x the limit");
        }
    }
    let advice = report["advice"].as_array().unwrap();
    let larger = advice.iter().find(|a| a["topic"] == "data larger than memory").expect("its advice line");
    assert_eq!(larger["scenarios"].as_u64(), Some(2), "{larger}");
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg"), "not an SVG");
    for method in &methods {
        assert!(svg_text.contains(&format!("{method} (steady")), "{method} has no line in the plot");
    }
}

#[test]
fn bad_limited_inputs_are_named() {
    let output = mmapkit().args(["bench", "--memory-limit", "16M", "--duration", "0s"]).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("\"0s\"") && err.contains("above 0"), "{err}");

    let output = mmapkit().args(["bench", "--quick", "--duration", "3s"]).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("--duration applies only with --memory-limit"), "{err}");

    if usable().is_some() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.bin");
        std::fs::write(&small, vec![1u8; 1 << 20]).unwrap();
        let output = mmapkit().args(["bench", "--memory-limit", "16M", "-q"]).arg(&small).output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(err.contains(small.to_str().unwrap()) && err.contains("no larger than the memory limit"), "{err}");
    }
}

#[test]
fn an_interrupt_removes_the_cgroups_and_the_file() {
    use std::os::unix::process::CommandExt as _;
    let Some(hierarchy) = usable() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // Its own process group, so that the interrupt reaches the bench and its child, as Ctrl-C would.
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mmapkit"))
        .args(["bench", "--memory-limit", "16M", "-q", "--duration", "30s"])
        .env("TMPDIR", tmp.path())
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!("mmapkit-bench-{}-", child.id());
    let mine = || -> Vec<String> {
        std::fs::read_dir(&hierarchy.parent)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&prefix))
            .collect()
    };
    // Wait until a method's child has joined its cgroup (an interrupt before the child starts would miss it).
    let joined = || {
        mine().iter().any(|name| {
            std::fs::read_to_string(hierarchy.parent.join(name).join("cgroup.procs"))
                .is_ok_and(|procs| !procs.trim().is_empty())
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !joined() {
        assert!(std::time::Instant::now() < deadline, "no method's child ever joined its cgroup");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sends SIGINT to the process group of the child we started; kill has no memory effects here.
    assert_eq!(unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGINT) }, 0);
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("temporary files removed"), "{err}");
    assert_eq!(mine(), Vec::<String>::new(), "cgroups left behind");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|d| d.path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
