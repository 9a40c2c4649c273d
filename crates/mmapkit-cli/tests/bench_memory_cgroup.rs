//! The memory-cgroup runner on this machine: a cgroup is made with the limit
//! asked for, the child runs inside it, and it is gone afterwards; where no
//! cgroup can be made, the error says why.

use std::path::Path;
use std::process::Command;

use mmapkit_cli::memory_cgroup::{Hierarchy, MemoryCgroup, run_in_cgroup};

const LIMIT: u64 = 64 << 20;

/// This machine's hierarchy, if a cgroup can really be made under it (root
/// with a memory controller); otherwise the reason.
fn usable() -> Result<Hierarchy, String> {
    let hierarchy = Hierarchy::find().map_err(|e| format!("{e:#}"))?;
    MemoryCgroup::create(&hierarchy, "mmapkit-test-probe", LIMIT)
        .and_then(MemoryCgroup::remove)
        .map_err(|e| format!("{e:#}"))?;
    Ok(hierarchy)
}

/// A shell that joins the cgroup, then prints its own cgroup line and the limit.
fn joining_shell(cgroup: &Path, limit_file: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(format!(
        "echo $$ > '{0}/cgroup.procs' && grep -E ':(memory)?:' /proc/self/cgroup && cat '{0}/{limit_file}'",
        cgroup.display()
    ));
    command
}

#[test]
fn a_child_runs_inside_a_limited_cgroup_that_is_removed_after() {
    let hierarchy = match usable() {
        Ok(h) => h,
        Err(reason) => {
            // Not root, or no memory controller: the refusal names the cause.
            assert!(
                reason.contains("memory")
                    && (reason.contains("cgroup") || reason.contains("Linux"))
                    && (reason.contains("needs root") || reason.contains("not enabled") || reason.contains("no ")),
                "{reason}"
            );
            return;
        }
    };
    let mut lines = Vec::new();
    let mut seen_inside = None;
    let outcome = run_in_cgroup(
        &hierarchy,
        "mmapkit-test",
        LIMIT,
        |cgroup| {
            seen_inside = Some(cgroup.to_path_buf());
            joining_shell(cgroup, hierarchy.version.limit_file())
        },
        |line| {
            lines.push(line.to_owned());
            Ok(())
        },
    )
    .unwrap();
    let cgroup = seen_inside.unwrap();
    assert_eq!(outcome.cgroup, cgroup);
    let name = cgroup.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(&format!("mmapkit-test-{}-", std::process::id())), "{name}");
    assert!(cgroup.starts_with(&hierarchy.parent), "{} is not under {}", cgroup.display(), hierarchy.parent.display());
    // Used: the child's own /proc/self/cgroup names it, and it read the limit there.
    assert!(lines.iter().any(|l| l.ends_with(&format!("/{name}"))), "{lines:?}");
    assert_eq!(lines.last().map(|l| l.trim().parse::<u64>().unwrap()), Some(outcome.limit_in_force), "{lines:?}");
    assert!((LIMIT..LIMIT + 4096).contains(&outcome.limit_in_force), "{}", outcome.limit_in_force);
    // Removed.
    assert!(!cgroup.exists(), "{} is left behind", cgroup.display());
}

#[test]
fn a_failing_child_is_an_error_with_its_last_words_and_the_cgroup_still_goes() {
    let Ok(hierarchy) = usable() else { return };
    let mut made = None;
    let err = run_in_cgroup(
        &hierarchy,
        "mmapkit-test",
        LIMIT,
        |cgroup| {
            made = Some(cgroup.to_path_buf());
            let mut command = Command::new("/bin/sh");
            command.args(["-c", "echo 'first words' >&2; echo 'cannot go on: reason X' >&2; exit 3"]);
            command
        },
        |_| Ok(()),
    )
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("cannot go on: reason X") && text.contains("exit status: 3"), "{text}");
    assert!(!made.unwrap().exists());
}

#[test]
fn a_cgroup_dropped_unused_is_removed_and_names_never_repeat() {
    let Ok(hierarchy) = usable() else { return };
    let first = MemoryCgroup::create(&hierarchy, "mmapkit-test", LIMIT).unwrap();
    let second = MemoryCgroup::create(&hierarchy, "mmapkit-test", LIMIT).unwrap();
    let (a, b) = (first.path().to_path_buf(), second.path().to_path_buf());
    assert_ne!(a, b);
    assert!(a.is_dir() && b.is_dir());
    assert_eq!(first.processes().unwrap(), Vec::<u32>::new());
    drop(first);
    drop(second);
    assert!(!a.exists() && !b.exists());
    let err = MemoryCgroup::create(&hierarchy, "mmapkit-test", 0).unwrap_err().to_string();
    assert!(err.contains("0 bytes"), "{err}");
}

#[test]
fn a_user_who_may_not_make_cgroups_is_told_so() {
    // As root, run the check as `nobody`; as anyone else, run it as is.
    let exe = assert_cmd::cargo::cargo_bin("mmapkit");
    let root = mmapkit_sys::process::effective_uid() == 0;
    let mut command = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let output = command.args(["bench", "--memory-limit", "64M", "--quick", "-q"]).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("--memory-limit cannot be used here"), "{err}");
    if Hierarchy::find().is_ok() {
        let uid = if root { 65534 } else { mmapkit_sys::process::effective_uid() };
        assert!(err.contains("needs root") && err.contains(&format!("user id {uid}")), "{err}");
        assert!(err.contains("cannot create the memory cgroup"), "{err}");
    }
}
