//! Holding the CPUs out of deep idle states for a run: a CPU latency request
//! through `/dev/cpu_dma_latency` (the kernel's PM QoS interface, which
//! cyclictest uses the same way).
//!
//! While a process keeps the file open with a value written, no CPU enters an
//! idle state that takes longer than that many microseconds to leave. At 0, a
//! CPU with nothing to run polls instead of halting, so that waking a sleeping
//! process costs the scheduler's work rather than the CPU's (or, in a virtual
//! machine, the hypervisor's) return from halt. The kernel drops the request
//! when the file is closed, also when the process dies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;

/// The kernel's CPU latency request file.
pub const CPU_LATENCY: &str = "/dev/cpu_dma_latency";

/// A held request that every CPU leaves idle at once: they poll rather than
/// halt until this is dropped.
pub struct ShallowIdle {
    _request: File,
}

impl ShallowIdle {
    /// Asks for a wake-up latency of 0 and holds the request until dropped.
    /// The file is writable by root only on most systems.
    pub fn hold() -> anyhow::Result<ShallowIdle> {
        let held = hold_at(Path::new(CPU_LATENCY))?;
        let now = granted()?;
        anyhow::ensure!(now == 0, "{CPU_LATENCY} grants a wake-up latency of {now} µs after a request for 0");
        Ok(held)
    }
}

fn hold_at(path: &Path) -> anyhow::Result<ShallowIdle> {
    let mut request = OpenOptions::new().write(true).open(path).with_context(|| {
        format!("cannot open {} to hold the CPUs out of deep idle (usually only root may)", path.display())
    })?;
    // Four bytes are read as a binary value; anything else as hex text.
    request
        .write_all(&0i32.to_ne_bytes())
        .with_context(|| format!("cannot write a latency of 0 to {}", path.display()))?;
    Ok(ShallowIdle { _request: request })
}

/// The wake-up latency the kernel grants now, in microseconds: the least of
/// every request held (a very large value when there is none).
pub fn granted() -> anyhow::Result<i32> {
    let path = Path::new(CPU_LATENCY);
    let mut bytes = [0u8; 4];
    File::open(path)
        .and_then(|mut file| file.read_exact(&mut bytes))
        .with_context(|| format!("cannot read the CPU latency granted from {}", path.display()))?;
    Ok(i32::from_ne_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the file may be written (as root), holding succeeds, the kernel
    /// grants 0 while the request is held and what it granted before once it
    /// is dropped; where it may not, the error names the file.
    #[test]
    fn a_held_request_keeps_the_granted_latency_at_zero_until_dropped() {
        let may_write = OpenOptions::new().write(true).open(CPU_LATENCY).is_ok();
        let before = granted();
        match (may_write, ShallowIdle::hold()) {
            (true, Ok(held)) => {
                let before = before.unwrap();
                assert_eq!(granted().unwrap(), 0);
                drop(held);
                assert_eq!(granted().unwrap(), before, "the request outlived its holder");
            }
            (false, Err(err)) => assert!(format!("{err:#}").contains(CPU_LATENCY), "{err:#}"),
            (may_write, held) => panic!("may write {CPU_LATENCY}: {may_write}, yet {:?}", held.map(|_| ())),
        }
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-device");
        let err = hold_at(&path).err().expect("nothing to open");
        assert!(format!("{err:#}").contains(&path.display().to_string()), "{err:#}");
    }
}
