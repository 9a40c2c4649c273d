//! The exclusive lock that keeps a second opener out, and who holds it.

use std::fs::{self, File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Takes an exclusive (writer) or shared (read-only) `flock` on `file`, or
/// says which process holds the lock in its way.
pub fn lock(file: &File, path: &Path, exclusive: bool) -> Result<()> {
    let taken = if exclusive { file.try_lock() } else { file.try_lock_shared() };
    match taken {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(Error::Locked { path: path.to_path_buf(), pid: holder(file) }),
        Err(TryLockError::Error(source)) => Err(Error::Io { path: path.to_path_buf(), op: "lock", source }),
    }
}

/// The pid `/proc/locks` gives for a lock on `file`'s inode, if any.
fn holder(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    // glibc's gnu_dev_major / gnu_dev_minor.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = fs::read_to_string("/proc/locks").ok()?;
    // "1: FLOCK  ADVISORY  WRITE 4242 08:01:123456 0 EOF"
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = fields.iter().position(|f| *f == id)?;
        if at == 0 || fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        fields[at - 1].parse().ok()
    })
}
