//! Where this process's memory controller is: the cgroup it belongs to
//! (`/proc/self/cgroup`), on the file system mounted for that hierarchy
//! (`/proc/self/mountinfo`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Which cgroup interface the memory controller is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// The unified hierarchy: `memory.max`, `memory.peak`.
    V2,
    /// The memory controller's own hierarchy: `memory.limit_in_bytes`,
    /// `memory.max_usage_in_bytes`.
    V1,
}

impl Version {
    /// `"cgroup v2"` or `"cgroup v1"`.
    pub fn name(self) -> &'static str {
        match self {
            Version::V2 => "cgroup v2",
            Version::V1 => "cgroup v1",
        }
    }

    /// The file that holds a cgroup's memory limit.
    pub fn limit_file(self) -> &'static str {
        match self {
            Version::V2 => "memory.max",
            Version::V1 => "memory.limit_in_bytes",
        }
    }

    /// The file that holds the most memory a cgroup has used.
    pub fn peak_file(self) -> &'static str {
        match self {
            Version::V2 => "memory.peak",
            Version::V1 => "memory.max_usage_in_bytes",
        }
    }
}

/// The directory under which limited cgroups are made, and its interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// `V2` or `V1`.
    pub version: Version,
    /// This process's own memory cgroup (a directory of the cgroup file system).
    pub own: PathBuf,
    /// Where new cgroups go: `own`, or on v2 its parent when `own` holds
    /// processes and so cannot have children with controllers of their own.
    pub parent: PathBuf,
}

impl Hierarchy {
    /// This process's memory controller, or an error naming why there is none
    /// to use (not Linux, no memory controller, not enabled for children).
    pub fn find() -> anyhow::Result<Hierarchy> {
        if !cfg!(target_os = "linux") {
            bail!("a memory limit needs Linux's memory cgroups, and this is {}", mmapkit_sys::OS);
        }
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").context("cannot read /proc/self/cgroup")?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").context("cannot read /proc/self/mountinfo")?;
        let (version, own) = Hierarchy::locate(&cgroup, &mountinfo)?;
        Hierarchy::at(version, &own)
    }

    /// The hierarchy of a cgroup directory `own` of the given version,
    /// checked: on v2 the memory controller must be enabled for `own`.
    pub fn at(version: Version, own: &Path) -> anyhow::Result<Hierarchy> {
        if !own.is_dir() {
            bail!("the memory cgroup {} does not exist (is the cgroup file system mounted?)", own.display());
        }
        let parent = match version {
            Version::V1 => own.to_path_buf(),
            Version::V2 => {
                let controllers = read_words(&own.join("cgroup.controllers"))?;
                if !controllers.iter().any(|c| c == "memory") {
                    bail!(
                        "the memory controller is not enabled for {} (its cgroup.controllers has: {})",
                        own.display(),
                        if controllers.is_empty() { "nothing".to_owned() } else { controllers.join(" ") }
                    );
                }
                let subtree = read_words(&own.join("cgroup.subtree_control"))?;
                if subtree.iter().any(|c| c == "memory") {
                    own.to_path_buf()
                } else {
                    // A cgroup with processes cannot pass controllers on; its
                    // parent already does (that is how `own` has memory).
                    own.parent()
                        .filter(|p| p.join("cgroup.subtree_control").exists())
                        .map(Path::to_path_buf)
                        .with_context(|| {
                            format!(
                                "the memory controller is not enabled for children of {} (add it with \
                                 `echo +memory > {}`)",
                                own.display(),
                                own.join("cgroup.subtree_control").display()
                            )
                        })?
                }
            }
        };
        Ok(Hierarchy { version, own: own.to_path_buf(), parent })
    }

    /// The version and directory of this process's memory cgroup, from the
    /// text of `/proc/self/cgroup` and of `/proc/self/mountinfo`. A v1 memory
    /// controller is used when there is one (the unified hierarchy then has no
    /// memory controller); otherwise the unified hierarchy's cgroup.
    pub fn locate(proc_cgroup: &str, mountinfo: &str) -> anyhow::Result<(Version, PathBuf)> {
        let mut v1 = None;
        let mut v2 = None;
        for line in proc_cgroup.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(_id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            if controllers.is_empty() {
                v2 = Some(path);
            } else if controllers.split(',').any(|c| c == "memory") {
                v1 = Some(path);
            }
        }
        let mounts: Vec<Mount<'_>> = mountinfo.lines().filter_map(Mount::parse).collect();
        if let Some(path) = v1 {
            let mount =
                mounts.iter().find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == "memory")).context(
                    "this process has a cgroup v1 memory controller, but no cgroup file system with it is mounted",
                )?;
            return Ok((Version::V1, mount.resolve(path)));
        }
        let Some(path) = v2 else {
            bail!("this process is in no memory cgroup (/proc/self/cgroup names neither v1 memory nor v2)");
        };
        let mount = mounts
            .iter()
            .find(|m| m.fstype == "cgroup2")
            .context("this process is in a cgroup v2 hierarchy, but no cgroup2 file system is mounted")?;
        Ok((Version::V2, mount.resolve(path)))
    }
}

