//! `mmapkit db` end to end: every command on real files, batches and their
//! durability, damage found by `check`, and every failure answered with one line.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn mmapkit() -> Command {
    Command::cargo_bin("mmapkit").expect("the mmapkit binary is built")
}

/// Runs `mmapkit db COMMAND FILE REST...`.
fn db(command: &str, file: &Path, rest: &[&str]) -> Output {
    mmapkit().args(["db", command]).arg(file).args(rest).output().unwrap()
}

/// Runs `mmapkit db load FILE REST...` with `input` on stdin.
fn load(file: &Path, rest: &[&str], input: &str) -> Output {
    mmapkit().args(["db", "load"]).arg(file).args(rest).write_stdin(input).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a run succeeded and returns its stdout.
fn ok(output: Output) -> String {
    assert!(output.status.success(), "exit {:?}, stderr: {}", output.status.code(), stderr(&output));
    stdout(&output)
}

/// Asserts a failed run printed exactly one `mmapkit: ` line on stderr, with every piece in `expected`.
fn assert_one_line_error(output: &Output, expected: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "expected one line, got: {err}");
    assert!(err.starts_with("mmapkit: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for piece in expected {
        assert!(err.contains(piece), "{piece:?} missing from: {err}");
    }
}

/// `count` lines `key<TAB>value` with keys `key00000`.., in a scrambled order.
fn scrambled_lines(count: usize) -> Vec<String> {
    // 7919 is prime and does not divide any count used here: a permutation.
    (0..count).map(|i| (i * 7919) % count).map(|n| format!("key{n:05}\tvalue {n}")).collect()
}

fn joined(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn sorted(lines: &[String]) -> Vec<String> {
    let mut lines = lines.to_vec();
    lines.sort();
    lines
}

#[test]
fn put_get_and_del_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.db");

    ok(db("put", &file, &["apple", "red"]));
    ok(db("put", &file, &["banana", "yellow with spots"]));
    assert_eq!(ok(db("get", &file, &["apple"])), "red\n");
    assert_eq!(ok(db("get", &file, &["banana"])), "yellow with spots\n");

    ok(db("put", &file, &["apple", "green"]));
    assert_eq!(ok(db("get", &file, &["apple"])), "green\n");

    ok(db("del", &file, &["apple"]));
    let missing = db("get", &file, &["apple"]);
    assert_one_line_error(&missing, &["key not found: apple"]);
    assert!(missing.stdout.is_empty());
    assert_one_line_error(&db("del", &file, &["apple"]), &["key not found: apple"]);
    assert_eq!(ok(db("scan", &file, &[])), "banana\tyellow with spots\n");

    // Tables are separate key spaces; a missing one is named, with those that exist.
    ok(db("put", &file, &["apple", "in another table", "--table", "other"]));
    assert_eq!(ok(db("get", &file, &["apple", "--table", "other"])), "in another table\n");
    assert_one_line_error(&db("get", &file, &["apple"]), &["key not found: apple"]);
    assert_one_line_error(&db("get", &file, &["x", "--table", "nope"]), &["no table named \"nope\"", "default, other"]);
    assert_one_line_error(&db("del", &file, &["x", "--table", "nope"]), &["no table named \"nope\""]);
}

#[test]
fn scan_takes_ranges_limits_and_both_orders() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.db");
    let lines = scrambled_lines(20);
    ok(load(&file, &[], &joined(&lines)));
    let all = sorted(&lines);
    let scan = |rest: &[&str]| -> Vec<String> { ok(db("scan", &file, rest)).lines().map(String::from).collect() };

    assert_eq!(scan(&[]), all);
    assert_eq!(scan(&["--from", "key00005", "--to", "key00010"]), all[5..10], "--from inclusive, --to exclusive");
    assert_eq!(scan(&["--from", "key00004x"]), all[5..], "--from between two keys");
    assert_eq!(scan(&["--limit", "3"]), all[..3]);
    assert_eq!(scan(&["--from", "key00018", "--limit", "5"]), all[18..]);
    let reversed: Vec<String> = all.iter().rev().cloned().collect();
    assert_eq!(scan(&["--reverse"]), reversed);
    assert_eq!(scan(&["--reverse", "--to", "key00010", "--limit", "2"]), [all[9].as_str(), all[8].as_str()]);
    assert!(scan(&["--from", "key00010", "--to", "key00005"]).is_empty());
    assert!(scan(&["--limit", "0"]).is_empty());
}

