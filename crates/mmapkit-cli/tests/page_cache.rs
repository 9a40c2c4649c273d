//! `residency`, `touch` and `evict` on real files.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn mmapkit() -> Command {
    Command::cargo_bin("mmapkit").expect("the mmapkit binary is built")
}

fn resident_pages(path: &Path) -> (u64, u64) {
    let output = mmapkit().args(["residency", "--json"]).arg(path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let file = &report["files"][0];
    assert_eq!(file["path"].as_str(), path.to_str());
    assert_eq!(report["total"]["pages"], file["pages"]);
    (file["resident_pages"].as_u64().unwrap(), file["pages"].as_u64().unwrap())
}

#[test]
fn touch_brings_a_file_in_and_evict_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    std::fs::write(&path, vec![3u8; 8 << 20]).unwrap();

    mmapkit().arg("evict").arg(&path).assert().success();
    let (cold, pages) = resident_pages(&path);
    assert_eq!(pages, (8 << 20) / 4096);
    assert!(cold < pages / 10, "{cold} of {pages} pages stayed after evict");

    let output = mmapkit().args(["touch", "-q"]).arg(&path).output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("touched 1 files, 8 MiB"));
    let (warm, _) = resident_pages(&path);
    assert_eq!(warm, pages, "touch left pages out");

    let output = mmapkit().arg("evict").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("{pages} -> ")), "{stdout}");
    let (after, _) = resident_pages(&path);
    assert!(after < pages / 10, "{after} of {pages} pages stayed after evict");
}

#[test]
fn directories_need_r_and_are_walked_with_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("a.bin"), vec![1u8; 10_000]).unwrap();
    std::fs::write(dir.path().join("sub/b.bin"), vec![1u8; 5_000]).unwrap();

    let output = mmapkit().arg("residency").arg(dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("is a directory (use -r"), "{err}");

    let output = mmapkit().args(["residency", "-r", "--json"]).arg(dir.path()).output().unwrap();
    assert!(output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(report["total"]["pages"].as_u64(), Some(3 + 2));
    assert!(files.iter().all(|f| f["resident_pages"].as_u64() <= f["pages"].as_u64()));

    let output = mmapkit().args(["residency"]).arg(dir.path().join("nope")).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("No such file"));
}
