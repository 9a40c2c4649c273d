//! `mmapkit bench` end to end: quick runs, their JSON and plot, the user's file
//! left untouched, and every bad input answered with one clear line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

fn mmapkit() -> Command {
    Command::cargo_bin("mmapkit").expect("the mmapkit binary is built")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failed run printed exactly one line on stderr, with every piece in `expected`.
fn assert_one_line_error(output: &Output, code: i32, expected: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "expected one line, got: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for piece in expected {
        assert!(err.contains(piece), "{piece:?} missing from: {err}");
    }
}

#[test]
fn a_quick_run_measures_every_method_pattern_and_cache_state() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let svg = dir.path().join("bench.svg");
    let output = mmapkit()
        .args(["bench", "--quick", "--quiet", "--threads", "2", "--small-files", "300", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Verdict: common advice on mmap against this machine"), "{stdout}");
    assert!(stdout.contains("winner:"), "{stdout}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["size_bytes"].as_u64(), Some(64 << 20));
    let generated = report["file"].as_str().unwrap();
    assert!(!Path::new(generated).exists(), "the generated file {generated} was not removed");

    let results = report["results"].as_array().unwrap();
    let field = |r: &Value, k: &str| r[k].as_str().unwrap_or_else(|| panic!("{k} missing in {r}")).to_owned();
    let methods: BTreeSet<String> = results.iter().map(|r| field(r, "method")).collect();
    let expected_methods = [
        "buffered_read",
        "growable_map",
        "mmap",
        "mmap_advice",
        "mmap_flush",
        "mmap_populate",
        "pread",
        "pwrite_fdatasync",
        "read",
        "write_fdatasync",
    ];
    assert_eq!(methods, expected_methods.iter().map(|s| s.to_string()).collect());
    let patterns: BTreeSet<String> = results.iter().map(|r| field(r, "pattern")).collect();
    let expected_patterns = ["append", "random", "random-write", "sequential", "sequential-write", "small-files"];
    assert_eq!(patterns, expected_patterns.iter().map(|s| s.to_string()).collect());
    for cache in ["warm", "cold"] {
        for block in [8, 4096, 65536] {
            let rows: Vec<&Value> = results
                .iter()
                .filter(|r| {
                    r["cache"] == cache && r["block_bytes"] == block && r["pattern"] == "random" && r["threads"] == 1
                })
                .collect();
            assert_eq!(rows.len(), 4, "random {block} {cache}: {rows:?}");
        }
        assert!(results.iter().any(|r| r["cache"] == cache && r["pattern"] == "sequential"));
    }
    assert!(results.iter().any(|r| r["threads"] == 2), "the --threads run is missing");

    // Every method of a scenario read the same bytes.
    let mut checksums: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for r in results {
        for key in ["bytes_per_sec", "ops_per_sec", "minor_faults", "major_faults"] {
            assert!(r[key].is_number(), "{key} in {r}");
        }
        assert!(r["cold_verified"].is_boolean(), "{r}");
        assert!(r["p50_ns"].is_number() || r["p50_ns"].is_null(), "{r}");
        assert!(r["bytes_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        checksums.entry(field(r, "scenario")).or_default().insert(r["checksum"].as_u64().unwrap());
    }
    assert!(checksums.values().all(|sums| sums.len() == 1), "{checksums:?}");

    let verdicts = report["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), checksums.len(), "one verdict per scenario");
    for v in verdicts {
        assert!(methods.contains(v["winner"].as_str().unwrap()), "{v}");
        assert!(v["margin"].as_f64().unwrap() >= 1.0, "{v}");
    }
    // Each piece of advice says what it is, where it is given, and how this run measured it.
    let advice = report["advice"].as_array().unwrap();
    assert!(!advice.is_empty(), "{report}");
    for a in advice {
        for key in ["topic", "advice_says", "source", "expected", "agreement", "summary"] {
            assert!(a[key].is_string(), "{key} in {a}");
        }
        assert!(stdout.contains(a["source"].as_str().unwrap()), "{a}: {stdout}");
    }
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg") && svg_text.contains("mmap_populate"), "not a chart");
}

#[test]
fn writes_go_through_a_map_and_through_calls_each_durable_every_write_and_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let output = mmapkit()
        .args(["bench", "--quick", "-q", "--small-files", "10", "--json"])
        .arg(&json)
        .env("TMPDIR", &tmp)
        .output();
    let output = output.unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let writes: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| ["random-write", "sequential-write", "append"].contains(&r["pattern"].as_str().unwrap()))
        .collect();
    let scenarios: BTreeSet<&str> = writes.iter().map(|r| r["scenario"].as_str().unwrap()).collect();
    assert_eq!(scenarios.len(), 6, "three orders, each durable every write and every 100: {scenarios:?}");
    for scenario in &scenarios {
        let rows: Vec<&&Value> = writes.iter().filter(|r| r["scenario"] == *scenario).collect();
        assert_eq!(rows.len(), 2, "{scenario}");
        let mmap = rows.iter().filter(|r| r["method"] == "mmap_flush" || r["method"] == "growable_map").count();
        assert_eq!(mmap, 1, "one method through a map in {scenario}");
        // Both wrote as many records and left the same bytes.
        assert_eq!(rows[0]["ops"], rows[1]["ops"], "{scenario}");
        assert_eq!(rows[0]["checksum"], rows[1]["checksum"], "{scenario}");
        assert!(rows[0]["ops"].as_u64().unwrap() > 0 && rows[0]["p99_ns"].is_number(), "{scenario}");
    }
    let advice = report["advice"].as_array().unwrap();
    let check = advice.iter().find(|a| a["topic"] == "writes through a writable map").expect("the write advice");
    assert_eq!(check["scenarios"].as_u64(), Some(6), "{check}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|d| d.path()).collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");

    let output = mmapkit().args(["bench", "--quick", "-q", "--small-files", "10", "--no-writes"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("writes, durable"), "--no-writes ran writes");
}

#[test]
fn the_users_file_is_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.bin");
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let output = mmapkit().args(["bench", "--quick", "-q", "--small-files", "50"]).arg(&path).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("read-only"));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before);
}

#[test]
fn a_file_truncated_during_the_run_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrinks.bin");
    std::fs::write(&path, vec![7u8; 64 << 20]).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mmapkit"))
        .args(["bench", "--quick", "-q", "--small-files", "10"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The header line comes once the file is open and checked: from then on
    // the run reads it, so a cut now lands mid-run.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut header).unwrap();
    assert!(header.starts_with("mmapkit bench:"), "{header}");
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(100_000).unwrap();
    let drain = std::thread::spawn(move || std::io::Read::read_to_end(&mut stdout, &mut Vec::new()));
    let output = child.wait_with_output().unwrap();
    drain.join().unwrap().unwrap();
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the run must fail with status 1, not a signal: {:?} {err}",
        output.status
    );
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("truncated") || err.contains("shrank"), "{err}");
    assert!(err.contains("byte"), "the offset is named: {err}");
}

