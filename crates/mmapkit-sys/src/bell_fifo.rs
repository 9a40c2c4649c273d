//! Named FIFOs that one process writes a byte into to make a descriptor of
//! another readable: the doorbell of an end waiting in a poll loop (epoll,
//! kqueue, mio), rung by its peer with no thread of the waiting process in
//! between.
//!
//! A bell is named by a number, its path `BELL_DIR/mmapkit-bell-<number in
//! hex>`, made with mode `0600`. Its owner keeps it open for reading and
//! writing, so that it never reads as hung up and a ringer's write never
//! meets a FIFO without a reader; a ringer opens it the same way (a write to
//! a FIFO whose reader went would raise `SIGPIPE`; with the ringer itself
//! counted as one, it cannot) and may keep the descriptor for later rings.
//! A ring is a non-blocking one-byte write: a FIFO too full to take it is
//! readable already. The owner removes the path when it drops the bell.
//!
//! What a ringer opens is checked before it is written to: a path that is
//! not a FIFO owned by this user is refused, so a peer that hands out
//! another number can only make a ringer ring another of this user's bells.
//! Opening a FIFO for reading and writing at once is left undefined by
//! POSIX; Linux, macOS and FreeBSD all allow it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

/// Where bells are made: a memory file system on Linux (where the shared
/// memory objects live too), the temporary directory elsewhere.
#[cfg(target_os = "linux")]
pub const BELL_DIR: &str = "/dev/shm";
/// Where bells are made: a memory file system on Linux (where the shared
/// memory objects live too), the temporary directory elsewhere.
#[cfg(not(target_os = "linux"))]
pub const BELL_DIR: &str = "/tmp";

/// The prefix of every bell's file name.
pub const BELL_PREFIX: &str = "mmapkit-bell-";

/// The path of bell `id`.
pub fn bell_path(id: u64) -> PathBuf {
    Path::new(BELL_DIR).join(format!("{BELL_PREFIX}{id:016x}"))
}

