//! The parent's side: a child process run inside a cgroup of its own, its
//! output streamed line by line as it comes, the cgroup removed after.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::cgroup::MemoryCgroup;
use super::hierarchy::Hierarchy;

/// What the cgroup saw of a child that ran to the end.
#[derive(Clone, Debug)]
pub struct ChildOutcome {
    /// The cgroup's directory (gone by now).
    pub cgroup: std::path::PathBuf,
    /// The limit the kernel had in force, in bytes.
    pub limit_in_force: u64,
    /// The most memory the cgroup used, where the kernel reports it.
    pub peak: Option<u64>,
}

/// Makes a cgroup limited to `limit` bytes under `hierarchy`, starts the
/// command `command` builds for it (given the cgroup's path, which the child
/// must [`join`](super::join) before its work), hands each line the child
/// writes on stdout to `on_line`, waits for it, and removes the cgroup. A
/// child that fails is an error carrying the last line of its stderr; one
/// killed by a signal is named as such (SIGKILL: most likely the limit's
/// out-of-memory killer).
pub fn run_in_cgroup(
    hierarchy: &Hierarchy,
    prefix: &str,
    limit: u64,
    command: impl FnOnce(&Path) -> Command,
    mut on_line: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<ChildOutcome> {
    let cgroup = MemoryCgroup::create(hierarchy, prefix, limit)?;
    let limit_in_force = cgroup.limit_in_force()?;
    let mut command = command(cgroup.path());
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let mut stderr = child.stderr.take().context("the child's stderr is not piped")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stdout = BufReader::new(child.stdout.take().context("the child's stdout is not piped")?);
    let mut failed = None;
    for line in stdout.lines() {
        let line = line.with_context(|| format!("cannot read the output of {program}"))?;
        if failed.is_none()
            && let Err(err) = on_line(&line)
        {
            failed = Some(err);
        }
    }
    let status = child.wait().with_context(|| format!("cannot wait for {program}"))?;
    let stderr = errors.join().unwrap_or_default();
    let peak = cgroup.peak();
    let path = cgroup.path().to_path_buf();
    cgroup.remove()?;
    if let Some(err) = failed {
        return Err(err);
    }
    if !status.success() {
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        use std::os::unix::process::ExitStatusExt as _;
        match status.signal() {
            Some(libc::SIGKILL) => bail!(
                "the child process was killed (SIGKILL) in its cgroup limited to {limit} bytes: most likely out \
                 of memory{}",
                if last.is_empty() { String::new() } else { format!("; it said: {last}") }
            ),
            Some(signal) => bail!("the child process was killed by signal {signal}; it said: {last}"),
            None => bail!("the child process failed ({status}): {last}"),
        }
    }
    Ok(ChildOutcome { cgroup: path, limit_in_force, peak })
}