#[test]
fn hex_keys_and_values_round_trip_bytes_that_are_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.db");

    ok(db("put", &file, &["--hex", "ff00fe", "80C0ff"]));
    assert_eq!(ok(db("get", &file, &["--hex", "FF00FE"])), "80c0ff\n");
    ok(load(&file, &["--hex"], "00\t\n6b\tff\n"));
    assert_eq!(ok(db("scan", &file, &["--hex"])), "00\t\n6b\tff\nff00fe\t80c0ff\n");

    // Without --hex: a refusal that suggests it, never the raw bytes.
    let text = db("get", &file, &["k"]);
    assert_one_line_error(&text, &["not UTF-8", "--hex"]);
    assert!(text.stdout.is_empty());
    let scan = db("scan", &file, &["--from", "k"]);
    assert_one_line_error(&scan, &["not UTF-8", "--hex"]);
    assert!(scan.stdout.is_empty());

    assert_one_line_error(&db("get", &file, &["--hex", "abc"]), &["odd number of digits"]);
    assert_one_line_error(&db("put", &file, &["--hex", "00", "zz"]), &["value \"zz\" is not hex"]);
}

#[test]
fn load_commits_every_batch_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.db");
    let lines = scrambled_lines(10_000);

    let output = load(&file, &["--batch", "1000", "--verbose"], &joined(&lines));
    ok(output.clone());
    let expected: Vec<String> = (1..=10).map(|n| format!("committed {}", n * 1000)).collect();
    assert_eq!(stderr(&output).lines().collect::<Vec<_>>(), expected);

    let scanned: Vec<String> = ok(db("scan", &file, &[])).lines().map(String::from).collect();
    assert_eq!(scanned, sorted(&lines));
}

#[test]
fn a_malformed_line_stops_the_load_keeping_only_committed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.db");
    let mut lines = scrambled_lines(2000);
    lines[1499] = "key without a tab".to_string();

    let output = load(&file, &["--batch", "1000"], &joined(&lines));
    assert_one_line_error(&output, &["line 1500", "no tab", "lines 1-1000 are committed", "lines 1001-1499 are not"]);

    let scanned: Vec<String> = ok(db("scan", &file, &[])).lines().map(String::from).collect();
    assert_eq!(scanned, sorted(&lines[..1000]));

    // Bad hex is malformed too, and a stop before the first commit keeps nothing.
    let hex_file = dir.path().join("hex.db");
    let output = load(&hex_file, &["--hex"], "00\t01\n0g\t02\n");
    assert_one_line_error(&output, &["line 2", "key \"0g\" is not hex", "nothing is committed"]);
    assert_one_line_error(&db("scan", &hex_file, &[]), &["no table named \"default\""]);
}

#[test]
fn stats_json_reports_each_table() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.db");
    ok(load(&file, &[], &joined(&scrambled_lines(3000))));
    ok(load(&file, &["--table", "small"], "a\t1\nb\t2\n"));

    let report: Value = serde_json::from_str(&ok(db("stats", &file, &["--json"]))).unwrap();
    assert_eq!(report["page_size"].as_u64(), Some(4096));
    assert_eq!(report["path"].as_str(), file.to_str());
    let pages = report["page_count"].as_u64().unwrap();
    assert!(pages > 10, "{report}");
    assert!(report["file_bytes"].as_u64().unwrap() >= pages * 4096, "{report}");
    assert!(report["txn"].as_u64().unwrap() >= 4, "three batches and one more commit: {report}");
    for key in ["free_pages", "pending_pages"] {
        assert!(report[key].is_u64(), "{key} in {report}");
    }
    let tables = report["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 2, "{report}");
    assert_eq!((tables[0]["name"].as_str(), tables[0]["entries"].as_u64()), (Some("default"), Some(3000)));
    assert!(tables[0]["depth"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!((tables[1]["name"].as_str(), tables[1]["entries"].as_u64()), (Some("small"), Some(2)));
    assert_eq!(tables[1]["depth"].as_u64(), Some(1));

    let text = ok(db("stats", &file, &[]));
    assert!(text.contains("table default: 3000 entries"), "{text}");
}

#[test]
fn check_passes_a_sound_file_and_names_the_page_of_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.db");
    // Keys in order fill leaves left to right, and the second batch only adds
    // on the right: page 3 stays a leaf of the first batch, in use and not
    // rewritten by the newest commit (damage there would make opening fall
    // back to the previous commit, as after a torn write).
    let lines = sorted(&scrambled_lines(2000));
    ok(load(&file, &["--batch", "1000"], &joined(&lines)));

    let clean = ok(db("check", &file, &[]));
    assert!(clean.ends_with(": no problems\n"), "{clean}");
    assert!(clean.contains("1 table, 2000 entries"), "{clean}");
    assert_eq!(clean.lines().count(), 1, "{clean}");

    // Page 3 holds tree nodes of the first batch, which the second batch left in place.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes[3 * 4096..4 * 4096].windows(8).any(|w| w == b"key00200"), "page 3 is not the expected leaf");
    for b in &mut bytes[3 * 4096 + 100..3 * 4096 + 104] {
        *b ^= 0xa5;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    let output = db("check", &damaged, &[]);
    assert_one_line_error(&output, &["damaged.db: the check found"]);
    let report = stdout(&output);
    let problems: Vec<&str> = report.lines().filter(|l| l.starts_with("page ")).collect();
    assert!(problems.iter().any(|l| l.starts_with("page 3: ") && l.contains("checksum")), "{report}");
    assert!(report.lines().last().unwrap().contains(&format!("{} problem", problems.len())), "{report}");
}

#[test]
fn files_that_are_not_databases_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let random = dir.path().join("random.bin");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..10 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&random, &noise).unwrap();
    for (command, rest) in [("get", &["k"][..]), ("put", &["k", "v"])] {
        let output = db(command, &random, rest);
        assert_one_line_error(&output, &["random.bin", "not a usable database"]);
    }
    assert_eq!(std::fs::read(&random).unwrap(), noise, "the file was changed");

    let missing = dir.path().join("missing.db");
    let dest = dir.path().join("dest.db");
    let commands: [(&str, &[&str]); 6] = [
        ("get", &["k"]),
        ("del", &["k"]),
        ("scan", &[]),
        ("stats", &[]),
        ("check", &[]),
        ("compact", &[dest.to_str().unwrap()]),
    ];
    for (command, rest) in commands {
        let output = db(command, &missing, rest);
        assert_one_line_error(&output, &[missing.to_str().unwrap(), "no such database file"]);
        assert!(!missing.exists(), "{command} created the file");
    }
    assert!(!dest.exists());
}

