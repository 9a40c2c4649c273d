//! One memory cgroup with a limit: made under a [`Hierarchy`], removed when
//! dropped (or by [`MemoryCgroup::remove`], which reports a failure).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

use super::hierarchy::{Hierarchy, Version};

/// Numbers the cgroups this process makes, so that names never repeat.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The cgroups this process has made and not yet removed.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes every cgroup this process made that is still there, for an
/// interrupt handler that is about to exit: their processes, sent the same
/// interrupt, may take a moment to leave (this waits up to a second for
/// each). Failures are reported on stderr.
pub fn remove_live() {
    let live = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for path in live {
        if let Err(err) = remove_dir(&path) {
            eprintln!("mmapkit: {err:#}");
        }
    }
}

/// A memory cgroup limited to a number of bytes; its directory is removed on drop.
#[derive(Debug)]
pub struct MemoryCgroup {
    path: PathBuf,
    version: Version,
    limit: u64,
    removed: bool,
}

impl MemoryCgroup {
    /// Makes a new cgroup named `<prefix>-<pid>-<n>` under `hierarchy`,
    /// limited to `limit` bytes. The error says why it cannot be made, with
    /// the path and, when permission was refused, the user id.
    pub fn create(hierarchy: &Hierarchy, prefix: &str, limit: u64) -> anyhow::Result<MemoryCgroup> {
        if limit == 0 {
            bail!("a memory limit of 0 bytes leaves no room for the process itself");
        }
        let name = format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = hierarchy.parent.join(name);
        if let Err(err) = std::fs::create_dir(&path) {
            let why = if err.kind() == std::io::ErrorKind::PermissionDenied || err.raw_os_error() == Some(libc::EROFS) {
                let uid = mmapkit_sys::process::effective_uid();
                if uid == 0 {
                    format!("{err} (the cgroup file system is not writable here, even as root)")
                } else {
                    format!("{err}: making cgroups needs root (this runs as user id {uid}) or a delegated cgroup")
                }
            } else {
                err.to_string()
            };
            bail!("cannot create the memory cgroup {}: {why}", path.display());
        }
        if let Ok(mut live) = LIVE.lock() {
            live.push(path.clone());
        }
        let cgroup = MemoryCgroup { path, version: hierarchy.version, limit, removed: false };
        let limit_file = cgroup.path.join(hierarchy.version.limit_file());
        std::fs::write(&limit_file, limit.to_string())
            .with_context(|| format!("cannot set the memory limit: writing {limit} to {}", limit_file.display()))?;
        Ok(cgroup)
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The limit asked for, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The limit in force, as the kernel reports it (it may round to pages).
    pub fn limit_in_force(&self) -> anyhow::Result<u64> {
        self.read_number(self.version.limit_file())
    }

    /// The most memory the cgroup has used, where the kernel reports it
    /// (v2 before Linux 5.19 does not).
    pub fn peak(&self) -> Option<u64> {
        self.read_number(self.version.peak_file()).ok()
    }

    /// The process ids in the cgroup now.
    pub fn processes(&self) -> anyhow::Result<Vec<u32>> {
        let path = self.path.join("cgroup.procs");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        text.split_whitespace()
            .map(|p| p.parse().with_context(|| format!("{} holds {p:?}, not a process id", path.display())))
            .collect()
    }

    fn read_number(&self, file: &str) -> anyhow::Result<u64> {
        let path = self.path.join(file);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let text = text.trim();
        if text == "max" {
            return Ok(u64::MAX);
        }
        text.parse().with_context(|| format!("{} holds {text:?}, not a number", path.display()))
    }

    /// Removes the cgroup, once its processes have left (a process that has
    /// just exited can stay listed for a moment: this waits up to a second).
    pub fn remove(mut self) -> anyhow::Result<()> {
        self.removed = true;
        remove_dir(&self.path)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        if !self.removed
            && let Err(err) = remove_dir(&self.path)
        {
            eprintln!("mmapkit: {err:#}");
        }
    }
}

fn remove_dir(path: &Path) -> anyhow::Result<()> {
    let result = remove_dir_once_empty(path);
    if result.is_ok()
        && let Ok(mut live) = LIVE.lock()
    {
        live.retain(|p| p != path);
    }
    result
}

fn remove_dir_once_empty(path: &Path) -> anyhow::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => {
                return Err(err).with_context(|| format!("cannot remove the memory cgroup {}", path.display()));
            }
        }
    }
}
