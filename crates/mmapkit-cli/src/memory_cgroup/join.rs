//! The child's side: moving itself into the cgroup its parent made, before it
//! touches the data it measures (pages are charged to the cgroup that first
//! reads them).

use std::path::Path;

use anyhow::{Context, bail};

/// Moves this process into the cgroup at `cgroup` (writing its pid to
/// `cgroup.procs`), then checks `/proc/self/cgroup` says so; returns that
/// line of `/proc/self/cgroup`.
pub fn join(cgroup: &Path) -> anyhow::Result<String> {
    let procs = cgroup.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .with_context(|| format!("cannot join the memory cgroup: writing this process's id to {}", procs.display()))?;
    let name = cgroup.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let mine = std::fs::read_to_string("/proc/self/cgroup").context("cannot read /proc/self/cgroup")?;
    match mine.lines().find(|line| line.rsplit('/').next() == Some(name)) {
        Some(line) => Ok(line.to_owned()),
        None => bail!("wrote this process's id to {} but /proc/self/cgroup does not list {name}", procs.display()),
    }
}
