//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary directory with a file of `len` bytes whose contents follow
/// `pattern_byte`, so any offset's expected value is known.
pub struct TestFile {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

/// The byte the test files hold at `offset`: varies within and across pages.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(31) ^ (offset >> 12)) as u8
}

pub fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64).map(pattern_byte).collect()
}

impl TestFile {
    pub fn new(len: usize) -> TestFile {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("data.bin");
        std::fs::write(&path, pattern(len)).expect("write test file");
        TestFile { dir, path }
    }

    pub fn open(&self) -> std::fs::File {
        std::fs::File::open(&self.path).expect("open test file")
    }

    pub fn open_rw(&self) -> std::fs::File {
        std::fs::OpenOptions::new().read(true).write(true).open(&self.path).expect("open test file read-write")
    }
}

/// Runs the `#[ignore]`d test `name` of the current test binary in a child
/// process, with `env` set, and returns what it printed and how it ended.
pub fn run_child(name: &str, env: &[(&str, &Path)]) -> Output {
    let exe = std::env::current_exe().expect("current test binary");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"]);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("spawn child test process")
}

/// Asserts the child exited 0 and ran exactly one test, printing its output if not.
pub fn assert_child_passed(output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    assert!(stdout.contains("1 passed"), "child ran no test:\n{stdout}");
}

/// A child's status and output, for a failed assertion's message.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Cuts (or extends with a hole) the file at `path` to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new().write(true).open(path).expect("open to truncate").set_len(len).expect("truncate");
}

/// The value of an environment variable a child test needs.
pub fn child_env(key: &str) -> PathBuf {
    std::env::var_os(key)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("child test needs {key}; run it through its parent"))
}

/// Blocks SIGBUS in the calling thread.
pub fn block_sigbus() {
    // SAFETY: sigset calls on a zeroed, then emptied, set; pthread_sigmask changes this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGBUS);
        assert_eq!(libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()), 0);
    }
}