#[test]
fn compact_keeps_every_entry_in_a_smaller_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.db");
    let mut input = String::new();
    for i in 0..60 {
        input.push_str(&format!("big{i:03}\t{}\n", "x".repeat(3000)));
    }
    for i in 0..500 {
        input.push_str(&format!("small{i:04}\tvalue {i}\n"));
    }
    ok(load(&file, &[], &input));
    // Delete five big values in six, leaving free pages all through the file.
    for i in (0..60).filter(|i| i % 6 != 0) {
        ok(db("del", &file, &[&format!("big{i:03}")]));
    }
    let original = ok(db("scan", &file, &[]));
    assert_eq!(original.lines().count(), 510);

    let dest = dir.path().join("compact.db");
    let summary = ok(db("compact", &file, &[dest.to_str().unwrap()]));
    assert!(summary.starts_with("compacted "), "{summary}");
    ok(db("check", &dest, &[]));
    assert_eq!(ok(db("scan", &dest, &[])), original);
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(size(&dest) * 2 < size(&file), "{} bytes compacted to {}", size(&file), size(&dest));

    assert_one_line_error(&db("compact", &file, &[dest.to_str().unwrap()]), &["already exists"]);
    assert_eq!(ok(db("scan", &dest, &[])), original, "a refused compact left the copy alone");
}

