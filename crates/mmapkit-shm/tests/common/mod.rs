//! Helpers shared by the shared-memory tests.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// A region name no other test (or test process) uses.
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("mmapkit-test-{tag}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A command that runs the `#[ignore]`d test `test` of this binary in a child
/// process, with the region name in `MMAPKIT_SHM_NAME`.
pub fn child_command(test: &str, name: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"]).env("MMAPKIT_SHM_NAME", name);
    cmd
}

/// The region name a child test was given.
pub fn name_from_env() -> String {
    std::env::var("MMAPKIT_SHM_NAME").expect("run through the parent test")
}

/// A child process started by [`spawn_until`], with the pipe it writes to
/// (kept open so that the child never writes into a closed pipe).
pub struct Started {
    pub child: std::process::Child,
    pub stdout: std::io::BufReader<std::process::ChildStdout>,
}

/// Starts child test `test` on region `name` and returns once it has printed
/// a line containing `ready`.
pub fn spawn_until(test: &str, name: &str, ready: &str) -> Started {
    use std::io::BufRead;
    let mut child = child_command(test, name).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains(ready) {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{test} exited before printing {ready:?}: {seen}");
        seen.push_str(&line);
    }
    Started { child, stdout }
}

/// Where a channel ring's `tail` word sits in its region's file: after the
/// 128-byte region header and the 128-byte capacity line.
pub const TAIL_AT: u64 = 128 + 128;

/// Where a channel ring's `data_ready` event sits in its region's file: its
/// `seq` word (bumped by every notify that finds a sleeper), then its
/// `waiters` word; after the region header and the capacity, tail and head
/// lines.
pub const DATA_READY_AT: u64 = 128 + 3 * 128;

/// The state a sender leaves when it dies between committing a message and
/// publishing its tail: the tail word of channel `name` rolled back over its
/// last message, of `last_len` bytes.
pub fn lose_last_tail_store(name: &str, last_len: usize) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(format!("/dev/shm/{name}")).unwrap();
    let mut word = [0u8; 8];
    file.read_exact_at(&mut word, TAIL_AT).unwrap();
    let record = 8 + last_len.next_multiple_of(8) as u64;
    file.write_all_at(&(u64::from_le_bytes(word) - record).to_le_bytes(), TAIL_AT).unwrap();
}