#[test]
fn bad_inputs_get_one_line_and_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.bin");
    let output = mmapkit().arg("bench").arg(&missing).output().unwrap();
    assert_one_line_error(&output, 1, &[missing.to_str().unwrap(), "No such file"]);

    let output = mmapkit().arg("bench").arg(dir.path()).output().unwrap();
    assert_one_line_error(&output, 1, &[dir.path().to_str().unwrap(), "is a directory"]);

    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    let output = mmapkit().arg("bench").arg(&empty).output().unwrap();
    assert_one_line_error(&output, 1, &[empty.to_str().unwrap(), "is empty"]);

    let short = dir.path().join("short.bin");
    std::fs::write(&short, vec![1u8; 5000]).unwrap();
    let output = mmapkit().arg("bench").arg(&short).output().unwrap();
    assert_one_line_error(&output, 1, &[short.to_str().unwrap(), "5000 bytes", "shorter than the largest block"]);

    let output = mmapkit().args(["bench", "--size", "12parsecs"]).output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("12parsecs") && err.contains("unknown unit"), "{err}");
}

#[test]
fn permission_denied_is_reported() {
    // As root every file is readable: run the command as `nobody` instead.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.bin");
    std::fs::write(&path, vec![1u8; 1 << 17]).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let exe = assert_cmd::cargo::cargo_bin("mmapkit");
    let is_root = std::process::Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    let output = if is_root {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&exe)
            .args(["bench", "--quick"])
            .arg(&path)
            .output()
            .unwrap()
    } else {
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
        std::process::Command::new(&exe).args(["bench", "--quick"]).arg(&path).output().unwrap()
    };
    assert_one_line_error(&output, 1, &[path.to_str().unwrap(), "Permission denied"]);
}

#[test]
fn ctrl_c_removes_the_generated_file() {
    let tmp = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mmapkit"))
        .args(["bench", "-q", "--size", "4GiB"])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the file is being written, then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let written = || {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .any(|d| std::fs::metadata(d.path().join("bench.bin")).map(|m| m.len() > 0).unwrap_or(false))
    };
    while !written() {
        assert!(std::time::Instant::now() < deadline, "the bench never started writing its file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sends SIGINT to the child we started; kill has no memory effects here.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(stderr(&output).contains("temporary files removed"));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|d| d.path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
