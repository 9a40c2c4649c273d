//! Waiting on several receivers and subscribers at once, without a runtime:
//! one `poll` over their readiness descriptors.
//!
//! ```no_run
//! # fn demo(a: &mut mmapkit_shm::Receiver, b: &mut mmapkit_shm::Subscriber) -> mmapkit_shm::Result<()> {
//! use mmapkit_shm::{Waitable, wait_any};
//! loop {
//!     let ready = wait_any(&mut [&mut *a as &mut dyn Waitable, &mut *b], None)?;
//!     if ready.contains(&0) {
//!         while let Ok(message) = a.try_recv() { /* ... */ drop(message) }
//!     }
//!     if ready.contains(&1) {
//!         while let Ok(sample) = b.try_recv() { /* ... */ drop(sample) }
//!     }
//! }
//! # }
//! ```

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use mmapkit_sys::notify_fd;

use crate::error::{Op, RecvError, Result, ShmError, SubscriberError};
use crate::{Receiver, Subscriber};

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Receiver {}
    impl Sealed for crate::Subscriber {}
}

/// An end [`wait_any`] can wait on: a [`Receiver`] or a [`Subscriber`].
pub trait Waitable: sealed::Sealed {
    /// The end's readiness descriptor, started on first use.
    fn readiness_fd(&mut self) -> Result<RawFd>;
    /// Drains the readiness descriptor.
    fn clear(&self) -> Result<()>;
    /// The end's region, for messages.
    fn describe(&self) -> String;
}

impl Waitable for Receiver {
    fn readiness_fd(&mut self) -> Result<RawFd> {
        Ok(self.readiness()?.as_raw_fd())
    }

    fn clear(&self) -> Result<()> {
        self.clear_readiness().map_err(|e| match e {
            RecvError::Os { error, .. } => ShmError::os(Op::Readiness, &self.region().describe(), error),
            other => ShmError::os(Op::Readiness, &self.region().describe(), io::Error::other(other.to_string())),
        })
    }

    fn describe(&self) -> String {
        self.region().describe()
    }
}

impl Waitable for Subscriber {
    fn readiness_fd(&mut self) -> Result<RawFd> {
        Ok(self.readiness()?.as_raw_fd())
    }

    fn clear(&self) -> Result<()> {
        self.clear_readiness().map_err(|e| match e {
            SubscriberError::Os { error, .. } => ShmError::os(Op::Readiness, &self.region().describe(), error),
            other => ShmError::os(Op::Readiness, &self.region().describe(), io::Error::other(other.to_string())),
        })
    }

    fn describe(&self) -> String {
        self.region().describe()
    }
}

/// Waits until at least one of `ends` has a message waiting (or its other
/// side gone), at most `timeout` (`None`: as long as it takes); the indices
/// of those that do, each one's readiness already cleared, or an empty list
/// on timeout. The contract: receive from each end named until it is
/// `Empty` before waiting again; a message that comes after the clearing
/// wakes the next wait. Each end's first wait makes its readiness bell.
pub fn wait_any(ends: &mut [&mut dyn Waitable], timeout: Option<Duration>) -> Result<Vec<usize>> {
    let raw: Vec<RawFd> = ends.iter_mut().map(|end| end.readiness_fd()).collect::<Result<_>>()?;
    // SAFETY: each descriptor belongs to an end's readiness bell, which lives as long as the end, and every end
    // is borrowed (mutably) for the whole call.
    let fds: Vec<BorrowedFd<'_>> = raw.iter().map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) }).collect();
    let ready = notify_fd::wait_any_readable(&fds, timeout).map_err(|e| {
        let names: Vec<String> = ends.iter().map(|end| end.describe()).collect();
        ShmError::os(Op::Readiness, &names.join(", "), e)
    })?;
    for &i in &ready {
        ends[i].clear()?;
    }
    Ok(ready)
}
