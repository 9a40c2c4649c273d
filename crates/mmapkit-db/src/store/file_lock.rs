//! The flock on the database file: held exclusively by the handle whose turn
//! it is to write (for a write transaction, and for as long as its commits
//! are not all durable), or shared by read-only handles that cannot use the
//! lock file; and who holds it.

use std::fs::{File, TryLockError};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, IoOp, Result};

/// The longest sleep between two tries while waiting for the turn.
const MAX_BACKOFF: Duration = Duration::from_millis(2);

/// Takes an exclusive (writer) or shared (read-only) `flock` on `file` if it
/// is free, or says which process holds it.
pub fn lock(file: &File, path: &Path, exclusive: bool) -> Result<()> {
    let taken = if exclusive { file.try_lock() } else { file.try_lock_shared() };
    match taken {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(Error::Locked { path: path.to_path_buf(), pid: holder(file) }),
        Err(TryLockError::Error(error)) => Err(Error::io(path, IoOp::Lock, error)),
    }
}

/// Takes the writer's turn: the exclusive `flock` on `file`, waiting for it
/// up to `timeout` (`None`: for as long as it takes). A wait that runs out
/// is [`Error::Locked`] naming the holder: as the OS tells, else as
/// `recorded` (the lock file's record of the last writer) says.
pub fn take_turn(file: &File, path: &Path, timeout: Option<Duration>, recorded: Option<u32>) -> Result<()> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut backoff = Duration::from_micros(20);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(error)) => return Err(Error::io(path, IoOp::Lock, error)),
            Err(TryLockError::WouldBlock) => {}
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(Error::Locked { path: path.to_path_buf(), pid: holder(file).or(recorded) });
        }
        let nap = deadline.map_or(backoff, |d| backoff.min(d - now));
        std::thread::sleep(nap);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Gives the turn back. Nothing to report: a failure leaves the lock to go
/// when the handle closes the file.
pub fn end_turn(file: &File) {
    let _ = file.unlock();
}

/// The process holding the lock in our way, where the OS tells.
fn holder(file: &File) -> Option<u32> {
    mmapkit_sys::file::flock_holder(file.as_fd())
}
