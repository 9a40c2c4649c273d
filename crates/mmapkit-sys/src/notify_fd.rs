//! A descriptor that one thread makes readable for a poller (epoll, kqueue,
//! mio) to see: an eventfd on Linux, a pipe elsewhere. Both ends are
//! non-blocking and close-on-exec.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A descriptor made readable by [`signal`](Self::signal) and drained by
/// [`clear`](Self::clear).
#[derive(Debug)]
pub struct NotifyFd {
    /// The end a poller watches.
    read: OwnedFd,
    /// The end signalled (the same eventfd on Linux).
    #[cfg(not(target_os = "linux"))]
    write: OwnedFd,
}

impl NotifyFd {
    /// A new descriptor, not readable.
    pub fn new() -> io::Result<NotifyFd> {
        #[cfg(target_os = "linux")]
        {
            use rustix::event::{EventfdFlags, eventfd};
            let read = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            Ok(NotifyFd { read })
        }
        #[cfg(not(target_os = "linux"))]
        {
            use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
            use rustix::io::{FdFlags, fcntl_setfd};
            let (read, write) = rustix::pipe::pipe()?;
            for end in [&read, &write] {
                fcntl_setfd(end, FdFlags::CLOEXEC)?;
                fcntl_setfl(end, fcntl_getfl(end)? | OFlags::NONBLOCK)?;
            }
            Ok(NotifyFd { read, write })
        }
    }

    /// Makes the descriptor readable (a no-op if it already is, as far as a
    /// poller can tell).
    pub fn signal(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        let (end, bytes) = (&self.read, 1u64.to_ne_bytes());
        #[cfg(not(target_os = "linux"))]
        let (end, bytes) = (&self.write, [1u8]);
        match rustix::io::write(end, &bytes) {
            // A full pipe (or an eventfd at its limit) is readable already.
            Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Drains the descriptor: it is not readable until the next signal.
    pub fn clear(&self) -> io::Result<()> {
        let mut buf = [0u8; 64];
        loop {
            match rustix::io::read(&self.read, &mut buf) {
                #[cfg(target_os = "linux")]
                Ok(_) => return Ok(()),
                #[cfg(not(target_os = "linux"))]
                Ok(n) if n == buf.len() => continue,
                #[cfg(not(target_os = "linux"))]
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::AGAIN) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for NotifyFd {
    /// The end to poll for readability.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// Waits until `fd` is readable, at most `timeout` (`None`: as long as it
/// takes; zero: a look); whether it is.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<std::time::Duration>) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, poll};
    let timeout = timeout.map(|t| rustix::time::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(t.subsec_nanos()) as _,
    });
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    loop {
        match poll(&mut fds, timeout.as_ref()) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits until at least one of `fds` is readable, at most `timeout`
/// (`None`: as long as it takes; zero: a look); which of them are, by index
/// (empty on timeout). One `poll` for all.
pub fn wait_any_readable(fds: &[BorrowedFd<'_>], timeout: Option<std::time::Duration>) -> io::Result<Vec<usize>> {
    use rustix::event::{PollFd, PollFlags, poll};
    let timeout = timeout.map(|t| rustix::time::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(t.subsec_nanos()) as _,
    });
    let mut polled: Vec<PollFd<'_>> = fds.iter().map(|fd| PollFd::new(fd, PollFlags::IN)).collect();
    loop {
        match poll(&mut polled, timeout.as_ref()) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(polled.iter().enumerate().filter(|(_, fd)| !fd.revents().is_empty()).map(|(i, _)| i).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the descriptor is readable now.
    fn readable(fd: &NotifyFd) -> bool {
        wait_readable(fd.as_fd(), Some(std::time::Duration::ZERO)).unwrap()
    }

    #[test]
    fn wait_any_readable_names_the_signalled_descriptors() {
        let fds = [NotifyFd::new().unwrap(), NotifyFd::new().unwrap(), NotifyFd::new().unwrap()];
        let borrowed: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
        assert!(wait_any_readable(&borrowed, Some(std::time::Duration::ZERO)).unwrap().is_empty());
        fds[2].signal().unwrap();
        fds[0].signal().unwrap();
        assert_eq!(wait_any_readable(&borrowed, None).unwrap(), [0, 2]);
        fds[0].clear().unwrap();
        assert_eq!(wait_any_readable(&borrowed, Some(std::time::Duration::ZERO)).unwrap(), [2]);
    }

    #[test]
    fn a_signal_makes_it_readable_until_cleared() {
        let fd = NotifyFd::new().unwrap();
        assert!(!readable(&fd));
        fd.signal().unwrap();
        fd.signal().unwrap();
        assert!(readable(&fd));
        fd.clear().unwrap();
        assert!(!readable(&fd));
        fd.clear().unwrap();
        fd.signal().unwrap();
        assert!(readable(&fd));
    }
}