/// The number a bell's file name carries, if it is a bell's name.
pub fn bell_id(file_name: &str) -> Option<u64> {
    let hex = file_name.strip_prefix(BELL_PREFIX)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The bells whose owner process is gone (its pid, the number's high 32
/// bits, names no process): left by a process that was killed before it
/// could remove them.
pub fn stale_bells() -> io::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(BELL_DIR)? {
        let entry = entry?;
        let Some(id) = entry.file_name().to_str().and_then(bell_id) else { continue };
        if !crate::process::exists((id >> 32) as u32) {
            stale.push(entry.path());
        }
    }
    stale.sort();
    Ok(stale)
}

/// A bell this process owns: the FIFO, open for reading and writing.
#[derive(Debug)]
pub struct BellFifo {
    fd: OwnedFd,
    path: PathBuf,
}

impl BellFifo {
    /// Makes bell `id` (a FIFO left at its path by a process that died is
    /// replaced) and opens it.
    pub fn create(id: u64) -> io::Result<BellFifo> {
        let path = bell_path(id);
        match make_fifo(&path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Bell numbers carry their owner's pid: one at our pid with
                // our number was left by a process that had this pid before.
                std::fs::remove_file(&path)?;
                make_fifo(&path)?;
            }
            other => other?,
        }
        let fd = match open_checked(&path) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        Ok(BellFifo { fd, path })
    }

    /// Rings this bell from its own process.
    pub fn ring(&self) -> io::Result<()> {
        ring(self.fd.as_fd())
    }

    /// Drains the bell: it is not readable until the next ring.
    pub fn clear(&self) -> io::Result<()> {
        let mut buf = [0u8; 256];
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(n) if n == buf.len() => continue,
                Ok(_) | Err(rustix::io::Errno::AGAIN) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The bell's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for BellFifo {
    /// The descriptor to poll for readability.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for BellFifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Opens bell `id` to ring it: refused (`InvalidData`) if its path holds
/// anything but a FIFO of this user's, `NotFound` if there is none.
pub fn open_bell(id: u64) -> io::Result<OwnedFd> {
    open_checked(&bell_path(id))
}

/// Rings a bell through a descriptor from [`open_bell`]: one byte, without
/// blocking (a full FIFO is readable already).
pub fn ring(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        match rustix::io::write(fd, &[1u8]) {
            Ok(_) | Err(rustix::io::Errno::AGAIN) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn make_fifo(path: &Path) -> io::Result<()> {
    #[cfg(not(target_vendor = "apple"))]
    {
        rustix::fs::mkfifoat(rustix::fs::CWD, path, Mode::RUSR | Mode::WUSR)?;
        Ok(())
    }
    #[cfg(target_vendor = "apple")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a bell's path holds a NUL byte"))?;
        // SAFETY: `c_path` is a NUL-terminated string that lives across the call; mkfifo only reads it.
        if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Opens `path` for reading and writing, without blocking and without
/// following a symbolic link, and checks that it is a FIFO of this user's.
fn open_checked(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode as _) != FileType::Fifo || stat.st_uid != crate::process::effective_uid() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a FIFO of this user's", path.display()),
        ));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify_fd::wait_readable;
    use std::time::Duration;

    fn readable(fd: BorrowedFd<'_>) -> bool {
        wait_readable(fd, Some(Duration::ZERO)).unwrap()
    }

    fn test_id(n: u64) -> u64 {
        (u64::from(crate::process::pid()) << 32) | 0x8000_0000 | n
    }

    #[test]
    fn a_ring_through_the_path_makes_the_owners_descriptor_readable_until_cleared() {
        let bell = BellFifo::create(test_id(1)).unwrap();
        assert!(!readable(bell.as_fd()));
        let ringer = open_bell(test_id(1)).unwrap();
        for _ in 0..3 {
            ring(ringer.as_fd()).unwrap();
            assert!(readable(bell.as_fd()));
            bell.clear().unwrap();
            assert!(!readable(bell.as_fd()));
        }
        // Past what the FIFO holds, a ring still succeeds: it is readable already.
        for _ in 0..200_000 {
            ring(ringer.as_fd()).unwrap();
        }
        bell.clear().unwrap();
        assert!(!readable(bell.as_fd()));
        let path = bell.path().to_path_buf();
        drop(bell);
        assert!(!path.exists(), "the owner removes its bell");
        // A ringer that kept its descriptor rings into nothing, without a signal or an error.
        ring(ringer.as_fd()).unwrap();
        assert_eq!(open_bell(test_id(1)).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_path_that_is_not_a_fifo_is_refused_and_a_stale_bell_is_replaced() {
        let path = bell_path(test_id(2));
        std::fs::write(&path, b"not a bell").unwrap();
        let refused = open_bell(test_id(2)).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidData);
        assert!(refused.to_string().contains(&path.display().to_string()), "{refused}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a bell", "nothing was written");
        std::fs::remove_file(&path).unwrap();
        make_fifo(&path).unwrap();
        let bell = BellFifo::create(test_id(2)).unwrap();
        ring(open_bell(test_id(2)).unwrap().as_fd()).unwrap();
        assert!(readable(bell.as_fd()));
    }

    #[test]
    fn bells_of_gone_processes_are_stale_and_this_ones_are_not() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let stale_id = (u64::from(gone) << 32) | 7;
        make_fifo(&bell_path(stale_id)).unwrap();
        let live = BellFifo::create(test_id(4)).unwrap();
        let stale = stale_bells().unwrap();
        assert!(stale.contains(&bell_path(stale_id)), "{stale:?}");
        assert!(!stale.contains(&live.path().to_path_buf()), "{stale:?}");
        std::fs::remove_file(bell_path(stale_id)).unwrap();
    }

    #[test]
    fn bell_names_round_trip_and_others_are_not_bells() {
        let id = test_id(3);
        let name = bell_path(id).file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(bell_id(&name), Some(id));
        assert_eq!(bell_id("mmapkit-bell-12"), None);
        assert_eq!(bell_id("mmapkit-chan-0000000000000001"), None);
        assert_eq!(bell_id("mmapkit-bell-zzzzzzzzzzzzzzzz"), None);
    }
}
