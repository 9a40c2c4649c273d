//! `mmapkit shm bench --quick`: every transport and payload measured, in JSON.

use std::collections::BTreeSet;

use assert_cmd::Command;
use serde_json::Value;

/// Runs `mmapkit shm bench --quick` with `args` and `--json`, which must
/// succeed; returns what it printed and the JSON report.
fn quick_run(args: &[&std::ffi::OsStr]) -> (String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("shm.json");
    let output = Command::cargo_bin("mmapkit")
        .unwrap()
        .args(["shm", "bench", "--quick"])
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (String::from_utf8_lossy(&output.stdout).into_owned(), report)
}

/// A power-of-two byte count as the table prints it.
fn human(bytes: u64) -> String {
    match bytes.trailing_zeros() {
        20.. => format!("{} MiB", bytes >> 20),
        10.. => format!("{} KiB", bytes >> 10),
        _ => format!("{bytes} B"),
    }
}

#[test]
fn a_quick_run_reports_every_transport_and_payload() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("shm.svg");
    let (stdout, report) = quick_run(&["--plot".as_ref(), svg.as_os_str(), "--against-floors".as_ref()]);
    assert!(stdout.contains("Against the floors"), "{stdout}");
    assert!(!stdout.contains("target"), "{stdout}");

    assert!(report["memcpy_bytes_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(report["blocks"], 2, "a quick run takes two blocks");
    assert_eq!(report["warmup_round_trips_per_block"], 16);
    assert_eq!(report["cpu_idle"]["held_shallow"], false);
    assert!(report["cpu_idle"]["driver"].as_str().is_some_and(|d| !d.is_empty()), "{report}");
    assert!(stdout.contains("CPU idle: as the machine sets it"), "{stdout}");
    let results = report["results"].as_array().unwrap();
    let transports: BTreeSet<&str> = results.iter().map(|r| r["transport"].as_str().unwrap()).collect();
    assert_eq!(transports, BTreeSet::from(["floor", "pipe", "shm-block", "shm-spin", "uds"]));
    for transport in ["shm-spin", "shm-block", "uds", "pipe"] {
        for payload in [64u64, 4096, 65536, 1 << 20] {
            let row = results
                .iter()
                .find(|r| r["transport"] == transport && r["payload_bytes"] == payload)
                .unwrap_or_else(|| panic!("{transport} at {payload} bytes is missing"));
            for key in ["rtt_p50_ns", "rtt_p99_ns", "rtt_p999_ns"] {
                assert!(row[key].as_u64().unwrap() > 0, "{key} in {row}");
            }
            assert!(row["rtt_p50_ns"].as_u64() <= row["rtt_p99_ns"].as_u64());
            assert!(row["rtt_p99_ns"].as_u64() <= row["rtt_p999_ns"].as_u64());
            assert!(row["msgs_per_sec"].as_f64().unwrap() > 0.0, "{row}");
            let bytes = row["bytes_per_sec"].as_f64().unwrap();
            let msgs = row["msgs_per_sec"].as_f64().unwrap();
            assert!((bytes - msgs * payload as f64).abs() <= 1e-6 * bytes, "{row}");
            // The channel says how large its rings were, and the table too.
            match row["ring_bytes"].as_u64() {
                Some(ring) if transport.starts_with("shm") => {
                    assert!(ring.is_power_of_two() && ring / 2 >= payload + 8, "{row}");
                    let heading = format!("payload {} (the channel's rings: {} each)", human(payload), human(ring));
                    assert!(stdout.contains(&heading), "{heading}: {stdout}");
                }
                None if !transport.starts_with("shm") => assert_eq!(row.get("ring_bytes"), Some(&Value::Null)),
                _ => panic!("ring_bytes in {row}"),
            }
        }
    }
    let floor = results.iter().find(|r| r["transport"] == "floor").unwrap();
    assert_eq!(floor.get("msgs_per_sec"), Some(&Value::Null));
    // The blocking floor is reported apart from `results`, with its own word size.
    let block_floor = &report["block_floor"];
    assert_eq!(block_floor["transport"], "floor-block");
    assert_eq!(block_floor["payload_bytes"], 4);
    assert_eq!(block_floor.get("msgs_per_sec"), Some(&Value::Null));
    assert!(block_floor["rtt_p50_ns"].as_u64().unwrap() > 0, "{block_floor}");
    assert!(block_floor["rtt_p50_ns"].as_u64() <= block_floor["rtt_p99_ns"].as_u64());
    assert!(block_floor["rtt_p99_ns"].as_u64() <= block_floor["rtt_p999_ns"].as_u64());
    assert!(stdout.contains("floor-block") && stdout.contains("the blocking floor"), "{stdout}");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("shm-spin"));
}