#[test]
fn a_write_waits_for_another_process_whose_turn_it_is_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.db");
    ok(db("put", &file, &["k", "first"]));
    let mut holder = std::process::Command::new(env!("CARGO_BIN_EXE_mmapkit"))
        .args(["db", "load"])
        .arg(&file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The load holds the writer's turn from its first line on: wait until a write is refused.
    let mut stdin = holder.stdin.take().unwrap();
    stdin.write_all(b"a\t1\n").unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = holder.id().to_string();
    loop {
        let output = db("put", &file, &["j", "x", "--wait", "0"]);
        if !output.status.success() {
            assert_one_line_error(&output, &["locked", &format!("process {pid}")]);
            break;
        }
        assert!(holder.try_wait().unwrap().is_none(), "the holder exited early");
        assert!(Instant::now() < deadline, "the load never took the writer's turn");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Reads go on beside it.
    assert_eq!(ok(db("get", &file, &["k"])), "first\n");
    let output = db("put", &file, &["j", "x", "--wait=-1"]);
    assert_one_line_error(&output, &["--wait -1"]);

    // A write with time to wait goes through once the load is done.
    let waiter = std::process::Command::new(env!("CARGO_BIN_EXE_mmapkit"))
        .args(["db", "put"])
        .arg(&file)
        .args(["w", "waited", "--wait", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    stdin.write_all(b"k\tloaded while others waited\n").unwrap();
    drop(stdin);
    let finished = holder.wait_with_output().unwrap();
    assert!(finished.status.success(), "{}", String::from_utf8_lossy(&finished.stderr));
    ok(waiter.wait_with_output().unwrap());
    assert_eq!(ok(db("get", &file, &["k"])), "loaded while others waited\n");
    assert_eq!(ok(db("get", &file, &["w"])), "waited\n");
}

/// Commands that only read open the file read-only: a user who may read the
/// file but not write it can get, scan, stat and check it, and nothing changes.
#[test]
fn reading_commands_need_only_read_permission() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.db");
    ok(db("put", &file, &["apple", "red"]));
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let before = std::fs::read(&file).unwrap();
    let exe = assert_cmd::cargo::cargo_bin("mmapkit");
    let is_root = std::process::Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    // As root, permissions do not apply: run as `nobody`, who can only read the file.
    let run = |args: &[&str]| {
        let mut cmd = if is_root {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        cmd.arg("db").args(args).output().unwrap()
    };
    let path = file.to_str().unwrap();
    assert_eq!(ok(run(&["get", path, "apple"])), "red\n");
    assert_eq!(ok(run(&["scan", path])), "apple\tred\n");
    ok(run(&["check", path]));
    ok(run(&["stats", path]));
    let denied = run(&["put", path, "pear", "green"]);
    assert_eq!(denied.status.code(), Some(1), "a write needs write permission: {}", stderr(&denied));
    assert!(stderr(&denied).contains("ermission denied"), "{}", stderr(&denied));
    assert_eq!(std::fs::read(&file).unwrap(), before, "reading commands left the file as it was");
}

/// The stored value of entry `i` in `a_scan_cut_short_under_it_prints_only_stored_entries_then_the_fault`.
fn cut_scan_value(i: usize) -> String {
    let letter = char::from(b'a' + (i % 26) as u8);
    format!("{i}:{}", letter.to_string().repeat(6000))
}

/// A scan streams entries out as it reads them. With its output pipe full it
/// stops mid-file; the file is cut to half its length there, and the scan
/// goes on: every line it prints is a stored entry, and the first read of a
/// lost page ends it with the fault, on one line.
#[test]
fn a_scan_cut_short_under_it_prints_only_stored_entries_then_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cut.db");
    let input: String = (0..400).map(|i| format!("k{i:05}\t{}\n", cut_scan_value(i))).collect();
    ok(load(&file, &[], &input));
    let len = std::fs::metadata(&file).unwrap().len();
    let cut = len / 2 / 4096 * 4096;

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mmapkit"))
        .args(["db", "scan"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    // The scan fills the pipe (64 KiB: about ten entries) and waits there.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(cut).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();

    let lines: Vec<&str> = std::iter::once(first.trim_end()).chain(rest.lines()).collect();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("k{i:05}\t{}", cut_scan_value(i)), "line {i} is not the stored entry");
    }
    assert!(lines.len() < 400, "the scan read past the cut without an error");
    assert!(!status.success(), "the scan must fail once it reaches a lost page");
    assert_eq!(err.lines().count(), 1, "one line of error: {err}");
    assert!(err.starts_with("mmapkit: "), "{err}");
    assert!(err.contains(&file.display().to_string()) && err.contains("lost pages while open"), "{err}");
    assert!(err.contains(&format!("the file was truncated to {cut} bytes while mapped")), "{err}");
}

#[test]
fn reads_stats_check_and_readers_work_while_another_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.db");
    ok(db("put", &file, &["k", "before"]));
    // SAFETY: this test and the commands it runs write the file only through mmapkit-db.
    let handle = unsafe { mmapkit_db::Database::open(&file) }.unwrap();
    let held = handle.begin_read().unwrap();
    let mut w = handle.begin_write().unwrap();
    w.open_table("default").unwrap().insert(b"k", b"uncommitted").unwrap();

    // The commands run beside an open write transaction and a held reader.
    assert_eq!(ok(db("get", &file, &["k"])).trim(), "before");
    assert!(ok(db("scan", &file, &[])).contains("k\tbefore"));
    let listed = ok(db("readers", &file, &[]));
    let me = std::process::id().to_string();
    let line = listed.lines().find(|l| l.contains(&me)).unwrap_or_else(|| panic!("no slot of {me}:\n{listed}"));
    assert!(line.contains("alive") && line.contains(&format!("reads commit {}", held.id())), "{listed}");
    assert!(ok(db("readers", &file, &["--clear-stale"])).contains("cleared 0 stale"), "a live slot is kept");
    w.commit().unwrap();
    // `stats` and `check` wait for the writer's turn; it is free now.
    ok(db("check", &file, &[]));
    assert!(ok(db("stats", &file, &["--json"])).contains("\"default\""));
    assert_eq!(ok(db("get", &file, &["k"])).trim(), "uncommitted", "a new command sees the commit");
    drop(held);
    let listed = ok(db("readers", &file, &[]));
    assert!(listed.contains("no read transaction open"), "{listed}");
}
