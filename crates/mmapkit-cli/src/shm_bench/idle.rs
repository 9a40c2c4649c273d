//! The CPUs' idle states during a run, and holding them shallow: a CPU
//! latency request through `/dev/cpu_dma_latency` (Linux's PM QoS interface,
//! which cyclictest uses the same way).
//!
//! While a process keeps that file open with a value written, no CPU enters
//! an idle state that takes longer than that many microseconds to leave. At
//! 0 the cpuidle governor picks the shallowest state, which on x86 (the
//! `POLL` state) spins until there is work, so waking a sleeping process
//! costs the scheduler's work rather than the CPU's (or, in a virtual
//! machine, the hypervisor's) return from halt. The kernel drops the request
//! when the file is closed, also when the process dies. A polling CPU burns
//! power, and on a virtual machine host CPU time, for as long as it is held.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

/// The kernel's CPU latency request file.
const CPU_LATENCY: &str = "/dev/cpu_dma_latency";
const CPUIDLE_DRIVER: &str = "/sys/devices/system/cpu/cpuidle/current_driver";
const SHALLOWEST_STATE: &str = "/sys/devices/system/cpu/cpu0/cpuidle/state0/name";
/// The name of the idle state that polls rather than halts.
const POLLING_STATE: &str = "POLL";
/// What the kernel grants when nobody asks for less (PM_QOS_CPU_LATENCY_DEFAULT_VALUE).
const NO_LIMIT_US: i32 = 2_000_000_000;

/// The CPUs' idle setup, as a run's report gives it.
#[derive(Clone, Debug, Serialize)]
pub struct IdleReport {
    /// Whether this run held the CPUs out of deep idle (`--shallow-idle`).
    pub held_shallow: bool,
    /// The cpuidle driver, or `none` (idle CPUs then halt, whatever is asked).
    pub driver: String,
    /// CPU 0's shallowest idle state (`POLL` polls; the others halt or sleep).
    pub shallowest_state: String,
    /// The wake-up latency the kernel granted as the run started and as it
    /// ended, in microseconds (none where the request file cannot be read).
    pub granted_latency_us_at_start: Option<i32>,
    pub granted_latency_us_at_end: Option<i32>,
}

impl IdleReport {
    /// The table's line for it, under the run's first two.
    pub fn describe(&self) -> String {
        let granted = match self.granted_latency_us_at_start {
            Some(NO_LIMIT_US) => "no limit".to_owned(),
            Some(us) => format!("{us} µs"),
            None => format!("unknown (cannot read {CPU_LATENCY})"),
        };
        let setup = format!(
            "cpuidle driver {}, shallowest state {}, wake-up latency granted: {granted}",
            self.driver, self.shallowest_state
        );
        if self.held_shallow {
            format!("CPU idle: held shallow for the run ({setup})")
        } else {
            format!("CPU idle: as the machine sets it ({setup}); --shallow-idle holds it at 0")
        }
    }
}

/// A held request that every CPU leaves idle at once, dropped with this.
pub struct ShallowIdle {
    request: File,
}

impl ShallowIdle {
    /// Asks for a wake-up latency of 0 and holds it. Refuses where it would
    /// change nothing: no cpuidle driver, or a shallowest state that halts.
    pub fn hold() -> anyhow::Result<ShallowIdle> {
        let (driver, state) = (read_name(CPUIDLE_DRIVER), read_name(SHALLOWEST_STATE));
        check_polls(&driver, &state)?;
        let held = hold_at(Path::new(CPU_LATENCY))?;
        let now = held.granted()?;
        anyhow::ensure!(now <= 0, "{CPU_LATENCY} grants a wake-up latency of {now} µs after a request for 0");
        Ok(held)
    }

    /// The wake-up latency the kernel grants now, in microseconds.
    pub fn granted(&self) -> anyhow::Result<i32> {
        read_latency(&self.request)
    }
}

/// Whether a latency of 0 makes idle CPUs poll, given the cpuidle driver and
/// the shallowest state's name.
fn check_polls(driver: &str, state: &str) -> anyhow::Result<()> {
    if driver == "none" || state != POLLING_STATE {
        bail!(
            "--shallow-idle would change nothing here: the cpuidle driver is {driver:?} and the shallowest idle \
             state {state:?}, which does not poll ({CPUIDLE_DRIVER}, {SHALLOWEST_STATE})"
        );
    }
    Ok(())
}