/// One line of `/proc/self/mountinfo`, the fields used here.
struct Mount<'a> {
    /// The directory of the file system that is mounted (field 4).
    root: &'a str,
    /// Where it is mounted (field 5).
    point: &'a str,
    /// The file system type (the first field after `-`).
    fstype: &'a str,
    /// The super block's options (the third field after `-`): a v1
    /// hierarchy's controllers.
    options: &'a str,
}

impl<'a> Mount<'a> {
    fn parse(line: &'a str) -> Option<Mount<'a>> {
        let (before, after) = line.split_once(" - ")?;
        let fields: Vec<&str> = before.split(' ').collect();
        let mut after = after.split(' ');
        Some(Mount {
            root: fields.get(3)?,
            point: fields.get(4)?,
            fstype: after.next()?,
            options: after.nth(1).unwrap_or(""),
        })
    }

    /// The directory of cgroup `path` (as `/proc/self/cgroup` names it) under this mount.
    fn resolve(&self, path: &str) -> PathBuf {
        let inside = path.strip_prefix(self.root).unwrap_or(path);
        let mut dir = PathBuf::from(unescape(self.point));
        dir.extend(inside.split('/').filter(|p| !p.is_empty()));
        dir
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(Ok(value)) = text.get(i + 1..i + 4).map(|d| u8::from_str_radix(d, 8))
        {
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_words(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

    #[test]
    fn a_v1_memory_controller_wins_over_the_unified_hierarchy() {
        let cgroup = "9:name=systemd:/\n4:memory:/jobs/one\n1:cpu:/\n0::/\n";
        let (version, dir) = Hierarchy::locate(cgroup, MOUNTS).unwrap();
        assert_eq!(version, Version::V1);
        assert_eq!(dir, Path::new("/sys/fs/cgroup/memory/jobs/one"));
    }

    #[test]
    fn v2_alone_resolves_under_the_cgroup2_mount_and_its_root() {
        let mounts = "29 22 0:26 /user.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let (version, dir) = Hierarchy::locate("0::/user.slice/session-3.scope\n", mounts).unwrap();
        assert_eq!(version, Version::V2);
        assert_eq!(dir, Path::new("/sys/fs/cgroup/session-3.scope"));
    }

    #[test]
    fn what_is_missing_is_named() {
        let err = Hierarchy::locate("1:cpu:/\n", MOUNTS).unwrap_err().to_string();
        assert!(err.contains("no memory cgroup"), "{err}");
        let err = Hierarchy::locate("4:memory:/x\n", "41 31 0:38 / /u rw - cgroup2 cgroup2 rw\n").unwrap_err();
        assert!(err.to_string().contains("no cgroup file system with it is mounted"), "{err}");
        let err = Hierarchy::locate("0::/x\n", "").unwrap_err().to_string();
        assert!(err.contains("no cgroup2 file system is mounted"), "{err}");
    }

    #[test]
    fn mount_points_with_spaces_are_unescaped() {
        assert_eq!(unescape(r"/mnt/cg\040root"), "/mnt/cg root");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn a_v2_cgroup_without_the_memory_controller_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu io\n").unwrap();
        std::fs::write(dir.path().join("cgroup.subtree_control"), "").unwrap();
        let err = Hierarchy::at(Version::V2, dir.path()).unwrap_err().to_string();
        assert!(err.contains("memory controller is not enabled") && err.contains("cpu io"), "{err}");
    }

    #[test]
    fn a_v2_cgroup_that_keeps_memory_to_itself_makes_siblings() {
        let root = tempfile::tempdir().unwrap();
        let own = root.path().join("job");
        std::fs::create_dir(&own).unwrap();
        std::fs::write(root.path().join("cgroup.subtree_control"), "memory\n").unwrap();
        std::fs::write(own.join("cgroup.controllers"), "cpu memory\n").unwrap();
        std::fs::write(own.join("cgroup.subtree_control"), "").unwrap();
        let h = Hierarchy::at(Version::V2, &own).unwrap();
        assert_eq!(h.parent, root.path());
        std::fs::write(own.join("cgroup.subtree_control"), "memory\n").unwrap();
        assert_eq!(Hierarchy::at(Version::V2, &own).unwrap().parent, own);
    }
}