#[test]
fn transports_can_be_picked_and_unknown_ones_are_refused() {
    let (stdout, report) = quick_run(&["--transports".as_ref(), "floor,uds".as_ref()]);
    assert!(!stdout.contains("Against the floors"), "only with --against-floors: {stdout}");
    let rows: Vec<(String, u64)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["transport"].as_str().unwrap().to_owned(), r["payload_bytes"].as_u64().unwrap()))
        .collect();
    let mut expected = vec![("floor".to_owned(), 8)];
    expected.extend([64u64, 4096, 65536, 1 << 20].map(|p| ("uds".to_owned(), p)));
    assert_eq!(rows.iter().cloned().collect::<BTreeSet<_>>(), expected.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(report.get("block_floor"), Some(&Value::Null), "not asked for, so not measured");

    let output = Command::cargo_bin("mmapkit")
        .unwrap()
        .args(["shm", "bench", "--quick", "--transports", "uds,tcp"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tcp") && stderr.contains("shm-spin"), "{stderr}");
}

#[test]
fn the_blocking_floor_alone_with_the_blocking_channel_is_compared_and_kept_apart() {
    let args = ["--transports".as_ref(), "floor-block,shm-block".as_ref(), "--against-floors".as_ref()];
    let (stdout, report) = quick_run(&args);
    // The comparison needs only the floor and one transport, not every other one.
    assert!(
        stdout.contains("the blocking floor") && stdout.contains("shm-block") && stdout.contains("x it"),
        "{stdout}"
    );
    assert!(!stdout.contains("Unix socket"), "the socket was not measured: {stdout}");
    let transports: BTreeSet<&str> =
        report["results"].as_array().unwrap().iter().map(|r| r["transport"].as_str().unwrap()).collect();
    assert_eq!(transports, BTreeSet::from(["shm-block"]));
    assert_eq!(report["block_floor"]["transport"], "floor-block");
}

/// `--shallow-idle` holds the CPUs out of deep idle where it may (as root)
/// and says so; where it may not, the run fails with the file named rather
/// than measuring something other than what was asked.
#[test]
fn shallow_idle_is_held_and_reported_or_refused_with_the_file_named() {
    let may_write = std::fs::OpenOptions::new().write(true).open("/dev/cpu_dma_latency").is_ok();
    let driver = std::fs::read_to_string("/sys/devices/system/cpu/cpuidle/current_driver").unwrap_or_default();
    let state = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpuidle/state0/name").unwrap_or_default();
    let polls = !driver.trim().is_empty() && driver.trim() != "none" && state.trim() == "POLL";
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("shm.json");
    let output = Command::cargo_bin("mmapkit")
        .unwrap()
        .args(["shm", "bench", "--quick", "--shallow-idle", "--transports", "floor-block", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if may_write && polls {
        assert!(output.status.success(), "{stderr}");
        assert!(stdout.contains("CPU idle: held shallow for the run") && stdout.contains("granted: 0 µs"), "{stdout}");
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let idle = &report["cpu_idle"];
        assert_eq!(idle["held_shallow"], true);
        // Held from before the first block to after the last.
        assert_eq!(idle["granted_latency_us_at_start"], 0, "{idle}");
        assert_eq!(idle["granted_latency_us_at_end"], 0, "{idle}");
        assert_eq!(report["block_floor"]["transport"], "floor-block");
    } else {
        assert!(!output.status.success(), "{stdout}");
        assert!(stderr.contains("/dev/cpu_dma_latency") || stderr.contains("does not poll"), "{stderr}");
        assert!(!json.exists(), "nothing measured, nothing written");
    }
}

/// A finite, positive number in a JSON row.
fn positive(row: &Value, key: &str) -> f64 {
    let value = row[key].as_f64().unwrap_or_else(|| panic!("{key} in {row}"));
    assert!(value.is_finite() && value > 0.0, "{key} in {row}");
    value
}

/// The services and the fan-outs, asked for with their peers: every row at
/// every payload, with positive round trips (and one-way rates where they
/// have a one-way run), and a line comparing each with its peer.
#[test]
fn services_and_fan_outs_are_measured_beside_their_peers() {
    let transports = "service-spin,service-block,uds,fanout-1,fanout-2,fanout-4,uds-fanout-1,uds-fanout-2,uds-fanout-4";
    let (stdout, report) = quick_run(&["--transports".as_ref(), transports.as_ref()]);
    let results = report["results"].as_array().unwrap();
    for transport in transports.split(',') {
        for payload in [64u64, 4096, 65536, 1 << 20] {
            let row = results
                .iter()
                .find(|r| r["transport"] == transport && r["payload_bytes"] == payload)
                .unwrap_or_else(|| panic!("{transport} at {payload} bytes is missing"));
            let p50 = positive(row, "rtt_p50_ns");
            assert!(p50 <= positive(row, "rtt_p99_ns") && positive(row, "rtt_p99_ns") <= positive(row, "rtt_p999_ns"));
            if transport.starts_with("service") {
                // Every request has its response: no one-way run.
                assert_eq!(row.get("msgs_per_sec"), Some(&Value::Null), "{row}");
            } else {
                let msgs = positive(row, "msgs_per_sec");
                let bytes = positive(row, "bytes_per_sec");
                assert!((bytes - msgs * payload as f64).abs() <= 1e-6 * bytes, "{row}");
            }
        }
        let table_rows = stdout.lines().filter(|l| l.split_whitespace().next() == Some(transport)).count();
        assert_eq!(table_rows, 4, "{transport}: a row per payload in {stdout}");
    }
    assert!(stdout.contains("Against their peers"), "{stdout}");
    for payload in ["64 B", "4 KiB", "64 KiB", "1 MiB"] {
        for (transport, peer) in [
            ("service-spin", "uds"),
            ("service-block", "uds"),
            ("fanout-1", "uds-fanout-1"),
            ("fanout-2", "uds-fanout-2"),
            ("fanout-4", "uds-fanout-4"),
        ] {
            let start = format!("{payload} {transport} rtt p50 ");
            let line = stdout
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with(&start))
                .unwrap_or_else(|| panic!("no comparison of {transport} at {payload}: {stdout}"));
            assert!(line.contains(&format!(" against {peer} ")), "{line}");
            assert!(line.contains("x faster") || line.contains("x slower"), "{line}");
            assert_eq!(line.contains("msgs/s"), transport.starts_with("fanout"), "{line}");
            assert_eq!(line.contains("fanout-1's round trip"), transport.ends_with('2') || transport.ends_with('4'));
        }
    }
}

/// The async channel and tokio's socket, asked for with the blocking floor:
/// every row at every payload with positive round trips in order and a
/// one-way rate, the channel's rings given for `async-shm` only, a table row
/// per payload, a line comparing `async-shm` with its peer `tokio-uds` at
/// each payload, and both in the blocking floor's line.
#[test]
fn the_async_channel_is_measured_beside_tokios_socket() {
    let args = ["--transports".as_ref(), "floor-block,async-shm,tokio-uds".as_ref(), "--against-floors".as_ref()];
    let (stdout, report) = quick_run(&args);
    let results = report["results"].as_array().unwrap();
    let transports: BTreeSet<&str> = results.iter().map(|r| r["transport"].as_str().unwrap()).collect();
    assert_eq!(transports, BTreeSet::from(["async-shm", "tokio-uds"]));
    for transport in ["async-shm", "tokio-uds"] {
        for payload in [64u64, 4096, 65536, 1 << 20] {
            let row = results
                .iter()
                .find(|r| r["transport"] == transport && r["payload_bytes"] == payload)
                .unwrap_or_else(|| panic!("{transport} at {payload} bytes is missing"));
            let p50 = positive(row, "rtt_p50_ns");
            assert!(p50 <= positive(row, "rtt_p99_ns") && positive(row, "rtt_p99_ns") <= positive(row, "rtt_p999_ns"));
            let msgs = positive(row, "msgs_per_sec");
            let bytes = positive(row, "bytes_per_sec");
            assert!((bytes - msgs * payload as f64).abs() <= 1e-6 * bytes, "{row}");
            if transport == "async-shm" {
                let ring = row["ring_bytes"].as_u64().unwrap_or_else(|| panic!("ring_bytes in {row}"));
                assert!(ring.is_power_of_two() && ring / 2 >= payload + 8, "{row}");
            } else {
                assert_eq!(row.get("ring_bytes"), Some(&Value::Null), "{row}");
            }
        }
        let table_rows = stdout.lines().filter(|l| l.split_whitespace().next() == Some(transport)).count();
        assert_eq!(table_rows, 4, "{transport}: a row per payload in {stdout}");
    }
    assert!(stdout.contains("Against their peers"), "{stdout}");
    for payload in ["64 B", "4 KiB", "64 KiB", "1 MiB"] {
        let start = format!("{payload} async-shm rtt p50 ");
        let line = stdout
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("no comparison of async-shm at {payload}: {stdout}"));
        assert!(line.contains(" against tokio-uds "), "{line}");
        assert!(line.contains("x faster") || line.contains("x slower"), "{line}");
        assert!(line.contains("msgs/s"), "{line}");
    }
    let floor = stdout
        .lines()
        .find(|l| l.contains("the blocking floor (a bare futex handoff) rtt p50 = "))
        .unwrap_or_else(|| panic!("no blocking floor line: {stdout}"));
    assert!(floor.contains("async-shm ") && floor.contains("tokio-uds ") && floor.contains("x it"), "{floor}");
    assert!(!floor.contains("shm-block") && !floor.contains("Unix socket"), "not measured: {floor}");
}