fn hold_at(path: &Path) -> anyhow::Result<ShallowIdle> {
    let mut request = OpenOptions::new().read(true).write(true).open(path).map_err(|err| {
        let why = match err.kind() {
            ErrorKind::NotFound => ": this kernel has no CPU latency interface",
            ErrorKind::PermissionDenied => ": usually only root may",
            _ => "",
        };
        anyhow::Error::new(err)
            .context(format!("cannot open {} to hold the CPUs out of deep idle{why}", path.display()))
    })?;
    // Four bytes are read as a binary value; anything else as hex text.
    request
        .write_all(&0i32.to_ne_bytes())
        .with_context(|| format!("cannot write a latency of 0 to {}", path.display()))?;
    Ok(ShallowIdle { request })
}

/// Reads the granted latency through an open request file (at offset 0:
/// the file cannot be seeked, and a second plain read would find its end).
fn read_latency(file: &File) -> anyhow::Result<i32> {
    let mut bytes = [0u8; 4];
    file.read_exact_at(&mut bytes, 0)
        .with_context(|| format!("cannot read the CPU latency granted from {CPU_LATENCY}"))?;
    Ok(i32::from_ne_bytes(bytes))
}

/// The wake-up latency the kernel grants now (none where the request file
/// cannot be opened, as for most users but root).
fn granted() -> Option<i32> {
    File::open(CPU_LATENCY).ok().and_then(|file| read_latency(&file).ok())
}

/// A sysfs file's text, trimmed, or `none` where there is no such file.
fn read_name(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| "none".to_owned(), |text| text.trim().to_owned())
}

/// The wake-up latency granted now, read through this run's request if it
/// holds one, or else through a fresh open of the file.
pub fn granted_now(held: Option<&ShallowIdle>) -> Option<i32> {
    held.map_or_else(granted, |held| held.granted().ok())
}

/// The idle setup as the run starts.
pub fn observe(held: Option<&ShallowIdle>) -> IdleReport {
    IdleReport {
        held_shallow: held.is_some(),
        driver: read_name(CPUIDLE_DRIVER),
        shallowest_state: read_name(SHALLOWEST_STATE),
        granted_latency_us_at_start: granted_now(held),
        granted_latency_us_at_end: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the request file may be written (as root) and idle CPUs can
    /// poll, holding succeeds, the kernel grants 0 while the request is held
    /// and what it granted before once it is dropped; elsewhere the error
    /// says why.
    #[test]
    fn a_held_request_keeps_the_granted_latency_at_zero_until_dropped() {
        let may_write = OpenOptions::new().write(true).open(CPU_LATENCY).is_ok();
        let polls = check_polls(&read_name(CPUIDLE_DRIVER), &read_name(SHALLOWEST_STATE)).is_ok();
        let before = granted();
        match (may_write && polls, ShallowIdle::hold()) {
            (true, Ok(held)) => {
                assert_eq!(held.granted().unwrap(), 0);
                assert_eq!(held.granted().unwrap(), 0, "read twice through one file");
                assert_eq!(granted(), Some(0), "seen through another open file too");
                drop(held);
                assert_eq!(granted(), before, "the request outlived its holder");
            }
            (false, Err(err)) => {
                let err = format!("{err:#}");
                assert!(err.contains(CPU_LATENCY) || err.contains("does not poll"), "{err}");
            }
            (can, held) => panic!("may write and polls: {can}, yet {:?}", held.map(|_| ())),
        }
    }

    #[test]
    fn a_latency_of_zero_is_refused_where_idle_cpus_would_still_halt() {
        assert!(check_polls("haltpoll", "POLL").is_ok());
        assert!(check_polls("intel_idle", "POLL").is_ok());
        for (driver, state) in [("none", "none"), ("none", "POLL"), ("psci_idle", "WFI")] {
            let err = check_polls(driver, state).unwrap_err().to_string();
            assert!(err.contains(driver) && err.contains(state) && err.contains("does not poll"), "{err}");
        }
    }

    #[test]
    fn a_missing_request_file_is_an_error_naming_it_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-device");
        let err = format!("{:#}", hold_at(&path).err().expect("nothing to open"));
        assert!(err.contains(&path.display().to_string()) && err.contains("no CPU latency interface"), "{err}");
    }
}
