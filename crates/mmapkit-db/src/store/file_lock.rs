//! The lock that keeps other openers out (exclusive for a handle that writes,
//! shared among read-only handles), and who holds it.

use std::fs::{File, TryLockError};
use std::os::fd::AsFd;
use std::path::Path;

use crate::error::{Error, IoOp, Result};

/// Takes an exclusive (writer) or shared (read-only) `flock` on `file`, or
/// says which process holds the lock in its way.
pub fn lock(file: &File, path: &Path, exclusive: bool) -> Result<()> {
    let taken = if exclusive { file.try_lock() } else { file.try_lock_shared() };
    match taken {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(Error::Locked { path: path.to_path_buf(), pid: holder(file) }),
        Err(TryLockError::Error(error)) => Err(Error::io(path, IoOp::Lock, error)),
    }
}

/// The process holding the lock in our way, where the OS tells.
fn holder(file: &File) -> Option<u32> {
    mmapkit_sys::file::flock_holder(file.as_fd())
}
