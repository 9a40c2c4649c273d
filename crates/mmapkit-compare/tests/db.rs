//! `mmapkit-compare db --quick` end to end: every step is a row, every engine built in is a column, and the
//! JSON has every engine and step; the rows beside reader processes have times for every engine.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

/// Every step, as the table and the JSON name it.
const STEPS: [&str; 16] = [
    "bulk load",
    "individual writes",
    "batch writes",
    "len()",
    "random reads",
    "random reads (2nd)",
    "random range reads",
    "random reads (2 threads)",
    "batch writes beside 2 reader processes",
    "random reads in 2 processes beside a writer",
    "removals",
    "uncompacted size",
    "compaction",
    "compacted size",
    "retain (even keys)",
    "delete_range (quarter)",
];

/// The rows measured with reader processes beside the writer.
const BESIDE_READERS: [&str; 2] =
    ["batch writes beside 2 reader processes", "random reads in 2 processes beside a writer"];

/// The engines this build has: mmapkit-db, raw and typed, only with its feature.
fn engines() -> Vec<&'static str> {
    let mut engines = vec!["redb", "lmdb"];
    if cfg!(feature = "mmapkit-db") {
        engines.extend(["mmapkit-db", "mmapkit-db-typed"]);
    }
    engines
}

/// Runs `mmapkit-compare db --quick` with `args` and `--dir dir`.
fn quick_db(args: &[&str], dir: &Path) -> Output {
    Command::cargo_bin("mmapkit-compare")
        .expect("the mmapkit-compare binary is built")
        .args(["db", "--quick"])
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap()
}

/// The run's stdout and stderr, once it is known to have succeeded.
fn succeeded(output: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    (stdout, stderr)
}

/// The cells of a Markdown table line, trimmed, without the outer pipes.
fn cells(line: &str) -> Vec<&str> {
    line.trim().trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn a_quick_run_prints_every_step_and_engine_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("db.json");
    let (stdout, stderr) = succeeded(&quick_db(&["--json", json.to_str().unwrap()], dir.path()));

    // The table: a header with every engine, then one row per step with a cell per engine.
    let table: Vec<&str> = stdout.lines().filter(|line| line.starts_with('|')).collect();
    let header = cells(table[0]);
    assert_eq!(header[1..], engines()[..], "{stdout}");
    let rows: Vec<Vec<&str>> = table[2..].iter().map(|line| cells(line)).collect();
    assert_eq!(rows.iter().map(|row| row[0]).collect::<Vec<_>>(), STEPS, "{stdout}");
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{stdout}");
        for cell in &row[1..] {
            let unit = if row[0].ends_with("size") { "MiB" } else { "ms" };
            assert!(cell.trim_matches('*').ends_with(unit), "{:?} in row {:?}: {stdout}", cell, row[0]);
        }
    }
    // The rows beside reader processes: a time above zero for every engine, LMDB and mmapkit-db among them.
    for step in BESIDE_READERS {
        let row = rows.iter().find(|row| row[0] == step).expect("the row");
        for (engine, cell) in header[1..].iter().zip(&row[1..]) {
            let millis: f64 = cell.trim_matches('*').trim_end_matches("ms").parse().unwrap_or(-1.0);
            assert!(millis > 0.0, "{engine} in {step:?}: {cell:?}: {stdout}");
        }
    }
    // Each engine's reader processes reported their gets.
    for engine in engines() {
        let reports = stderr.lines().filter(|line| {
            line.starts_with(&format!("{engine} ")) && line.contains("reader process") && line.contains(" gets in ")
        });
        assert_eq!(reports.count(), 2, "{engine}: {stderr}");
    }
    if cfg!(feature = "mmapkit-db") {
        assert!(stdout.contains("mmapkit-db against the best peer"), "{stdout}");
        let typed = stdout.split("mmapkit-db-typed against mmapkit-db").nth(1).expect("the typed ratios");
        for step in STEPS {
            assert!(typed.lines().any(|line| line.trim_start().starts_with(step)), "{step}: {stdout}");
        }
    }

    // The JSON: every engine and step once, sizes with bytes, times with millis.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    let mut seen = BTreeSet::new();
    for result in results {
        let (engine, step) = (result["engine"].as_str().unwrap(), result["step"].as_str().unwrap());
        assert!(seen.insert((engine, step)), "{engine} {step} twice");
        assert!(result["ops"].as_u64().unwrap() > 0, "{result}");
        if step.ends_with("size") {
            assert!(result["bytes"].as_u64().unwrap() > 0, "{result}");
            assert!(result["allocated_bytes"].as_u64().is_some(), "{result}");
        } else if BESIDE_READERS.contains(&step) {
            assert!(result["millis"].as_f64().unwrap() > 0.0, "{result}");
        } else {
            assert!(result["millis"].as_f64().unwrap() >= 0.0, "{result}");
        }
    }
    let expected: BTreeSet<_> = engines().into_iter().flat_map(|e| STEPS.map(|s| (e, s))).collect();
    assert_eq!(seen, expected);
    let listed: Vec<&str> = report["engines"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert_eq!(listed, engines());
    assert_eq!(report["quick"], Value::Bool(true));

    // The temporary directory is gone: only the JSON is left in --dir.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(left, [json.file_name().unwrap()]);
}

#[test]
fn a_bad_directory_is_one_clear_error() {
    let output = quick_db(&[], Path::new("/nonexistent/mmapkit-compare"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("creating the temporary directory"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn rounds_rotate_the_chosen_engines_and_report_the_median_round() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("rounds.json");
    let args = ["--rounds", "2", "--engines", "lmdb,redb", "--json", json.to_str().unwrap()];
    let (stdout, stderr) = succeeded(&quick_db(&args, dir.path()));
    assert!(stderr.contains("round 1 of 2: lmdb, redb") && stderr.contains("round 2 of 2: redb, lmdb"), "{stderr}");
    let header = stdout.lines().find(|line| line.starts_with('|')).map(cells).unwrap();
    assert_eq!(header[1..], ["lmdb", "redb"], "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["rounds"], 2);
    assert_eq!(report["results"].as_array().unwrap().len(), 2 * STEPS.len());

    for (engines, complaint) in [("lmdb,nosuch", "unknown engine \"nosuch\""), ("redb,redb", "given twice")] {
        let output = quick_db(&["--engines", engines], dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(complaint), "{stderr}");
    }
}

#[test]
fn a_reader_process_on_a_missing_database_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    for engine in engines() {
        let output = Command::cargo_bin("mmapkit-compare")
            .unwrap()
            .args(["db-reader", "--engine", engine, "--items", "10", "--stream", "3", "--reader", "0", "--dir"])
            .arg(&missing)
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.code(), Some(1), "{engine}: {stderr}");
        assert!(!stdout.contains("ready"), "{engine}: {stdout}");
        assert!(
            stderr.contains(&format!("{engine} reader 0")) && stderr.contains("nothing-here"),
            "{engine}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{engine}: {stderr}");
    }
}
